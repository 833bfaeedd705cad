//! The MS-CXR findings of the lung and heart, drawn into the line integral where they belong
//! anatomically (the pleural two are in `pleura.rs`). Each returns the bounds of its rendered
//! lesion mask, which become the ground-truth box exactly.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::canvas::{Bounds, Canvas, Waves, blob, bounds_where, smoothstep};
use super::compose::apply;
use super::phantom::bits;
use super::regions::{in_zone, lateral_sign, lateral_t, lobe, lung_bits};
use crate::data::phrases::{Finding, Side, Zone};

/// Upper end of the airspace blobs' orientation range: the films were drawn with it; PI would
/// change every one of them.
#[allow(clippy::approx_constant)]
const BLOB_TURN: f32 = 3.14;

/// Airspace disease: blobs in one lobe (consolidation, sharp at the fissure) or patchy in the
/// lung (pneumonia), with air bronchograms in consolidation.
pub fn airspace(c: &mut Canvas, r: &mut ChaCha8Rng, f: &Finding, patchy: bool) -> Option<Bounds> {
    let region = if patchy {
        lung_bits(f.side)
    } else {
        lobe(f.side, f.zone)
    };
    let lb = c.bounds(lung_bits(f.side))?;
    let rb = c.bounds(region)?;
    // On an upright film the right middle lobe projects below the mid zone, next to the heart:
    // "middle lobe" is then the lobe wherever it lies.
    let zoned = !(c.upright && !patchy && f.side == Side::Right && f.zone == Zone::Middle);
    let (cx, cy) = c.sample_in(r, region, rb, |x, y| {
        !zoned || in_zone(f.zone, x as f32, y as f32, lb, f.side)
    })?;
    // Sized to the NIH ChestX-ray14 boxes (median pneumonia and infiltrate box about 50 x 60 px of
    // 224): `tools/assets/nih_box_sizes.py`.
    let size = rb.width().min(rb.height()) * [0.3, 0.4, 0.5][f.severity as usize];
    let count = if patchy {
        r.random_range(5..10)
    } else {
        r.random_range(3..6)
    };
    let blobs: Vec<(f32, f32, f32, f32, f32)> = (0..count)
        .map(|_| {
            let (dx, dy) = (
                r.random_range(-1.0..1.0) * size * 0.7,
                r.random_range(-1.0..1.0) * size * 0.6,
            );
            let rad = size * r.random_range(0.3..0.6) * if patchy { 0.7 } else { 1.0 };
            (
                cx as f32 + dx,
                cy as f32 + dy,
                rad,
                rad * r.random_range(0.6..1.3),
                r.random_range(0.0..BLOB_TURN),
            )
        })
        .collect();
    let amp = if patchy {
        r.random_range(0.9..1.5)
    } else {
        r.random_range(1.2..1.9)
    };
    let texture = Waves::new(r, 5, 0.35);
    let mut delta = vec![0.0; c.integral.len()];
    for y in 0..c.h {
        for x in 0..c.w {
            let i = y * c.w + x;
            if !c.has(i, region) {
                continue;
            }
            let (fx, fy) = (x as f32, y as f32);
            let v: f32 = blobs
                .iter()
                .map(|&(bx, by, rx, ry, a)| blob(fx, fy, bx, by, rx, ry, a))
                .sum();
            let v = v.min(1.2);
            let v = if patchy {
                v * (0.5 + 0.8 * texture.at(fx, fy))
            } else {
                v
            };
            delta[i] = amp * v;
        }
    }
    if !patchy {
        bronchograms(c, r, &mut delta, cx, cy, size);
    }
    apply(c, &delta, 0.3)
}

/// Dark branching lines of air in the bronchi through consolidated lung.
fn bronchograms(
    c: &Canvas,
    r: &mut ChaCha8Rng,
    delta: &mut [f32],
    cx: usize,
    cy: usize,
    size: f32,
) {
    for _ in 0..r.random_range(2..4) {
        let (mut x, mut y) = (cx as f32, cy as f32);
        let mut a: f32 = r.random_range(0.0..std::f32::consts::TAU);
        for _ in 0..(size as usize).max(4) {
            a += r.random_range(-0.3..0.3);
            x += a.cos();
            y += a.sin();
            if x < 0.0 || y < 0.0 || x as usize >= c.w || y as usize >= c.h {
                break;
            }
            let i = y as usize * c.w + x as usize;
            delta[i] *= 0.55;
        }
    }
}

pub fn atelectasis(c: &mut Canvas, r: &mut ChaCha8Rng, f: &Finding) -> Option<Bounds> {
    let lung = lung_bits(f.side);
    let lb = c.bounds(lung)?;
    let mut delta = vec![0.0; c.integral.len()];
    if r.random_bool(0.7) {
        // Plate-like: a thin, nearly horizontal band in the lower lung.
        let (cx, cy) = c.sample_in(r, lung, lb, |x, y| {
            let t = (y as f32 - lb.y0 as f32) / lb.height();
            in_zone(f.zone, x as f32, y as f32, lb, f.side)
                && (0.5..0.85).contains(&t)
                && (0.2..0.8).contains(&lateral_t(x as f32, lb, f.side))
        })?;
        let len = lb.width() * r.random_range(0.22..0.36);
        let thick = lb.height() * r.random_range(0.02..0.04);
        let angle = r.random_range(-0.25..0.25);
        let amp = r.random_range(1.2..1.8);
        for y in lb.y0..=lb.y1 {
            for x in lb.x0..=lb.x1 {
                let i = y * c.w + x;
                if c.has(i, lung) {
                    delta[i] =
                        amp * blob(x as f32, y as f32, cx as f32, cy as f32, len, thick, angle);
                }
            }
        }
    } else {
        // Lobar: dense, shrunken lower lobe against the heart and diaphragm (volume loss).
        let lobe_bits = lobe(f.side, Zone::Lower);
        let b = c.bounds(lobe_bits)?;
        let amp = r.random_range(1.2..1.8);
        let reach = r.random_range(0.35..0.55);
        for y in b.y0..=b.y1 {
            for x in b.x0..=b.x1 {
                let i = y * c.w + x;
                let t = lateral_t(x as f32, b, f.side);
                let down = (y as f32 - b.y0 as f32) / b.height();
                // A triangle hugging the medial base.
                let edge = reach * (0.3 + 0.7 * down) - t;
                if c.has(i, lobe_bits) && edge > 0.0 && down > 0.35 {
                    delta[i] = amp * smoothstep(edge / 0.06);
                }
            }
        }
    }
    apply(c, &delta, 0.3)
}

pub fn cardiomegaly(c: &mut Canvas, r: &mut ChaCha8Rng, f: &Finding) -> Option<Bounds> {
    let hb = c.bounds(bits::HEART)?;
    let sx = [1.18, 1.3, 1.45][f.severity as usize] * r.random_range(0.97..1.03);
    let sy = 1.0 + (sx - 1.0) * 0.35;
    // The heart grows mostly toward the patient's left (image right), resting on the diaphragm.
    let ax = hb.x0 as f32 + 0.3 * hb.width();
    let ay = hb.y1 as f32;
    let grown = |x: f32, y: f32| c.has_at(ax + (x - ax) / sx, ay + (y - ay) / sy, bits::HEART);
    // The enlarged silhouette carries the heart's own attenuation, magnified about the anchor.
    let mut delta = vec![0.0; c.integral.len()];
    let mut mask = vec![false; c.integral.len()];
    let pad = (hb.width() * (sx - 1.0)) as usize + 2;
    for y in hb.y0.saturating_sub(pad)..=(hb.y1).min(c.h - 1) {
        for x in hb.x0.saturating_sub(pad)..=(hb.x1 + pad).min(c.w - 1) {
            let i = y * c.w + x;
            let (srcx, srcy) = (ax + (x as f32 - ax) / sx, ay + (y as f32 - ay) / sy);
            if grown(x as f32, y as f32) {
                mask[i] = true;
                let j = (srcy as usize).min(c.h - 1) * c.w + (srcx as usize).min(c.w - 1);
                delta[i] = (c.integral[j] - c.integral[i]).max(0.0);
            }
        }
    }
    // The box is the whole enlarged silhouette, and covers the softened change at its edge too.
    let b = bounds_where(c.w, mask.len(), |i| mask[i])?;
    let e = apply(c, &delta, 0.3)?;
    Some(Bounds {
        x0: b.x0.min(e.x0),
        y0: b.y0.min(e.y0),
        x1: b.x1.max(e.x1),
        y1: b.y1.max(e.y1),
    })
}

pub fn edema(c: &mut Canvas, r: &mut ChaCha8Rng, f: &Finding) -> Option<Bounds> {
    let amp = [0.35, 0.55, 0.8][f.severity as usize] * r.random_range(0.85..1.15);
    let mut delta = vec![0.0; c.integral.len()];
    for side in [Side::Left, Side::Right] {
        let lung = lung_bits(side);
        let b = c.bounds(lung)?;
        let medial = if side == Side::Left {
            b.x0 as f32
        } else {
            b.x1 as f32
        };
        let (hx, hy) = (
            medial + lateral_sign(side) * 0.12 * b.width(),
            b.y0 as f32 + 0.5 * b.height(),
        );
        let (rx, ry) = (0.45 * b.width(), 0.32 * b.height());
        let texture = Waves::new(r, 6, 0.5);
        for y in b.y0..=b.y1 {
            for x in b.x0..=b.x1 {
                let i = y * c.w + x;
                if c.has(i, lung) {
                    let (fx, fy) = (x as f32, y as f32);
                    delta[i] =
                        amp * blob(fx, fy, hx, hy, rx, ry, 0.0) * (0.75 + 0.5 * texture.at(fx, fy));
                }
            }
        }
        // Septal (Kerley B) lines at the lateral bases.
        for _ in 0..r.random_range(3..7) {
            let Some((x, y)) = c.sample_in(r, lung, b, |x, y| {
                lateral_t(x as f32, b, side) > 0.8 && (y as f32 - b.y0 as f32) / b.height() > 0.7
            }) else {
                continue;
            };
            let len = (0.05 * b.width()).max(3.0) as i32;
            for k in 0..len {
                let xx = x as i32 - lateral_sign(side) as i32 * k;
                if xx >= 0 && (xx as usize) < c.w {
                    delta[y * c.w + xx as usize] += 0.2 * amp;
                }
            }
        }
    }
    apply(c, &delta, 0.3)
}

/// Draws a nodule or an ill-defined patch and records which in `f.nodular` for the phrase.
pub fn lung_opacity(c: &mut Canvas, r: &mut ChaCha8Rng, f: &mut Finding) -> Option<Bounds> {
    let lung = lung_bits(f.side);
    let lb = c.bounds(lung)?;
    let (cx, cy) = c.sample_in(r, lung, lb, |x, y| {
        in_zone(f.zone, x as f32, y as f32, lb, f.side)
            && (0.15..0.85).contains(&lateral_t(x as f32, lb, f.side))
    })?;
    let nodular = r.random_bool(0.5);
    f.nodular = nodular;
    let rad = lb.width()
        * if nodular {
            r.random_range(0.06..0.12)
        } else {
            r.random_range(0.12..0.25)
        }
        * (1.0 + 0.25 * f.severity as f32);
    let amp = if nodular {
        r.random_range(1.0..1.6)
    } else {
        r.random_range(0.8..1.3)
    };
    let texture = Waves::new(r, 4, 0.4);
    let mut delta = vec![0.0; c.integral.len()];
    for y in lb.y0..=lb.y1 {
        for x in lb.x0..=lb.x1 {
            let i = y * c.w + x;
            if !c.has(i, lung) {
                continue;
            }
            let (fx, fy) = (x as f32, y as f32);
            let d = ((fx - cx as f32).powi(2) + (fy - cy as f32).powi(2)).sqrt() / rad;
            delta[i] = if nodular {
                amp * smoothstep((1.15 - d) / 0.3)
            } else {
                amp * blob(fx, fy, cx as f32, cy as f32, rad, rad * 0.8, 0.3)
                    * (0.6 + 0.6 * texture.at(fx, fy))
            };
        }
    }
    apply(c, &delta, 0.3)
}

#[cfg(test)]
mod tests {
    use super::super::{Split, Synth, choose_finding, draw, phantom};
    use super::*;
    use rand::SeedableRng;

    /// Every category renders on held-out poses, and its box covers every pixel the lesion
    /// changed by at least 30% of its peak, inside the image.
    #[test]
    fn every_category_renders_and_its_box_covers_the_lesion() {
        for category in 0..crate::data::phrases::CATEGORIES.len() {
            let mut rendered = 0;
            for seed in 0..6u64 {
                let p = &phantom::phantoms()[phantom::poses(Split::Test)[seed as usize % 2]];
                let m = [
                    p.width as f32 / 160.0,
                    0.0,
                    0.0,
                    0.0,
                    p.height as f32 * 0.8 / 160.0,
                    p.height as f32 * 0.03,
                ];
                let mut c = Canvas::warp_affine(p, 160, m);
                let before = c.integral.clone();
                let mut r = ChaCha8Rng::seed_from_u64(seed);
                let mut f = choose_finding(category, &mut r);
                let Some(b) = draw(&mut c, &mut r, &mut f) else {
                    continue;
                };
                rendered += 1;
                let delta: Vec<f32> = c.integral.iter().zip(&before).map(|(a, b)| a - b).collect();
                let peak = delta.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(peak > 0.05, "category {category}: nothing drawn");
                assert!(b.x1 < c.w && b.y1 < c.h && b.x0 <= b.x1 && b.y0 <= b.y1);
                for (i, d) in delta.iter().enumerate() {
                    if d.abs() >= 0.3 * peak {
                        let (x, y) = (i % c.w, i / c.w);
                        assert!(
                            x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1,
                            "category {category}: ({x},{y}) outside {b:?}"
                        );
                    }
                }
            }
            assert!(
                rendered >= 4,
                "category {category} rendered {rendered} of 6 times"
            );
        }
    }

    #[test]
    fn cardiomegaly_makes_the_heart_wider_than_half_the_chest() {
        let s = Synth::new(3, Split::Val, 224);
        let mut seen = 0;
        for i in 0..200 {
            let sample = s.sample(i);
            let lung = |n: &str| sample.anatomy.iter().find(|(a, _)| *a == n).unwrap().1;
            let chest = lung("the left lung").x2 - lung("the right lung").x1;
            for f in sample.findings.iter().filter(|f| f.category == 1) {
                // Cardiothoracic ratio: box width over the width of the lungs.
                let ctr = (f.box_px.x2 - f.box_px.x1) / chest;
                assert!(ctr > 0.45, "ctr {ctr}");
                seen += 1;
            }
        }
        assert!(seen > 5);
    }
}
