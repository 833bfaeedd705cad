//! `export` (a run's checkpoint -> browser bundle + PEFT adapter) and `import-peft` (a PEFT
//! adapter trained elsewhere -> a bundle, merged into its base).

use std::path::PathBuf;

use clap::Args;
use medground::Result;
use medground::weights::{Bundle, peft};

use super::init::{DtypeArg, read};

#[derive(Args)]
pub struct ExportArgs {
    /// A training run folder (its config.toml and last checkpoint).
    #[arg(long)]
    run: PathBuf,
    /// Output folder: bundle/ and, for stage 2, adapter/.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "f16")]
    dtype: DtypeArg,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The base bundle the adapter was trained on.
    #[arg(long)]
    base: PathBuf,
    /// Folder with adapter_config.json and adapter_model.safetensors, or the same zipped (the
    /// page's "download the adapter").
    #[arg(long)]
    adapter: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Keep the adapter beside the base under this name (`adapters/NAME/`) instead of merging:
    /// the page, the npm package and `ground --adapter` switch between a bundle's adapters
    /// without loading the base again. --out may be the base folder itself.
    #[arg(long)]
    name: Option<String>,
}

pub fn export(a: ExportArgs) -> Result<()> {
    let dir = medground::train::run::export(&a.run, &a.out, a.dtype.into())?;
    let bundle = Bundle::read_dir(&dir)?;
    for (name, entry) in &bundle
        .manifest
        .as_ref()
        .expect("written with a manifest")
        .files
    {
        eprintln!("{name}: {} bytes, sha256 {}", entry.size, entry.sha256);
    }
    // The base's calibration and out-of-distribution model describe the base's answers and
    // features, not these weights': carried over they would state chances never measured.
    eprintln!(
        "not calibrated: the confidence is the raw answer probability and no image is checked \
         for being a chest film until `medground calibrate synth:600:val:7:upright --model {}` \
         (or your own validation data and --fit-films) fits both for these weights",
        dir.display()
    );
    Ok(())
}

pub fn import(a: ImportArgs) -> Result<()> {
    let base = Bundle::read_dir(&a.base)?;
    let (config, weights) = if a.adapter.is_file() {
        peft::unzip(&read(&a.adapter)?)?
    } else {
        (
            read(&a.adapter.join(peft::CONFIG))?,
            read(&a.adapter.join(peft::WEIGHTS_FILE))?,
        )
    };
    // Merge once either way: an adapter that does not fit the base is refused here.
    let merged = peft::merge(&base, &config, &weights)?;
    match &a.name {
        Some(name) => base
            .with_adapter(name, config, weights)?
            .write_dir(&a.out)?,
        None => merged.write_dir(&a.out)?,
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
