//! The pleural findings: effusion (a meniscus at the base) and pneumothorax (a lucent rim with a
//! pleural line). Each returns the bounds of its rendered lesion, which become the box exactly.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::canvas::{Bounds, Canvas, smoothstep};
use super::compose::{apply, apply_sharp, local_mean};
use super::phantom::bits;
use super::regions::{lateral_sign, lateral_t, lung_bits};
use crate::data::phrases::{Finding, Side, Zone};

pub fn pleural_effusion(c: &mut Canvas, r: &mut ChaCha8Rng, f: &Finding) -> Option<Bounds> {
    let lung = lung_bits(f.side);
    let b = c.bounds(lung)?;
    let h = b.height();
    let frac = [0.13, 0.24, 0.38][f.severity as usize] * r.random_range(0.8..1.2);
    let meniscus = r.random_range(0.05..0.13) * h;
    let amp = r.random_range(0.7..1.3) * (0.85 + 0.15 * f.severity as f32);
    let base = b.y1 as f32 - frac * h;
    let soft = r.random_range(1.5..4.0);
    // Fluid fills the lung's base and, on an upright film, the recess behind the dome up to the
    // lowest visible lung: the dome's outline goes, as a reader sees on a film.
    let fluid = lung | bits::RECESS;
    let mut delta = vec![0.0; c.integral.len()];
    for y in b.y0..=b.y1 {
        for x in b.x0..=b.x1 {
            let i = y * c.w + x;
            if !c.has(i, fluid) {
                continue;
            }
            let t = lateral_t(x as f32, b, f.side);
            let level = base - meniscus * t * t;
            let depth = y as f32 - level;
            if depth > -soft {
                let fill = smoothstep((depth + soft) / (2.0 * soft));
                delta[i] = amp * fill * (0.65 + 0.35 * (depth / (0.2 * h)).clamp(0.0, 1.0));
            }
        }
    }
    apply(c, &delta, 0.3)
}

pub fn pneumothorax(c: &mut Canvas, r: &mut ChaCha8Rng, f: &Finding) -> Option<Bounds> {
    let lung = lung_bits(f.side);
    let b = c.bounds(lung)?;
    let k = [0.9, 0.82, 0.7][f.severity as usize] * r.random_range(0.97..1.03);
    let apical = f.zone == Zone::Apical;
    // Hilum: the lung collapses toward it.
    let medial_x = if f.side == Side::Left {
        b.x0 as f32
    } else {
        b.x1 as f32
    };
    let hx = medial_x + lateral_sign(f.side) * 0.2 * b.width();
    let hy = b.y0 as f32 + 0.5 * b.height();
    let collapsed = |x: f32, y: f32| c.has_at(hx + (x - hx) / k, hy + (y - hy) / k, lung);
    let keep = |x: usize, y: usize| {
        let t = (y as f32 - b.y0 as f32) / b.height();
        if apical {
            t < 0.5
        } else {
            lateral_t(x as f32, b, f.side) > 0.45 && t < 0.85
        }
    };
    let drop = r.random_range(0.25..0.5);
    let line = r.random_range(0.25..0.5);
    let mut delta = vec![0.0; c.integral.len()];
    let mut rim = vec![false; c.integral.len()];
    // (rim: air in the pleural space, where the lung has fallen away.)
    for y in b.y0..=b.y1 {
        for x in b.x0..=b.x1 {
            let i = y * c.w + x;
            if c.has(i, lung) && keep(x, y) && !collapsed(x as f32, y as f32) {
                rim[i] = true;
            }
        }
    }
    for y in b.y0..=b.y1 {
        for x in b.x0..=b.x1 {
            let i = y * c.w + x;
            if rim[i] {
                // No lung markings: the local mean replaces the textured value, a little darker.
                let mean = local_mean(c, x, y, 3);
                delta[i] = mean - c.integral[i] - drop;
            } else if c.has(i, lung) && collapsed(x as f32, y as f32) {
                let near_rim = [(1i32, 0i32), (-1, 0), (0, 1), (0, -1)]
                    .iter()
                    .any(|(dx, dy)| {
                        let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                        nx >= 0
                            && ny >= 0
                            && (nx as usize) < c.w
                            && (ny as usize) < c.h
                            && rim[ny as usize * c.w + nx as usize]
                    });
                if near_rim {
                    delta[i] = line; // the visceral pleural line
                }
            }
        }
    }
    apply_sharp(c, &delta, 0.0)
}
