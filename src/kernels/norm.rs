//! RMSNorm in one pass each way: `y = x r gamma`, `r = 1 / sqrt(mean(x^2) + eps)` per row of the
//! last dimension (Burn composes it from seven ops, each with its own backward pass). Backward:
//! with `h = dy gamma`, `dx = r h - x r^3 sum(h x) / d`; `dgamma = sum over rows of dy x r`.

use super::simd::rows;

/// `1 / sqrt(mean(x^2) + eps)` of one row.
#[inline(always)]
fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let sum: f32 = x.iter().map(|v| v * v).sum();
    1.0 / (sum / x.len() as f32 + eps).sqrt()
}

pub fn forward(x: &[f32], gamma: &[f32], eps: f32) -> Vec<f32> {
    let d = gamma.len();
    rows(x, None, d, |_, x, _, o| {
        let r = inv_rms(x, eps);
        for ((o, x), g) in o.iter_mut().zip(x).zip(gamma) {
            *o = x * r * g;
        }
    })
}

pub fn backward_x(x: &[f32], gamma: &[f32], dy: &[f32], eps: f32) -> Vec<f32> {
    let d = gamma.len();
    rows(x, Some(dy), d, |_, x, dy, o| {
        let dy = dy.expect("gradient");
        let r = inv_rms(x, eps);
        let s: f32 = x
            .iter()
            .zip(dy)
            .zip(gamma)
            .map(|((x, g), w)| g * w * x)
            .sum();
        let k = r * r * r * s / d as f32;
        for (((o, x), g), w) in o.iter_mut().zip(x).zip(dy).zip(gamma) {
            *o = r * g * w - x * k;
        }
    })
}

/// `sum over rows of dy x r`, `[d]`.
pub fn backward_gamma(x: &[f32], dy: &[f32], d: usize, eps: f32) -> Vec<f32> {
    let partial = |x: &[f32], dy: &[f32]| {
        let mut acc = vec![0.0f32; d];
        for (x, dy) in x.chunks(d).zip(dy.chunks(d)) {
            let r = inv_rms(x, eps);
            for ((a, x), g) in acc.iter_mut().zip(x).zip(dy) {
                *a += g * x * r;
            }
        }
        acc
    };
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        let per = ((1 << 14) / d.max(1) + 1) * d;
        let add = |mut a: Vec<f32>, b: Vec<f32>| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        };
        x.par_chunks(per)
            .zip(dy.par_chunks(per))
            .map(|(x, dy)| partial(x, dy))
            .reduce(|| vec![0.0f32; d], add)
    }
    #[cfg(target_arch = "wasm32")]
    partial(x, dy)
}

#[cfg(test)]
mod tests {
    /// Against finite differences of `sum(w * forward(x))`.
    #[test]
    fn gradients_match_finite_differences() {
        let (d, eps) = (6usize, 1e-6f32);
        let x: Vec<f32> = (0..18).map(|i| ((i * 7) % 11) as f32 * 0.2 - 1.0).collect();
        let gamma: Vec<f32> = (0..d).map(|i| 0.5 + i as f32 * 0.1).collect();
        let w: Vec<f32> = (0..18).map(|i| ((i * 5) % 7) as f32 * 0.3 - 0.9).collect();
        let loss = |x: &[f32], gamma: &[f32]| -> f64 {
            super::forward(x, gamma, eps)
                .iter()
                .zip(&w)
                .map(|(y, w)| (*y * *w) as f64)
                .sum()
        };
        let dx = super::backward_x(&x, &gamma, &w, eps);
        let dg = super::backward_gamma(&x, &w, d, eps);
        let h = 1e-3f32;
        for i in 0..x.len() {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += h;
            b[i] -= h;
            let num = (loss(&a, &gamma) - loss(&b, &gamma)) / (2.0 * h as f64);
            assert!(
                (dx[i] as f64 - num).abs() < 2e-3,
                "dx[{i}] {} vs {num}",
                dx[i]
            );
        }
        for j in 0..d {
            let (mut a, mut b) = (gamma.clone(), gamma.clone());
            a[j] += h;
            b[j] -= h;
            let num = (loss(&x, &a) - loss(&x, &b)) / (2.0 * h as f64);
            assert!(
                (dg[j] as f64 - num).abs() < 2e-3,
                "dgamma[{j}] {} vs {num}",
                dg[j]
            );
        }
    }
}
