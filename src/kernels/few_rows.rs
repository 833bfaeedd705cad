//! Products of a few rows (one new token while decoding) by a large matrix, on the CPU: each
//! value of `b` is read once, straight from memory, with no packing, the columns split over
//! rayon's threads.
//!
//! Such a product is bound by the memory's rate: SmolVLM-256M reads its 537 MB of text weights
//! once per new token. Burn's CPU product runs it on one thread through the `gemm` crate's
//! matrix-vector path; this streams it over every thread (timed against both and PyTorch in
//! docs/speed.md).

use rayon::prelude::*;

use super::product::Operand;

/// Columns a task takes where each column of `b` is contiguous.
const DOT_WIDTH: usize = 64;
/// Below this many values of `b`, one task: waking the other threads costs more than it saves.
const SMALL: usize = 1 << 18;
/// Lanes of the sums: two AVX-512 registers, or four AVX2 ones, so that the additions form
/// independent chains.
const L: usize = 32;

/// `a b` (+ `bias`) for each matrix of the batch, `m x k` times `k x n` with `m` small, into a new
/// row-major `[batch, m, n]`; `None` when neither of `b`'s strides is 1 (nothing to stream).
pub fn product(
    [m, k, n]: [usize; 3],
    a: &Operand,
    b: &Operand,
    bias: Option<&[f32]>,
) -> Option<Vec<f32>> {
    let [rs, cs] = b.strides;
    if rs != 1 && cs != 1 {
        return None;
    }
    let batch = a.starts.len();
    if m == 0 || k == 0 || n == 0 {
        let row = |j: usize| bias.map_or(0.0, |b| b[j]);
        return Some((0..batch * m * n).map(|e| row(e % n)).collect());
    }
    // The rows of `a`, contiguous: `m k` values a matrix, copied once.
    let x: Vec<Vec<f32>> = (0..batch)
        .map(|i| {
            let [ars, acs] = a.strides;
            (0..m * k)
                .map(|e| a.values[a.starts[i] + (e / k) * ars + (e % k) * acs])
                .collect()
        })
        .collect();
    let width = if k * n < SMALL {
        n.max(1)
    } else if rs == 1 {
        DOT_WIDTH
    } else {
        // One run of columns a thread: the longest contiguous reads of each row of `b` (the
        // memory's prefetchers keep up with long runs; runs of 2048 columns were 25 % slower).
        n.div_ceil(rayon::current_num_threads())
            .next_multiple_of(16)
    };
    let per = n.div_ceil(width);
    let blocks: Vec<Vec<f32>> = (0..batch * per)
        .into_par_iter()
        .map(|task| {
            let (i, first) = (task / per, (task % per) * width);
            let width = width.min(n - first);
            let mut out = vec![0.0f32; m * width];
            if let Some(bias) = bias {
                for row in out.chunks_mut(width) {
                    row.copy_from_slice(&bias[first..first + width]);
                }
            }
            let start = b.starts[i];
            if rs == 1 {
                // Column j of `b` is `k` contiguous values.
                let span = start + first * cs..start + (first + width - 1) * cs + k;
                dots(&x[i], k, &b.values[span], cs, &mut out);
            } else {
                // Row l of `b` holds this task's columns contiguously.
                let span = start + first..start + (k - 1) * rs + first + width;
                axpys(&x[i], k, &b.values[span], rs, &mut out);
            }
            out
        })
        .collect();
    let mut out = vec![0.0f32; batch * m * n];
    for (task, block) in blocks.iter().enumerate() {
        let (i, first) = (task / per, (task % per) * width);
        let width = block.len() / m.max(1);
        for r in 0..m {
            out[(i * m + r) * n + first..][..width].copy_from_slice(&block[r * width..][..width]);
        }
    }
    Some(out)
}

/// `out[r][j] += x_r . col_j`, column `j` being `cols[j cs..j cs + k]`.
fn dots(x: &[f32], k: usize, cols: &[f32], cs: usize, out: &mut [f32]) {
    #[inline(always)]
    fn body(x: &[f32], k: usize, cols: &[f32], cs: usize, out: &mut [f32]) {
        let rows = x.len() / k.max(1);
        let width = out.len() / rows.max(1);
        for j in 0..width {
            let col = &cols[j * cs..][..k];
            for r in 0..rows {
                let xr = &x[r * k..][..k];
                let mut lanes = [0.0f32; L];
                let (mut xc, mut cc) = (xr.chunks_exact(L), col.chunks_exact(L));
                for (xv, cv) in (&mut xc).zip(&mut cc) {
                    for l in 0..L {
                        lanes[l] += xv[l] * cv[l];
                    }
                }
                let tail: f32 = xc
                    .remainder()
                    .iter()
                    .zip(cc.remainder())
                    .map(|(a, b)| a * b)
                    .sum();
                out[r * width + j] += lanes.iter().sum::<f32>() + tail;
            }
        }
    }
    super::simd::fastest(
        #[inline(always)]
        || body(x, k, cols, cs, out),
    )
}

/// `out[r][..] += sum_l x[r][l] row_l`, row `l` being `rows[l rs..l rs + width]`.
fn axpys(x: &[f32], k: usize, rows_of_b: &[f32], rs: usize, out: &mut [f32]) {
    #[inline(always)]
    fn body(x: &[f32], k: usize, rows_of_b: &[f32], rs: usize, out: &mut [f32]) {
        let rows = x.len() / k.max(1);
        let width = out.len() / rows.max(1);
        let row = |l: usize| &rows_of_b[l * rs..][..width];
        // Four rows of `b` at a time: each sum is loaded and stored once for four products.
        let mut l = 0;
        while l + 4 <= k {
            let (b0, b1, b2, b3) = (row(l), row(l + 1), row(l + 2), row(l + 3));
            for (r, o) in out.chunks_mut(width).enumerate() {
                let v = &x[r * k + l..][..4];
                let (o, b0, b1, b2, b3) = (
                    &mut o[..width],
                    &b0[..width],
                    &b1[..width],
                    &b2[..width],
                    &b3[..width],
                );
                for j in 0..width {
                    o[j] += v[0] * b0[j] + v[1] * b1[j] + v[2] * b2[j] + v[3] * b3[j];
                }
            }
            l += 4;
        }
        for l in l..k {
            let b0 = row(l);
            for (r, o) in out.chunks_mut(width).enumerate() {
                let v = x[r * k + l];
                for (o, w) in o.iter_mut().zip(b0) {
                    *o += v * w;
                }
            }
        }
    }
    super::simd::fastest(
        #[inline(always)]
        || body(x, k, rows_of_b, rs, out),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both layouts of `b`, a transposed `a`, a batch and a bias give the plain product.
    #[test]
    fn both_layouts_give_the_plain_product() {
        for [m, k, n] in [
            [1, 576, 300],
            [3, 70, 129],
            [1, 1, 1],
            [15, 33, 64],
            [2, 0, 5],
            [0, 3, 4],
        ] {
            let a: Vec<f32> = (0..2 * m * k)
                .map(|i| ((i * 7) % 13) as f32 - 6.0)
                .collect();
            // The same two matrices stored transposed (`k x m` each).
            let at: Vec<f32> = (0..2 * m * k)
                .map(|e| {
                    let (i, e) = (e / (m * k), e % (m * k));
                    a[i * m * k + (e % m) * k + e / m]
                })
                .collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
            let bt: Vec<f32> = (0..k * n).map(|i| b[(i % k) * n + i / k]).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32).collect();
            let starts = vec![0, m * k];
            let a_ops = [(&a, [k, 1]), (&at, [1, m])];
            for ((values, strides), (a_values, a_strides)) in
                [(&b, [n, 1]), (&bt, [1, k])].into_iter().zip(a_ops)
            {
                let a_op = Operand {
                    values: a_values,
                    starts: starts.clone(),
                    strides: a_strides,
                };
                let b_op = Operand {
                    values,
                    starts: vec![0, 0],
                    strides,
                };
                for with_bias in [false, true] {
                    let got = product([m, k, n], &a_op, &b_op, with_bias.then_some(&bias[..]))
                        .expect("a unit stride");
                    for i in 0..2 {
                        for r in 0..m {
                            for j in 0..n {
                                let dot: f32 = (0..k)
                                    .map(|l| a[i * m * k + r * k + l] * b[l * n + j])
                                    .sum();
                                let want = dot + if with_bias { bias[j] } else { 0.0 };
                                let g = got[(i * m + r) * n + j];
                                assert!(
                                    (g - want).abs() <= 1e-3 * want.abs().max(1.0),
                                    "{m}x{k}x{n} {strides:?}: {g} against {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Neither stride 1: not this path's.
    #[test]
    fn a_matrix_with_no_unit_stride_is_declined() {
        let v = vec![0.0f32; 64];
        let a = Operand {
            values: &v,
            starts: vec![0],
            strides: [4, 1],
        };
        let b = Operand {
            values: &v,
            starts: vec![0],
            strides: [8, 2],
        };
        assert!(product([1, 4, 4], &a, &b, None).is_none());
    }
}
