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

/// The finding category a channel stands for, if it is a finding's (see `boxes`).
pub fn finding_of(channel: usize) -> Option<usize> {
    channel
        .checked_sub(ANATOMY.len())
        .filter(|c| *c < CATEGORIES.len())
}

/// The film's boxes, each with its channel: anatomy, findings, objects.
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

/// Share of each patch (`side x side` patches of a `size`-pixel film) covered by each channel's
/// box, `[side * side * CHANNELS]` in patch-major order.
pub fn coverage(boxes: &[(usize, PixelBox)], side: usize, size: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; side * side * CHANNELS];
    let cell = size as f32 / side as f32;
    for (channel, b) in boxes {
        for py in 0..side {
            let (y0, y1) = (py as f32 * cell, (py + 1) as f32 * cell);
            let h = (b.y2.min(y1) - b.y1.max(y0)).max(0.0);
            if h == 0.0 {
                continue;
            }
            for px in 0..side {
                let (x0, x1) = (px as f32 * cell, (px + 1) as f32 * cell);
                let w = (b.x2.min(x1) - b.x1.max(x0)).max(0.0);
                let v = &mut out[(py * side + px) * CHANNELS + channel];
                *v = v.max(w * h / (cell * cell));
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
        let t = ((v as f32 + 0.5) * 100.0 / side as f32).floor() as usize;
        tokens
            .encode(&format!("<{t}>"))?
            .first()
            .copied()
            .ok_or_else(|| crate::Error::Other("grid token missing".into()))
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

/// Binary cross-entropy of the probe's logits `[b, patches, CHANNELS]` against soft targets,
/// the positive side weighted `pos_weight`.
pub fn loss(logits: Tensor<3>, targets: Tensor<3>, pos_weight: f32) -> Tensor<1> {
    let pos = log_sigmoid(logits.clone()) * targets.clone().mul_scalar(pos_weight);
    let neg = log_sigmoid(logits.neg()) * targets.neg().add_scalar(1.0);
    (pos + neg).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::{Split, Synth};

    #[test]
    fn targets_cover_the_boxes_and_nothing_else() {
        let s = Synth::new(3, Split::Train, 224).sample(7);
        let t = coverage(&boxes(&s), 14, 224);
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
        let t = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [1, 2, 1]), &device);
        let logits = || t(vec![0.3, -0.7]);
        // One patch inside (1), one outside (0): the loss is the mean of the two sides' terms.
        let outside = -(1.0 - 1.0 / (1.0 + 0.7f32.exp())).ln();
        let inside = -(1.0 / (1.0 + (-0.3f32).exp())).ln();
        for w in [1.0, 5.0] {
            let got = loss(logits(), t(vec![1.0, 0.0]), w).into_scalar::<f32>();
            let want = (w * inside + outside) / 2.0;
            assert!((got - want).abs() < 1e-5, "w {w}: {got} vs {want}");
        }
    }
}
