//! Next-token cross-entropy on the answer tokens only.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::batch::TrainBatch;
use crate::model::Idefics3;

/// Mean negative log-likelihood of the answer tokens, `[1]`.
pub fn answer_loss(model: &Idefics3, tb: &TrainBatch, image_token: u32) -> Tensor<1> {
    let embeds = model.embed_batch(&tb.batch, image_token);
    let device = embeds.device();
    let hidden = model.model.text_model.forward(embeds, None);
    let [b, s, d] = hidden.dims();
    let n = tb.targets.len();
    let positions: Vec<i64> = tb.targets.iter().map(|&(p, _)| p as i64).collect();
    let tokens: Vec<i64> = tb.targets.iter().map(|&(_, t)| t as i64).collect();
    let positions = Tensor::<1, Int>::from_data(TensorData::new(positions, [n]), &device);
    let tokens = Tensor::<1, Int>::from_data(TensorData::new(tokens, [n]), &device).reshape([n, 1]);
    let picked = hidden.reshape([b * s, d]).select(0, positions);
    let logits = model.logits(picked.unsqueeze_dim(0)).squeeze_dim::<2>(0);
    let logp = log_softmax(logits, 1).gather(1, tokens);
    logp.mean().neg()
}
