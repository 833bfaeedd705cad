//! LoRA adapters in the HF PEFT format (`adapter_config.json` + `adapter_model.safetensors`, PEFT
//! key names, PyTorch layout), so adapters trained at scale with PyTorch come here and ours go
//! there. Import merges in weight space: `W += alpha / r * B @ A` on the HF-layout base.

use std::collections::BTreeMap;

use burn::prelude::*;
use safetensors::{Dtype as StDtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use super::bundle::{Bundle, WEIGHTS};
use super::raw::{read_f32, write_as};
use crate::error::{Error, Result};
use crate::model::Idefics3;

pub const CONFIG: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
const PREFIX: &str = "base_model.model.";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    pub peft_type: String,
    pub r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    pub target_modules: Vec<String>,
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    pub bias: String,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default)]
    pub task_type: Option<String>,
}

/// A 2-D f32 matrix in row-major order.
struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

fn to_matrix(t: Tensor<2>) -> Result<Matrix> {
    let [rows, cols] = t.dims();
    let data = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Weights(format!("{e:?}")))?;
    Ok(Matrix { rows, cols, data })
}

fn bytes_of(m: &Matrix) -> Vec<u8> {
    m.data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The adapter of a trained model: every text-model Linear that carries LoRA factors, and the
/// connector when it was trained (`modules_to_save`).
pub fn export(
    model: &Idefics3,
    rank: usize,
    alpha: f64,
    connector: bool,
) -> Result<(String, Vec<u8>)> {
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    let mut targets = std::collections::BTreeSet::new();
    for (i, layer) in model.model.text_model.layers.iter().enumerate() {
        let a = &layer.self_attn;
        let m = &layer.mlp;
        let linears = [
            ("self_attn.q_proj", &a.q_proj),
            ("self_attn.k_proj", &a.k_proj),
            ("self_attn.v_proj", &a.v_proj),
            ("self_attn.o_proj", &a.o_proj),
            ("mlp.gate_proj", &m.gate_proj),
            ("mlp.up_proj", &m.up_proj),
            ("mlp.down_proj", &m.down_proj),
        ];
        for (name, linear) in linears {
            let Some(adapter) = linear.weight.adapter() else {
                continue;
            };
            // Burn: delta = a [in, r] @ b [r, out]; PEFT: lora_A [r, in], lora_B [out, r].
            let a_t = to_matrix(adapter.a.val().transpose())?;
            let b_t = to_matrix(adapter.b.val().transpose())?;
            let key = format!("{PREFIX}model.text_model.layers.{i}.{name}");
            tensors.insert(
                format!("{key}.lora_A.weight"),
                (vec![a_t.rows, a_t.cols], bytes_of(&a_t)),
            );
            tensors.insert(
                format!("{key}.lora_B.weight"),
                (vec![b_t.rows, b_t.cols], bytes_of(&b_t)),
            );
            targets.insert(name.rsplit('.').next().expect("name").to_string());
        }
    }
    if connector {
        let w = to_matrix(
            model
                .model
                .connector
                .modality_projection
                .proj
                .weight
                .val()
                .transpose(),
        )?;
        tensors.insert(
            format!("{PREFIX}model.connector.modality_projection.proj.weight"),
            (vec![w.rows, w.cols], bytes_of(&w)),
        );
    }
    let config = AdapterConfig {
        peft_type: "LORA".into(),
        r: rank,
        lora_alpha: alpha,
        lora_dropout: 0.0,
        target_modules: targets.into_iter().collect(),
        modules_to_save: connector.then(|| vec!["modality_projection".to_string()]),
        bias: "none".into(),
        base_model_name_or_path: None,
        task_type: None,
    };
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(k, (shape, data))| {
            (
                k.clone(),
                TensorView::new(StDtype::F32, shape.clone(), data).expect("consistent view"),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Weights(e.to_string()))?;
    Ok((
        serde_json::to_string_pretty(&config).expect("config serialises"),
        bytes,
    ))
}

/// Merges a PEFT adapter into a bundle's HF-layout weights and returns the new bundle.
pub fn merge(base: &Bundle, config_json: &[u8], adapter: &[u8]) -> Result<Bundle> {
    let config: AdapterConfig = serde_json::from_slice(config_json)
        .map_err(|e| Error::Weights(format!("{CONFIG}: {e}")))?;
    if config.peft_type != "LORA" {
        return Err(Error::Weights(format!(
            "{CONFIG}: peft_type {} is not LORA",
            config.peft_type
        )));
    }
    if config.bias != "none" {
        return Err(Error::Weights(format!(
            "{CONFIG}: bias {:?} is not supported",
            config.bias
        )));
    }
    let scale = (config.lora_alpha / config.r as f64) as f32;
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
    // The base's processor settings serve the merged model as they are (a calibration does
    // not: it was fitted to the base's answers).
    let processor = crate::image::processor::FILE;
    Ok(match base.files.get(processor) {
        Some(bytes) => merged.with_file(processor, bytes.clone()),
        None => merged,
    })
}
