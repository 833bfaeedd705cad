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
pub fn load<M: ModuleSnapshot + Module>(module: &mut M, bytes: Vec<u8>) -> Result<()> {
    let bytes = if super::int8::is_quantized(&bytes)? {
        super::int8::dequantize(&bytes)?
    } else {
        bytes
    };
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
        .allow_partial(true)
        .validate(false);
    let result = module
        .load_from(&mut store)
        .map_err(|e| Error::Weights(format!("unreadable safetensors: {e}")))?;
    if let Some(e) = result.errors.first() {
        return Err(Error::Weights(e.to_string()));
    }
    if let Some((name, _)) = result.missing.first() {
        return Err(Error::Weights(format!(
            "tensor {name} is missing ({} missing in all)",
            result.missing.len()
        )));
    }
    if let Some(name) = result.unused.first() {
        return Err(Error::Weights(format!(
            "tensor {name} does not belong to this model ({} unused in all)",
            result.unused.len()
        )));
    }
    Ok(())
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
