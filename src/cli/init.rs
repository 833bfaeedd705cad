//! `init` and `tokenizer`: the tiny preset's starting points.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use clap::Args;
use medground::data::phrases::tokenizer_corpus;
use medground::model::{Idefics3, Idefics3Config};
use medground::tokens::Tokens;
use medground::weights::{Bundle, Dtype, bundle, safetensors};
use medground::{Error, Grounder, Result};

/// Vocabulary size of the tiny tokenizer (byte alphabet, merges and specials; grid tokens extra).
pub const TINY_VOCAB: usize = 640;

#[derive(Args)]
pub struct InitArgs {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Tokenizer to build on.
    #[arg(long, default_value = "assets/tokenizer.json")]
    tokenizer: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value = "f16")]
    dtype: DtypeArg,
    /// Start from this bundle's weights and tokenizer instead of random ones (with
    /// `--scale-factor`: the same model on another grid of image tokens).
    #[arg(long, conflicts_with = "tokenizer")]
    from: Option<PathBuf>,
    /// Pixel-shuffle scale: 2 gives 49 image tokens of 32 px, 1 gives 196 of 16 px. From a
    /// bundle, the connector's projection is spread over the new blocks (`Connector::regrid`)
    /// and the context grows by the added image tokens.
    #[arg(long)]
    scale_factor: Option<usize>,
    /// Shapes of the random model: tiny (the shipped models'), or smolvlm-256m / smolvlm-500m
    /// (the real checkpoints' shapes at one 512-px tile, on this tokenizer: for benchmarks and
    /// tests at real size).
    #[arg(long, default_value = "tiny", conflicts_with = "from")]
    preset: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DtypeArg {
    F32,
    F16,
    Int8,
}

impl From<DtypeArg> for Dtype {
    fn from(d: DtypeArg) -> Self {
        match d {
            DtypeArg::F32 => Dtype::F32,
            DtypeArg::F16 => Dtype::F16,
            DtypeArg::Int8 => Dtype::Int8,
        }
    }
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

pub fn tokenizer(out: &Path) -> Result<()> {
    let json = medground::tokens::train::train(&tokenizer_corpus(), TINY_VOCAB)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::write(out, &json).map_err(|e| Error::io(out, e))?;
    let tokens = Tokens::from_bytes(json.as_bytes())?;
    eprintln!("wrote {} ({} tokens)", out.display(), tokens.vocab_size());
    Ok(())
}

pub fn run(args: InitArgs) -> Result<()> {
    let device = Device::flex();
    device.seed(args.seed);
    // The image processor's settings, when the model has one (SmolVLM's tiles), and the bundle
    // whose framing (processor, chat template) the copy keeps.
    let mut processor: Option<Vec<u8>> = None;
    let mut framing_of: Option<Bundle> = None;
    let (tokenizer, config, mut model, what) = match &args.from {
        Some(dir) => {
            let bundle = Bundle::read_dir(dir)?;
            framing_of = Some(bundle.clone());
            let g = Grounder::from_bundle(&bundle, &device)?;
            let what = format!("weights of {}", dir.display());
            (
                bundle.file(bundle::TOKENIZER).to_vec(),
                g.config,
                g.model,
                what,
            )
        }
        None => {
            let tokenizer = read(&args.tokenizer)?;
            let (tokenizer, config) = match args.preset.as_str() {
                "tiny" => {
                    let tokens = Tokens::from_bytes(&tokenizer)?;
                    let c = Idefics3Config::tiny(tokens.vocab_size(), tokens.image_token);
                    (tokenizer, c)
                }
                // The real checkpoints' tiles: their processor, and a token per tile position.
                name => {
                    let tokenizer = medground::tokens::with_tile_tokens(&tokenizer)?;
                    let tokens = Tokens::from_bytes(&tokenizer)?;
                    let c = Idefics3Config::smolvlm(name, tokens.image_token)?;
                    processor = Some(medground::image::processor::smolvlm_json().into_bytes());
                    (tokenizer, c)
                }
            };
            let model = Idefics3::new(&config, &device);
            (tokenizer, config, model, "random weights".to_string())
        }
    };
    let config = match args.scale_factor {
        Some(s) => {
            let c = config.regridded(s)?;
            model.model.connector = model.model.connector.regrid(s);
            c
        }
        None => config,
    };
    let weights = safetensors::save(&model, args.dtype.into())?;
    let bundle = Bundle::new(config.to_json(), tokenizer, weights, args.dtype.into());
    let bundle = match processor {
        Some(json) => bundle.with_file(medground::image::processor::FILE, json),
        None => bundle,
    };
    match &framing_of {
        Some(from) => bundle.with_framing_of(from),
        None => bundle,
    }
    .write_dir(&args.out)?;
    eprintln!(
        "wrote {} ({} parameters, {what}, {} image tokens)",
        args.out.display(),
        model.num_params(),
        config.image_seq_len()
    );
    Ok(())
}
