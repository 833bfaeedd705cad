//! From line integral to film, the acquisition chain randomised so that a model does not learn
//! one detector: beam hardness, scatter glare, quantum noise, detector blur, window and log
//! response, multi-scale contrast enhancement and a LUT as CR/DR vendors process films, gain
//! texture, grid lines, collimation, burnt-in markers, bit depth and JPEG compression.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::canvas::{Canvas, Waves};
use super::compose::soften_twice;
use super::phantom::bits;
use crate::image::{round_nonneg, to_byte};

/// Film values in [0, 1], quantised like the films a user drops, with the objects burnt in or
/// lying on the patient (`objects.rs`) and their boxes.
pub fn expose(c: &Canvas, r: &mut ChaCha8Rng) -> (Vec<f32>, Vec<super::objects::Object>) {
    let (w, h) = (c.w, c.h);
    let px = w as f32 / 224.0;
    // Detector: primary intensity, scatter glare (a wide blur of it), quantum noise, log.
    let beta = r.random_range(0.85..1.15);
    let mut inten: Vec<f32> = c.integral.iter().map(|&x| (-beta * x).exp()).collect();
    let scatter = r.random_range(0.0..0.3);
    if scatter > 0.02 {
        let radius = (w / 14).max(1);
        let glare = soften_twice(&inten, w, h, radius);
        for (i, g) in inten.iter_mut().zip(glare) {
            *i += scatter * g;
        }
    }
    let quantum = r.random_range(0.0..0.004);
    let mut v: Vec<f32> = inten
        .iter()
        .map(|&i| -(i + quantum * i.sqrt() * gaussian(r)).max(1e-6).ln() / beta)
        .collect();
    if r.random_bool(0.5) {
        v = box_blur(&v, w, h);
    }
    // Window and log response.
    // Processed films show the lungs mid-grey, a few films much darker.
    let lo = r.random_range(-0.3..1.4);
    let hi = r.random_range(4.6..6.0);
    let gamma = r.random_range(0.55..1.25);
    for x in v.iter_mut() {
        *x = ((*x - lo) / (hi - lo)).clamp(0.0, 1.0).powf(gamma);
    }
    // Multi-scale contrast enhancement: band-pass detail boosted at three scales.
    let mut detail = Vec::new();
    for (radius, most) in [(1.0f32, 0.8f32), (4.0, 1.4), (14.0, 0.9)] {
        let gain = r.random_range(0.0..most);
        if gain > 0.05 {
            let rr = ((radius * px).round() as usize).max(1);
            detail.push((gain, soften_twice(&v, w, h, rr)));
        }
    }
    let base = v.clone();
    for (gain, smooth) in &detail {
        for ((o, b), s) in v.iter_mut().zip(&base).zip(smooth) {
            *o += gain * (b - s);
        }
    }
    // LUT: an S-curve of random steepness, or none.
    let steep = r.random_range(0.0..6.0);
    if steep > 0.5 {
        let s = |t: f32| 1.0 / (1.0 + (-steep * (t - 0.5)).exp());
        let (s0, s1) = (s(0.0), s(1.0));
        for x in v.iter_mut() {
            *x = (s(*x) - s0) / (s1 - s0);
        }
    }
    let gain = Waves::new(r, 3, 0.02 / px);
    let gain_amp = r.random_range(0.0..0.1);
    let noise = r.random_range(0.002..0.02);
    let grid = r.random_bool(0.15).then(|| {
        (
            r.random_range(2.1..3.6f32),
            r.random_range(0.002..0.01f32),
            r.random_bool(0.5),
        )
    });
    // The grid's lines by column (across) or by row.
    let lines = grid.map(|(period, amp, across)| {
        let n = if across { w } else { h };
        let line = |k: usize| amp * (std::f32::consts::TAU * k as f32 / period).sin();
        (across, (0..n).map(line).collect::<Vec<f32>>())
    });
    for ((i, x), g) in v.iter_mut().enumerate().zip(gain.field(w, h)) {
        *x *= 1.0 - gain_amp / 2.0 + gain_amp * g;
        *x += noise * gaussian(r);
        if let Some((across, line)) = &lines {
            *x += line[if *across { i % w } else { i / w }];
        }
    }
    super::framing::collimate(&mut v, w, h, c.bounds(bits::LUNGS), r);
    let objects = super::objects::draw(&mut v, w, h, r);
    let levels = if r.random_bool(0.1) {
        r.random_range(48.0..128.0)
    } else {
        255.0
    };
    let mut film: Vec<f32> = v
        .into_iter()
        .map(|x| round_nonneg(x.clamp(0.0, 1.0) * levels) / levels)
        .collect();
    if r.random_bool(0.5) {
        jpeg(&mut film, w, h, r.random_range(70..96));
    }
    (film, objects)
}

/// JPEG compression at `quality`, as MIMIC-CXR-JPG's films have it.
fn jpeg(v: &mut [f32], w: usize, h: usize, quality: u8) {
    let bytes: Vec<u8> = v.iter().map(|&x| to_byte(x)).collect();
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    let back = image::ImageEncoder::write_image(
        enc,
        &bytes,
        w as u32,
        h as u32,
        image::ExtendedColorType::L8,
    )
    .ok()
    .and_then(|()| image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg).ok())
    .map(|i| i.into_luma8().into_raw());
    if let Some(back) = back.filter(|b| b.len() == v.len()) {
        for (o, b) in v.iter_mut().zip(back) {
            *o = b as f32 / 255.0;
        }
    }
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
