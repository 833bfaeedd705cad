//! The working surface of the renderer: line integral and anatomy bits at output resolution,
//! plus the small geometric helpers the lesions are drawn with.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::maps::{Affine, PointMap};
use super::phantom::{Phantom, bits};
use crate::image::round_nonneg;
use crate::protocol::answer::PixelBox;

/// Structures in front of or behind the lungs on a PA film that hide a focal lesion.
const OBSCURED: u16 =
    bits::HEART | bits::SPINE | bits::AORTA | bits::TRACHEA | bits::LIVER | bits::STOMACH_SPLEEN;

pub struct Canvas {
    pub w: usize,
    pub h: usize,
    pub integral: Vec<f32>,
    pub labels: Vec<u16>,
    /// An upright film, its lungs cut at the domes (`regions::cut_below_domes`).
    pub upright: bool,
}

/// Inclusive pixel bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl Bounds {
    pub fn width(&self) -> f32 {
        (self.x1 - self.x0 + 1) as f32
    }
    pub fn height(&self) -> f32 {
        (self.y1 - self.y0 + 1) as f32
    }
    /// As a pixel box covering whole pixels.
    pub fn to_box(&self) -> PixelBox {
        PixelBox {
            x1: self.x0 as f32,
            y1: self.y0 as f32,
            x2: (self.x1 + 1) as f32,
            y2: (self.y1 + 1) as f32,
        }
    }
}

/// Bounds of the pixels where `keep(i)` holds (`n` pixels, `w` to a row): row by row, each
/// scanned from both ends only as far as its first and last such pixel.
pub fn bounds_where(w: usize, n: usize, keep: impl Fn(usize) -> bool) -> Option<Bounds> {
    let mut b: Option<Bounds> = None;
    for y in 0..n.div_ceil(w) {
        let mut row = y * w..((y + 1) * w).min(n);
        let Some(first) = row.find(|&i| keep(i)) else {
            continue;
        };
        let last = row.rev().find(|&i| keep(i)).unwrap_or(first);
        let (x0, x1) = (first - y * w, last - y * w);
        b = Some(match b {
            None => Bounds {
                x0,
                y0: y,
                x1,
                y1: y,
            },
            Some(b) => Bounds {
                x0: b.x0.min(x0),
                y0: b.y0,
                x1: b.x1.max(x1),
                y1: y,
            },
        });
    }
    b
}

/// Bilinear sample of `v` (`w` wide) at `(sx, sy)`, which must lie inside `[0, w-1) x [0, h-1)`.
fn bilinear(v: &[f32], w: usize, sx: f32, sy: f32) -> f32 {
    Tap::new(w, sx, sy).of(v)
}

/// Where and with what weights `bilinear` samples a point: one `Tap` serves every plane
/// sampled at that point.
struct Tap {
    i: usize,
    w: usize,
    ax: f32,
    ay: f32,
}

impl Tap {
    fn new(w: usize, sx: f32, sy: f32) -> Self {
        let (ix, iy) = (sx as usize, sy as usize);
        let (ax, ay) = (sx - ix as f32, sy - iy as f32);
        Self {
            i: iy * w + ix,
            w,
            ax,
            ay,
        }
    }

    /// The four neighbours `a b` over `c d`, weighed.
    fn blend(&self, a: f32, b: f32, c: f32, d: f32) -> f32 {
        let (ax, ay) = (self.ax, self.ay);
        let top = a * (1.0 - ax) + b * ax;
        let bottom = c * (1.0 - ax) + d * ax;
        top * (1.0 - ay) + bottom * ay
    }

    fn of(&self, v: &[f32]) -> f32 {
        let (w, v) = (self.w, &v[self.i..self.i + self.w + 2]);
        self.blend(v[0], v[1], v[w], v[w + 1])
    }

    /// The sample of each of three planes given side by side.
    fn of3(&self, v: &[[f32; 3]]) -> [f32; 3] {
        let (w, v) = (self.w, &v[self.i..self.i + self.w + 2]);
        std::array::from_fn(|k| self.blend(v[0][k], v[1][k], v[w][k], v[w + 1][k]))
    }
}

impl Canvas {
    /// Resamples `p` into a `size` x `size` film: `map` takes an output pixel centre to phantom
    /// pixel coordinates (pixel centres at +0.5); where that falls outside the CT's field of view,
    /// `beyond(sx, sy, edge)` gives the line integral from the phantom's smoothed value `edge`
    /// at the nearest point inside (the body the CT did not image, or air), with no anatomy bits. The
    /// bones' part of the integral is scaled by `bone_gain` (1: as the CT has it).
    pub fn warp<B: PointMap>(
        p: &Phantom,
        size: usize,
        map: &impl PointMap,
        beyond: impl Fn(f32, f32, f32) -> f32,
        bone_gain: [f32; 3],
        bones_at: Option<&B>,
    ) -> Self {
        let n = size * size;
        let (mut integral, mut labels) = (vec![0.0f32; n], vec![0u16; n]);
        let (xmax, ymax) = ((p.width - 1) as f32, (p.height - 1) as f32);
        let (mut points, mut bone_points) = (vec![(0.0, 0.0); size], vec![(0.0, 0.0); size]);
        for y in 0..size {
            map.row(y, &mut points);
            if let Some(at) = bones_at {
                at.row(y, &mut bone_points);
            }
            for x in 0..size {
                let (sx, sy) = points[x];
                let (sx, sy) = (sx - 0.5, sy - 0.5);
                let o = y * size + x;
                if !(sx >= 0.0 && sy >= 0.0 && sx < xmax && sy < ymax) {
                    let (cx, cy) = (sx.clamp(0.0, xmax - 1e-3), sy.clamp(0.0, ymax - 1e-3));
                    let edge = bilinear(&p.smooth, p.width, cx, cy);
                    integral[o] = beyond(sx, sy, edge);
                    continue;
                }
                let tap = Tap::new(p.width, sx, sy);
                integral[o] = match bones_at {
                    // The bones from where `bones_at` puts them, the rest from `map`'s point.
                    Some(_) => {
                        let (bx, by) = bone_points[x];
                        let (bx, by) = (
                            (bx - 0.5).clamp(0.0, xmax - 1e-3),
                            (by - 0.5).clamp(0.0, ymax - 1e-3),
                        );
                        let b = Tap::new(p.width, bx, by).of3(&p.bones);
                        tap.of(&p.soft) + (0..3).map(|k| bone_gain[k] * b[k]).sum::<f32>()
                    }
                    None if bone_gain == [1.0; 3] => tap.of(&p.integral),
                    None => {
                        let b = tap.of3(&p.bones);
                        tap.of(&p.integral)
                            + (0..3).map(|k| (bone_gain[k] - 1.0) * b[k]).sum::<f32>()
                    }
                };
                labels[o] =
                    p.labels[round_nonneg(sy) as usize * p.width + round_nonneg(sx) as usize];
            }
        }
        Self {
            w: size,
            h: size,
            integral,
            labels,
            upright: false,
        }
    }

    /// `warp` through the affine map `m` (see `Affine`), with air beyond the CT and the bones
    /// as the CT has them.
    pub fn warp_affine(p: &Phantom, size: usize, m: [f32; 6]) -> Self {
        Self::warp(
            p,
            size,
            &Affine(m),
            |_, _, _| 0.0,
            [1.0; 3],
            None::<&Affine>,
        )
    }

    pub fn has(&self, i: usize, bits: u16) -> bool {
        self.labels[i] & bits != 0
    }

    pub fn bounds(&self, bits: u16) -> Option<Bounds> {
        bounds_where(self.w, self.labels.len(), |i| self.has(i, bits))
    }

    /// A random pixel of `bits`, clear of the mediastinum and abdomen (where a focal lesion would
    /// hide), for which `extra(x, y)` holds.
    pub fn sample_in(
        &self,
        rng: &mut ChaCha8Rng,
        bits: u16,
        b: Bounds,
        extra: impl Fn(usize, usize) -> bool,
    ) -> Option<(usize, usize)> {
        for _ in 0..400 {
            let x = rng.random_range(b.x0..=b.x1);
            let y = rng.random_range(b.y0..=b.y1);
            let i = y * self.w + x;
            if self.has(i, bits) && !self.has(i, OBSCURED) && extra(x, y) {
                return Some((x, y));
            }
        }
        None
    }

    /// Whether the anatomy bit `bits` holds at the (rounded, clamped) point.
    pub fn has_at(&self, x: f32, y: f32, bits: u16) -> bool {
        if x < 0.0 || y < 0.0 {
            return false;
        }
        let (x, y) = (x as usize, y as usize);
        x < self.w && y < self.h && self.has(y * self.w + x, bits)
    }
}

/// Gaussian-shaped elliptic blob value at `(x, y)`.
pub fn blob(x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32, angle: f32) -> f32 {
    let (s, c) = angle.sin_cos();
    let (dx, dy) = (x - cx, y - cy);
    let u = (dx * c + dy * s) / rx;
    let v = (-dx * s + dy * c) / ry;
    (-(u * u + v * v)).exp()
}

pub fn smoothstep(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Cheap smooth noise in [0, 1]: a few random plane waves.
#[derive(Debug, Clone)]
pub struct Waves(Vec<(f32, f32, f32)>);

impl Waves {
    pub fn new(rng: &mut ChaCha8Rng, count: usize, freq: f32) -> Self {
        Self(
            (0..count)
                .map(|_| {
                    let a: f32 = rng.random_range(0.0..std::f32::consts::TAU);
                    let f = freq * rng.random_range(0.6..1.4);
                    (
                        a.cos() * f,
                        a.sin() * f,
                        rng.random_range(0.0..std::f32::consts::TAU),
                    )
                })
                .collect(),
        )
    }
    pub fn at(&self, x: f32, y: f32) -> f32 {
        let s: f32 = self
            .0
            .iter()
            .map(|(kx, ky, p)| (kx * x + ky * y + p).sin())
            .sum();
        0.5 + 0.5 * s / self.0.len() as f32
    }

    /// `at(x, y)` at every pixel of a `w` x `h` film, row-major, by `sin(a + b) = sin a cos b +
    /// cos a sin b` from a table per row and per column: two sines per row and column instead
    /// of one per pixel (equal to `at` up to rounding).
    pub fn field(&self, w: usize, h: usize) -> Vec<f32> {
        let mut s = vec![0.0f32; w * h];
        for &(kx, ky, p) in &self.0 {
            let (sx, cx): (Vec<f32>, Vec<f32>) = (0..w).map(|x| (kx * x as f32).sin_cos()).unzip();
            for (y, row) in s.chunks_exact_mut(w).enumerate() {
                let (sy, cy) = (ky * y as f32 + p).sin_cos();
                for ((o, sx), cx) in row.iter_mut().zip(&sx).zip(&cx) {
                    *o += sx * cy + cx * sy;
                }
            }
        }
        let n = self.0.len() as f32;
        s.iter_mut().for_each(|v| *v = 0.5 + 0.5 * *v / n);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn waves_field_is_at_every_pixel() {
        let mut r = ChaCha8Rng::seed_from_u64(3);
        let waves = Waves::new(&mut r, 3, 0.05);
        let (w, h) = (37, 23);
        let field = waves.field(w, h);
        for y in 0..h {
            for x in 0..w {
                let want = waves.at(x as f32, y as f32);
                assert!((field[y * w + x] - want).abs() < 1e-5, "({x},{y})");
            }
        }
    }

    #[test]
    fn bounds_where_is_the_box_of_every_kept_pixel() {
        let mut r = ChaCha8Rng::seed_from_u64(5);
        for (w, n) in [(7, 49), (10, 95), (1, 5), (16, 160)] {
            for density in [0.0, 0.02, 0.3, 1.0] {
                let keep: Vec<bool> = (0..n).map(|_| r.random_bool(density)).collect();
                let mut want: Option<Bounds> = None;
                for i in (0..n).filter(|&i| keep[i]) {
                    let (x, y) = (i % w, i / w);
                    let b = want.get_or_insert(Bounds {
                        x0: x,
                        y0: y,
                        x1: x,
                        y1: y,
                    });
                    (b.x0, b.x1) = (b.x0.min(x), b.x1.max(x));
                    (b.y0, b.y1) = (b.y0.min(y), b.y1.max(y));
                }
                assert_eq!(bounds_where(w, n, |i| keep[i]), want, "{w} {n} {density}");
            }
        }
    }
}
