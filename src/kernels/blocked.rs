//! Attention outside training over long sequences (the vision tower's 1024 patches a tile, the
//! text prefill), in blocks of query rows: for each head and block, the scores `Q_blk K^T` into
//! a buffer that stays in the thread's cache, the softmax in place with the vectorised `exp`,
//! and `P V` straight into the output; blocks over rayon's threads. Flex's own attention tiles
//! over the keys with an online softmax and libm's `exp`, a fifth of a `ground` at
//! SmolVLM-256M's size (docs/speed.md). Causal blocks stop at their last row's last key.

use std::cell::RefCell;

use rayon::prelude::*;

use super::attention::keys_seen;
use super::product::{Shared, multiply};
use super::simd::softmax_rows_in_place;

/// Most query rows a task takes: each block packs the head's keys and values again for its two
/// products, so longer blocks pack less (docs/speed.md: 64 to 512 rows measured with
/// `examples/ground_parts`), while 256 rows of 1024 keys' scores (1 MB) still sit in a core's
/// second-level cache.
const BLOCK: usize = 256;
/// Fewest query rows a task takes, where halving the blocks gives the threads work.
const MIN_BLOCK: usize = 32;

/// A tensor's values and its strides over `[batch, heads, rows, dims]`.
pub struct View<'a> {
    pub values: &'a [f32],
    pub offset: usize,
    pub strides: [usize; 4],
}

/// `softmax(scale Q K^T) V` for `q` `[batch, heads, queries, d]` and `k`, `v`
/// `[batch, kv_heads, keys, d]` (each kv head serving `heads / kv_heads` query heads), into a
/// new `[batch, heads, queries, d]`; with `causal`, query `i` sees the keys up to
/// `i + keys - queries` (aligned bottom-right, as Burn's mask is).
pub fn attention(
    q: &View,
    k: &View,
    v: &View,
    [batch, heads, kv_heads, queries, keys, d]: [usize; 6],
    scale: f32,
    causal: bool,
) -> Vec<f32> {
    let group = heads / kv_heads.max(1);
    // Four tasks a thread at least, for balance, while blocks can be halved.
    let tasks = 4 * rayon::current_num_threads();
    let mut block = BLOCK;
    while block > MIN_BLOCK && batch * heads * queries.div_ceil(block) < tasks {
        block /= 2;
    }
    let blocks = queries.div_ceil(block);
    let head_at = |t: &View, b: usize, h: usize| t.offset + b * t.strides[0] + h * t.strides[1];
    // Every value reached, checked once: the last element of each operand.
    let last = |t: &View, [b, h, r]: [usize; 3]| {
        head_at(t, b - 1, h - 1) + (r - 1) * t.strides[2] + (d - 1) * t.strides[3]
    };
    let total = batch * heads * queries * d;
    let mut out: Vec<f32> = Vec::with_capacity(total);
    if total == 0 || keys == 0 {
        out.resize(total, 0.0);
        return out;
    }
    assert!(last(q, [batch, heads, queries]) < q.values.len());
    assert!(last(k, [batch, kv_heads, keys]) < k.values.len());
    assert!(last(v, [batch, kv_heads, keys]) < v.values.len());
    let o = Shared(out.as_mut_ptr());
    (0..batch * heads * blocks)
        .into_par_iter()
        .for_each(|task| {
            let bh = task / blocks;
            let (b, h) = (bh / heads, bh % heads);
            let first = (task % blocks) * block;
            let rows = block.min(queries - first);
            // The keys the block's last row sees; earlier rows are masked within them.
            let seen = |row: usize| {
                if causal {
                    keys_seen(queries, keys, row)
                } else {
                    keys
                }
            };
            let cols = seen(first + rows - 1);
            let out_at = (bh * queries + first) * d;
            if cols == 0 {
                for r in 0..rows * d {
                    // SAFETY: inside this task's rows of the output.
                    unsafe { o.get().add(out_at + r).write(0.0) };
                }
                return;
            }
            SCORES.with_borrow_mut(|buf| {
                buf.resize(rows * cols, 0.0);
                let (qa, ka, va) = (
                    head_at(q, b, h),
                    head_at(k, b, h / group),
                    head_at(v, b, h / group),
                );
                // SAFETY: the operands' last elements were checked against their slices above, the
                // buffer holds `rows x cols`, and the output rows are this task's alone.
                unsafe {
                    let q_block = q.values.as_ptr().add(qa + first * q.strides[2]);
                    multiply(
                        [rows, cols, d],
                        (buf.as_mut_ptr(), cols, false),
                        (q_block, [q.strides[2], q.strides[3]]),
                        (k.values.as_ptr().add(ka), [k.strides[3], k.strides[2]]),
                        scale,
                    );
                }
                softmax_rows_in_place(buf, cols, 1.0, |r| seen(first + r));
                // SAFETY: as above; `V` read through its strides.
                unsafe {
                    multiply(
                        [rows, d, cols],
                        (o.get().add(out_at), d, false),
                        (buf.as_ptr(), [cols, 1]),
                        (v.values.as_ptr().add(va), [v.strides[2], v.strides[3]]),
                        1.0,
                    );
                }
            });
        });
    // SAFETY: every task wrote its rows of the output (zeros where it saw no key).
    unsafe { out.set_len(total) };
    out
}

thread_local! {
    /// A block's scores, kept per thread between tasks.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}
