//! What a training run starts from: the tiny model or a bundle / HF checkpoint folder, its
//! tokenizer and image processor, with stage 2's LoRA applied.

use burn::module::{Lora, Module, ParamGroup};
use burn::prelude::*;

use super::batch::Framing;
use super::config::TrainConfig;
use crate::error::{Error, Result};
use crate::grounder::Grounder;
use crate::image::processor;
use crate::model::{Idefics3, Idefics3Config};
use crate::tokens::Tokens;
use crate::weights::{Bundle, bundle};

/// The tokenizer the tiny preset starts from.
pub const TOKENIZER: &str = "assets/tokenizer.json";

/// What a run starts from and writes out again besides the weights.
pub struct Base {
    pub model: Idefics3,
    pub config: Idefics3Config,
    pub tokens: Tokens,
    pub tokenizer_json: Vec<u8>,
    /// How the base checkpoint frames its input: its processor with splitting off (films are fed
    /// as the global view, one tile) and its chat template.
    pub framing: Framing,
    /// The files that tell it (`preprocessor_config.json` with splitting off, the template's
    /// file), which the trained bundle carries so that it is asked as it was trained.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The starting model and its tokenizer on `device`, the device's generator seeded first (what is
/// initialised fresh, the tiny model or stage 1's probe on a bundle, is the same in every run).
#[cfg(feature = "cli")]
fn base(cfg: &TrainConfig, device: &Device) -> Result<Base> {
    device.seed(cfg.data.seed);
    if cfg.base == "tiny" {
        let json = std::fs::read(TOKENIZER).map_err(|e| Error::io(TOKENIZER, e))?;
        let tokens = Tokens::from_bytes(&json)?;
        let config = Idefics3Config::tiny(tokens.vocab_size(), tokens.image_token);
        return Ok(Base {
            model: Idefics3::new(&config, device),
            config,
            tokens,
            tokenizer_json: json,
            framing: Framing::default(),
            files: Vec::new(),
        });
    }
    from_bundle(&Bundle::read_dir(std::path::Path::new(&cfg.base))?, device)
}

/// A bundle as the base, on `device`.
pub fn from_bundle(b: &Bundle, device: &Device) -> Result<Base> {
    let g = Grounder::from_bundle(b, device)?;
    let mut files = Vec::new();
    let processor = match b.files.get(processor::FILE) {
        Some(bytes) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| Error::Config(format!("{} is not UTF-8", processor::FILE)))?;
            let (json, settings) = processor::without_splitting(text)?;
            files.push((processor::FILE.to_string(), json.into_bytes()));
            Some(settings)
        }
        None => None,
    };
    if let Some(t) = &g.chat {
        files.push((t.file().to_string(), b.file(t.file()).to_vec()));
    }
    Ok(Base {
        model: g.model,
        config: g.config,
        tokens: g.tokens,
        tokenizer_json: b.file(bundle::TOKENIZER).to_vec(),
        framing: Framing {
            processor,
            chat: g.chat,
        },
        files,
    })
}

/// Stage 2: vision frozen, LoRA on the target weights, connector trained.
pub fn adapt(model: Idefics3, cfg: &TrainConfig, device: &Device) -> Result<Idefics3> {
    let l = &cfg.lora;
    let targets = ParamGroup::from_regex(&l.targets)
        .map_err(|e| Error::Config(format!("lora.targets: {e:?}")))?;
    device.seed(cfg.data.seed.wrapping_add(1));
    let model = model.apply_lora(Lora::new(l.rank, l.alpha).set_param_group(targets));
    Ok(if l.train_connector {
        model.unfreeze_group(ParamGroup::from_regex(r"^model\.connector\.").expect("valid regex"))
    } else {
        model
    })
}

/// Counts the parameters that receive gradients (LoRA factors, thawed weights).
#[derive(Default)]
struct Trainable(usize);

impl burn::module::ModuleVisitor for Trainable {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        if param.val().is_require_grad() {
            self.0 += param.lazy_shape().num_elements();
        }
    }
}

pub fn trainable_params<M: Module>(model: &M) -> usize {
    let mut v = Trainable::default();
    model.visit(&mut v);
    v.0
}

/// The model a run trains: its base, with the stage's adapters.
#[cfg(feature = "cli")]
pub fn prepare(cfg: &TrainConfig, device: &Device) -> Result<Base> {
    let mut b = base(cfg, device)?;
    if cfg.stage >= 2 {
        b.model = adapt(b.model, cfg, device)?;
    }
    Ok(b)
}
