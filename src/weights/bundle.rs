//! A model bundle: `config.json`, `tokenizer.json`, `model.safetensors` (HF layout, f32 or f16)
//! and `manifest.json` listing each file's size and sha256. The same bytes serve the CLI and the
//! browser. A folder without a manifest is read as a plain HF checkpoint (no checksums).

use std::collections::BTreeMap;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const CONFIG: &str = "config.json";
pub const TOKENIZER: &str = "tokenizer.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const MANIFEST: &str = "manifest.json";
/// Files every bundle holds, besides the manifest.
pub const FILES: [&str; 3] = [CONFIG, TOKENIZER, WEIGHTS];
/// The manifest's `format`.
const FORMAT: &str = "medground-bundle-1";
/// The files of a checkpoint that serve a model derived from it as they are (a merged adapter,
/// a regridded copy): how it frames its input. A calibration does not: it fits one model's answers.
pub const FRAMING: [&str; 5] = [
    crate::image::processor::FILE,
    crate::protocol::chat::FILES[0],
    crate::protocol::chat::FILES[1],
    crate::protocol::chat::FILES[2],
    crate::protocol::chat::FILES[3],
];
/// Where adapters live in a bundle: `adapters/NAME/` + the PEFT file names.
const ADAPTERS: &str = "adapters/";
const ADAPTER_CONFIG: &str = crate::weights::peft::CONFIG;
const ADAPTER_WEIGHTS_FILE: &str = crate::weights::peft::WEIGHTS_FILE;
const ADAPTER_WEIGHTS: &str = "/adapter_model.safetensors";

fn adapter_file(name: &str, file: &str) -> String {
    format!("{ADAPTERS}{name}/{file}")
}

/// A manifest's file name must stay inside the bundle: relative, no `..`, plain characters.
fn check_name(name: &str) -> Result<()> {
    let plain = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if name.split('/').all(plain) {
        Ok(())
    } else {
        Err(Error::Weights(format!(
            "the manifest lists a file outside the bundle: {name:?}"
        )))
    }
}

/// Largest file a bundle may hold (a guard against reading something that is not a bundle).
pub const MAX_FILE_BYTES: u64 = 4 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    F16,
    /// Weight matrices as i8 with per-row scales, the rest f16 (`int8.rs`).
    Int8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub dtype: Dtype,
    pub files: BTreeMap<String, FileEntry>,
}

/// The bytes of a bundle's files, checked against the manifest when there is one.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub files: BTreeMap<String, Vec<u8>>,
    pub manifest: Option<Manifest>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Manifest {
    /// Parses a manifest and checks that every name it lists stays inside the bundle.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let m: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::Weights(format!("{MANIFEST}: {e}")))?;
        m.files.keys().try_for_each(|name| check_name(name))?;
        Ok(m)
    }
}

impl Bundle {
    /// Builds a bundle from file contents, with a fresh manifest.
    pub fn new(config: String, tokenizer: Vec<u8>, weights: Vec<u8>, dtype: Dtype) -> Self {
        let files: BTreeMap<String, Vec<u8>> = [
            (CONFIG.to_string(), config.into_bytes()),
            (TOKENIZER.to_string(), tokenizer),
            (WEIGHTS.to_string(), weights),
        ]
        .into();
        let entries = files
            .iter()
            .map(|(name, bytes)| {
                let entry = FileEntry {
                    size: bytes.len() as u64,
                    sha256: sha256_hex(bytes),
                };
                (name.clone(), entry)
            })
            .collect();
        let manifest = Manifest {
            format: FORMAT.into(),
            dtype,
            files: entries,
        };
        Self {
            files,
            manifest: Some(manifest),
        }
    }

    /// Adds (or replaces) a file and its manifest entry: the calibration `calibrate` fits.
    /// A bundle read without a manifest (an HF checkpoint folder) gains one, as f32 (what
    /// merging assumes of such a folder).
    /// This bundle with `from`'s [`FRAMING`] files.
    pub fn with_framing_of(self, from: &Bundle) -> Self {
        FRAMING
            .iter()
            .fold(self, |b, name| match from.files.get(*name) {
                Some(bytes) => b.with_file(name, bytes.clone()),
                None => b,
            })
    }

    pub fn with_file(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.files.insert(name.to_string(), bytes);
        let entry = |b: &Vec<u8>| FileEntry {
            size: b.len() as u64,
            sha256: sha256_hex(b),
        };
        match &mut self.manifest {
            Some(m) => {
                m.files.insert(name.to_string(), entry(&self.files[name]));
            }
            None => {
                self.manifest = Some(Manifest {
                    format: FORMAT.into(),
                    dtype: Dtype::F32,
                    files: self
                        .files
                        .iter()
                        .map(|(k, b)| (k.clone(), entry(b)))
                        .collect(),
                });
            }
        }
        self
    }

    /// The names of the LoRA adapters the bundle holds beside its base weights
    /// (`adapters/NAME/adapter_config.json` and `adapter_model.safetensors`, HF PEFT format).
    pub fn adapters(&self) -> Vec<String> {
        self.files
            .keys()
            .filter_map(|k| k.strip_prefix(ADAPTERS)?.strip_suffix(ADAPTER_WEIGHTS))
            .filter(|name| self.files.contains_key(&adapter_file(name, ADAPTER_CONFIG)))
            .map(str::to_string)
            .collect()
    }

    /// The adapter `name`'s config and weights.
    pub fn adapter(&self, name: &str) -> Result<(&[u8], &[u8])> {
        let get = |file: &str| {
            self.files
                .get(&adapter_file(name, file))
                .map(Vec::as_slice)
                .ok_or_else(|| {
                    Error::Weights(format!(
                        "the bundle has no adapter {name:?} (it has: {})",
                        self.adapters().join(", ")
                    ))
                })
        };
        Ok((get(ADAPTER_CONFIG)?, get(ADAPTER_WEIGHTS_FILE)?))
    }

    /// Adds a PEFT adapter under `name`, beside the base weights (not merged).
    pub fn with_adapter(self, name: &str, config: Vec<u8>, weights: Vec<u8>) -> Result<Self> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::Weights(format!(
                "adapter name {name:?}: use letters, digits, - and _"
            )));
        }
        Ok(self
            .with_file(&adapter_file(name, ADAPTER_CONFIG), config)
            .with_file(&adapter_file(name, ADAPTER_WEIGHTS_FILE), weights))
    }

    /// The bundle's calibrated-confidence map, if it holds one.
    pub fn calibration(&self) -> Result<Option<crate::protocol::calibration::Calibration>> {
        self.files
            .get(crate::protocol::calibration::FILE)
            .map(|b| crate::protocol::calibration::Calibration::parse(b))
            .transpose()
    }

    /// The bundle's out-of-distribution model, if it holds one.
    pub fn ood(&self) -> Result<Option<crate::protocol::ood::Ood>> {
        self.files
            .get(crate::protocol::ood::FILE)
            .map(|b| crate::protocol::ood::Ood::parse(b))
            .transpose()
    }

    /// The checkpoint's image processor settings, if the bundle holds them.
    pub fn processor(&self) -> Result<Option<crate::image::processor::Settings>> {
        let name = crate::image::processor::FILE;
        self.files
            .get(name)
            .map(|b| {
                let text = std::str::from_utf8(b)
                    .map_err(|_| Error::Config(format!("{name} is not UTF-8")))?;
                crate::image::processor::Settings::from_json(text)
            })
            .transpose()
    }

    /// Assembles a bundle from fetched files (the browser's path) and checks it.
    pub fn from_files(files: BTreeMap<String, Vec<u8>>, manifest: Option<&[u8]>) -> Result<Self> {
        let manifest = manifest.map(Manifest::parse).transpose()?;
        for name in files.keys() {
            check_name(name)?;
        }
        let bundle = Self { files, manifest };
        bundle.verify()?;
        Ok(bundle)
    }

    /// Reads a bundle folder (or an HF checkpoint folder) and checks it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Weights(format!(
                "{} is not a model folder",
                dir.display()
            )));
        }
        let read = |name: &str| -> Result<Vec<u8>> {
            let path = dir.join(name);
            let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
            if meta.len() > MAX_FILE_BYTES {
                return Err(Error::Weights(format!("{} is too large", path.display())));
            }
            std::fs::read(&path).map_err(|e| Error::io(&path, e))
        };
        let manifest = dir
            .join(MANIFEST)
            .exists()
            .then(|| read(MANIFEST))
            .transpose()?;
        // The index of a checkpoint split into several safetensors files.
        const SHARD_INDEX: &str = "model.safetensors.index.json";
        if let Some(name) = FILES.iter().find(|name| !dir.join(name).is_file()) {
            let sharded = *name == WEIGHTS && dir.join(SHARD_INDEX).is_file();
            return Err(Error::Weights(if sharded {
                format!(
                    "{} holds a sharded checkpoint ({SHARD_INDEX}); medground reads one {WEIGHTS}: \
                     merge the shards into one file first",
                    dir.display()
                )
            } else {
                format!(
                    "{} has no {name}: a model folder (a medground bundle or an HF Idefics3 / \
                     SmolVLM checkpoint) holds {}",
                    dir.display(),
                    FILES.join(", ")
                )
            }));
        }
        let mut files: BTreeMap<String, Vec<u8>> = FILES
            .iter()
            .map(|name| Ok((name.to_string(), read(name)?)))
            .collect::<Result<_>>()?;
        // Files a bundle may hold besides those (listed in its manifest when present).
        let optional = [
            crate::protocol::calibration::FILE,
            crate::protocol::ood::FILE,
        ]
        .into_iter()
        .chain(FRAMING);
        for name in optional {
            if dir.join(name).is_file() {
                files.insert(name.to_string(), read(name)?);
            }
        }
        // Everything else the manifest lists (adapters/NAME/...), by checked relative names;
        // without a manifest, the adapters found in adapters/.
        match manifest.as_deref().map(Manifest::parse).transpose()? {
            Some(m) => {
                for name in m.files.keys() {
                    if !files.contains_key(name) {
                        files.insert(name.clone(), read(name)?);
                    }
                }
            }
            None => {
                let entries = std::fs::read_dir(dir.join(ADAPTERS)).into_iter().flatten();
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    for file in [ADAPTER_CONFIG, ADAPTER_WEIGHTS_FILE] {
                        let rel = adapter_file(&name, file);
                        if check_name(&rel).is_ok() && dir.join(&rel).is_file() {
                            files.insert(rel.clone(), read(&rel)?);
                        }
                    }
                }
            }
        }
        Self::from_files(files, manifest.as_deref())
    }

    /// Writes the files and the manifest into `dir`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for (name, bytes) in &self.files {
            check_name(name)?;
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        }
        if let Some(m) = &self.manifest {
            let path = dir.join(MANIFEST);
            let text = serde_json::to_string_pretty(m).expect("manifest serialises");
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }

    /// Every required file is present; with a manifest, every size and sha256 matches.
    pub fn verify(&self) -> Result<()> {
        for name in FILES {
            if !self.files.contains_key(name) {
                return Err(Error::Weights(format!("the bundle has no {name}")));
            }
        }
        let Some(manifest) = &self.manifest else {
            return Ok(());
        };
        for (name, entry) in &manifest.files {
            let bytes = self.files.get(name).ok_or_else(|| {
                Error::Weights(format!("{name} is listed in the manifest but absent"))
            })?;
            if bytes.len() as u64 != entry.size {
                return Err(Error::Weights(format!(
                    "{name} has {} bytes, the manifest says {}",
                    bytes.len(),
                    entry.size
                )));
            }
            let digest = sha256_hex(bytes);
            if digest != entry.sha256 {
                return Err(Error::Weights(format!(
                    "{name} fails its checksum: sha256 {digest}, the manifest says {}",
                    entry.sha256
                )));
            }
        }
        Ok(())
    }

    pub fn file(&self, name: &str) -> &[u8] {
        &self.files[name]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_catch_a_changed_byte() {
        let b = Bundle::new("{}".into(), b"tok".to_vec(), vec![1, 2, 3], Dtype::F32);
        b.verify().unwrap();
        let mut bad = b.clone();
        bad.files.get_mut(WEIGHTS).unwrap()[1] = 9;
        let e = bad.verify().unwrap_err().to_string();
        assert!(e.contains("model.safetensors fails its checksum"), "{e}");
        let mut short = b.clone();
        short.files.get_mut(TOKENIZER).unwrap().pop();
        assert!(
            short
                .verify()
                .unwrap_err()
                .to_string()
                .contains("tokenizer.json has 2 bytes")
        );
        let mut missing = b;
        missing.files.remove(CONFIG);
        assert!(
            missing
                .verify()
                .unwrap_err()
                .to_string()
                .contains("no config.json")
        );
    }
}
