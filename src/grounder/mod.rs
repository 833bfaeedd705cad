//! The product in one call: a bundle loaded on a device answers `ground(picture, phrase)` with a
//! box. The CLI, the eval loop and the browser all go through here. A film is read once
//! (`encode`: the vision tower, the connector, the out-of-distribution score) and asked any
//! number of phrases (`encoded.rs`).

mod encoded;

pub use encoded::Encoded;

use burn::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::image::processor::{self, Settings};
use crate::image::{Picture, preprocess::model_input};
use crate::model::rope::Rope;
use crate::model::{Batch, Idefics3, Idefics3Config};
use crate::protocol::Prompt;
use crate::protocol::calibration::Calibration;
use crate::protocol::chat::ChatTemplate;
use crate::protocol::constrain::MAX_BOX_TOKENS;
use crate::protocol::ood::Ood;
use crate::tokens::Tokens;
use crate::weights::{Bundle, bundle};

/// One answer.
#[derive(Debug, Clone, Serialize)]
pub struct Grounding {
    /// Box in pixels of the original image, `[x1, y1, x2, y2]`.
    #[serde(rename = "box")]
    pub box_px: [f32; 4],
    /// Box on the 0–100 grid.
    #[serde(rename = "boxNorm")]
    pub box_norm: [u32; 4],
    /// The raw answer text.
    pub text: String,
    /// The chance that the box overlaps the truth at IoU >= 0.5, as calibrated on validation
    /// films (`calibrate`); the model's answer probability where the bundle holds no calibration.
    /// None (JSON null) when the image is outside the training films (`in_distribution` false):
    /// no calibration speaks for it, and `probability` alone remains.
    pub confidence: Option<f32>,
    /// Whether `confidence` is calibrated (false when there is none).
    pub calibrated: bool,
    /// The model's answer probability: the geometric mean of the box tokens' probabilities.
    pub probability: f32,
    /// Whether the image looks like the films the model was trained on (its vision features
    /// within the bundle's out-of-distribution threshold); None without `ood.safetensors`.
    /// Outside, there is no confidence: the calibration was fitted on training-like films.
    #[serde(rename = "inDistribution")]
    pub in_distribution: Option<bool>,
    /// The out-of-distribution score (about 1 for a typical training film; the threshold is
    /// `oodThreshold`).
    #[serde(rename = "oodScore")]
    pub ood_score: Option<f32>,
    #[serde(rename = "oodThreshold")]
    pub ood_threshold: Option<f32>,
    /// The 99th percentile of the validation films' scores: between it and the threshold a
    /// film is unusual (its confidence was measured on films nearer the training ones).
    #[serde(rename = "oodTypical")]
    pub ood_typical: Option<f32>,
    /// For the structures whose confidence reads it: the mean IoU of the boxes found on six
    /// shifted views of the image with this box (`Grounder::agreement`).
    pub agreement: Option<f32>,
    /// Wall-clock milliseconds, preprocessing to answer.
    pub ms: f64,
}

/// The model's answer before it is read as a box.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    /// Geometric mean of the box tokens' probabilities.
    pub probability: f32,
    /// Pooled vision features of the image (the global view when tiled), for the
    /// out-of-distribution score.
    pub features: Vec<f32>,
}

pub struct Grounder {
    pub model: Idefics3,
    pub config: Idefics3Config,
    pub tokens: Tokens,
    pub device: Device,
    /// The bundle's map from answer probability to the chance of a hit, if it holds one.
    pub calibration: Option<Calibration>,
    /// The bundle's model of its training films' vision features, if it holds one.
    pub ood: Option<Ood>,
    /// The bundle, kept only when it holds adapters to switch between (`use_adapter`).
    pub switchable: Option<Bundle>,
    /// The adapter merged into the weights now (none: the bundle's base weights).
    pub adapter: Option<String>,
    /// The checkpoint's image processor (SmolVLM's tiles), when the bundle holds
    /// `preprocessor_config.json`; without it, one image squashed to the vision tower's size.
    pub processor: Option<Settings>,
    /// The checkpoint's own chat template, when it has one; else SmolVLM's layout.
    pub chat: Option<ChatTemplate>,
    /// How many times the vision tower has run (a batch of images counts once).
    pub tower_runs: std::sync::atomic::AtomicUsize,
    /// The text model's rotary tables, built once (decoding slices them per step).
    pub rope: Rope,
}

impl Grounder {
    /// Builds the model from a checked bundle on `device`.
    pub fn from_bundle(bundle: &Bundle, device: &Device) -> Result<Self> {
        Self::build(bundle, bundle.file(bundle::WEIGHTS).to_vec(), device)
    }

    /// [`Self::from_bundle`], taking the bundle: its weights move into the model rather than
    /// being copied, so loading holds them once less (a gigabyte at SmolVLM-256M's size). A
    /// bundle with adapters is kept whole, to switch between them.
    pub fn from_owned(mut bundle: Bundle, device: &Device) -> Result<Self> {
        if !bundle.adapters().is_empty() {
            return Self::from_bundle(&bundle, device);
        }
        let weights = bundle.files.remove(bundle::WEIGHTS).unwrap_or_default();
        Self::build(&bundle, weights, device)
    }

    /// Built from `bundle` (its config, tokenizer, calibration, ...) with `weights` in place of
    /// its own.
    pub(crate) fn build(bundle: &Bundle, weights: Vec<u8>, device: &Device) -> Result<Self> {
        let config_text = std::str::from_utf8(bundle.file(bundle::CONFIG))
            .map_err(|_| Error::Config("config.json is not UTF-8".into()))?;
        let config = Idefics3Config::from_json(config_text)?;
        let tokens = Tokens::from_bytes(bundle.file(bundle::TOKENIZER))?;
        if tokens.image_token != config.image_token_id {
            return Err(Error::Config(format!(
                "config image_token_id {} is not the tokenizer's <image> ({})",
                config.image_token_id, tokens.image_token
            )));
        }
        if tokens.vocab_size() > config.text_config.vocab_size {
            return Err(Error::Config(
                "the tokenizer is larger than the model's vocabulary".into(),
            ));
        }
        let calibration = bundle.calibration()?;
        let processor = bundle.processor()?;
        if let Some(p) = &processor
            && p.tile != config.vision_config.image_size
        {
            return Err(Error::Config(format!(
                "{}: tiles of {} px, but the vision tower takes {} px",
                processor::FILE,
                p.tile,
                config.vision_config.image_size
            )));
        }
        let mut model = Idefics3::new(&config, device);
        crate::weights::safetensors::load(&mut model, weights)?;
        Ok(Self {
            model,
            rope: Rope::for_model(&config.text_config, device),
            config,
            tokens,
            device: device.clone(),
            calibration,
            ood: bundle.ood()?,
            switchable: (!bundle.adapters().is_empty()).then(|| bundle.clone()),
            adapter: None,
            processor,
            chat: ChatTemplate::find(&bundle.files)?,
            tower_runs: Default::default(),
        })
    }

    /// The adapters this model can switch to.
    pub fn adapters(&self) -> Vec<String> {
        self.switchable.as_ref().map_or(vec![], Bundle::adapters)
    }

    /// Switches to the adapter `name` (merged into the base weights in memory, as `import-peft`
    /// merges it), or back to the base weights with `None`; the bundle is not read again.
    pub fn use_adapter(&mut self, name: Option<&str>) -> Result<()> {
        let bundle = self.switchable.as_ref().ok_or_else(|| {
            Error::Weights("this bundle holds no adapters to switch between".into())
        })?;
        let weights = match name {
            None => bundle.file(bundle::WEIGHTS).to_vec(),
            Some(n) => {
                let (config, adapter) = bundle.adapter(n)?;
                crate::weights::peft::merge(bundle, config, adapter)?
                    .file(bundle::WEIGHTS)
                    .to_vec()
            }
        };
        crate::weights::safetensors::load(&mut self.model, weights)?;
        self.adapter = name.map(str::to_string);
        Ok(())
    }

    /// Token ids of the evaluation prompt for `phrase` with one untiled image, checked against
    /// the context length.
    pub fn prompt_ids(&self, phrase: &str, template: usize) -> Result<Vec<u32>> {
        self.tiled_prompt_ids(phrase, template, (0, 0))
    }

    /// [`Self::prompt_ids`] for an image cut into `rows` x `cols` tiles plus the global view.
    pub fn tiled_prompt_ids(
        &self,
        phrase: &str,
        template: usize,
        (rows, cols): (usize, usize),
    ) -> Result<Vec<u32>> {
        let prompt = Prompt::new(phrase, template)?;
        let text = prompt.render_in(self.chat.as_ref(), rows, cols, self.config.image_seq_len())?;
        let ids = self.tokens.encode(&text)?;
        let limit = self.config.text_config.max_position_embeddings;
        if ids.len() + MAX_BOX_TOKENS > limit {
            return Err(Error::Phrase(format!(
                "the prompt takes {} tokens; with the answer it exceeds the model's context of {limit}",
                ids.len()
            )));
        }
        Ok(ids)
    }

    /// The model's input tensor for a picture, `[1, 3, S, S]`.
    pub fn pixels(&self, picture: &Picture) -> Tensor<4> {
        let s = self.config.vision_config.image_size;
        self.image_tensor(model_input(picture, s as u32), 1, s)
    }

    /// `[n, 3, size, size]` from channel-first values.
    fn image_tensor(&self, data: Vec<f32>, n: usize, size: usize) -> Tensor<4> {
        Tensor::<1>::from_data(TensorData::new(data, [n * 3 * size * size]), &self.device)
            .reshape([n, 3, size, size])
    }

    /// The model's input for `phrase` on `picture`: through the checkpoint's processor (tiles
    /// and their prompt) when it has one, else one squashed image.
    pub fn inputs(&self, picture: &Picture, phrase: &str) -> Result<Batch> {
        let Some(settings) = &self.processor else {
            return Ok(Batch {
                ids: vec![self.prompt_ids(phrase, 0)?],
                pixels: self.pixels(picture),
            });
        };
        let tiles = processor::process(picture, settings)?;
        let ids = self.tiled_prompt_ids(phrase, 0, (tiles.rows, tiles.cols))?;
        let (n, size) = (tiles.count(), tiles.size);
        Ok(Batch {
            ids: vec![ids],
            pixels: self.image_tensor(tiles.pixels, n, size),
        })
    }

    /// The calibrated chance of a hit for an answer probability to `phrase` on a film of
    /// out-of-distribution `score`, its boxes' `agreement` on shifted views where measured
    /// (the probability itself where the bundle holds no calibration).
    pub fn confidence(
        &self,
        probability: f32,
        phrase: &str,
        score: Option<f32>,
        agreement: Option<f32>,
    ) -> f32 {
        self.calibration.as_ref().map_or(probability, |c| {
            c.apply_to(probability, phrase, score, agreement)
        })
    }
}
