//! From line integral to film, with image-level domain randomisation so a model does not learn
//! the phantom: window and gamma, detector gain texture, blur, noise, and burnt-in markers.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::canvas::{Canvas, Waves};

/// Film values in [0, 1], 8-bit quantised like the films a user drops, with the objects burnt
/// in or lying on the patient (`objects.rs`) and their boxes.
pub fn expose(c: &Canvas, r: &mut ChaCha8Rng) -> (Vec<f32>, Vec<super::objects::Object>) {
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
    let objects = super::objects::draw(&mut v, c.w, c.h, r);
    let film = v
        .into_iter()
        .map(|x| (x.clamp(0.0, 1.0) * 255.0).round() / 255.0)
        .collect();
    (film, objects)
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
