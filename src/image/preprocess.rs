//! The one preprocessing function of native and web: a [`Picture`] of any size becomes the
//! model's square input, squashed without keeping the aspect ratio (so the 0–100 answer grid maps
//! straight back to the original pixels), replicated to three channels if gray, and normalised
//! to [-1, 1] (mean 0.5, std 0.5, as the Idefics3 image processor).

use image::imageops::{FilterType, resize};
use image::{ImageBuffer, Luma, Rgb};

use super::Picture;

/// Channel-first `[3, size, size]` values in [-1, 1].
pub fn model_input(picture: &Picture, size: u32) -> Vec<f32> {
    let (w, h) = (picture.width, picture.height);
    let plane = (size * size) as usize;
    let mut out = vec![0.0f32; 3 * plane];
    if picture.channels == 1 {
        let src = ImageBuffer::<Luma<f32>, _>::from_raw(w, h, picture.data.clone())
            .expect("checked size");
        let img = if (w, h) == (size, size) {
            src
        } else {
            resize(&src, size, size, FilterType::Triangle)
        };
        for (i, v) in img.into_raw().into_iter().enumerate() {
            let v = normalise(v);
            out[i] = v;
            out[plane + i] = v;
            out[2 * plane + i] = v;
        }
    } else {
        let src =
            ImageBuffer::<Rgb<f32>, _>::from_raw(w, h, picture.data.clone()).expect("checked size");
        let img = if (w, h) == (size, size) {
            src
        } else {
            resize(&src, size, size, FilterType::Triangle)
        };
        for (i, p) in img.into_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = normalise(p[c]);
            }
        }
    }
    out
}

fn normalise(v: f32) -> f32 {
    (v.clamp(0.0, 1.0) - 0.5) / 0.5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squashes_to_a_square_and_normalises() {
        // 4x2 image: left half black, right half white.
        let data = vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        let p = Picture::new(4, 2, 1, data).unwrap();
        let x = model_input(&p, 4);
        assert_eq!(x.len(), 3 * 16);
        assert_eq!(x[0], -1.0);
        assert_eq!(x[3], 1.0);
        // The three channels are equal for a gray picture; each row repeats the pattern.
        assert_eq!(&x[..16], &x[16..32]);
        assert_eq!(x[12], -1.0);
        assert_eq!(x[15], 1.0);
    }

    #[test]
    fn same_size_is_exact() {
        let data: Vec<f32> = (0..9).map(|i| i as f32 / 8.0).collect();
        let p = Picture::new(3, 3, 1, data.clone()).unwrap();
        let x = model_input(&p, 3);
        for (a, b) in x.iter().zip(&data) {
            assert!((a - (b * 2.0 - 1.0)).abs() < 1e-7);
        }
    }
}
