//! `init` and `tokenizer`: the tiny preset's starting points.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use clap::Args;
use medground::data::phrases::tokenizer_corpus;
use medground::model::{Idefics3, Idefics3Config};
use medground::tokens::Tokens;
use medground::weights::{Bundle, Dtype, safetensors};
use medground::{Error, Result};

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
    let tokenizer = read(&args.tokenizer)?;
    let tokens = Tokens::from_bytes(&tokenizer)?;
    let config = Idefics3Config::tiny(tokens.vocab_size(), tokens.image_token);
    let device = Device::flex();
    device.seed(args.seed);
    let model = Idefics3::new(&config, &device);
    let weights = safetensors::save(&model, args.dtype.into())?;
    let bundle = Bundle::new(config.to_json(), tokenizer, weights, args.dtype.into());
    bundle.write_dir(&args.out)?;
    eprintln!(
        "wrote {} ({} parameters, random weights)",
        args.out.display(),
        model.num_params()
    );
    Ok(())
}
