//! Checkpoints: model record, optimizer state and progress, written to a fresh folder and then
//! renamed into place, so a run killed at any moment leaves its last complete checkpoint.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Optimizer steps completed.
    pub step: usize,
    pub samples: u64,
}

pub fn dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

fn err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Other(format!("checkpoint {what}: {e:?}"))
}

pub fn save<M: Module>(
    out: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    progress: Progress,
) -> Result<()> {
    let tmp = out.join("checkpoint.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let record = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| err("model", e))?;
    std::fs::write(tmp.join("model.bpk"), &*record)
        .map_err(|e| Error::io(tmp.join("model.bpk"), e))?;
    let optim = optim.into_bytes().map_err(|e| err("optimizer", e))?;
    std::fs::write(tmp.join("optim.bpk"), &*optim)
        .map_err(|e| Error::io(tmp.join("optim.bpk"), e))?;
    let state = serde_json::to_string(&progress).expect("progress serialises");
    std::fs::write(tmp.join("progress.json"), state)
        .map_err(|e| Error::io(tmp.join("progress.json"), e))?;
    let old = out.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&old);
    let current = dir(out);
    if current.exists() {
        std::fs::rename(&current, &old).map_err(|e| Error::io(&current, e))?;
    }
    std::fs::rename(&tmp, &current).map_err(|e| Error::io(&tmp, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Whether a load error says only that parameters under the `new` prefixes are missing.
fn only_new_missing(msg: &str, new: &[&str]) -> bool {
    let Some(list) = msg.strip_prefix("Missing tensors: ") else {
        return false;
    };
    let names: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
    !names.is_empty() && names.iter().all(|n| new.iter().any(|p| n.starts_with(p)))
}

/// The last complete checkpoint, if any (a rename interrupted midway leaves `checkpoint.old`).
pub fn latest(out: &Path) -> Option<PathBuf> {
    [dir(out), out.join("checkpoint.old")]
        .into_iter()
        .find(|d| d.join("progress.json").is_file())
}

/// Loads the checkpoint in `from` into `model` and `optim`. Parameters whose path starts with
/// one of `new` (a head added when resuming, e.g. the dense probe's offsets) may be missing
/// from it and keep their fresh values; any other mismatch is an error.
pub fn load<M: Module>(
    from: &Path,
    model: M,
    optim: ModuleOptimizer,
    new: &[&str],
) -> Result<(M, ModuleOptimizer, Progress)> {
    let read =
        |name: &str| std::fs::read(from.join(name)).map_err(|e| Error::io(from.join(name), e));
    let record = || {
        ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(read("model.bpk")?))
            .map_err(|e| err("model", e))
    };
    let model = match model.clone().try_load_record(record()?) {
        Ok(m) => m,
        Err(burn::store::RecordError::Validation(msg)) if only_new_missing(&msg, new) => model
            .try_load_record(record()?.allow_partial(true))
            .map_err(|e| err("model", e))?,
        Err(e) => return Err(err("model", e)),
    };
    let optim = optim
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(read("optim.bpk")?))
        .map_err(|e| err("optimizer", e))?;
    let progress =
        serde_json::from_slice(&read("progress.json")?).map_err(|e| err("progress", e))?;
    Ok((model, optim, progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_heads_added_on_resume_may_be_missing() {
        let new = ["offsets."];
        assert!(only_new_missing(
            r#"Missing tensors: ["offsets.weight", "offsets.bias"]"#,
            &new
        ));
        assert!(!only_new_missing(
            r#"Missing tensors: ["offsets.weight", "model.lm_head.weight"]"#,
            &new
        ));
        assert!(!only_new_missing(r#"Missing tensors: []"#, &new));
        assert!(!only_new_missing(
            r#"Unused tensors: ["offsets.weight"]"#,
            &new
        ));
    }
}
