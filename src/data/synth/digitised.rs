//! What lies between a film and the model on the way from another hospital: a film digitiser's
//! or a screenshot's black or white border (or a band below), a few degrees of tilt, a crop,
//! another exposure, a burned-in text label ("PA ERECT"). None of it is new anatomy, so a
//! model of "a frontal chest film" must take such films as inside: the out-of-distribution model
//! is fitted on films with these looks (`Synth::with_digitised`, the `:digitised` datasets),
//! and every box moves with its film.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::data::draw::draw_text;
use crate::protocol::answer::PixelBox;

/// A map from the film's pixels to the digitised copy's: `out = a * p + t` (2 x 2 and shift).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    a: [[f32; 2]; 2],
    t: [f32; 2],
}

impl Affine {
    const IDENTITY: Self = Self {
        a: [[1.0, 0.0], [0.0, 1.0]],
        t: [0.0, 0.0],
    };

    fn apply(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [
            self.a[0][0] * x + self.a[0][1] * y + self.t[0],
            self.a[1][0] * x + self.a[1][1] * y + self.t[1],
        ]
    }

    /// `other` after `self`.
    fn then(self, other: Self) -> Self {
        let m = |i: usize, j: usize| other.a[i][0] * self.a[0][j] + other.a[i][1] * self.a[1][j];
        let t = other.apply(self.t);
        Self {
            a: [[m(0, 0), m(0, 1)], [m(1, 0), m(1, 1)]],
            t,
        }
    }

    fn inverse(&self) -> Self {
        let [[a, b], [c, d]] = self.a;
        let det = a * d - b * c;
        let inv = [[d / det, -b / det], [-c / det, a / det]];
        let t = [
            -(inv[0][0] * self.t[0] + inv[0][1] * self.t[1]),
            -(inv[1][0] * self.t[0] + inv[1][1] * self.t[1]),
        ];
        Self { a: inv, t }
    }

    /// The box around `b`'s corners after the map, kept on a film of `size` pixels.
    pub fn map_box(&self, b: &PixelBox, size: usize) -> PixelBox {
        let corners =
            [[b.x1, b.y1], [b.x2, b.y1], [b.x1, b.y2], [b.x2, b.y2]].map(|p| self.apply(p));
        let s = size as f32;
        let (xs, ys) = (corners.map(|p| p[0]), corners.map(|p| p[1]));
        let lo = |v: [f32; 4]| v.iter().copied().fold(f32::MAX, f32::min).clamp(0.0, s);
        let hi = |v: [f32; 4]| v.iter().copied().fold(f32::MIN, f32::max).clamp(0.0, s);
        PixelBox {
            x1: lo(xs),
            y1: lo(ys),
            x2: hi(xs),
            y2: hi(ys),
        }
    }
}

/// Words burned into films by scanners and modalities.
const LABELS: [&str; 8] = [
    "PA ERECT", "R", "L", "AP", "PORTABLE", "CHEST PA", "12/03/19", "INSP",
];

/// Gives the square film `v` (`size` pixels a side, values in [0, 1]) some of a digitised
/// film's looks, drawn from `r`; returns where each of its pixels went.
pub fn digitise(v: &mut Vec<f32>, size: usize, r: &mut ChaCha8Rng) -> Affine {
    let s = size as f32;
    let centre = [s / 2.0, s / 2.0];
    let about = |a: [[f32; 2]; 2], c: [f32; 2]| Affine {
        a,
        t: [
            centre[0] - (a[0][0] * c[0] + a[0][1] * c[1]),
            centre[1] - (a[1][0] * c[0] + a[1][1] * c[1]),
        ],
    };
    let mut map = Affine::IDENTITY;
    if r.random_bool(0.35) {
        // A crop: zoomed in about a point near the middle.
        let zoom = r.random_range(1.05f32..1.3);
        let c = [
            s * r.random_range(0.42f32..0.58),
            s * r.random_range(0.42f32..0.58),
        ];
        map = map.then(about([[zoom, 0.0], [0.0, zoom]], c));
    }
    if r.random_bool(0.4) {
        let angle = r.random_range(-6.0f32..6.0).to_radians();
        let (sin, cos) = angle.sin_cos();
        map = map.then(about([[cos, -sin], [sin, cos]], centre));
    }
    if r.random_bool(0.5) {
        // A border: the film shrunk into a frame, or onto a band along one edge.
        let (l, t, rr, b) = if r.random_bool(0.3) {
            (0.0, 0.0, 0.0, s * 0.12)
        } else {
            let m: [f32; 4] = std::array::from_fn(|_| s * r.random_range(0.0f32..0.12));
            (m[0], m[1], m[2], m[3])
        };
        let (mx, my) = ((s - l - rr) / s, (s - t - b) / s);
        map = map.then(Affine {
            a: [[mx, 0.0], [0.0, my]],
            t: [l, t],
        });
    }
    let fill = if r.random_bool(0.75) { 0.0 } else { 1.0 };
    if map != Affine::IDENTITY {
        let back = map.inverse();
        let src = std::mem::take(v);
        *v = (0..size * size)
            .map(|i| {
                let [x, y] = back.apply([(i % size) as f32 + 0.5, (i / size) as f32 + 0.5]);
                bilinear(&src, size, x - 0.5, y - 0.5).unwrap_or(fill)
            })
            .collect();
    }
    if r.random_bool(0.5) {
        // Another exposure and processing: a gamma and a squeezed range.
        let gamma = r.random_range(-0.5f32..0.5).exp();
        let (lo, hi) = (r.random_range(0.0f32..0.12), r.random_range(0.85f32..1.0));
        for x in v.iter_mut() {
            *x = lo + (hi - lo) * x.clamp(0.0, 1.0).powf(gamma);
        }
    }
    for _ in 0..[0, 1, 1, 2][r.random_range(0..4)] {
        let text = LABELS[r.random_range(0..LABELS.len())];
        let scale = r.random_range(1..=(size / 112).max(1) + 1);
        let width = text.len() * 8 * scale;
        let x = r.random_range(0..size.saturating_sub(width).max(1));
        let y = if r.random_bool(0.5) {
            r.random_range(0..size / 8)
        } else {
            size - 8 * scale - r.random_range(0..size / 8)
        };
        let value = if r.random_bool(0.8) { 1.0 } else { 0.0 };
        draw_text(v, size, size, x, y, text, scale, value);
    }
    map
}

/// `v` at `(x, y)` (pixel centres at integers), None outside the film.
fn bilinear(v: &[f32], size: usize, x: f32, y: f32) -> Option<f32> {
    let last = (size - 1) as f32;
    if !(-0.5..=last + 0.5).contains(&x) || !(-0.5..=last + 0.5).contains(&y) {
        return None;
    }
    let (x, y) = (x.clamp(0.0, last), y.clamp(0.0, last));
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let at = |x: usize, y: usize| v[y * size + x];
    let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
    let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
    Some(top * (1.0 - fy) + bottom * fy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn boxes_move_with_their_film() {
        // A bright square on a dark film: after any look its box still holds the bright pixels.
        let size = 96;
        for seed in 0..40 {
            let mut v = vec![0.0f32; size * size];
            for y in 30..50 {
                for x in 40..64 {
                    v[y * size + x] = 1.0;
                }
            }
            let truth = PixelBox {
                x1: 40.0,
                y1: 30.0,
                x2: 64.0,
                y2: 50.0,
            };
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            let map = digitise(&mut v, size, &mut r);
            let b = map.map_box(&truth, size);
            let centre = map.apply([52.0, 40.0]);
            assert!(
                b.x1 <= centre[0] && centre[0] <= b.x2 && b.y1 <= centre[1] && centre[1] <= b.y2
            );
            let (cx, cy) = (centre[0] as usize, centre[1] as usize);
            assert!(
                v[cy * size + cx] > 0.6,
                "seed {seed}: {} at the box's centre",
                v[cy * size + cx]
            );
            assert!(
                b.x2 - b.x1 >= 15.0 && b.x2 - b.x1 <= 45.0,
                "seed {seed}: {b:?}"
            );
        }
    }

    #[test]
    fn the_inverse_undoes_the_map() {
        let m = Affine {
            a: [[1.1, -0.1], [0.1, 0.9]],
            t: [3.0, -2.0],
        };
        let p = m.inverse().apply(m.apply([10.0, 20.0]));
        assert!((p[0] - 10.0).abs() < 1e-4 && (p[1] - 20.0).abs() < 1e-4);
    }
}
