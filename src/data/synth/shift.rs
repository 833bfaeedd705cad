//! A domain shift for measuring, not for training: films whose look lies beyond the corpus's
//! acquisition ranges (`film.rs`), as real films from another detector, processing or exposure
//! do. `calibrate` grounds such films to learn how the model's answers fail on films unlike its
//! training ones (`Synth::with_shift`, the `:shifted` datasets).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::compose::soften_twice;
use super::film::gaussian;

/// Re-exposes film values in [0, 1] in place: a gamma far from the corpus's (films much paler
/// or darker), the range squeezed, the detail softened or sharpened, and noise.
pub fn appearance(v: &mut [f32], w: usize, h: usize, r: &mut ChaCha8Rng) {
    let gamma = r.random_range(-1.1f32..0.9).exp();
    let lo = r.random_range(0.0f32..0.3);
    let hi = r.random_range(0.75f32..1.0);
    for x in v.iter_mut() {
        *x = lo + (hi - lo) * x.clamp(0.0, 1.0).powf(gamma);
    }
    let radius = r.random_range(0..4usize) * w.max(h) / 224;
    if radius > 0 {
        let smooth = soften_twice(v, w, h, radius);
        // The detail around the smooth image softened (gain below 1) or sharpened (above).
        let gain = r.random_range(0.0f32..2.0);
        for (x, s) in v.iter_mut().zip(smooth) {
            *x = s + gain * (*x - s);
        }
    }
    let noise = r.random_range(0.0f32..0.05);
    for x in v.iter_mut() {
        *x = (*x + noise * gaussian(r)).clamp(0.0, 1.0);
    }
}
