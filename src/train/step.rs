//! One micro-batch's loss and gradients, on one device or split across several (data parallel,
//! `--devices cuda:0,cuda:1`). With several, each device gets a replica of the model (forked: its
//! own parameters' leaves, so its own autodiff graph) and a contiguous shard of the micro-batch;
//! the shards' forward and backward passes run in parallel threads, and their gradients come
//! back to the first device, where they are summed and the optimizer steps. Each shard's loss
//! terms are weighted by the shard's share of that term's targets, so the sum is the whole
//! micro-batch's loss: the same step as on one device, up to float rounding (stage 1's offsets
//! term, a mean over the covered patches of the whole batch, is weighted by films, which is
//! close, not exact).

use std::ops::Range;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::batch::{Example, Framing, TrainBatch, build};
use super::cache::FeatureCache;
use super::config::OptimConfig;
use super::loss::{Shares, Trainee};
use crate::error::{Error, Result};
use crate::model::Idefics3Config;
use crate::tokens::Tokens;

/// What a micro-batch needs besides the model and its examples.
pub struct StepContext<'a> {
    pub tokens: &'a Tokens,
    pub config: &'a Idefics3Config,
    pub optim: &'a OptimConfig,
    /// How the base frames its input.
    pub framing: &'a Framing,
    /// Where the shards run; the first holds the model and the optimizer.
    pub devices: &'a [Device],
    /// The frozen vision tower's features (stage 2 on one device; `cache.rs`).
    pub frozen: Option<&'a FeatureCache>,
}

impl StepContext<'_> {
    fn batch(&self, examples: &[Example], device: &Device) -> Result<TrainBatch> {
        let o = self.optim;
        build(
            examples,
            self.tokens,
            self.config,
            o.coord_sigma,
            o.dense_offsets(),
            self.framing,
            device,
        )
    }

    /// The loss of `tb` under `model` (detached, for the log) and its gradients.
    fn backward(
        &self,
        model: &Trainee,
        tb: &TrainBatch,
        shares: Shares,
        frozen: Option<&FeatureCache>,
    ) -> (Tensor<1>, GradientsParams) {
        let o = self.optim;
        let loss = model.loss(
            tb,
            self.config.image_token_id,
            o.dense_pos_weight,
            o.dense_offset_weight,
            shares,
            frozen,
        );
        let value = loss.clone().detach();
        (value, GradientsParams::from_grads(loss.backward(), model))
    }
}

/// The micro-batch's loss (detached, on the first device: read it when the log needs it, which
/// on WebGPU in a browser must be asynchronous) and its gradients on the first device.
pub fn gradients(
    model: &Trainee,
    examples: &[Example],
    cx: &StepContext,
) -> Result<(Tensor<1>, GradientsParams)> {
    let main = &cx.devices[0];
    if cx.devices.len() == 1 {
        return Ok(cx.backward(model, &cx.batch(examples, main)?, Shares::WHOLE, cx.frozen));
    }
    let batches = shards(examples.len(), cx.devices.len())?
        .into_iter()
        .zip(cx.devices)
        .map(|(range, device)| Ok((range.len(), cx.batch(&examples[range], device)?)))
        .collect::<Result<Vec<_>>>()?;
    let total = |count: fn(&TrainBatch) -> usize| {
        batches
            .iter()
            .map(|(_, tb)| count(tb))
            .sum::<usize>()
            .max(1) as f32
    };
    let (answers, cells) = (total(|tb| tb.targets.len()), total(|tb| tb.cells.len()));
    let films = examples.len() as f32;
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = batches
            .into_iter()
            .zip(cx.devices)
            .map(|((n, tb), device)| {
                let replica = model.clone().fork(device);
                let shares = Shares {
                    answer: tb.targets.len() as f32 / answers,
                    cells: tb.cells.len() as f32 / cells,
                    films: n as f32 / films,
                };
                scope.spawn(move || {
                    // Each shard runs the tower itself (the cache's tensors live on the first device).
                    let (value, grads) = cx.backward(&replica, &tb, shares, None);
                    (value.to_device(main), grads.to_device(main, &replica))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join())
            .collect::<std::result::Result<Vec<_>, _>>()
    })
    .map_err(|_| Error::Other("a training thread of the data-parallel step panicked".into()))?;
    let mut sum = GradientsAccumulator::new();
    let mut value: Option<Tensor<1>> = None;
    for (v, grads) in results {
        value = Some(value.map_or(v.clone(), |s| s + v));
        sum.accumulate(model, grads);
    }
    Ok((value.expect("at least two shards"), sum.grads()))
}

/// One optimizer step as every trainer takes it (`train`, the browser's `fineTune`):
/// `accumulate` micro-batches from `next`, their gradients summed, AdamW at `lr`. Returns the
/// stepped model and the mean of the micro-batches' losses (detached, `[1]`).
pub fn optimizer_step(
    model: Trainee,
    optim: &mut ModuleOptimizer,
    lr: f64,
    accumulate: usize,
    mut next: impl FnMut() -> Result<Vec<Example>>,
    cx: &StepContext,
) -> Result<(Trainee, Tensor<1>)> {
    let mut accumulator = GradientsAccumulator::new();
    let mut loss_sum: Option<Tensor<1>> = None;
    for _ in 0..accumulate {
        let (loss, grads) = gradients(&model, &next()?, cx)?;
        loss_sum = Some(loss_sum.map_or(loss.clone(), |s| s + loss));
        accumulator.accumulate(&model, grads);
    }
    let model = optim.step(lr, model, accumulator.grads());
    let loss =
        loss_sum.ok_or_else(|| Error::Config("[optim] accumulate must be at least 1".into()))?;
    Ok((model, loss.div_scalar(accumulate as f32)))
}

/// `len` examples cut into `parts` contiguous shards as even as possible.
pub fn shards(len: usize, parts: usize) -> Result<Vec<Range<usize>>> {
    if len < parts {
        return Err(Error::Other(format!(
            "a micro-batch of {len} examples cannot be split across {parts} devices: \
             raise [optim] batch to at least {parts}"
        )));
    }
    Ok((0..parts)
        .map(|k| k * len / parts..(k + 1) * len / parts)
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn shards_cover_the_batch_evenly() {
        let s = super::shards(10, 3).unwrap();
        assert_eq!(s, vec![0..3, 3..6, 6..10]);
        assert!(super::shards(1, 2).is_err());
    }
}
