//! Virtual patients from one CT: smooth random deformations of the phantom (heart size,
//! diaphragm level of each side, mediastinal width, a gentle random field), and the body the CT's
//! field of view cut off (chest wall, shoulders and neck, arms, abdomen), all in the phantom's
//! pixel coordinates, random per film. The film and its label map are sampled through the same
//! deformation, so every box stays exact.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::canvas::{Canvas, Waves, smoothstep};
use super::phantom::{Phantom, bits};

/// Phantom pixels are about 1.15 mm; soft tissue attenuates 0.02 / mm, cortical bone about
/// 0.045 / mm (the renderer's `mu = 0.02 (1 + HU / 1000)`).
const MM: f32 = 1.15;
const MU_SOFT: f32 = 0.02;
const MU_BONE: f32 = 0.045;

/// One arm hanging beside the chest: its axis from the shoulder down, in phantom pixels.
#[derive(Debug, Clone, Copy)]
struct Arm {
    x: f32,
    y0: f32,
    y1: f32,
    slope: f32,
    radius: f32,
    bone: f32,
}

#[derive(Debug, Clone)]
pub struct Patient {
    w: f32,
    h: f32,
    mid: f32,
    /// Neck and abdomen far from the CT's edge, as a share of the edge's smoothed value.
    fill: f32,
    // Deformation.
    heart: (f32, f32, f32, f32),
    diaphragm: [f32; 2],
    /// Upright films only: per side, the dome's apex row and lung bottom in the phantom, and
    /// how far the dome comes down (deeper inspiration, upright: see `with_upright_domes`).
    domes: Option<[(f32, f32, f32); 2]>,
    lung_top: f32,
    lung_bottom: f32,
    mediastinum: f32,
    field: (Waves, Waves, f32),
    // Body beyond the CT.
    ext: [f32; 2],
    ext_waves: Waves,
    shoulder: f32,
    slope_len: f32,
    neck: f32,
    arms: Vec<Arm>,
}

impl Patient {
    /// A random patient for phantom `p`; `spread` widens every range (1: clinical).
    pub fn new(p: &Phantom, r: &mut ChaCha8Rng, spread: f32) -> Self {
        let (w, h) = (p.width as f32, p.height as f32);
        let (l, hb) = (p.lungs, p.heart);
        let mid = (l.x0 + l.x1) as f32 / 2.0;
        let heart = (
            (hb.x0 + hb.x1) as f32 / 2.0,
            (hb.y0 + hb.y1) as f32 / 2.0,
            0.55 * hb.width().max(hb.height()),
            r.random_range(-0.12..0.16) * spread,
        );
        let lh = l.height();
        let diaphragm = [
            r.random_range(-0.07..0.07) * lh * spread,
            r.random_range(-0.07..0.07) * lh * spread,
        ];
        let field = (
            Waves::new(r, 3, 2.5 / w),
            Waves::new(r, 3, 2.5 / w),
            r.random_range(0.0..0.012) * w * spread,
        );
        let side = |r: &mut ChaCha8Rng| r.random_range(0.02..0.16) * w;
        let ext = [side(r), side(r)];
        let shoulder = r.random_range(0.03..0.14) * h;
        let neck = r.random_range(0.13..0.19) * w;
        let mut arms = Vec::new();
        if r.random_bool(0.8) {
            let radius = r.random_range(0.13..0.17) * w;
            let gap = r.random_range(-0.02..0.1) * w;
            let slope = r.random_range(-0.25..0.1);
            let y1 = h * r.random_range(0.35..1.3);
            for (s, e) in [(-1.0f32, ext[0]), (1.0, ext[1])] {
                let edge = if s < 0.0 { -e } else { w + e };
                arms.push(Arm {
                    x: edge + s * (gap + radius),
                    y0: -shoulder - 0.3 * radius,
                    y1,
                    slope: s * slope,
                    radius,
                    bone: radius * r.random_range(0.26..0.34),
                });
            }
        }
        Self {
            w,
            h,
            mid,
            fill: r.random_range(0.8..1.1),
            heart,
            diaphragm,
            domes: None,
            lung_top: l.y0 as f32,
            lung_bottom: l.y1 as f32,
            mediastinum: r.random_range(-0.018..0.018) * w * spread,
            field,
            ext,
            ext_waves: Waves::new(r, 2, 3.0 / h),
            shoulder,
            slope_len: r.random_range(0.06..0.16) * h,
            neck,
            arms,
        }
    }

    /// The domes lowered as on an upright film in full inspiration: the CT was taken supine, its
    /// right dome at about 55 % of the lung's height (the left at 78 %), with the lung reaching
    /// far down behind the abdomen; on an upright PA film the apex of each dome lies at about
    /// 85-90 % of the lung field's height. Each dome comes down to a random 75-90 % of its
    /// lung's height, the abdomen under it pressed into what is left above the lung's lowest
    /// point. Draws from `r` only here, so films without it keep their stream.
    pub fn with_upright_domes(mut self, p: &Phantom, r: &mut ChaCha8Rng) -> Self {
        let top = self.lung_top;
        self.domes = Some(p.domes.map(|(apex, bottom)| {
            let target = top + r.random_range(0.75..0.9) * (bottom - top);
            (apex, bottom, (target - apex).max(0.0))
        }));
        self
    }

    /// The phantom point this patient shows at phantom point `(x, y)`: sampling there makes the
    /// heart larger or smaller, each diaphragm higher or lower, the mediastinum wider or
    /// narrower. Smooth and gentle enough never to fold.
    pub fn deform(&self, x: f32, y: f32) -> (f32, f32) {
        self.deform_with(x, y, true)
    }

    /// `deform` without the upright domes: where the bones are (the ribs stay where they are
    /// while the diaphragm comes down past them).
    pub fn deform_bones(&self, x: f32, y: f32) -> (f32, f32) {
        self.deform_with(x, y, false)
    }

    fn deform_with(&self, x: f32, y: f32, domes: bool) -> (f32, f32) {
        let (hx, hy, hr, hk) = self.heart;
        let (dx, dy) = (x - hx, y - hy);
        let g = (-(dx * dx + dy * dy) / (2.0 * hr * hr)).exp();
        let (mut sx, mut sy) = (hx + dx * (1.0 - hk * g), hy + dy * (1.0 - hk * g));
        // Diaphragm: the lower lung stretched down (or up) per side, blended over the midline.
        let t = smoothstep((x - self.mid) / (0.3 * self.w) + 0.5);
        let shift = self.diaphragm[0] * (1.0 - t) + self.diaphragm[1] * t;
        let span = (self.lung_bottom - self.lung_top).max(1.0);
        let up = smoothstep((y - self.lung_top) / span);
        let down = 1.0 - smoothstep((y - self.lung_bottom) / (0.4 * span));
        sy -= shift * up * down;
        if let (true, Some([(ar, br, dr), (al, bl, dl)])) = (domes, self.domes) {
            // The lung above a dome stretched down onto it, the abdomen under it pressed; fixed
            // at the lung's top and lowest point, so it never folds (slope >= 0.3).
            let (apex, bottom, d) = (
                ar * (1.0 - t) + al * t,
                br * (1.0 - t) + bl * t,
                dr * (1.0 - t) + dl * t,
            );
            let peak = apex + d;
            let g = if y <= peak {
                smoothstep((y - self.lung_top) / (peak - self.lung_top).max(1.0))
            } else {
                1.0 - smoothstep((y - peak) / (bottom - peak).max(1.0))
            };
            sy -= d * g;
        }
        let m = (x - self.mid) / (0.1 * self.w);
        sx -= self.mediastinum * m.signum() * (-m * m).exp() * m.abs().min(1.0);
        let (fx, fy, amp) = &self.field;
        sx += amp * (fx.at(x, y) - 0.5);
        sy += amp * (fy.at(x, y) - 0.5);
        (sx, sy)
    }

    /// Line integral at phantom point `(x, y)` outside the CT's field of view, where the
    /// nearest point inside has `edge`: the chest wall thinning to the skin, shoulders
    /// narrowing to the neck above, the abdomen below, the arms, air.
    pub fn beyond(&self, x: f32, y: f32, edge: f32) -> f32 {
        let vary = 0.8 + 0.4 * self.ext_waves.at(x, y);
        let (el, er) = (self.ext[0] * vary, self.ext[1] * vary);
        // Distance outside the body's outline, as a share of the wall thickness left.
        let lateral = if x < 0.0 {
            (-x / el).min(1.0)
        } else if x > self.w - 1.0 {
            ((x - self.w + 1.0) / er).min(1.0)
        } else {
            0.0
        };
        // Far above or below the CT the film shows the neck and the abdomen, not the edge
        // row's detail drawn out into streaks: the edge fades into this patient's mean.
        // Only where the edge is body (not air), and less in the midline, where the spine and
        // trachea go on.
        let out = (-y).max(y - self.h + 1.0).max(0.0);
        let body = smoothstep(edge / 1.2);
        let midline = (-((x - self.mid) / (0.05 * self.w)).powi(2)).exp();
        let fade = smoothstep(out / (0.12 * self.h)) * body * (1.0 - 0.7 * midline);
        let edge = edge * (1.0 + (self.fill - 1.0) * fade);
        let mut torso = edge * (1.0 - lateral).max(0.0).sqrt();
        if y < 0.0 {
            // Above the CT: the outline's half-width falls from the shoulders' to the neck's.
            let up = -y;
            let full = self.w / 2.0 + 0.5 * (el + er);
            let t = smoothstep((up - self.shoulder) / self.slope_len);
            let half = full + (self.neck - full) * t;
            let d = (x - self.w / 2.0).abs();
            let inside = smoothstep((half - d) / (0.04 * self.w));
            torso *= inside * (1.0 - 0.25 * t);
        }
        torso + self.arms.iter().map(|a| a.at(x, y)).sum::<f32>()
    }
}

impl Arm {
    /// Line integral through this arm at `(x, y)`: soft tissue and the humerus, with the humeral
    /// head at its top.
    fn at(&self, x: f32, y: f32) -> f32 {
        if y < self.y0 - self.radius || y > self.y1 {
            return 0.0;
        }
        let ax = self.x + self.slope * (y - self.y0).max(0.0);
        let chord = |d: f32, r: f32| 2.0 * (r * r - d * d).max(0.0).sqrt() * MM;
        let d = (x - ax).abs();
        let dy = (self.y0 - y).max(0.0);
        let d_round = (d * d + dy * dy).sqrt();
        let end = smoothstep((self.y1 - y) / (0.2 * self.radius));
        let head = chord(
            ((x - ax).powi(2) + (y - self.y0 - self.bone).powi(2)).sqrt(),
            1.7 * self.bone,
        );
        let shaft = if y > self.y0 {
            chord(d, self.bone)
        } else {
            0.0
        };
        end * (MU_SOFT * chord(d_round, self.radius) + (MU_BONE - MU_SOFT) * shaft.max(head))
    }
}

/// Breast shadows over the lower chest of some films: soft tissue, densest at the fold.
pub fn breasts(c: &mut Canvas, r: &mut ChaCha8Rng) {
    let Some(l) = c.bounds(bits::LUNGS) else {
        return;
    };
    if !r.random_bool(0.35) {
        return;
    }
    let (lw, lh) = (l.width(), l.height());
    let amp = r.random_range(0.15..0.6);
    let rx = lw * r.random_range(0.18..0.26);
    let ry = lh * r.random_range(0.2..0.3);
    let fold = l.y0 as f32 + lh * r.random_range(0.72..0.9);
    for share in [0.22f32, 0.78] {
        let cx = l.x0 as f32 + lw * (share + r.random_range(-0.04..0.04));
        let cy = fold - ry;
        for y in 0..c.h {
            for x in 0..c.w {
                let u = (x as f32 - cx) / rx;
                let v = (y as f32 - cy) / ry;
                let q = 1.0 - u * u - v * v;
                if q > 0.0 && v > -0.6 {
                    let lower = smoothstep((v + 0.6) / 0.8);
                    c.integral[y * c.w + x] += amp * q.sqrt() * lower;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::phantom::phantoms;
    use super::*;
    use rand::SeedableRng;

    /// The deformation never folds the phantom (its Jacobian stays positive) and moves points
    /// by at most a few percent of the film; the same seed gives the same patient.
    #[test]
    fn deformations_are_gentle_and_deterministic() {
        let p = &phantoms()[0];
        let mut moved = 0.0f32;
        for seed in 0..40 {
            let pt = Patient::new(p, &mut ChaCha8Rng::seed_from_u64(seed), 1.5);
            let again = Patient::new(p, &mut ChaCha8Rng::seed_from_u64(seed), 1.5);
            assert_eq!(pt.deform(100.0, 150.0), again.deform(100.0, 150.0));
            for y in (0..p.height).step_by(8) {
                for x in (0..p.width).step_by(8) {
                    let (x, y) = (x as f32, y as f32);
                    let (a, b) = pt.deform(x, y);
                    let (ax, bx) = pt.deform(x + 0.5, y);
                    let (ay, by) = pt.deform(x, y + 0.5);
                    let det = (ax - a) * (by - b) - (ay - a) * (bx - b);
                    assert!(det > 0.0, "seed {seed}: folds at ({x}, {y})");
                    moved = moved.max((a - x).hypot(b - y));
                }
            }
        }
        assert!(
            moved > 3.0 && moved < 0.12 * p.width as f32,
            "largest move {moved}"
        );
    }

    /// Beyond the CT: air far out, the chest wall thinning to nothing, arms of tissue and bone.
    #[test]
    fn the_body_beyond_the_ct_thins_out_and_has_arms() {
        let p = &phantoms()[0];
        let w = p.width as f32;
        let mut arms = 0;
        for seed in 0..20 {
            let pt = Patient::new(p, &mut ChaCha8Rng::seed_from_u64(seed), 1.0);
            assert_eq!(pt.beyond(-2.0 * w, 100.0, 3.0), 0.0);
            assert!(pt.beyond(-0.5, 100.0, 3.0) > pt.beyond(-0.6 * pt.ext[0], 100.0, 3.0));
            // High above the shoulders only the neck remains.
            assert_eq!(pt.beyond(2.0, -0.6 * p.height as f32, 3.0), 0.0);
            assert!(pt.beyond(w / 2.0, -0.1 * p.height as f32, 3.0) > 1.0);
            if let Some(a) = pt.arms.first() {
                let v = pt.beyond(a.x, 20.0, 0.0);
                assert!(v > 1.0 && v < 6.0, "arm integral {v}");
                arms += 1;
            }
        }
        assert!(arms > 10, "{arms} of 20 with arms");
    }
}
