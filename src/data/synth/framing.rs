//! Framing like a real film: the thorax placed in a whole film, its lungs covering 45-88 % of the
//! width, off-centre, turned a little, with air, shoulders, arms and abdomen around it
//! (`patient.rs`), and on some films the collimator's edges.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::canvas::{Bounds, smoothstep};
use super::phantom::Phantom;

/// Where the phantom lies on a `size` x `size` film: output pixel -> phantom pixel (before the
/// patient's deformation).
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// Output pixels per phantom pixel, across and down.
    scale: (f32, f32),
    turn: f32,
    /// Output point the phantom's lung centre lands on, and that centre.
    at: (f32, f32),
    centre: (f32, f32),
}

impl Framing {
    /// A random framing; `wide` widens the ranges of share, shift and turn (stage 1: so that no
    /// box can be guessed from the phrase alone).
    pub fn new(p: &Phantom, size: usize, wide: bool, r: &mut ChaCha8Rng) -> Self {
        let size = size as f32;
        let l = p.lungs;
        let share = if wide {
            r.random_range(0.4..0.95)
        } else {
            r.random_range(0.45..0.88)
        };
        let sx = share * size / l.width();
        let sy = sx * r.random_range(0.9..1.12);
        let spread = if wide { 1.8 } else { 1.0 };
        let turn = r.random_range(-0.06..0.06) * spread;
        // The lungs stay on the film: the shift is what the share leaves, at most.
        let (half_w, half_h) = (0.5 * l.width() * sx, 0.5 * l.height() * sy);
        let room_x = (0.5 * size - half_w - 0.02 * size).max(0.0);
        let cx = 0.5 * size + (r.random_range(-0.07..0.07) * spread * size).clamp(-room_x, room_x);
        let cy_lo = (half_h + 0.03 * size).min(0.5 * size);
        let cy_hi = (size - half_h - 0.03 * size).max(cy_lo);
        let cy = (size * r.random_range(0.38..0.52)
            + r.random_range(-0.05..0.05) * (spread - 1.0) * size)
            .clamp(cy_lo, cy_hi);
        Self {
            scale: (sx, sy),
            turn,
            at: (cx, cy),
            centre: (
                (l.x0 + l.x1 + 1) as f32 / 2.0,
                (l.y0 + l.y1 + 1) as f32 / 2.0,
            ),
        }
    }

    /// The phantom point under output point `(x, y)`.
    pub fn to_phantom(&self, x: f32, y: f32) -> (f32, f32) {
        let (s, c) = self.turn.sin_cos();
        let (dx, dy) = (x - self.at.0, y - self.at.1);
        let (u, v) = (c * dx + s * dy, -s * dx + c * dy);
        (
            self.centre.0 + u / self.scale.0,
            self.centre.1 + v / self.scale.1,
        )
    }
}

/// The collimator's shadow: on some films one to four edges of the exposed field lie inside the
/// film, never over `keep` (the lungs); outside the field the film is nearly white.
pub fn collimate(v: &mut [f32], w: usize, h: usize, keep: Option<Bounds>, r: &mut ChaCha8Rng) {
    if !r.random_bool(0.45) {
        return;
    }
    let Some(k) = keep else { return };
    let (wf, hf) = (w as f32, h as f32);
    let inset = |room: f32, r: &mut ChaCha8Rng| {
        if r.random_bool(0.6) && room > 2.0 {
            r.random_range(0.0..(0.08 * wf).min(room - 2.0))
        } else {
            -1.0
        }
    };
    let left = inset(k.x0 as f32, r);
    let right = wf - 1.0 - inset(wf - 1.0 - k.x1 as f32, r);
    let top = inset(k.y0 as f32, r);
    let bottom = hf - 1.0 - inset(hf - 1.0 - k.y1 as f32, r);
    let white = r.random_range(0.82..1.0);
    let soft = r.random_range(0.5..2.0);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32, y as f32);
            let d = (fx - left).min(right - fx).min(fy - top).min(bottom - fy);
            let outside = 1.0 - smoothstep(0.5 + d / (2.0 * soft));
            let o = &mut v[y * w + x];
            *o += (white - *o) * outside;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Split, Synth};

    /// The lungs cover 45-88 % of the film's width (wider in stage 1), off-centre, never cut by
    /// the film's edge or by the collimator.
    #[test]
    fn lungs_cover_a_varied_share_of_the_film_and_stay_on_it() {
        let size = 160;
        let (mut lo, mut hi, mut off) = (1.0f32, 0.0f32, 0.0f32);
        for i in 0..120 {
            let s = Synth::new(5, Split::Train, size).sample(i);
            let (_, l) = s
                .anatomy
                .iter()
                .find(|(n, _)| *n == "the right lung")
                .unwrap();
            let (_, r) = s
                .anatomy
                .iter()
                .find(|(n, _)| *n == "the left lung")
                .unwrap();
            let share = (r.x2 - l.x1) / size as f32;
            lo = lo.min(share);
            hi = hi.max(share);
            off = off.max(((r.x2 + l.x1) / 2.0 - size as f32 / 2.0).abs() / size as f32);
            assert!(
                l.x1 >= 0.0 && r.x2 <= size as f32 && l.y1 >= 0.0,
                "{l:?} {r:?}"
            );
            // The collimator leaves the lungs exposed: no row of the lungs is all white.
            let row = ((l.y1 + l.y2) / 2.0) as usize;
            let film = &s.picture;
            let white = (l.x1 as usize..r.x2 as usize)
                .filter(|&x| film.data[row * size + x] > 0.97)
                .count();
            assert!(
                white < (r.x2 - l.x1) as usize / 2,
                "film {i}: {white} white pixels"
            );
        }
        assert!(lo < 0.55 && hi > 0.78, "lung share {lo}..{hi}");
        assert!(off > 0.03, "never off-centre ({off})");
    }
}
