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
    for y in 0..h {
        let row = &v[y * w..(y + 1) * w];
        for x in 0..w {
            pre[x + 1] = pre[x] + row[x];
        }
        for x in 0..w {
            let (a, b) = (x.saturating_sub(r), (x + r).min(w - 1));
            tmp[y * w + x] = (pre[b + 1] - pre[a]) / (b - a + 1) as f32;
        }
    }
    // Prefix sums of whole rows, then each output row is a difference of two of them.
    let mut rows = vec![0.0f32; (h + 1) * w];
    for y in 0..h {
        for x in 0..w {
            rows[(y + 1) * w + x] = rows[y * w + x] + tmp[y * w + x];
        }
    }
    let mut out = vec![0.0; v.len()];
    for y in 0..h {
        let (a, b) = (y.saturating_sub(r), (y + r).min(h - 1));
        let n = (b - a + 1) as f32;
        for x in 0..w {
            out[y * w + x] = (rows[(b + 1) * w + x] - rows[a * w + x]) / n;
        }
    }
    out
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
