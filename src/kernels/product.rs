//! Matrix products on the CPU, split over rayon's threads, each block one single-threaded call
//! of the `gemm` crate.
//!
//! Burn's CPU backend (flex) calls the same crate with its own threading, which on several
//! shapes of a training step (the MLP's gate and up projections, attention's scores) runs at
//! half the rate reached here or less, splitting less evenly over the threads and copying
//! transposed views first (`bash tools/profile.sh`, docs/speed.md). Here each product is cut
//! into as many blocks of rows (or columns, where those are more) as there are threads, each
//! block read through the operands' strides: a transposed view (the backward pass's `W^T`,
//! `X^T`) is read in place, never copied.

use rayon::prelude::*;

/// An operand: the values it lies in, and where each matrix of the batch starts.
pub struct Operand<'a> {
    pub values: &'a [f32],
    /// Offset of element `[0, 0]` of each matrix of the batch (one per output matrix).
    pub starts: Vec<usize>,
    /// Row and column strides within a matrix (>= 0).
    pub strides: [usize; 2],
}

/// `a b` for each matrix of the batch: `m x k` times `k x n`, into a new row-major
/// `[batch, m, n]`; with `bias` (`n` values), each output row starts from it.
pub fn product([m, k, n]: [usize; 3], a: &Operand, b: &Operand, bias: Option<&[f32]>) -> Vec<f32> {
    let batch = a.starts.len();
    let total = batch * m * n;
    // Not zeroed: without a bias `gemm` writes every value without reading it (`read_dst`
    // false), and with one each task first writes the bias into its own block. A zeroed
    // allocation was one thread's `memset` over cold pages, a tenth of a step's serial time.
    let mut out: Vec<f32> = Vec::with_capacity(total);
    if total == 0 {
        return out;
    }
    // Blocks per matrix: enough to give every thread work when the batch is smaller than the
    // pool; a small product stays whole.
    let threads = rayon::current_num_threads();
    let big = m * n * k >= 1 << 18;
    let blocks = if big && batch < threads {
        threads.div_ceil(batch)
    } else {
        1
    };
    let (by_rows, len) = if m >= n { (true, m) } else { (false, n) };
    let step = len.div_ceil(blocks).next_multiple_of(8).min(len);
    let per = len.div_ceil(step);
    let c = Shared(out.as_mut_ptr());
    (0..batch * per).into_par_iter().for_each(|task| {
        let (i, block) = (task / per, task % per);
        let first = block * step;
        let size = step.min(len - first);
        let (rows, cols) = if by_rows { (size, n) } else { (m, size) };
        let a_at = a.starts[i] + if by_rows { first * a.strides[0] } else { 0 };
        let b_at = b.starts[i] + if by_rows { 0 } else { first * b.strides[1] };
        let c_at = i * m * n + if by_rows { first * n } else { first };
        assert!(a_at + extent(rows, k, a.strides) <= a.values.len());
        assert!(b_at + extent(k, cols, b.strides) <= b.values.len());
        let c_block = c.get().wrapping_add(c_at);
        if let Some(bias) = bias {
            let bias = &bias[if by_rows { 0 } else { first }..][..cols];
            for r in 0..rows {
                // SAFETY: row `r` of this task's block, `cols` values inside `out`'s capacity
                // (`c_at + r n + cols <= batch m n`), written by this task only.
                unsafe { std::ptr::copy_nonoverlapping(bias.as_ptr(), c_block.add(r * n), cols) };
            }
        }
        // SAFETY: the operands' extents were checked against their slices just above; the
        // blocks of `out` are disjoint (distinct matrices, or distinct rows or columns of one).
        // Without a bias the block is written without being read.
        unsafe {
            multiply(
                [rows, cols, k],
                (c_block, n, bias.is_some()),
                (a.values.as_ptr().add(a_at), a.strides),
                (b.values.as_ptr().add(b_at), b.strides),
                1.0,
            )
        }
    });
    // SAFETY: the tasks' blocks cover every value of the `batch` matrices, each written by
    // `gemm` (or its bias, then `gemm`).
    unsafe { out.set_len(total) };
    out
}

/// Output rows a task of `banded` takes: fewer skip more of a causal product, more pack each
/// operand fewer times (64 measured best of 32-128 on causal attention: docs/speed.md).
const BAND_ROWS: usize = 64;

/// `a b` for each matrix of the batch where, for each block of output rows, `band(rows)` gives
/// the output columns wanted (the first `cols`) and the part of the inner dimension that is not
/// zero; the block's other columns are written 0. Causal attention's products
/// (`attention::Causal`), about half the work of `product`.
pub fn banded(
    [m, k, n]: [usize; 3],
    a: &Operand,
    b: &Operand,
    band: impl Fn(std::ops::Range<usize>) -> (usize, std::ops::Range<usize>) + Sync,
) -> Vec<f32> {
    let batch = a.starts.len();
    let total = batch * m * n;
    let mut out: Vec<f32> = Vec::with_capacity(total);
    if total == 0 {
        return out;
    }
    let per = m.div_ceil(BAND_ROWS);
    let c = Shared(out.as_mut_ptr());
    (0..batch * per).into_par_iter().for_each(|task| {
        let (i, first) = (task / per, (task % per) * BAND_ROWS);
        let rows = BAND_ROWS.min(m - first);
        let (cols, inner) = band(first..first + rows);
        let cols = cols.min(n);
        let inner = inner.start.min(k)..inner.end.min(k);
        let depth = inner.len();
        let c_block = c.get().wrapping_add(i * m * n + first * n);
        let done = if cols > 0 && depth > 0 {
            let a_at = a.starts[i] + first * a.strides[0] + inner.start * a.strides[1];
            let b_at = b.starts[i] + inner.start * b.strides[0];
            assert!(a_at + extent(rows, depth, a.strides) <= a.values.len());
            assert!(b_at + extent(depth, cols, b.strides) <= b.values.len());
            // SAFETY: the operands' extents were checked just above; the block's rows of `out`
            // are this task's alone, written without being read.
            unsafe {
                multiply(
                    [rows, cols, depth],
                    (c_block, n, false),
                    (a.values.as_ptr().add(a_at), a.strides),
                    (b.values.as_ptr().add(b_at), b.strides),
                    1.0,
                )
            }
            cols
        } else {
            0
        };
        for r in 0..rows {
            // SAFETY: the rest of row `r` of this task's block, inside `out`'s capacity.
            unsafe { std::ptr::write_bytes(c_block.add(r * n + done), 0, n - done) };
        }
    });
    // SAFETY: each task wrote every value of its rows (the product's columns, then zeros).
    unsafe { out.set_len(total) };
    out
}

/// `dst = scale lhs rhs` (`+ dst` with `accumulate`) for a `rows x k` times `k x cols` product, one
/// single-threaded call of the `gemm` crate; `dst` row-major with `dst_row` values a row, the
/// operands read through their `[row, column]` strides.
///
/// # Safety
/// Every element the three matrices span lies inside its allocation, `dst`'s block is written
/// by this call alone, and with `accumulate` it is initialised.
pub(crate) unsafe fn multiply(
    [rows, cols, k]: [usize; 3],
    (dst, dst_row, accumulate): (*mut f32, usize, bool),
    (lhs, [lhs_rs, lhs_cs]): (*const f32, [usize; 2]),
    (rhs, [rhs_rs, rhs_cs]): (*const f32, [usize; 2]),
    scale: f32,
) {
    // SAFETY: the caller's.
    unsafe {
        gemm::gemm(
            rows,
            cols,
            k,
            dst,
            1,
            dst_row as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            1.0f32,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// One past the largest offset a `rows x cols` matrix with these strides reads.
fn extent(rows: usize, cols: usize, [rs, cs]: [usize; 2]) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// The output's pointer, shared by the tasks that write its disjoint blocks.
#[derive(Clone, Copy)]
pub(crate) struct Shared(pub(crate) *mut f32);

// SAFETY: every task writes its own block of the output (see `product`).
unsafe impl Send for Shared {}
// SAFETY: as for Send: threads only write disjoint ranges through it, each its own rows.
unsafe impl Sync for Shared {}

impl Shared {
    pub fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            }
        }
        c
    }

    /// Row blocks, column blocks, a transposed operand, a broadcast one and a bias all give the
    /// plain product.
    #[test]
    fn blocks_and_strides_give_the_plain_product() {
        for [m, k, n] in [[70, 90, 50], [40, 64, 300], [3, 5, 7], [1, 1, 1], [0, 4, 4]] {
            let a: Vec<f32> = (0..2 * m * k)
                .map(|i| ((i * 7) % 13) as f32 - 6.0)
                .collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
            let bt: Vec<f32> = (0..k * n).map(|i| b[(i % k) * n + i / k]).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32).collect();
            let a_op = Operand {
                values: &a,
                starts: vec![0, m * k],
                strides: [k, 1],
            };
            // `b` as stored, and as the transpose of its transpose (column stride k).
            for (values, strides) in [(&b, [n, 1]), (&bt, [1, k])] {
                let b_op = Operand {
                    values,
                    starts: vec![0, 0],
                    strides,
                };
                for with_bias in [false, true] {
                    let c = product([m, k, n], &a_op, &b_op, with_bias.then_some(&bias[..]));
                    for i in 0..2 {
                        let want = naive(m, k, n, &a[i * m * k..(i + 1) * m * k], &b);
                        for (j, (got, want)) in
                            c[i * m * n..(i + 1) * m * n].iter().zip(&want).enumerate()
                        {
                            let want = want + if with_bias { bias[j % n] } else { 0.0 };
                            assert!(
                                (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                                "{m}x{k}x{n}"
                            );
                        }
                    }
                }
            }
        }
    }
}
