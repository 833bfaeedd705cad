//! HF-layout safetensors <-> the Burn module tree. Names already match (the module tree mirrors
//! transformers'); the adapters transpose Linear weights and rename norm parameters. A load that
//! misses, leaves over or misshapes any tensor is an error naming it.

use burn::module::Module;
use burn::store::{
    BurnToPyTorchAdapter, FloatCastAdapter, HalfPrecisionAdapter, ModuleAdapter, ModuleSnapshot,
    PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::DType;

use super::Dtype;
use crate::error::{Error, Result};

/// Loads `bytes` (an HF-layout safetensors file, f32, f16 or our int8) into `module`, computing
/// in f32.
///
/// The tensors go in pieces of about [`PIECE`] bytes taken from the end of the file, which is
/// cut after each piece: the weights are held once and a piece at the peak, not twice (1 GB less
/// at SmolVLM-256M's size, docs/speed.md).
pub fn load<M: ModuleSnapshot + Module>(module: &mut M, bytes: Vec<u8>) -> Result<()> {
    load_in_pieces(module, bytes, PIECE)
}

/// [`load`] in pieces of about `piece` bytes (at least one tensor each).
pub fn load_in_pieces<M: ModuleSnapshot + Module>(
    module: &mut M,
    bytes: Vec<u8>,
    piece: usize,
) -> Result<()> {
    let mut bytes = if super::int8::is_quantized(&bytes)? {
        super::int8::dequantize(&bytes)?
    } else {
        bytes
    };
    let bad =
        |e: safetensors::SafeTensorError| Error::Weights(format!("unreadable safetensors: {e}"));
    let (header, metadata) = safetensors::SafeTensors::read_metadata(&bytes).map_err(bad)?;
    let start = 8 + header;
    let mut tensors: Vec<(String, safetensors::tensor::TensorInfo)> = metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, info.clone()))
        .collect();
    tensors.sort_by_key(|(_, info)| std::cmp::Reverse(info.data_offsets.0));
    // What no piece had (missing from the model's point of view), what no parameter took.
    let mut missing: Option<Vec<String>> = None;
    let (mut unused, mut errors) = (Vec::new(), Vec::new());
    let mut rest = tensors.as_slice();
    loop {
        let mut size = 0;
        let count = rest
            .iter()
            .take_while(|(_, info)| {
                size += info.data_offsets.1 - info.data_offsets.0;
                size <= piece
            })
            .count()
            .max(1)
            .min(rest.len());
        let (chunk, later) = rest.split_at(count);
        let views = chunk
            .iter()
            .map(|(name, info)| {
                let (a, b) = info.data_offsets;
                let data = &bytes[start + a..start + b];
                safetensors::tensor::TensorView::new(info.dtype, info.shape.clone(), data)
                    .map(|view| (name.clone(), view))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(bad)?;
        let blob = safetensors::serialize(views, None).map_err(bad)?;
        let result = load_piece(module, blob)?;
        errors.extend(result.errors.iter().map(|e| e.to_string()));
        let now: Vec<String> = result.missing.into_iter().map(|(name, _)| name).collect();
        missing = Some(match missing {
            None => now,
            Some(before) => before.into_iter().filter(|n| now.contains(n)).collect(),
        });
        unused.extend(result.unused);
        if let Some((_, info)) = chunk.last() {
            bytes.truncate(start + info.data_offsets.0);
            bytes.shrink_to_fit();
        }
        rest = later;
        if rest.is_empty() {
            break;
        }
    }
    let mut missing = missing.unwrap_or_default();
    missing.sort();
    unused.sort();
    errors.sort();
    if let Some(e) = errors.first() {
        return Err(Error::Weights(e.clone()));
    }
    if let Some(name) = missing.first() {
        return Err(Error::Weights(format!(
            "tensor {name} is missing ({} missing in all)",
            missing.len()
        )));
    }
    if let Some(name) = unused.first() {
        return Err(Error::Weights(format!(
            "tensor {name} does not belong to this model ({} unused in all)",
            unused.len()
        )));
    }
    Ok(())
}

/// The bytes of tensors [`load`] takes at a time.
const PIECE: usize = 64 << 20;

/// One safetensors file's tensors into `module`, the others left as they are.
fn load_piece<M: ModuleSnapshot + Module>(
    module: &mut M,
    bytes: Vec<u8>,
) -> Result<burn::store::ApplyResult> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
        .allow_partial(true)
        .validate(false);
    module
        .load_from(&mut store)
        .map_err(|e| Error::Weights(format!("unreadable safetensors: {e}")))
}

/// Saves `module` as an HF-layout safetensors file.
pub fn save<M: ModuleSnapshot + Module>(module: &M, dtype: Dtype) -> Result<Vec<u8>> {
    let mut store = match dtype {
        Dtype::F32 | Dtype::Int8 => {
            SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter)
        }
        Dtype::F16 => SafetensorsStore::from_bytes(None)
            .with_to_adapter(BurnToPyTorchAdapter.chain(HalfPrecisionAdapter::new())),
    };
    module
        .save_into(&mut store)
        .map_err(|e| Error::Weights(format!("cannot serialise weights: {e}")))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| Error::Weights(format!("cannot serialise weights: {e}")))?;
    match dtype {
        Dtype::Int8 => super::int8::quantize(&bytes),
        _ => Ok(bytes),
    }
}
