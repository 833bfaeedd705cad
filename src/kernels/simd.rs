//! The fused activations' arithmetic over `f32` slices: one pass each, branch-free so the
//! compiler vectorises it, built for AVX-512 and AVX2 + FMA besides the baseline and chosen at
//! run time, and split over rayon's threads natively (one thread in wasm).
//!
//! `exp` is a branch-free Cephes-style `expf`: `2^n * p(r)` with `n` the nearest integer to
//! `x / ln 2` (found with the 1.5 * 2^23 rounding trick, no `round` call) and a degree-6
//! polynomial on `r = x - n ln 2`; within 2 ulp of libm's over the clamped range. No `mul_add`:
//! without FMA (wasm, old x86) it is a slow library call.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;
/// sqrt(2 / pi), `gelu_pytorch_tanh`'s scale.
const K: f32 = 0.797_884_6;
const C: f32 = 0.044_715;

#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * (r * r) + r + 1.0;
    let k = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    y * f32::from_bits(((k + 127) << 23) as u32)
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `x * sigmoid(x)`.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

/// d silu / dx times `g`: `g * s * (1 + x (1 - s))`.
#[inline(always)]
pub fn silu_backward(x: f32, g: f32) -> f32 {
    let s = sigmoid(x);
    g * s * (x * (1.0 - s) + 1.0)
}

/// `gelu_pytorch_tanh` as `x * sigmoid(2u)`, `u = sqrt(2/pi) (x + 0.044715 x^3)`.
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    x * sigmoid(2.0 * K * (x + C * x * x * x))
}

/// d gelu_tanh / dx times `g`: `g * (s + x s (1 - s) 2u')`, `u' = sqrt(2/pi) (1 + 3 c x^2)`.
#[inline(always)]
pub fn gelu_tanh_backward(x: f32, g: f32) -> f32 {
    let s = sigmoid(2.0 * K * (x + C * x * x * x));
    let du = 2.0 * K * (3.0 * C * x * x + 1.0);
    g * (x * s * (1.0 - s) * du + s)
}

/// SwiGLU's gradient with respect to the gate, `g * up * silu'(gate)`.
#[inline(always)]
pub fn swiglu_backward_gate(gate: f32, up: f32, g: f32) -> f32 {
    silu_backward(gate, g * up)
}

macro_rules! versions {
    ($name:ident, $body:ident, ($($arg:ident),*)) => {
        /// The loop, compiled once per instruction set.
        #[inline(always)]
        fn $body<F: Fn($(versions!(@ty $arg)),*) -> f32>(out: &mut [f32], $($arg: &[f32],)* f: F) {
            $(let $arg = &$arg[..out.len()];)*
            for i in 0..out.len() {
                out[i] = f($($arg[i]),*);
            }
        }

        fn $name<F: Fn($(versions!(@ty $arg)),*) -> f32 + Copy>(out: &mut [f32], $($arg: &[f32],)* f: F) {
            fastest(#[inline(always)] || $body(out, $($arg,)* f))
        }
    };
    (@ty $arg:ident) => { f32 };
}

/// Runs `f` compiled for AVX-512, or for AVX2 + FMA, where the CPU has them, else for the
/// baseline: `f` (an `#[inline(always)]` closure) and what it calls `#[inline(always)]` are
/// compiled into each version.
#[inline(always)]
pub fn fastest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn v4<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2,fma")]
        fn v3<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the instructions `v4` is compiled for.
            return unsafe { v4(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above, for `v3`.
            return unsafe { v3(f) };
        }
    }
    f()
}

versions!(map_serial, map_body, (x));
versions!(zip_serial, zip_body, (x, y));
versions!(zip3_serial, zip3_body, (x, y, z));

/// Values a thread takes at a time.
#[cfg(not(target_arch = "wasm32"))]
const CHUNK: usize = 1 << 15;
#[cfg(target_arch = "wasm32")]
const CHUNK: usize = usize::MAX;

/// A new vector of `len` values, written by `f(first index, chunk)` chunk by chunk (chunks of
/// `chunk` values), over rayon's threads natively. Each chunk is zeroed by the thread that then
/// writes it, while it is in that thread's cache: a zeroed allocation made up front is one
/// thread's `memset` over cold pages, which was a tenth of a training step's serial time.
pub fn written(len: usize, chunk: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let chunk = chunk.max(1);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        use std::mem::MaybeUninit;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        out.spare_capacity_mut()[..len]
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(c, o)| {
                o.fill(MaybeUninit::new(0.0));
                // SAFETY: every value of `o` was initialised just above.
                let o = unsafe { &mut *(o as *mut [MaybeUninit<f32>] as *mut [f32]) };
                f(c * chunk, o)
            });
        // SAFETY: the chunks cover `0..len`, and each was initialised (a panic in `f` reaches
        // here only as rayon's resumed panic, leaving the length at 0).
        unsafe { out.set_len(len) };
        out
    }
    #[cfg(target_arch = "wasm32")]
    {
        let mut out = vec![0.0f32; len];
        for (c, o) in out.chunks_mut(chunk).enumerate() {
            f(c * chunk, o);
        }
        out
    }
}

/// `out[i] = f(x[i])`, over threads.
pub fn map(x: &[f32], f: impl Fn(f32) -> f32 + Copy + Send + Sync) -> Vec<f32> {
    written(x.len(), CHUNK, |at, o| {
        map_serial(o, &x[at..at + o.len()], f)
    })
}

/// `out[i] = f(x[i], y[i])`, over threads.
pub fn zip(x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32 + Copy + Send + Sync) -> Vec<f32> {
    assert_eq!(x.len(), y.len(), "zip of unequal lengths");
    written(x.len(), CHUNK, |at, o| {
        let span = at..at + o.len();
        zip_serial(o, &x[span.clone()], &y[span], f)
    })
}

/// `out[i] = f(x[i], y[i], z[i])`, over threads.
pub fn zip3(
    x: &[f32],
    y: &[f32],
    z: &[f32],
    f: impl Fn(f32, f32, f32) -> f32 + Copy + Send + Sync,
) -> Vec<f32> {
    assert!(
        x.len() == y.len() && x.len() == z.len(),
        "zip3 of unequal lengths"
    );
    written(x.len(), CHUNK, |at, o| {
        let span = at..at + o.len();
        zip3_serial(o, &x[span.clone()], &y[span.clone()], &z[span], f)
    })
}

/// Each row of `cols` values in `buf` to `softmax(scale * row)` over its first `keep(r)` values,
/// the rest 0. Max and sum over sixteen lanes, so that the compiler vectorises every pass (a
/// running `f32` max or sum is a chain it may not reorder); built per instruction set as above.
pub fn softmax_rows_in_place(
    buf: &mut [f32],
    cols: usize,
    scale: f32,
    keep: impl Fn(usize) -> usize + Copy,
) {
    #[inline(always)]
    fn body(buf: &mut [f32], cols: usize, scale: f32, keep: impl Fn(usize) -> usize) {
        const L: usize = 16;
        for (r, row) in buf.chunks_mut(cols.max(1)).enumerate() {
            let n = keep(r).min(row.len());
            row[n..].fill(0.0);
            let row = &mut row[..n];
            if row.is_empty() {
                continue;
            }
            let mut lanes = [f32::NEG_INFINITY; L];
            let mut chunks = row.chunks_exact(L);
            for c in &mut chunks {
                for i in 0..L {
                    lanes[i] = lanes[i].max(c[i]);
                }
            }
            let max = chunks
                .remainder()
                .iter()
                .fold(f32::NEG_INFINITY, |m, v| m.max(*v));
            let max = lanes.iter().fold(max, |m, v| m.max(*v)) * scale;
            for v in row.iter_mut() {
                *v = exp(*v * scale - max);
            }
            let mut sums = [0.0f32; L];
            let mut chunks = row.chunks_exact(L);
            for c in &mut chunks {
                for i in 0..L {
                    sums[i] += c[i];
                }
            }
            let sum = sums.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
    fastest(
        #[inline(always)]
        || body(buf, cols, scale, keep),
    )
}

/// A new vector shaped as `x`, written by `f(row index, x row, y row, out row)` over rows of
/// `cols` (zeroed first), over threads natively.
pub fn rows(
    x: &[f32],
    y: Option<&[f32]>,
    cols: usize,
    f: impl Fn(usize, &[f32], Option<&[f32]>, &mut [f32]) + Sync,
) -> Vec<f32> {
    let cols = cols.max(1);
    let per = (1 << 14) / cols + 1; // rows a task takes
    written(x.len(), per * cols, |at, out| {
        for (k, o) in out.chunks_mut(cols).enumerate() {
            let r = at / cols + k;
            let span = r * cols..(r + 1) * cols;
            f(r, &x[span.clone()], y.map(|y| &y[span]), o);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_libms_to_two_ulp_and_saturates() {
        let mut worst = 0f32;
        for i in -87_000..88_000 {
            let x = i as f32 * 1e-3 + 3.7e-5;
            let (ours, libm) = (exp(x), x.exp());
            worst = worst.max((ours - libm).abs() / libm);
        }
        assert!(worst < 2.5e-7, "relative error {worst}");
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
        assert_eq!(sigmoid(-1000.0).min(1e-30), sigmoid(-1000.0));
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for i in -60..60 {
            let x = i as f64 * 0.1 + 0.013;
            let h = 1e-3;
            let num = |f: fn(f32) -> f32| {
                (f((x + h) as f32) as f64 - f((x - h) as f32) as f64) / (2.0 * h)
            };
            assert!(
                (silu_backward(x as f32, 1.0) as f64 - num(silu)).abs() < 2e-3,
                "silu' at {x}"
            );
            assert!(
                (gelu_tanh_backward(x as f32, 1.0) as f64 - num(gelu_tanh)).abs() < 2e-3,
                "gelu' at {x}"
            );
        }
    }

    #[test]
    fn threaded_map_covers_every_value() {
        let x: Vec<f32> = (0..100_003).map(|i| (i % 97) as f32 * 0.1 - 4.0).collect();
        let y = map(&x, silu);
        assert!(y.iter().zip(&x).all(|(y, x)| (y - silu(*x)).abs() == 0.0));
        let z = zip(&x, &y, |a, b| a + b);
        assert_eq!(z[100_002], x[100_002] + y[100_002]);
    }
}
