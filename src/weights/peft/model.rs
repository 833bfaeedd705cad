//! Between a model in memory and PEFT's files: `export_async` writes a trained model's LoRA
//! factors (and the connector, when trained) as an adapter; `load_into` puts an adapter's
//! factors back into a model that carries LoRA adapters of the same rank, so that training
//! goes on from them (the browser's fine-tune resumes this way after a reload).

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::Linear;
use burn::prelude::*;
use safetensors::{Dtype as StDtype, SafeTensors, tensor::TensorView};

use super::{AdapterConfig, CONFIG, PREFIX, TargetModules, WEIGHTS_FILE};
use crate::error::{Error, Result};
use crate::model::Idefics3;
use crate::weights::raw::read_f32;

const CONNECTOR: &str = "model.connector.modality_projection.proj.weight";

/// The text model's Linears by their HF module path (`model.text_model.layers.{i}.{name}`).
fn linears(model: &Idefics3) -> Vec<(String, &'static str, &Linear)> {
    let mut out = Vec::new();
    for (i, layer) in model.model.text_model.layers.iter().enumerate() {
        let (a, m) = (&layer.self_attn, &layer.mlp);
        for (name, linear) in [
            ("self_attn.q_proj", &a.q_proj),
            ("self_attn.k_proj", &a.k_proj),
            ("self_attn.v_proj", &a.v_proj),
            ("self_attn.o_proj", &a.o_proj),
            ("mlp.gate_proj", &m.gate_proj),
            ("mlp.up_proj", &m.up_proj),
            ("mlp.down_proj", &m.down_proj),
        ] {
            out.push((format!("model.text_model.layers.{i}.{name}"), name, linear));
        }
    }
    out
}

/// A 2-D f32 matrix read back from the device, as `[rows, cols]` and little-endian bytes.
async fn matrix(t: Tensor<2>) -> Result<(Vec<usize>, Vec<u8>)> {
    let [rows, cols] = t.dims();
    let data = crate::model::read_back(t).await?;
    Ok((
        vec![rows, cols],
        data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    ))
}

/// Blocking form of [`export_async`] for native callers.
#[cfg(not(target_arch = "wasm32"))]
pub fn export(
    model: &Idefics3,
    rank: usize,
    alpha: f64,
    connector: bool,
) -> Result<(String, Vec<u8>)> {
    pollster::block_on(export_async(model, rank, alpha, connector))
}

/// The adapter of a trained model: every text-model Linear that carries LoRA factors, and the
/// connector when it was trained (`modules_to_save`). Read back asynchronously, as WebGPU in a
/// browser needs.
pub async fn export_async(
    model: &Idefics3,
    rank: usize,
    alpha: f64,
    connector: bool,
) -> Result<(String, Vec<u8>)> {
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    let mut targets = std::collections::BTreeSet::new();
    for (key, name, linear) in linears(model) {
        let Some(adapter) = linear.weight.adapter() else {
            continue;
        };
        // Burn: delta = a [in, r] @ b [r, out]; PEFT: lora_A [r, in], lora_B [out, r].
        let a = matrix(adapter.a.val().transpose()).await?;
        let b = matrix(adapter.b.val().transpose()).await?;
        tensors.insert(format!("{PREFIX}{key}.lora_A.weight"), a);
        tensors.insert(format!("{PREFIX}{key}.lora_B.weight"), b);
        targets.insert(name.replace('.', r"\."));
    }
    if connector {
        let w = &model.model.connector.modality_projection.proj.weight;
        tensors.insert(
            format!("{PREFIX}{CONNECTOR}"),
            matrix(w.val().transpose()).await?,
        );
    }
    let config = AdapterConfig {
        peft_type: "LORA".into(),
        r: rank,
        lora_alpha: alpha,
        lora_dropout: 0.0,
        // The text model's Linears alone (names would also catch the vision tower's q/k/v_proj).
        target_modules: TargetModules::Pattern(format!(
            r"model\.text_model\.layers\.[0-9]+\.({})",
            targets.into_iter().collect::<Vec<_>>().join("|")
        )),
        modules_to_save: connector.then(|| vec!["modality_projection".to_string()]),
        bias: "none".into(),
        base_model_name_or_path: None,
        task_type: None,
        use_rslora: false,
        use_dora: false,
        fan_in_fan_out: false,
        lora_bias: false,
        rank_pattern: BTreeMap::new(),
        alpha_pattern: BTreeMap::new(),
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

/// Replaces parameters by id with new values (shaped `[rows, cols]` in Burn's layout), keeping
/// whether each takes gradients.
struct Replace(HashMap<ParamId, TensorData>);

impl ModuleMapper for Replace {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.0.remove(&param.id) {
            None => param,
            Some(data) => param.map(|t| {
                let grad = t.is_require_grad();
                Tensor::<D>::from_data(data, &t.device()).set_require_grad(grad)
            }),
        }
    }
}

/// `model` (carrying LoRA adapters of the adapter's rank, as `adapt` makes them) with the
/// factors and modules of a PEFT adapter `export_async` wrote: every adapted Linear must find
/// its pair, and every tensor of the adapter its place.
pub fn load_into(model: Idefics3, config_json: &[u8], weights: &[u8]) -> Result<Idefics3> {
    let config: AdapterConfig = serde_json::from_slice(config_json)
        .map_err(|e| Error::Weights(format!("{CONFIG}: {e}")))?;
    config.scale()?;
    let file = SafeTensors::deserialize(weights)
        .map_err(|e| Error::Weights(format!("{WEIGHTS_FILE}: {e}")))?;
    let mut left: std::collections::BTreeSet<String> =
        file.names().into_iter().map(str::to_string).collect();
    let with_connector = left.contains(&format!("{PREFIX}{CONNECTOR}"));
    let mut take = |key: String, dims: [usize; 2]| -> Result<TensorData> {
        let view = file
            .tensor(&key)
            .map_err(|_| Error::Weights(format!("{WEIGHTS_FILE}: {key} is missing")))?;
        // PEFT's layout is Burn's transposed.
        if view.shape() != [dims[1], dims[0]] {
            return Err(Error::Weights(format!(
                "{key}: shape {:?} does not fit {:?}",
                view.shape(),
                [dims[1], dims[0]]
            )));
        }
        left.remove(&key);
        let t = read_f32(&view)?;
        let (rows, cols) = (dims[0], dims[1]);
        let mut out = vec![0f32; t.len()];
        for r in 0..rows {
            for c in 0..cols {
                out[r * cols + c] = t[c * rows + r];
            }
        }
        Ok(TensorData::new(out, dims))
    };
    let mut replace = HashMap::new();
    for (key, _, linear) in linears(&model) {
        let Some(adapter) = linear.weight.adapter() else {
            continue;
        };
        if adapter.a.dims()[1] != config.r {
            return Err(Error::Weights(format!(
                "{CONFIG}: r {} but the model's adapters have rank {}",
                config.r,
                adapter.a.dims()[1]
            )));
        }
        let a = take(format!("{PREFIX}{key}.lora_A.weight"), adapter.a.dims())?;
        let b = take(format!("{PREFIX}{key}.lora_B.weight"), adapter.b.dims())?;
        replace.insert(adapter.a.id, a);
        replace.insert(adapter.b.id, b);
    }
    let connector = &model.model.connector.modality_projection.proj.weight;
    if with_connector {
        let w = take(format!("{PREFIX}{CONNECTOR}"), connector.dims())?;
        replace.insert(connector.id, w);
    }
    if let Some(extra) = left.first() {
        return Err(Error::Weights(format!(
            "{WEIGHTS_FILE}: {extra} has no place in this model"
        )));
    }
    Ok(model.map(&mut Replace(replace)))
}
