//! Compositing a lesion into the line integral: soften its edges, keep it off the midline, add
//! it, and take its mask (and so its box) from where it shows.

use super::canvas::{Bounds, Canvas, bounds_where};
use super::phantom::bits;

/// Softens `delta` (two box-blur passes, so edges look like tissue, not masks), adds it to the
/// integral; the lesion mask is where it exceeds `frac` of its peak.
/// Lung lesions stay off the spine, trachea and descending aorta, which lie in the midline behind
/// and between the lungs in projection.
pub fn apply(c: &mut Canvas, delta: &[f32], frac: f32) -> Option<Bounds> {
    let radius = (c.w / 150).max(1);
    let midline = bits::SPINE | bits::TRACHEA | bits::AORTA;
    // Over the heart or below the diaphragm a lesion shows faintly: the film is already white.
    let behind = bits::HEART | bits::LIVER | bits::STOMACH_SPLEEN;
    let clear: Vec<f32> = delta
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if c.has(i, midline) {
                0.0
            } else if c.has(i, behind) {
                0.5 * d
            } else {
                d
            }
        })
        .collect();
    let delta = &soften_twice(&clear, c.w, c.h, radius);
    apply_sharp(c, delta, frac)
}

pub fn apply_sharp(c: &mut Canvas, delta: &[f32], frac: f32) -> Option<Bounds> {
    let peak = delta.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if peak <= 0.0 {
        return None;
    }
    for (v, d) in c.integral.iter_mut().zip(delta) {
        *v += d;
    }
    let b = bounds_where(c.w, delta.len(), |i| {
        delta[i] != 0.0 && delta[i].abs() >= frac * peak
    })?;
    (b.width() >= 3.0 && b.height() >= 3.0).then_some(b)
}

/// Two passes of `soften`: a tent-shaped blur, smooth enough to pass for tissue.
pub fn soften_twice(v: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    soften(&soften(v, w, h, r), w, h, r)
}

/// Separable box blur of radius `r` (the window shrinks at the borders), by running sums over
/// whole rows: the cost does not grow with `r`, and every pass reads memory in order.
pub fn soften(v: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut tmp = vec![0.0; v.len()];
    let mut pre = vec![0.0f32; w + 1];
    for (row, out) in v.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
        for x in 0..w {
            pre[x + 1] = pre[x] + row[x];
        }
        window(&pre, out, r);
    }
    // Prefix sums of whole rows, then each output row is a difference of two of them.
    let mut rows = Vec::with_capacity((h + 1) * w);
    rows.resize(w, 0.0f32);
    for t in tmp.chunks_exact(w) {
        let last = rows.len() - w;
        rows.extend_from_within(last..);
        for (s, t) in rows[last + w..].iter_mut().zip(t) {
            *s += t;
        }
    }
    let mut out = vec![0.0; v.len()];
    for (y, o) in out.chunks_exact_mut(w).enumerate() {
        let (a, b) = (y.saturating_sub(r), (y + r).min(h - 1));
        let n = (b - a + 1) as f32;
        let (lo, hi) = (&rows[a * w..(a + 1) * w], &rows[(b + 1) * w..(b + 2) * w]);
        for ((o, hi), lo) in o.iter_mut().zip(hi).zip(lo) {
            *o = (hi - lo) / n;
        }
    }
    out
}

/// `out[x]`: the mean of the row over `x - r ..= x + r` (cut at the row's ends) from its prefix
/// sums `pre`; the full windows of the middle in one pass that vectorises.
fn window(pre: &[f32], out: &mut [f32], r: usize) {
    let w = out.len();
    let at = |x: usize| {
        let (a, b) = (x.saturating_sub(r), (x + r).min(w - 1));
        (pre[b + 1] - pre[a]) / (b - a + 1) as f32
    };
    if w <= 2 * r {
        for (x, o) in out.iter_mut().enumerate() {
            *o = at(x);
        }
        return;
    }
    let n = (2 * r + 1) as f32;
    for x in (0..r).chain(w - r..w) {
        out[x] = at(x);
    }
    for ((o, hi), lo) in out[r..w - r].iter_mut().zip(&pre[2 * r + 1..]).zip(pre) {
        *o = (hi - lo) / n;
    }
}

pub fn local_mean(c: &Canvas, x: usize, y: usize, r: usize) -> f32 {
    let (x0, x1) = (x.saturating_sub(r), (x + r).min(c.w - 1));
    let (y0, y1) = (y.saturating_sub(r), (y + r).min(c.h - 1));
    let mut s = 0.0;
    for yy in y0..=y1 {
        s += c.integral[yy * c.w + x0..=yy * c.w + x1]
            .iter()
            .sum::<f32>();
    }
    s / ((x1 - x0 + 1) * (y1 - y0 + 1)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each output is the mean of its window (cut at the edges), summed directly.
    #[test]
    fn soften_is_the_mean_of_each_window() {
        for (w, h, r) in [(9, 7, 1), (16, 11, 3), (5, 6, 4), (3, 20, 2), (40, 3, 7)] {
            let v: Vec<f32> = (0..w * h)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let got = soften(&v, w, h, r);
            for y in 0..h {
                for x in 0..w {
                    let (x0, x1) = (x.saturating_sub(r), (x + r).min(w - 1));
                    let (y0, y1) = (y.saturating_sub(r), (y + r).min(h - 1));
                    let mut s = 0.0f64;
                    for yy in y0..=y1 {
                        for xx in x0..=x1 {
                            s += v[yy * w + xx] as f64;
                        }
                    }
                    let want = s / ((x1 - x0 + 1) * (y1 - y0 + 1)) as f64;
                    let g = got[y * w + x] as f64;
                    assert!(
                        (g - want).abs() < 1e-4,
                        "{w}x{h} r{r} at ({x},{y}): {g} vs {want}"
                    );
                }
            }
        }
    }
}
