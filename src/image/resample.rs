//! Resizing 8-bit images exactly as Pillow's `Image.resize` does, which is what the Idefics3 /
//! SmolVLM image processor (PIL path) uses and what those checkpoints were trained with: a
//! separable convolution, horizontal pass then vertical, each pass rounding to 8 bits, with the
//! filter weights normalised per output pixel and turned into 22-bit fixed point. The `image`
//! crate's filters differ from Pillow's in support, weights and rounding, so a checkpoint sees
//! other pixels through them; this module is the by-the-bit equivalent, checked against Pillow's
//! output in `tests/processor.rs`.

/// Fraction bits of Pillow's fixed-point coefficients (32 - 8 - 2).
const PRECISION_BITS: u32 = 22;

/// The resampling filters of Pillow (and the numbers Hugging Face configs use for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `resample: 2`.
    Bilinear,
    /// `resample: 3`.
    Bicubic,
    /// `resample: 1`, the Idefics3 / SmolVLM default.
    Lanczos,
}

impl Filter {
    /// The filter of a `PILImageResampling` number, if this module has it.
    pub fn from_pil(code: u32) -> Option<Self> {
        match code {
            1 => Some(Self::Lanczos),
            2 => Some(Self::Bilinear),
            3 => Some(Self::Bicubic),
            _ => None,
        }
    }

    fn support(self) -> f64 {
        match self {
            Self::Bilinear => 1.0,
            Self::Bicubic => 2.0,
            Self::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Self::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
            Self::Bicubic => {
                // Keys' cubic with a = -0.5, as Pillow.
                let a = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * a
                } else {
                    0.0
                }
            }
            Self::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// For each output position: the first input index and the fixed-point weights from there.
struct Coeffs {
    start: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

fn coeffs(in_size: usize, out_size: usize, filter: Filter) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ss = 1.0 / filterscale;
    let mut start = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // Pillow truncates toward zero after adding 0.5 (C's int cast).
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let k: Vec<f64> = (xmin..xmax.max(xmin))
            .map(|x| filter.weight((x as f64 - center + 0.5) * ss))
            .collect();
        let total: f64 = k.iter().sum();
        let fixed = k
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let v = w * (1u32 << PRECISION_BITS) as f64;
                (if v < 0.0 { v - 0.5 } else { v + 0.5 }) as i32
            })
            .collect();
        start.push(xmin);
        weights.push(fixed);
    }
    Coeffs { start, weights }
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes a `width` x `height` image of `channels` interleaved 8-bit channels to
/// `new_width` x `new_height`, as Pillow does (a pass is skipped where that side keeps its size,
/// and a same-size resize is a copy).
pub fn resize_u8(
    data: &[u8],
    (width, height): (usize, usize),
    channels: usize,
    (new_width, new_height): (usize, usize),
    filter: Filter,
) -> Vec<u8> {
    assert_eq!(data.len(), width * height * channels, "image buffer size");
    let half = 1i64 << (PRECISION_BITS - 1);
    let mut img = data.to_vec();
    if new_width != width {
        let c = coeffs(width, new_width, filter);
        let mut out = vec![0u8; new_width * height * channels];
        for y in 0..height {
            let row = &img[y * width * channels..(y + 1) * width * channels];
            for (xx, (&x0, k)) in c.start.iter().zip(&c.weights).enumerate() {
                for ch in 0..channels {
                    let mut s = half;
                    for (i, &w) in k.iter().enumerate() {
                        s += row[(x0 + i) * channels + ch] as i64 * w as i64;
                    }
                    out[(y * new_width + xx) * channels + ch] = clip8(s);
                }
            }
        }
        img = out;
    }
    if new_height != height {
        let c = coeffs(height, new_height, filter);
        let stride = new_width * channels;
        let mut out = vec![0u8; new_height * stride];
        for (yy, (&y0, k)) in c.start.iter().zip(&c.weights).enumerate() {
            for x in 0..stride {
                let mut s = half;
                for (i, &w) in k.iter().enumerate() {
                    s += img[(y0 + i) * stride + x] as i64 * w as i64;
                }
                out[yy * stride + x] = clip8(s);
            }
        }
        img = out;
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_copy_and_flat_stays_flat() {
        let data: Vec<u8> = (0..12).map(|i| i * 20).collect();
        assert_eq!(resize_u8(&data, (4, 3), 1, (4, 3), Filter::Lanczos), data);
        let flat = vec![137u8; 7 * 5 * 3];
        for f in [Filter::Lanczos, Filter::Bicubic, Filter::Bilinear] {
            let out = resize_u8(&flat, (7, 5), 3, (3, 11), f);
            assert_eq!(out.len(), 3 * 11 * 3);
            assert!(out.iter().all(|&v| v == 137), "{f:?}: {out:?}");
        }
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(100, 37), (37, 100), (512, 512 * 3), (2048, 512)] {
            let c = coeffs(i, o, Filter::Lanczos);
            for k in &c.weights {
                let sum: i64 = k.iter().map(|&w| w as i64).sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= k.len() as i64,
                    "{sum}"
                );
            }
        }
    }

    #[test]
    fn equals_pillow_on_small_cases() {
        // Pillow 12.3 `Image.fromarray(a).resize(size, filter)` on the same arrays.
        let step = [0u8, 0, 0, 255, 255, 255];
        let cases = [
            (
                Filter::Lanczos,
                [0, 2, 7, 0, 0, 54, 201, 255, 255, 248, 253, 255],
            ),
            (
                Filter::Bicubic,
                [0, 0, 0, 0, 0, 52, 203, 255, 255, 255, 255, 255],
            ),
            (
                Filter::Bilinear,
                [0, 0, 0, 0, 0, 64, 191, 255, 255, 255, 255, 255],
            ),
        ];
        for (f, want) in cases {
            assert_eq!(resize_u8(&step, (6, 1), 1, (12, 1), f), want, "{f:?}");
        }
        let ramp: Vec<u8> = (0..35).map(|i| i * 7).collect();
        assert_eq!(
            resize_u8(&ramp, (7, 5), 1, (3, 4), Filter::Lanczos),
            [11, 27, 43, 71, 87, 103, 135, 151, 167, 195, 211, 227]
        );
    }
}
