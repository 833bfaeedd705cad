//! The product in one call: a bundle loaded on a device answers `ground(picture, phrase)` with a
//! box. The CLI, the eval loop and the browser all go through here.

use burn::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::image::processor::{self, Settings};
use crate::image::{Picture, preprocess::model_input, views};
use crate::model::generate::{MAX_BOX_TOKENS, Policy, generate};
use crate::model::{Batch, Idefics3, Idefics3Config};
use crate::protocol::answer::PixelBox;
use crate::protocol::calibration::Calibration;
use crate::protocol::chat::ChatTemplate;
use crate::protocol::ood::{self, Ood};
use crate::protocol::{GridBox, Prompt};
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
    pub confidence: f32,
    /// Whether `confidence` is calibrated.
    pub calibrated: bool,
    /// The model's answer probability: the geometric mean of the box tokens' probabilities.
    pub probability: f32,
    /// Whether the image looks like the films the model was trained on (its vision features
    /// within the bundle's out-of-distribution threshold); None without `ood.safetensors`.
    /// Outside, the confidence says nothing: the calibration was fitted on such films only.
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
            config,
            tokens,
            device: device.clone(),
            calibration,
            ood: bundle.ood()?,
            switchable: (!bundle.adapters().is_empty()).then(|| bundle.clone()),
            adapter: None,
            processor,
            chat: ChatTemplate::find(&bundle.files)?,
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

    /// The model's constrained answer text for `phrase` on `picture`, and its confidence.
    pub async fn answer_async(&self, picture: &Picture, phrase: &str) -> Result<(String, f32)> {
        let a = self.answer_full_async(picture, phrase, false).await?;
        Ok((a.text, a.probability))
    }

    /// The answer with, when `features`, the image's pooled vision features.
    pub async fn answer_full_async(
        &self,
        picture: &Picture,
        phrase: &str,
        features: bool,
    ) -> Result<Answer> {
        let batch = self.inputs(picture, phrase)?;
        let (embeds, patches) = self
            .model
            .embed_batch_with_patches(&batch, self.config.image_token_id);
        let features = if features {
            self.pool(patches).await?
        } else {
            vec![]
        };
        let policy = Policy::Box {
            vocab: &self.tokens.answer_vocab,
        };
        let generation = generate(&self.model, embeds, policy).await?;
        Ok(Answer {
            text: self.tokens.decode(&generation.tokens)?,
            probability: generation.confidence(),
            features,
        })
    }

    /// The pooled features of the last tile (the global view) of `[tiles, tokens, dim]`.
    async fn pool(&self, patches: Tensor<3>) -> Result<Vec<f32>> {
        let [tiles, tokens, dim] = patches.dims();
        let last = patches.slice([tiles - 1..tiles, 0..tokens, 0..dim]);
        let data = crate::model::read_back(last).await?;
        Ok(ood::pool(&data, tokens, dim))
    }

    /// How well the boxes of `phrase` on shifted views of `picture` ([`views::VIEWS`]) agree
    /// with `answer`, its box on the whole picture: their mean IoU in the picture's pixels (a
    /// view answered with no box counts 0).
    pub async fn agreement_async(
        &self,
        picture: &Picture,
        phrase: &str,
        answer: &PixelBox,
    ) -> Result<f32> {
        let mut sum = 0.0;
        for cut in views::VIEWS {
            let (v, [x0, y0]) = views::view(picture, cut);
            let text = self.answer_full_async(&v, phrase, false).await?.text;
            if let Ok(grid) = GridBox::parse(&text) {
                let b = grid.to_pixels(v.width, v.height);
                let (dx, dy) = (x0 as f32, y0 as f32);
                let moved = PixelBox {
                    x1: b.x1 + dx,
                    y1: b.y1 + dy,
                    x2: b.x2 + dx,
                    y2: b.y2 + dy,
                };
                sum += moved.iou(answer);
            }
        }
        Ok(sum / views::VIEWS.len() as f32)
    }

    /// The image's pooled vision features alone (the out-of-distribution fit and sweep).
    pub async fn features_async(&self, picture: &Picture) -> Result<Vec<f32>> {
        let batch = self.inputs(picture, "the image")?;
        let patches = self.model.model.vision_model.forward(batch.pixels);
        self.pool(patches).await
    }

    /// The out-of-distribution score of pooled features and whether it is inside, where the
    /// bundle holds the model.
    pub fn distribution(&self, features: &[f32]) -> Result<Option<(f32, bool)>> {
        self.ood
            .as_ref()
            .map(|o| o.score(features).map(|s| (s, o.inside(s))))
            .transpose()
    }

    pub async fn ground_async(&self, picture: &Picture, phrase: &str) -> Result<Grounding> {
        let start = web_time::Instant::now();
        let answer = self
            .answer_full_async(picture, phrase, self.ood.is_some())
            .await?;
        let grid = GridBox::parse(&answer.text)?;
        let own = grid.to_pixels(picture.width, picture.height);
        let PixelBox { x1, y1, x2, y2 } = own;
        let distribution = self.distribution(&answer.features)?;
        let agreement = match &self.calibration {
            Some(c) if c.needs_agreement(phrase) => {
                Some(self.agreement_async(picture, phrase, &own).await?)
            }
            _ => None,
        };
        Ok(Grounding {
            box_px: [x1, y1, x2, y2],
            box_norm: [grid.x1, grid.y1, grid.x2, grid.y2],
            text: answer.text,
            confidence: self.confidence(
                answer.probability,
                phrase,
                distribution.map(|d| d.0),
                agreement,
            ),
            calibrated: self.calibration.is_some(),
            probability: answer.probability,
            in_distribution: distribution.map(|d| d.1),
            ood_score: distribution.map(|d| d.0),
            ood_threshold: self.ood.as_ref().map(|o| o.threshold),
            ood_typical: self.ood.as_ref().map(|o| o.typical),
            agreement,
            ms: start.elapsed().as_secs_f64() * 1000.0,
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

    /// Blocking form of [`Self::answer_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn answer(&self, picture: &Picture, phrase: &str) -> Result<(String, f32)> {
        pollster::block_on(self.answer_async(picture, phrase))
    }

    /// Blocking form of [`Self::answer_full_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn answer_full(&self, picture: &Picture, phrase: &str, features: bool) -> Result<Answer> {
        pollster::block_on(self.answer_full_async(picture, phrase, features))
    }

    /// Blocking form of [`Self::agreement_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn agreement(&self, picture: &Picture, phrase: &str, answer: &PixelBox) -> Result<f32> {
        pollster::block_on(self.agreement_async(picture, phrase, answer))
    }

    /// Blocking form of [`Self::features_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn features(&self, picture: &Picture) -> Result<Vec<f32>> {
        pollster::block_on(self.features_async(picture))
    }

    /// Blocking form for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn ground(&self, picture: &Picture, phrase: &str) -> Result<Grounding> {
        pollster::block_on(self.ground_async(picture, phrase))
    }
}
