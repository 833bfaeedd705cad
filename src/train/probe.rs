//! What the vision tower can localise: stage 1's dense probe (`dense.rs`) read on held-out
//! synthetic films, per finding. The tower is frozen in stage 2, so this is the ceiling stage 2
//! builds on (`medground probe RUN_DIR`).

use std::path::Path;

use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::batch::{Source, build};
use super::dense;
use super::run::restore;
use crate::data::phrases::CATEGORIES;
use crate::data::synth::{Split, Synth};
use crate::error::{Error, Result};
use crate::protocol::answer::PixelBox;

/// One finding's figures over the films that have it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRow {
    pub category: &'static str,
    pub n: usize,
    /// Share whose strongest patch lies within half a patch of the truth box.
    pub peak_in_box: f64,
    /// Mean IoU of the box around the patches above half the peak with the truth box.
    pub miou: f64,
    /// Median distance (the larger of x and y, pixels) from the truth box's centre to the peak
    /// patch's centre, moved by the probe's offsets when it has them.
    pub centre_error: f64,
}

/// The probe of `run_dir`'s last checkpoint (a stage-1 run) on `films` test films; returns the
/// checkpoint's step and one row per finding.
pub fn report(run_dir: &Path, films: usize) -> Result<(usize, Vec<ProbeRow>)> {
    let r = restore(run_dir)?;
    let head = r.trainee.probe.clone().ok_or_else(|| {
        Error::Other(format!(
            "{} is a stage-{} run: only stage 1 trains the dense probe",
            run_dir.display(),
            r.cfg.stage
        ))
    })?;
    let (model, head) = (r.trainee.model.valid(), head.valid());
    let offsets_head = r.trainee.offsets.clone().map(|h| h.valid());
    let vision = &r.config.vision_config;
    let (size, side) = (vision.image_size, vision.image_size / vision.patch_size);
    // Films of the run's own corpus: upright when it trained on upright films.
    let source = Source::Synth {
        synth: Synth::new(0, Split::Test, size)
            .with_upright(r.cfg.data.synth_stream() == Some(true)),
        stage: 1,
        anatomy: 0.0,
    };
    let device = Device::flex();
    // Per category: (n, peak in box, IoU sum), and the centre errors.
    let mut sums = vec![(0usize, 0usize, 0f64); CATEGORIES.len()];
    let mut errors = vec![Vec::new(); CATEGORIES.len()];
    let cell = size as f32 / side as f32;
    let mut start = 0;
    while start < films {
        let examples = (start..films.min(start + 16))
            .map(|i| source.example(i as u64, 0))
            .collect::<Result<Vec<_>>>()?;
        let tb = build(
            &examples, &r.tokens, &r.config, 0.0, false, &r.framing, &device,
        )?;
        let patches = model.model.vision_model.forward(tb.batch.pixels.clone());
        let read_back = |t: Tensor<3>| {
            t.into_data()
                .try_to_vec::<f32>()
                .map_err(|e| Error::Other(format!("probe output: {e:?}")))
        };
        let p = read_back(sigmoid(head.forward(patches.clone())))?;
        // x then y offsets per channel, when the run has the offsets head.
        let offsets = match &offsets_head {
            Some(h) => read_back(h.forward(patches))?,
            None => Vec::new(),
        };
        for (k, e) in examples.iter().enumerate() {
            for (channel, truth) in &e.boxes {
                let Some(cat) = dense::finding_of(*channel) else {
                    continue;
                };
                let at = |q: usize| p[(k * side * side + q) * dense::CHANNELS + channel];
                let (inside, iou, peak) = read(at, side, cell, truth);
                let offset = |q: usize, axis: usize| {
                    let i = (k * side * side + q) * 2 * dense::CHANNELS + axis * dense::CHANNELS;
                    offsets.get(i + channel).copied().unwrap_or(0.0)
                };
                let centre = [
                    ((peak % side) as f32 + 0.5 + offset(peak, 0)) * cell,
                    ((peak / side) as f32 + 0.5 + offset(peak, 1)) * cell,
                ];
                let err = (centre[0] - (truth.x1 + truth.x2) / 2.0)
                    .abs()
                    .max((centre[1] - (truth.y1 + truth.y2) / 2.0).abs());
                errors[cat].push(err as f64);
                let s = &mut sums[cat];
                (s.0, s.1, s.2) = (s.0 + 1, s.1 + inside as usize, s.2 + iou);
            }
        }
        start += 16;
    }
    let rows = CATEGORIES
        .iter()
        .zip(sums)
        .zip(errors)
        .map(|((category, (n, inside, iou)), mut e)| ProbeRow {
            category,
            n,
            peak_in_box: inside as f64 / n.max(1) as f64,
            miou: iou / n.max(1) as f64,
            centre_error: {
                e.sort_by(f64::total_cmp);
                e.get(e.len() / 2).copied().unwrap_or(f64::NAN)
            },
        })
        .collect();
    Ok((r.step, rows))
}

/// One film's probe map for one channel (`at(patch)`, `side x side` patches of `cell` px):
/// whether its peak lies within half a patch of `truth`, the IoU of the box around the patches
/// above half the peak, and the peak patch.
fn read(at: impl Fn(usize) -> f32, side: usize, cell: f32, truth: &PixelBox) -> (bool, f64, usize) {
    let peak = (0..side * side)
        .max_by(|a, b| at(*a).total_cmp(&at(*b)))
        .unwrap_or(0);
    let (px, py) = ((peak % side) as f32 + 0.5, (peak / side) as f32 + 0.5);
    let (cx, cy, m) = (px * cell, py * cell, cell / 2.0);
    let inside =
        cx >= truth.x1 - m && cx <= truth.x2 + m && cy >= truth.y1 - m && cy <= truth.y2 + m;
    let half = 0.5 * at(peak);
    let mut b = PixelBox {
        x1: f32::MAX,
        y1: f32::MAX,
        x2: f32::MIN,
        y2: f32::MIN,
    };
    for q in (0..side * side).filter(|q| at(*q) > half) {
        let (x, y) = ((q % side) as f32 * cell, (q / side) as f32 * cell);
        (b.x1, b.y1, b.x2, b.y2) = (
            b.x1.min(x),
            b.y1.min(y),
            b.x2.max(x + cell),
            b.y2.max(y + cell),
        );
    }
    (inside, b.iou(truth) as f64, peak)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map that peaks inside the truth box and covers it exactly reads as found with IoU 1;
    /// one that peaks far away reads as missed.
    #[test]
    fn reads_a_probe_map_against_the_truth() {
        let truth = PixelBox {
            x1: 16.0,
            y1: 16.0,
            x2: 48.0,
            y2: 32.0,
        };
        let on = |q: usize| if [5, 6].contains(&q) { 0.9 } else { 0.1 };
        let (inside, iou, peak) = read(on, 4, 16.0, &truth);
        assert!(
            inside && (iou - 1.0).abs() < 1e-6 && [5, 6].contains(&peak),
            "{inside} {iou} {peak}"
        );
        let off = |q: usize| if q == 15 { 0.9 } else { 0.1 };
        let (inside, iou, peak) = read(off, 4, 16.0, &truth);
        assert!(!inside && iou == 0.0 && peak == 15, "{inside} {iou}");
    }
}
