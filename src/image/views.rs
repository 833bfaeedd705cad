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

/// Largest spread of values within a row or column that still counts as a flat border.
pub const FLAT: f32 = 0.04;

/// `p` without the flat bands along its edges (a film digitiser's or a screenshot's black or
/// white border, a band below): rows and columns whose values spread by at most [`FLAT`],
/// taken from each side up to 40 % of the picture, with where the rest begins in `p`; None
/// where no edge has two such lines.
pub fn trim(p: &Picture) -> Option<(Picture, [i64; 2])> {
    let (w, h, c) = (p.width as usize, p.height as usize, p.channels);
    let at = |x: usize, y: usize| &p.data[(y * w + x) * c..(y * w + x + 1) * c];
    let flat = |values: &mut dyn Iterator<Item = f32>| {
        let (lo, hi) = values.fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        hi - lo <= FLAT
    };
    // The window [x0, x1) x [y0, y1) shrinks side by side until no side has a flat line, each
    // line read within the window (a black border beside a white band is two bands).
    let (mut x0, mut y0, mut x1, mut y1) = (0, 0, w, h);
    let row =
        |y: usize, x0: usize, x1: usize| flat(&mut (x0..x1).flat_map(|x| at(x, y).iter().copied()));
    let column =
        |x: usize, y0: usize, y1: usize| flat(&mut (y0..y1).flat_map(|y| at(x, y).iter().copied()));
    loop {
        let before = (x0, y0, x1, y1);
        while y0 < h * 2 / 5 && y1 - y0 > 2 && row(y0, x0, x1) {
            y0 += 1;
        }
        while h - y1 < h * 2 / 5 && y1 - y0 > 2 && row(y1 - 1, x0, x1) {
            y1 -= 1;
        }
        while x0 < w * 2 / 5 && x1 - x0 > 2 && column(x0, y0, y1) {
            x0 += 1;
        }
        while w - x1 < w * 2 / 5 && x1 - x0 > 2 && column(x1 - 1, y0, y1) {
            x1 -= 1;
        }
        if (x0, y0, x1, y1) == before {
            break;
        }
    }
    if [y0, h - y1, x0, w - x1].iter().all(|&n| n < 2) {
        return None;
    }
    let cut = [
        x0 as f32 / w as f32,
        y0 as f32 / h as f32,
        (w - x1) as f32 / w as f32,
        (h - y1) as f32 / h as f32,
    ];
    Some(view(p, cut))
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

    #[test]
    fn trim_takes_flat_bands_off_the_edges_only() {
        // A 10 x 8 ramp inside a black border of 2 on the left and top, a white band of 3 below.
        let (w, h) = (12u32, 13u32);
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if x < 2 || y < 2 {
                    0.0
                } else if y >= 10 {
                    1.0
                } else {
                    (x * 3 + y * 5) as f32 / 100.0
                }
            })
            .collect();
        let p = Picture::new(w, h, 1, data).unwrap();
        let (t, origin) = trim(&p).unwrap();
        assert_eq!((t.width, t.height, origin), (10, 8, [2, 2]));
        assert!(trim(&t).is_none());
        assert!(trim(&ramp(20, 20)).is_none());
    }
}
