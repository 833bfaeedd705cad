//! The objective: next-token cross-entropy on the answer tokens only, plus in stage 1 the dense
//! probe's loss on the vision tower's patch features (`dense.rs`).

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::batch::TrainBatch;
use super::cache::FeatureCache;
use super::dense;
use crate::model::Idefics3;

/// The weights of a micro-batch's loss terms: each its share of that term's targets when the
/// micro-batch is split across devices (`step.rs`), all 1 on one device.
#[derive(Clone, Copy, Debug)]
pub struct Shares {
    /// Of the answer tokens.
    pub answer: f32,
    /// Of the image-token targets (stage 1).
    pub cells: f32,
    /// Of the films (the dense probe's terms, stage 1).
    pub films: f32,
}

impl Shares {
    pub const WHOLE: Shares = Shares {
        answer: 1.0,
        cells: 1.0,
        films: 1.0,
    };
}

/// What the loop trains: the model, and in stage 1 the dense probe beside it (never exported).
#[derive(Module, Debug)]
pub struct Trainee {
    pub model: Idefics3,
    pub probe: Option<Linear>,
    /// The probe's offsets head (`dense::offsets_head`), with `[optim] dense_offset_weight`.
    pub offsets: Option<Linear>,
}

impl Trainee {
    /// The answer loss, plus the probe's (positives weighted `pos_weight`, offsets
    /// `offset_weight`) when it has targets in this batch, each term weighted by its `shares`.
    /// With `frozen`, the vision tower is frozen and its features come through that cache.
    pub fn loss(
        &self,
        tb: &TrainBatch,
        image_token: u32,
        pos_weight: f32,
        offset_weight: f32,
        shares: Shares,
        frozen: Option<&FeatureCache>,
    ) -> Tensor<1> {
        let (embeds, patches) = embed(&self.model, tb, image_token, frozen);
        let hidden = self.model.model.text_model.forward(embeds, None);
        let answer = nll(&self.model, hidden.clone(), &tb.targets, tb.soft.clone())
            .mul_scalar(shares.answer);
        match (&self.probe, &tb.dense) {
            (Some(head), Some(targets)) => {
                let cells = nll(&self.model, hidden, &tb.cells, None);
                let mut outputs = head.forward(patches.clone());
                if let Some(offsets) = &self.offsets {
                    outputs = Tensor::cat(vec![outputs, offsets.forward(patches)], 2);
                }
                let probe = dense::loss(outputs, targets.clone(), pos_weight, offset_weight);
                answer + cells.mul_scalar(0.5 * shares.cells) + probe.mul_scalar(shares.films)
            }
            _ => answer,
        }
    }
}

/// Mean negative log-likelihood of the answer tokens, `[1]`; with `frozen`, the vision tower's
/// features through that cache.
pub fn answer_loss(
    model: &Idefics3,
    tb: &TrainBatch,
    image_token: u32,
    frozen: Option<&FeatureCache>,
) -> Tensor<1> {
    let (embeds, _) = embed(model, tb, image_token, frozen);
    let hidden = model.model.text_model.forward(embeds, None);
    nll(model, hidden, &tb.targets, tb.soft.clone())
}

/// The batch's input embeddings and the vision tower's patch features; with `frozen`, the
/// features through that cache.
fn embed(
    model: &Idefics3,
    tb: &TrainBatch,
    image_token: u32,
    frozen: Option<&FeatureCache>,
) -> (Tensor<3>, Tensor<3>) {
    match frozen {
        Some(cache) => {
            let vision = &model.model.vision_model;
            let patches = cache.patches(vision, tb.batch.pixels.clone(), &tb.keys);
            (
                model.embed_patches(&tb.batch, image_token, patches.clone()),
                patches,
            )
        }
        None => model.embed_batch_with_patches(&tb.batch, image_token),
    }
}

/// Mean negative log-likelihood of `targets` ((flat position, token) pairs) under `hidden`; with
/// `soft` (`[targets, vocab]` distributions), the mean cross-entropy against those instead.
fn nll(
    model: &Idefics3,
    hidden: Tensor<3>,
    targets: &[(usize, u32)],
    soft: Option<Tensor<2>>,
) -> Tensor<1> {
    let device = hidden.device();
    let [b, s, d] = hidden.dims();
    let n = targets.len();
    let positions: Vec<i64> = targets.iter().map(|&(p, _)| p as i64).collect();
    let tokens: Vec<i64> = targets.iter().map(|&(_, t)| t as i64).collect();
    let positions = Tensor::<1, Int>::from_data(TensorData::new(positions, [n]), &device);
    let tokens = Tensor::<1, Int>::from_data(TensorData::new(tokens, [n]), &device).reshape([n, 1]);
    let picked = hidden.reshape([b * s, d]).select(0, positions);
    let logits = model.logits(picked.unsqueeze_dim(0)).squeeze_dim::<2>(0);
    let logp = log_softmax(logits, 1);
    match soft {
        Some(q) => (logp * q).sum_dim(1).mean().neg(),
        None => logp.gather(1, tokens).mean().neg(),
    }
}
