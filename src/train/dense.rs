//! Stage 1's dense probe: a linear head on the vision tower's patch features predicts, for each
//! patch, how much of it lies inside the box of each anatomy phrase, finding category and object
//! of the film. The language-model loss alone never trained the tower: the decoder learnt to
//! answer from the phrase (the shipped models before this gave the same box for every image),
//! which left the tower's gradients as noise. This per-patch signal gives the tower features that
//! say what is where, the job a pretrained encoder does for the paper's base model. The head is
//! not part of the checkpoint's model and is dropped at export.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;

use crate::data::phrases::{ANATOMY, CATEGORIES};
#[cfg(not(target_arch = "wasm32"))]
use crate::data::synth::SynthSample;
use crate::error::Result;
use crate::model::Idefics3Config;
use crate::protocol::answer::PixelBox;
use crate::tokens::Tokens;

/// The objects of `data::synth::objects`, one channel each.
pub const OBJECTS: [&str; 4] = [
    "the ECG electrode",
    "the L marker",
    "the R marker",
    "the burnt-in label",
];

/// Channels: the anatomy phrases, then the finding categories, then the objects.
pub const CHANNELS: usize = ANATOMY.len() + CATEGORIES.len() + OBJECTS.len();

/// The probe: patch features (`vision_config.hidden_size`) -> one logit per channel.
pub fn head(vision_hidden: usize, device: &Device) -> Linear {
    LinearConfig::new(vision_hidden, CHANNELS).init(device)
}

/// The probe's offsets: patch features -> per channel, where the box's centre lies from the
/// patch's centre, x then y, in patches. A head of its own, so that a run trained without it
/// can be resumed with it.
pub fn offsets_head(vision_hidden: usize, device: &Device) -> Linear {
    LinearConfig::new(vision_hidden, 2 * CHANNELS).init(device)
}

/// Targets per patch: the channels' coverage, then (with offsets) their x and y offsets.
pub fn width(offsets: bool) -> usize {
    CHANNELS * if offsets { 3 } else { 1 }
}

/// Offsets are learnt up to this many patches; further ones are clamped.
const MAX_OFFSET: f32 = 3.0;

/// The finding category a channel stands for, if it is a finding's (see `boxes`).
pub fn finding_of(channel: usize) -> Option<usize> {
    channel
        .checked_sub(ANATOMY.len())
        .filter(|c| *c < CATEGORIES.len())
}

/// The film's boxes, each with its channel: anatomy, findings, objects.
#[cfg(not(target_arch = "wasm32"))]
pub fn boxes(s: &SynthSample) -> Vec<(usize, PixelBox)> {
    let anatomy = s
        .anatomy
        .iter()
        .filter_map(|(name, b)| ANATOMY.iter().position(|a| a == name).map(|k| (k, *b)));
    let findings = s
        .findings
        .iter()
        .map(|f| (ANATOMY.len() + f.category, f.box_px));
    let objects = s.objects.iter().filter_map(|(name, b)| {
        OBJECTS
            .iter()
            .position(|o| o == name)
            .map(|k| (ANATOMY.len() + CATEGORIES.len() + k, *b))
    });
    anatomy.chain(findings).chain(objects).collect()
}

/// The probe's targets, `[side * side * width(offsets)]` in patch-major order (`side x side`
/// patches of a `size`-pixel film): the share of each patch covered by each channel's box; with
/// `offsets`, then the x and the y offset from the patch's centre to the box's centre, in
/// patches (clamped to MAX_OFFSET), where the box covers the patch (0 elsewhere, not learnt).
/// The coverage says which patches hold a thing; the offsets make the tower's features say
/// where in the patch it lies, finer than the 16-pixel patches a small nodule needs.
pub fn targets(boxes: &[(usize, PixelBox)], side: usize, size: usize, offsets: bool) -> Vec<f32> {
    let w = width(offsets);
    let mut out = vec![0.0f32; side * side * w];
    let cell = size as f32 / side as f32;
    for (channel, b) in boxes {
        let (cx, cy) = ((b.x1 + b.x2) / 2.0 / cell, (b.y1 + b.y2) / 2.0 / cell);
        for py in 0..side {
            let (y0, y1) = (py as f32 * cell, (py + 1) as f32 * cell);
            let h = (b.y2.min(y1) - b.y1.max(y0)).max(0.0);
            if h == 0.0 {
                continue;
            }
            for px in 0..side {
                let (x0, x1) = (px as f32 * cell, (px + 1) as f32 * cell);
                let share = (b.x2.min(x1) - b.x1.max(x0)).max(0.0) * h / (cell * cell);
                let at = (py * side + px) * w;
                if share == 0.0 || share < out[at + channel] {
                    continue;
                }
                out[at + channel] = share;
                if offsets {
                    let clamp = |v: f32| v.clamp(-MAX_OFFSET, MAX_OFFSET);
                    out[at + CHANNELS + channel] = clamp(cx - (px as f32 + 0.5));
                    out[at + 2 * CHANNELS + channel] = clamp(cy - (py as f32 + 0.5));
                }
            }
        }
    }
    out
}

/// Targets that teach the text model to read where an image token sits: at the k-th image token
/// of each row, the grid token (`<0>`..`<100>`) of its cell's centre, x or y in a checkerboard.
/// Answers are then a matter of attending to the right tokens and copying what they say.
pub fn cell_targets(
    rows: &[Vec<u32>],
    tokens: &Tokens,
    config: &Idefics3Config,
) -> Result<Vec<(usize, u32)>> {
    let side = config.vision_config.patches_per_side() / config.scale_factor;
    let seq = rows.first().map_or(0, Vec::len);
    let grid = |v: usize| -> Result<u32> {
        let t = ((v as f32 + 0.5) * 100.0 / side as f32).floor() as u32;
        tokens.grid_token(t).ok_or_else(|| {
            crate::Error::Other("the cells' targets need a tokenizer with grid tokens".into())
        })
    };
    // The same for every row: cell k's target, x on the checkerboard's white cells, y on black.
    let per_cell = (0..side * side)
        .map(|k| {
            let (cy, cx) = (k / side, k % side);
            grid(if (cx + cy) % 2 == 0 { cx } else { cy })
        })
        .collect::<Result<Vec<u32>>>()?;
    let mut out = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let places = row
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == tokens.image_token)
            .map(|(pos, _)| r * seq + pos);
        out.extend(places.zip(per_cell.iter().copied()));
    }
    Ok(out)
}

/// The probe's loss on its outputs `[b, patches, width]` (the coverage logits, then the
/// offsets when there are) against `targets` of the same shape: binary cross-entropy of the
/// coverage logits against the soft coverage, the positive side weighted `pos_weight`; plus,
/// with offsets, `offset_weight` times their mean squared error over the covered (patch,
/// channel) pairs.
pub fn loss(
    outputs: Tensor<3>,
    targets: Tensor<3>,
    pos_weight: f32,
    offset_weight: f32,
) -> Tensor<1> {
    let w = outputs.dims()[2];
    let logits = outputs.clone().narrow(2, 0, CHANNELS);
    let coverage = targets.clone().narrow(2, 0, CHANNELS);
    let pos = log_sigmoid(logits.clone()) * coverage.clone().mul_scalar(pos_weight);
    let neg = log_sigmoid(logits.neg()) * coverage.clone().neg().add_scalar(1.0);
    let bce = (pos + neg).mean().neg();
    if w == CHANNELS {
        return bce;
    }
    let covered = coverage.greater_elem(0.0).float();
    let mask = Tensor::cat(vec![covered.clone(), covered], 2);
    let error =
        outputs.narrow(2, CHANNELS, 2 * CHANNELS) - targets.narrow(2, CHANNELS, 2 * CHANNELS);
    let count = mask.clone().sum().add_scalar(1.0);
    bce + (error.powi_scalar(2) * mask)
        .sum()
        .div(count)
        .mul_scalar(offset_weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::{Split, Synth};

    #[test]
    fn targets_cover_the_boxes_and_nothing_else() {
        let s = Synth::new(3, Split::Train, 224).sample(7);
        let t = targets(&boxes(&s), 14, 224, false);
        let heart = ANATOMY.iter().position(|a| *a == "the heart").unwrap();
        let (_, b) = s.anatomy.iter().find(|(n, _)| *n == "the heart").unwrap();
        let covered: f32 = (0..196).map(|p| t[p * CHANNELS + heart]).sum();
        let area = (b.x2 - b.x1) * (b.y2 - b.y1) / (16.0 * 16.0);
        assert!((covered - area).abs() < 1e-3, "{covered} vs {area}");
        // The patch holding the box's centre is fully inside; a corner patch of the film is not.
        let (cx, cy) = (
            ((b.x1 + b.x2) / 32.0) as usize,
            ((b.y1 + b.y2) / 32.0) as usize,
        );
        assert_eq!(t[(cy * 14 + cx) * CHANNELS + heart], 1.0);
        assert_eq!(t[heart], 0.0);
        for f in &s.findings {
            let k = ANATOMY.len() + f.category;
            assert!((0..196).any(|p| t[p * CHANNELS + k] > 0.0));
        }
    }

    #[test]
    fn pos_weight_scales_only_the_inside_of_boxes() {
        let device = Device::flex();
        // Two patches; channel 0 holds the test, the other channels logit 0 and target 0.
        let t = |a: f32, b: f32| {
            let mut v = vec![0.0; 2 * CHANNELS];
            (v[0], v[CHANNELS]) = (a, b);
            Tensor::<3>::from_data(TensorData::new(v, [1, 2, CHANNELS]), &device)
        };
        // One patch inside (1), one outside (0): the loss is the mean of all terms.
        let outside = -(1.0 - 1.0 / (1.0 + 0.7f32.exp())).ln();
        let inside = -(1.0 / (1.0 + (-0.3f32).exp())).ln();
        let rest = (2 * CHANNELS - 2) as f32 * std::f32::consts::LN_2;
        for w in [1.0, 5.0] {
            let got = loss(t(0.3, -0.7), t(1.0, 0.0), w, 1.0).into_scalar::<f32>();
            let want = (w * inside + outside + rest) / (2 * CHANNELS) as f32;
            assert!((got - want).abs() < 1e-5, "w {w}: {got} vs {want}");
        }
    }

    /// Offsets point from each covered patch's centre to the box's, and only covered pairs
    /// count in their loss.
    #[test]
    fn offsets_point_at_the_box_centre_and_only_where_covered() {
        // A 10-pixel box centred at (40, 21) on a 224-pixel film of 14 x 14 patches.
        let b = PixelBox::from_xywh(35.0, 16.0, 10.0, 10.0);
        let k = ANATOMY.len(); // the first finding channel
        let t = targets(&[(k, b)], 14, 224, true);
        let w = width(true);
        assert_eq!(t.len(), 196 * w);
        // The box spans patches x 2 (32..48), y 1 (16..32): one patch, centre offset
        // (40/16 - 2.5, 21/16 - 1.5) patches.
        let at = (14 + 2) * w;
        assert_eq!(t[at + k], 10.0 * 10.0 / 256.0);
        assert!((t[at + CHANNELS + k] - (40.0 / 16.0 - 2.5)).abs() < 1e-6);
        assert!((t[at + 2 * CHANNELS + k] - (21.0 / 16.0 - 1.5)).abs() < 1e-6);
        let covered = (0..196).filter(|p| t[p * w + k] > 0.0).count();
        assert_eq!(covered, 1);
        // Outputs equal to the targets on the covered pair cost nothing there; a wrong offset
        // on an uncovered pair costs nothing either.
        let device = Device::flex();
        let tensor = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [1, 196, w]), &device);
        let mut outputs = t.clone();
        let base = loss(tensor(outputs.clone()), tensor(t.clone()), 1.0, 1.0).into_scalar::<f32>();
        outputs[CHANNELS + k] = 2.0; // patch 0, uncovered
        let same = loss(tensor(outputs.clone()), tensor(t.clone()), 1.0, 1.0).into_scalar::<f32>();
        assert!((same - base).abs() < 1e-6);
        outputs[at + CHANNELS + k] += 1.0; // the covered patch's x offset, one patch off
        let worse = loss(tensor(outputs), tensor(t), 1.0, 1.0).into_scalar::<f32>();
        // Mean squared error over the two covered pairs (x and y) plus one: 1 / 3.
        assert!((worse - base - 1.0 / 3.0).abs() < 1e-5, "{worse} vs {base}");
    }
}
