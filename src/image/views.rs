//! Shifted views of a picture: a margin cut from one side, a small zoom in, a zoom out padded
//! with black. A box the model finds from the film's content follows the content from view to
//! view; a guess tied to the frame does not. `protocol::structures` reads how well the views'
//! boxes agree as a sign of a hit.

use super::Picture;

/// The views as fractions of the width and height cut from (left, top, right, bottom);
/// negative: padded.
pub const VIEWS: [[f32; 4]; 6] = [
    [0.0, 0.08, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.08],
    [0.08, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.08, 0.0],
    [0.04, 0.04, 0.04, 0.04],
    [-0.08, -0.08, -0.08, -0.08],
];

/// The part of `p` inside `[left, top, right, bottom]` fractions (black where a fraction is
/// negative), and where the view's origin lies in `p`'s pixels.
pub fn view(p: &Picture, cut: [f32; 4]) -> (Picture, [i64; 2]) {
    let (w, h) = (p.width as i64, p.height as i64);
    let px = |f: f32, size: i64| (f * size as f32).round() as i64;
    let (x0, y0) = (px(cut[0], w), px(cut[1], h));
    let (x1, y1) = (w - px(cut[2], w), h - px(cut[3], h));
    // At least a pixel each way, whatever the fractions.
    let (vw, vh) = ((x1 - x0).max(1), (y1 - y0).max(1));
    let c = p.channels;
    let mut data = vec![0.0f32; (vw * vh) as usize * c];
    for y in 0..vh {
        let sy = y + y0;
        if !(0..h).contains(&sy) {
            continue;
        }
        for x in 0..vw {
            let sx = x + x0;
            if (0..w).contains(&sx) {
                let (d, s) = (((y * vw + x) as usize) * c, ((sy * w + sx) as usize) * c);
                data[d..d + c].copy_from_slice(&p.data[s..s + c]);
            }
        }
    }
    let picture = Picture {
        width: vw as u32,
        height: vh as u32,
        channels: c,
        data,
    };
    (picture, [x0, y0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> Picture {
        let data = (0..w * h).map(|i| i as f32 / (w * h) as f32).collect();
        Picture::new(w, h, 1, data).unwrap()
    }

    #[test]
    fn a_cut_keeps_the_rest_and_says_where_it_starts() {
        let p = ramp(50, 20);
        let (v, origin) = view(&p, [0.1, 0.0, 0.0, 0.25]);
        assert_eq!((v.width, v.height, origin), (45, 15, [5, 0]));
        // Pixel (0, 0) of the view is (5, 0) of the picture; (3, 2) is (8, 2).
        assert_eq!(v.data[0], p.data[5]);
        assert_eq!(v.data[2 * 45 + 3], p.data[2 * 50 + 8]);
    }

    #[test]
    fn a_zoom_out_pads_black_around_the_picture() {
        let p = ramp(50, 20);
        let (v, origin) = view(&p, [-0.1, -0.1, -0.1, -0.1]);
        assert_eq!((v.width, v.height, origin), (60, 24, [-5, -2]));
        assert_eq!(v.data[0], 0.0);
        assert_eq!(v.data[2 * 60 + 5], p.data[0]);
        assert_eq!(v.data[(2 + 19) * 60 + 5 + 49], p.data[19 * 50 + 49]);
        assert_eq!(v.data[23 * 60 + 59], 0.0);
    }
}
