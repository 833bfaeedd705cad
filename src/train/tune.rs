//! Fine-tuning in memory: a LoRA adapter trained on labelled films held in memory, with the
//! steps `train` takes (its sampler, loss, gradients, AdamW and learning-rate schedule), so that
//! the browser's `fineTune` and a native `train` on the same films, config and seed log the same
//! losses. Stage 2 only: the vision tower frozen (its features cached), LoRA on the text model.

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::prelude::*;

use super::base::{self, Base};
use super::batch::{Framing, Source, micro_batch};
use super::cache::{FeatureCache, frozen};
use super::config::TrainConfig;
use super::loss::Trainee;
use super::step::{StepContext, optimizer_step};
use crate::data::record::Record;
use crate::error::{Error, Result};
use crate::model::{Idefics3, Idefics3Config};
use crate::tokens::Tokens;
use crate::weights::Bundle;

/// A fine-tune in progress.
pub struct Tuner {
    /// None only while a step holds it.
    model: Option<Trainee>,
    optim: ModuleOptimizer,
    cfg: TrainConfig,
    source: Source,
    tokens: Tokens,
    config: Idefics3Config,
    framing: Framing,
    devices: [Device; 1],
    cache: FeatureCache,
    /// Steps taken.
    pub step: usize,
}

impl Tuner {
    /// Stage 2 of `cfg` (its LoRA, optimiser, seed and feature-cache budget) on `bundle`'s
    /// weights, on `device` (under autodiff), over `records`: the model, adapters and optimiser
    /// a native run of that config starts with.
    pub fn new(
        bundle: &Bundle,
        cfg: TrainConfig,
        records: Vec<Record>,
        device: &Device,
    ) -> Result<Self> {
        if cfg.stage != 2 {
            return Err(Error::Config(
                "fine-tuning trains stage 2 (LoRA on the text model)".into(),
            ));
        }
        if records.is_empty() {
            return Err(Error::Other(
                "fine-tuning needs at least one example".into(),
            ));
        }
        let device = device.clone().autodiff();
        device.seed(cfg.data.seed);
        let Base {
            model,
            config,
            tokens,
            framing,
            ..
        } = base::from_bundle(bundle, &device)?;
        let model = base::adapt(model, &cfg, &device)?;
        let optim = cfg.optim.adamw().init();
        Ok(Self {
            model: Some(Trainee {
                model,
                probe: None,
                offsets: None,
            }),
            optim,
            cache: FeatureCache::new(cfg.run.feature_cache_mb << 20),
            source: Source::Records(records),
            cfg,
            tokens,
            config,
            framing,
            devices: [device],
            step: 0,
        })
    }

    /// Goes on from an adapter an earlier fine-tune of the same config saved (PEFT files) after
    /// `step` steps: its factors, the schedule and the sampler where it stopped. AdamW's moments
    /// start again from zero (they are not saved), so the steps after differ a little from an
    /// unbroken run's.
    pub fn resume(&mut self, config_json: &[u8], weights: &[u8], step: usize) -> Result<()> {
        let mut trainee = self
            .model
            .take()
            .ok_or_else(|| Error::Other("a failed step left no model".into()))?;
        trainee.model = crate::weights::peft::load_into(trainee.model, config_json, weights)?;
        self.model = Some(trainee);
        self.step = step;
        Ok(())
    }

    /// One optimizer step; its loss (the mean over its micro-batches), read back
    /// asynchronously (WebGPU in a browser cannot wait for the device).
    pub async fn step_async(&mut self) -> Result<f32> {
        let model = self
            .model
            .take()
            .ok_or_else(|| Error::Other("a failed step left no model".into()))?;
        let o = &self.cfg.optim;
        let tower_frozen = frozen(&model.model.model.vision_model);
        let cx = StepContext {
            tokens: &self.tokens,
            config: &self.config,
            optim: o,
            framing: &self.framing,
            devices: &self.devices,
            frozen: tower_frozen.then_some(&self.cache),
        };
        let mut micro = self.step * o.accumulate;
        let (source, seed) = (&self.source, self.cfg.data.seed);
        let next = || {
            micro += 1;
            micro_batch(source, seed, o.batch, micro - 1)
        };
        let lr = self.cfg.lr_at(self.step);
        let (model, loss) = optimizer_step(model, &mut self.optim, lr, o.accumulate, next, &cx)?;
        self.model = Some(model);
        self.step += 1;
        crate::model::read_back(loss)
            .await?
            .first()
            .copied()
            .ok_or_else(|| Error::Device("an empty loss".into()))
    }

    /// Blocking form of [`Self::step_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step(&mut self) -> Result<f32> {
        pollster::block_on(self.step_async())
    }

    /// The model as trained so far, for inference (LoRA unmerged; `Grounder` merges nothing).
    pub fn model(&self) -> Result<Idefics3> {
        self.model
            .as_ref()
            .map(|m| m.model.valid())
            .ok_or_else(|| Error::Other("a failed step left no model".into()))
    }
}
