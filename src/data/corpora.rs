//! Opening datasets by name: synthetic corpora in memory, or files through the loaders.

use std::path::Path;
use std::sync::Arc;

use super::load;
use super::phrases;
use super::record::{ImageSource, Loaded, Record};
use super::synth::{Split, Synth};
use crate::error::{Error, Result};

/// Parses `synth:N[:split[:seed]]`.
pub fn parse_synth(spec: &str) -> Result<Option<(usize, Split, u64)>> {
    let Some(rest) = spec.strip_prefix("synth:") else {
        return Ok(None);
    };
    let bad = || {
        Error::Other(format!(
            "bad synthetic dataset {spec:?}: use synth:N[:train|val|test[:seed]]"
        ))
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let n = parts[0].parse().map_err(|_| bad())?;
    let split = match parts.get(1).copied().unwrap_or("test") {
        "train" => Split::Train,
        "val" => Split::Val,
        "test" => Split::Test,
        _ => return Err(bad()),
    };
    let seed = parts
        .get(2)
        .map(|s| s.parse())
        .transpose()
        .map_err(|_| bad())?
        .unwrap_or(0);
    Ok(Some((n, split, seed)))
}

/// Records of `n` synthetic films (one per finding), generated in memory.
pub fn synth_records(synth: &Synth, n: usize) -> Vec<Record> {
    let split = format!("{:?}", synth.split).to_lowercase();
    (0..n as u64)
        .flat_map(|i| {
            let s = synth.sample(i);
            let picture = Arc::new(s.picture);
            s.findings
                .into_iter()
                .map(|f| Record {
                    image: ImageSource::Memory(picture.clone()),
                    phrase: f.phrase,
                    category: phrases::CATEGORIES[f.category].to_string(),
                    box_px: f.box_px,
                    width: picture.width,
                    height: picture.height,
                    split: Some(split.clone()),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Opens a dataset: `synth:N[:split[:seed]]` (films of `size` pixels) or a file for [`load::load`].
pub fn open(spec: &str, images: Option<&Path>, size: usize) -> Result<Loaded> {
    match parse_synth(spec)? {
        Some((n, split, seed)) => Ok(Loaded {
            records: synth_records(&Synth::new(seed, split, size), n),
            problems: vec![],
        }),
        None => load::load(Path::new(spec), images),
    }
}

impl Record {
    /// The record's picture, decoded if it lives in a file.
    pub fn picture(&self) -> Result<Arc<crate::image::Picture>> {
        match &self.image {
            ImageSource::Memory(p) => Ok(p.clone()),
            ImageSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                crate::image::decode(&bytes)
                    .map(Arc::new)
                    .map_err(|e| Error::Image(format!("{}: {e}", path.display())))
            }
        }
    }
}
