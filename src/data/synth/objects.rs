//! Things on a film that are not anatomy or disease: the burnt-in side marker, a burnt-in label
//! block and ECG electrodes. They vary the films, and stage 1 grounds them as generic small
//! objects ("the ECG electrode"), the way a general model's pretraining grounds everyday objects
//! before it ever sees a finding.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::data::draw::{draw_text, for_glyph_pixels};
use crate::protocol::answer::PixelBox;

pub type Object = (&'static str, PixelBox);

/// Draws the objects of one film into its values `v` (`w` x `h`, in [0, 1]) and returns their
/// phrases and boxes.
pub fn draw(v: &mut [f32], w: usize, h: usize, r: &mut ChaCha8Rng) -> Vec<Object> {
    let mut out = Vec::new();
    if r.random_bool(0.5) {
        out.push(electrode(v, w, h, r));
    }
    if r.random_bool(0.5) {
        out.push(marker(v, w, h, r));
    }
    if r.random_bool(0.2) {
        out.push(label(v, w, h, r));
    }
    out
}

/// A round, radio-opaque ECG electrode with a darker centre, anywhere on the chest.
fn electrode(v: &mut [f32], w: usize, h: usize, r: &mut ChaCha8Rng) -> Object {
    let rad = w as f32 * r.random_range(0.018..0.04);
    let cx = w as f32 * r.random_range(0.12..0.88);
    let cy = h as f32 * r.random_range(0.1..0.9);
    let value = r.random_range(0.75..1.0);
    let alpha = r.random_range(0.6..1.0);
    for y in (cy - rad).floor().max(0.0) as usize..=((cy + rad).ceil() as usize).min(h - 1) {
        for x in (cx - rad).floor().max(0.0) as usize..=((cx + rad).ceil() as usize).min(w - 1) {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() / rad;
            if d <= 1.0 {
                let target = if d < 0.35 { value * 0.7 } else { value };
                let i = y * w + x;
                v[i] += alpha * (target - v[i]);
            }
        }
    }
    (
        "the ECG electrode",
        PixelBox {
            x1: (cx - rad).max(0.0),
            y1: (cy - rad).max(0.0),
            x2: (cx + rad).min(w as f32),
            y2: (cy + rad).min(h as f32),
        },
    )
}

/// The burnt-in L or R in a top corner.
fn marker(v: &mut [f32], w: usize, h: usize, r: &mut ChaCha8Rng) -> Object {
    let left = r.random_bool(0.5);
    let letter = if left { "L" } else { "R" };
    let scale = (w / 100).max(1) + r.random_range(0..2);
    let x = if r.random_bool(0.5) {
        w / 20
    } else {
        w - w / 20 - 8 * scale
    };
    let y = h / 20 + r.random_range(0..h / 10);
    draw_text(v, w, h, x, y, letter, scale, r.random_range(0.8..1.0));
    let (mut x1, mut y1, mut x2, mut y2) = (usize::MAX, usize::MAX, 0, 0);
    for_glyph_pixels(letter, scale, |dx, dy| {
        (x1, y1) = (x1.min(x + dx), y1.min(y + dy));
        (x2, y2) = (x2.max(x + dx + 1), y2.max(y + dy + 1));
    });
    let name = if left { "the L marker" } else { "the R marker" };
    let b = PixelBox {
        x1: x1 as f32,
        y1: y1 as f32,
        x2: x2.min(w) as f32,
        y2: y2.min(h) as f32,
    };
    (name, b)
}

/// A uniform burnt-in label block in a corner.
fn label(v: &mut [f32], w: usize, h: usize, r: &mut ChaCha8Rng) -> Object {
    let (bw, bh) = (
        w / 6 + r.random_range(0..w / 8),
        h / 20 + r.random_range(0..h / 20),
    );
    let x0 = if r.random_bool(0.5) { 2 } else { w - bw - 2 };
    let y0 = if r.random_bool(0.5) { 2 } else { h - bh - 2 };
    let shade = r.random_range(0.7..1.0);
    for y in y0..y0 + bh {
        v[y * w + x0..y * w + x0 + bw].fill(shade);
    }
    let b = PixelBox {
        x1: x0 as f32,
        y1: y0 as f32,
        x2: (x0 + bw) as f32,
        y2: (y0 + bh) as f32,
    };
    ("the burnt-in label", b)
}
