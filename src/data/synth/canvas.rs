//! The working surface of the renderer: line integral and anatomy bits at output resolution,
//! plus the small geometric helpers the lesions are drawn with.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::phantom::{Phantom, bits};
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

/// Bounds of the pixels where `keep(i)` holds.
pub fn bounds_where(w: usize, n: usize, keep: impl Fn(usize) -> bool) -> Option<Bounds> {
    let mut b: Option<Bounds> = None;
    for i in (0..n).filter(|&i| keep(i)) {
        let (x, y) = (i % w, i / w);
        b = Some(match b {
            None => Bounds {
                x0: x,
                y0: y,
                x1: x,
                y1: y,
            },
            Some(b) => Bounds {
                x0: b.x0.min(x),
                y0: b.y0.min(y),
                x1: b.x1.max(x),
                y1: b.y1.max(y),
            },
        });
    }
    b
}

/// Bilinear sample of `v` (`w` wide) at `(sx, sy)`, which must lie inside `[0, w-1) x [0, h-1)`.
fn bilinear(v: &[f32], w: usize, sx: f32, sy: f32) -> f32 {
    let (ix, iy) = (sx as usize, sy as usize);
    let (ax, ay) = (sx - ix as f32, sy - iy as f32);
    let at = |dx: usize, dy: usize| v[(iy + dy) * w + ix + dx];
    let top = at(0, 0) * (1.0 - ax) + at(1, 0) * ax;
    let bottom = at(0, 1) * (1.0 - ax) + at(1, 1) * ax;
    top * (1.0 - ay) + bottom * ay
}

impl Canvas {
    /// Resamples `p` into a `size` x `size` film: `map` takes an output pixel centre to phantom
    /// pixel coordinates (pixel centres at +0.5); where that falls outside the CT's field of view,
    /// `beyond(sx, sy, edge)` gives the line integral from the phantom's smoothed value `edge`
    /// at the nearest point inside (the body the CT did not image, or air), with no anatomy bits. The
    /// bones' part of the integral is scaled by `bone_gain` (1: as the CT has it).
    pub fn warp(
        p: &Phantom,
        size: usize,
        map: impl Fn(f32, f32) -> (f32, f32),
        beyond: impl Fn(f32, f32, f32) -> f32,
        bone_gain: [f32; 3],
    ) -> Self {
        let n = size * size;
        let (mut integral, mut labels) = (vec![0.0f32; n], vec![0u16; n]);
        let (xmax, ymax) = ((p.width - 1) as f32, (p.height - 1) as f32);
        for y in 0..size {
            for x in 0..size {
                let (sx, sy) = map(x as f32 + 0.5, y as f32 + 0.5);
                let (sx, sy) = (sx - 0.5, sy - 0.5);
                let o = y * size + x;
                if !(sx >= 0.0 && sy >= 0.0 && sx < xmax && sy < ymax) {
                    let (cx, cy) = (sx.clamp(0.0, xmax - 1e-3), sy.clamp(0.0, ymax - 1e-3));
                    let edge = bilinear(&p.smooth, p.width, cx, cy);
                    integral[o] = beyond(sx, sy, edge);
                    continue;
                }
                let mut v = bilinear(&p.integral, p.width, sx, sy);
                for (b, g) in p.bones.iter().zip(bone_gain) {
                    if g != 1.0 {
                        v += (g - 1.0) * bilinear(b, p.width, sx, sy);
                    }
                }
                integral[o] = v;
                labels[o] = p.labels[(sy.round() as usize) * p.width + sx.round() as usize];
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

    /// `warp` through the affine map `m`: `sx = m[0] x + m[1] y + m[2]`, `sy = m[3] x + m[4] y +
    /// m[5]`, with air beyond the CT and the bones as the CT has them.
    pub fn warp_affine(p: &Phantom, size: usize, m: [f32; 6]) -> Self {
        let map = |x: f32, y: f32| (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]);
        Self::warp(p, size, map, |_, _, _| 0.0, [1.0; 3])
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

/// `map` (output pixel -> phantom point) on a `size` x `size` film, evaluated on a grid every
/// `step` pixels and interpolated bilinearly between: for smooth maps, the same points at a
/// fraction of the cost.
pub fn gridded(
    size: usize,
    step: usize,
    map: impl Fn(f32, f32) -> (f32, f32),
) -> impl Fn(f32, f32) -> (f32, f32) {
    let n = size / step + 2;
    let mut grid = Vec::with_capacity(n * n);
    for j in 0..n {
        for i in 0..n {
            grid.push(map((i * step) as f32, (j * step) as f32));
        }
    }
    move |x: f32, y: f32| {
        let (gx, gy) = (
            (x / step as f32).clamp(0.0, (n - 1) as f32 - 1e-3),
            (y / step as f32).clamp(0.0, (n - 1) as f32 - 1e-3),
        );
        let (i, j) = (gx as usize, gy as usize);
        let (ax, ay) = (gx - i as f32, gy - j as f32);
        let at = |di: usize, dj: usize| grid[(j + dj) * n + i + di];
        let mix =
            |p: (f32, f32), q: (f32, f32), t: f32| (p.0 + (q.0 - p.0) * t, p.1 + (q.1 - p.1) * t);
        mix(mix(at(0, 0), at(1, 0), ax), mix(at(0, 1), at(1, 1), ax), ay)
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
}
