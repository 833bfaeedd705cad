//! Attention for training: under autodiff, Burn decomposes attention into eleven tracked ops
//! (scale, mask, max, shift, exp, sum, divide ... each with its own backward pass and saved
//! tensor). Here it is one tracked op: forward `P = softmax(scale Q K^T)` (causal: each query sees
//! the keys up to its own position, aligned bottom-right as Burn's mask is), `O = P V`, saving
//! `P`; backward `dV = P^T dO`, `dP = dO V^T`, `dS = scale P (dP - rowsum(P dP))`, `dQ = dS K`,
//! `dK = dS^T Q`. The products are the backend's (causal ones on flex skip, block by block of
//! rows, what the mask zeroes: `Causal` below, `product::banded`); the softmax and its backward
//! are one fused pass per row on flex (`softmax_rows` below).

use super::simd::{rows, softmax_rows_in_place, written};

/// Which of causal attention's products `Fused::causal_product` computes, with `P` the
/// probabilities `[queries, keys]` (query `r` sees the first `r + keys - queries + 1` keys):
/// each says which values the mask makes zero or unread, so that they need not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Causal {
    /// An output shaped as the scores, `[queries, keys]` (`Q K^T`, `dO V^T`): the values beyond
    /// a query's keys are never read (the softmax and its backward pass zero them).
    Scores,
    /// `P X` (`P V`, `dS K`): query `r` reads only the keys it sees, the rest of its row of `P`
    /// being zero.
    FromP,
    /// `P^T X` (`P^T dO`, `dS^T Q`): key `j` gets only from the queries that see it.
    FromPt,
}

/// The keys query `row` of `queries` sees among `keys` under the causal mask, aligned
/// bottom-right as Burn's is: the first `row + keys - queries + 1`.
pub fn keys_seen(queries: usize, keys: usize, row: usize) -> usize {
    (row + keys + 1).saturating_sub(queries).min(keys)
}

impl Causal {
    /// For output rows `rows` of an `[m, k] x [k, n]` product: the output columns to compute
    /// and the range of the inner dimension that is not zero (the rest of the block's columns
    /// are written 0).
    pub fn band(
        self,
        [m, k, n]: [usize; 3],
        rows: std::ops::Range<usize>,
    ) -> (usize, std::ops::Range<usize>) {
        // The first query that sees key `j`.
        let first =
            |queries: usize, keys: usize, j: usize| (j + queries).saturating_sub(keys).min(queries);
        let last = rows.end.saturating_sub(1);
        match self {
            Causal::Scores => (keys_seen(m, n, last), 0..k),
            Causal::FromP => (n, 0..keys_seen(m, k, last)),
            Causal::FromPt => (n, first(k, m, rows.start)..k),
        }
    }
}

/// Rows of `cols` scores, each `softmax(scale * row)`; with `causal`, row `r` (query
/// `r % queries`) keeps the first `r % queries + cols - queries + 1` columns, the rest 0.
pub fn softmax_rows(x: &[f32], cols: usize, queries: usize, scale: f32, causal: bool) -> Vec<f32> {
    let keep = move |r: usize| {
        if causal {
            keys_seen(queries, cols, r % queries)
        } else {
            cols
        }
    };
    let cols = cols.max(1);
    let per = ((1 << 14) / cols + 1) * cols; // values (whole rows) a task takes
    written(x.len(), per, |at, o| {
        o.copy_from_slice(&x[at..at + o.len()]);
        softmax_rows_in_place(o, cols, scale, |r| keep(at / cols + r));
    })
}

/// The gradient of the scaled scores from `p = softmax_rows(..)` and the gradient `g` of `p`:
/// `scale * p * (g - sum(p * g))` per row.
pub fn softmax_rows_backward(p: &[f32], g: &[f32], cols: usize, scale: f32) -> Vec<f32> {
    rows(p, Some(g), cols, |_, p, g, o| {
        let g = g.expect("gradient");
        let dot: f32 = p.iter().zip(g).map(|(p, g)| p * g).sum();
        for ((o, p), g) in o.iter_mut().zip(p).zip(g) {
            *o = scale * p * (g - dot);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_rows_sum_to_one_over_the_keys_they_see() {
        // 2 heads of 3 queries over 5 keys: query i sees keys 0..=i + 2.
        let x: Vec<f32> = (0..30).map(|i| (i % 7) as f32 * 0.3 - 1.0).collect();
        let p = softmax_rows(&x, 5, 3, 0.5, true);
        for r in 0..6 {
            let row = &p[r * 5..(r + 1) * 5];
            let keep = r % 3 + 3;
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert!(row[keep..].iter().all(|v| *v == 0.0), "row {r}: {row:?}");
            assert!(row[..keep].iter().all(|v| *v > 0.0));
        }
        let full = softmax_rows(&x, 5, 3, 0.5, false);
        let (a, b) = (
            full[0],
            (x[0] * 0.5).exp() / x[..5].iter().map(|v| (v * 0.5).exp()).sum::<f32>(),
        );
        assert!((a - b).abs() < 1e-6);
    }
}
