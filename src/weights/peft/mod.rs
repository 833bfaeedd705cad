//! LoRA adapters in the HF PEFT format (`adapter_config.json` + `adapter_model.safetensors`, PEFT
//! key names, PyTorch layout), so adapters trained at scale with PyTorch come here and ours go
//! there. Import merges in weight space: `W += alpha / r * B @ A` on the HF-layout base.

use std::collections::BTreeMap;

use safetensors::{Dtype as StDtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use super::bundle::{Bundle, WEIGHTS};
use super::raw::{read_f32, write_as};
use crate::error::{Error, Result};

mod model;
mod zip;

#[cfg(not(target_arch = "wasm32"))]
pub use model::export;
pub use model::{export_async, load_into};
pub use zip::{unzip, zip};

pub const CONFIG: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
pub(crate) const PREFIX: &str = "base_model.model.";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    pub peft_type: String,
    pub r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    pub target_modules: TargetModules,
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    pub bias: String,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default)]
    pub task_type: Option<String>,
    /// PEFT's variants of LoRA that merge differently: rank-stabilised scaling is read, the
    /// others are refused by name.
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_rslora: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_dora: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub fan_in_fan_out: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub lora_bias: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rank_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alpha_pattern: BTreeMap<String, serde_json::Value>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// PEFT's `target_modules`: module names (the last part of a module's path) or one regular
/// expression matched against the whole path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    Names(Vec<String>),
    Pattern(String),
}

impl AdapterConfig {
    /// The factor of `B @ A` in the merge, after refusing the variants this merge cannot do.
    pub(crate) fn scale(&self) -> Result<f32> {
        let refuse = |what: &str| {
            Err(Error::Weights(format!(
                "{CONFIG}: {what} is not supported (plain LoRA, or rank-stabilised, only)"
            )))
        };
        if self.peft_type != "LORA" {
            return refuse(&format!("peft_type {}", self.peft_type));
        }
        if self.bias != "none" || self.lora_bias {
            return refuse(&format!("bias {:?}", self.bias));
        }
        if self.use_dora {
            return refuse("use_dora");
        }
        if self.fan_in_fan_out {
            return refuse("fan_in_fan_out");
        }
        if !self.rank_pattern.is_empty() || !self.alpha_pattern.is_empty() {
            return refuse("a rank_pattern or alpha_pattern");
        }
        if self.r == 0 {
            return refuse("r 0");
        }
        let r = self.r as f64;
        Ok((self.lora_alpha / if self.use_rslora { r.sqrt() } else { r }) as f32)
    }
}

/// Merges a PEFT adapter into a bundle's HF-layout weights and returns the new bundle.
pub fn merge(base: &Bundle, config_json: &[u8], adapter: &[u8]) -> Result<Bundle> {
    let config: AdapterConfig = serde_json::from_slice(config_json)
        .map_err(|e| Error::Weights(format!("{CONFIG}: {e}")))?;
    let scale = config.scale()?;
    let lora = SafeTensors::deserialize(adapter)
        .map_err(|e| Error::Weights(format!("{WEIGHTS_FILE}: {e}")))?;
    let weights = SafeTensors::deserialize(base.file(WEIGHTS))
        .map_err(|e| Error::Weights(format!("{WEIGHTS}: {e}")))?;
    let mut out: BTreeMap<String, (StDtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (name, view) in weights.tensors() {
        out.insert(
            name,
            (view.dtype(), view.shape().to_vec(), view.data().to_vec()),
        );
    }
    let mut used = 0;
    for (name, view) in lora.tensors() {
        let Some(path) = name.strip_prefix(PREFIX) else {
            return Err(Error::Weights(format!(
                "{WEIGHTS_FILE}: unexpected tensor {name}"
            )));
        };
        if let Some(module) = path.strip_suffix(".lora_A.weight") {
            let b_name = format!("{PREFIX}{module}.lora_B.weight");
            let b = lora
                .tensor(&b_name)
                .map_err(|_| Error::Weights(format!("{WEIGHTS_FILE}: {b_name} is missing")))?;
            let key = format!("{module}.weight");
            let (dtype, shape, bytes) = out.get_mut(&key).ok_or_else(|| {
                Error::Weights(format!("adapter tensor {name} has no base weight {key}"))
            })?;
            let (r, d_in) = (view.shape()[0], view.shape()[1]);
            let (d_out, r_b) = (b.shape()[0], b.shape()[1]);
            if r != r_b || *shape != vec![d_out, d_in] {
                return Err(Error::Weights(format!(
                    "{name}: shapes {:?} and {:?} do not fit {key} {shape:?}",
                    view.shape(),
                    b.shape()
                )));
            }
            let (a, bm) = (read_f32(&view)?, read_f32(&b)?);
            let base_view = TensorView::new(*dtype, shape.clone(), bytes)
                .map_err(|e| Error::Weights(e.to_string()))?;
            let mut w = read_f32(&base_view)?;
            for o in 0..d_out {
                for k in 0..r {
                    let coef = scale * bm[o * r + k];
                    if coef != 0.0 {
                        let row = &a[k * d_in..(k + 1) * d_in];
                        for (x, av) in w[o * d_in..(o + 1) * d_in].iter_mut().zip(row) {
                            *x += coef * av;
                        }
                    }
                }
            }
            *bytes = write_as(&w, *dtype);
            used += 1;
        } else if path.ends_with(".lora_B.weight") {
            continue;
        } else {
            // modules_to_save: the tensor replaces the base's.
            let (dtype, shape, bytes) = out.get_mut(path).ok_or_else(|| {
                Error::Weights(format!("adapter tensor {name} has no base weight {path}"))
            })?;
            if *shape != view.shape() {
                return Err(Error::Weights(format!(
                    "{name}: shape {:?} does not fit {shape:?}",
                    view.shape()
                )));
            }
            *bytes = write_as(&read_f32(&view)?, *dtype);
            used += 1;
        }
    }
    if used == 0 {
        return Err(Error::Weights(format!(
            "{WEIGHTS_FILE} holds no LoRA tensors"
        )));
    }
    let views: Vec<(String, TensorView)> = out
        .iter()
        .map(|(k, (d, s, b))| {
            (
                k.clone(),
                TensorView::new(*d, s.clone(), b).expect("consistent view"),
            )
        })
        .collect();
    let merged = safetensors::serialize(views, None).map_err(|e| Error::Weights(e.to_string()))?;
    let dtype = base
        .manifest
        .as_ref()
        .map_or(super::Dtype::F32, |m| m.dtype);
    let config = String::from_utf8(base.file(super::bundle::CONFIG).to_vec())
        .map_err(|_| Error::Config("config.json is not UTF-8".into()))?;
    let merged = Bundle::new(
        config,
        base.file(super::bundle::TOKENIZER).to_vec(),
        merged,
        dtype,
    );
    Ok(merged.with_framing_of(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<f32> {
        let json = format!(
            r#"{{"peft_type": "LORA", "r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
                "target_modules": ["q_proj"], "bias": "none"{extra}}}"#
        );
        serde_json::from_str::<AdapterConfig>(&json)
            .unwrap()
            .scale()
    }

    #[test]
    fn scales_plain_and_rank_stabilised_lora_and_refuses_other_variants() {
        assert_eq!(config("").unwrap(), 2.0);
        assert_eq!(config(r#", "use_rslora": true"#).unwrap(), 8.0);
        for (extra, named) in [
            (r#", "use_dora": true"#, "use_dora"),
            (r#", "fan_in_fan_out": true"#, "fan_in_fan_out"),
            (r#", "rank_pattern": {"q_proj": 8}"#, "rank_pattern"),
            (r#", "lora_bias": true"#, "bias"),
        ] {
            let err = config(extra).unwrap_err().to_string();
            assert!(err.contains(named), "{err}");
        }
    }
}
