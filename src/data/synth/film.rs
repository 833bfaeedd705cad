//! From line integral to film, with image-level domain randomisation so a model does not learn
//! the phantom: window and gamma, detector gain texture, blur, noise, and burnt-in markers.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::canvas::{Canvas, Waves};
use crate::data::draw::draw_text;

/// Film values in [0, 1], 8-bit quantised like the films a user drops.
pub fn expose(c: &Canvas, r: &mut ChaCha8Rng) -> Vec<f32> {
    let lo = 1.6 + r.random_range(-0.35..0.35);
    let hi = 5.6 + r.random_range(-0.4..0.4);
    let gamma = r.random_range(0.75..1.5);
    let gain = Waves::new(r, 3, 0.02 * 224.0 / c.w as f32);
    let gain_amp = r.random_range(0.0..0.12);
    let noise = r.random_range(0.003..0.03);
    let mut v: Vec<f32> = c
        .integral
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0).powf(gamma);
            let (px, py) = ((i % c.w) as f32, (i / c.w) as f32);
            t * (1.0 - gain_amp / 2.0 + gain_amp * gain.at(px, py))
        })
        .collect();
    if r.random_bool(0.3) {
        v = box_blur(&v, c.w, c.h);
    }
    for x in v.iter_mut() {
        *x += noise * gaussian(r);
    }
    if r.random_bool(0.5) {
        let letter = if r.random_bool(0.5) { "L" } else { "R" };
        let scale = (c.w / 100).max(1) + r.random_range(0..2);
        let x = if r.random_bool(0.5) {
            c.w / 20
        } else {
            c.w - c.w / 20 - 8 * scale
        };
        let y = c.h / 20 + r.random_range(0..c.h / 10);
        draw_text(
            &mut v,
            c.w,
            c.h,
            x,
            y,
            letter,
            scale,
            r.random_range(0.8..1.0),
        );
    }
    if r.random_bool(0.2) {
        let (bw, bh) = (
            c.w / 6 + r.random_range(0..c.w / 8),
            c.h / 20 + r.random_range(0..c.h / 20),
        );
        let x0 = if r.random_bool(0.5) { 2 } else { c.w - bw - 2 };
        let y0 = if r.random_bool(0.5) { 2 } else { c.h - bh - 2 };
        let shade = r.random_range(0.7..1.0);
        for y in y0..y0 + bh {
            v[y * c.w + x0..y * c.w + x0 + bw].fill(shade);
        }
    }
    v.into_iter()
        .map(|x| (x.clamp(0.0, 1.0) * 255.0).round() / 255.0)
        .collect()
}

fn box_blur(v: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = v.to_vec();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let mut s = 0.0;
            for dy in 0..3 {
                s += v[(y + dy - 1) * w + x - 1..(y + dy - 1) * w + x + 2]
                    .iter()
                    .sum::<f32>();
            }
            out[y * w + x] = s / 9.0;
        }
    }
    out
}

/// Standard normal by Box-Muller.
pub fn gaussian(r: &mut ChaCha8Rng) -> f32 {
    let u: f32 = r.random_range(f32::EPSILON..1.0);
    let v: f32 = r.random_range(0.0..std::f32::consts::TAU);
    (-2.0 * u.ln()).sqrt() * v.cos()
}
