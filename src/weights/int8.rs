//! Int8 weights for smaller browser bundles: every 2-D weight matrix (PyTorch layout `[out, in]`)
//! stored as `i8` with one f32 scale per output row (`NAME.int8_scale`, symmetric, max-abs / 127),
//! everything else as f16. Loading dequantizes back to an ordinary f32 safetensors file, so the
//! one loader (and its missing/misshapen-tensor checks) serves every dtype.

use std::collections::BTreeMap;

use safetensors::tensor::TensorView;
use safetensors::{Dtype as St, SafeTensors};

use super::raw::{read_f32, write_as};
use crate::error::{Error, Result};

/// Suffix of the per-row scale beside each quantized weight.
pub const SCALE: &str = ".int8_scale";

fn bad(e: impl std::fmt::Display) -> Error {
    Error::Weights(format!("unreadable safetensors: {e}"))
}

fn serialize(tensors: &BTreeMap<String, (St, Vec<usize>, Vec<u8>)>) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(k, (dtype, shape, data))| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|v| (k.clone(), v))
                .map_err(bad)
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(bad)
}

/// An f32 or f16 safetensors file -> the int8 form.
pub fn quantize(bytes: &[u8]) -> Result<Vec<u8>> {
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let values = read_f32(&view)?;
        if shape.len() == 2 && name.ends_with(".weight") {
            let cols = shape[1];
            let mut q = Vec::with_capacity(values.len());
            let mut scales = Vec::with_capacity(shape[0]);
            for row in values.chunks_exact(cols) {
                let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
                q.extend(
                    row.iter()
                        .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8 as u8),
                );
                scales.push(scale);
            }
            let scale_bytes = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
            out.insert(
                format!("{name}{SCALE}"),
                (St::F32, vec![shape[0]], scale_bytes),
            );
            out.insert(name, (St::I8, shape, q));
        } else {
            out.insert(name, (St::F16, shape, write_as(&values, St::F16)));
        }
    }
    serialize(&out)
}

/// Whether `bytes` hold int8 weights (and so need [`dequantize`]).
pub fn is_quantized(bytes: &[u8]) -> Result<bool> {
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    Ok(st.tensors().iter().any(|(_, v)| v.dtype() == St::I8))
}

/// The int8 form -> an f32 safetensors file. A weight without its scale (or the reverse), or a
/// scale of the wrong length, is an error naming the tensor.
pub fn dequantize(bytes: &[u8]) -> Result<Vec<u8>> {
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if let Some(weight) = name.strip_suffix(SCALE) {
            match st.tensor(weight) {
                Ok(w) if w.dtype() == St::I8 => continue,
                _ => {
                    return Err(Error::Weights(format!(
                        "{name} has no int8 tensor {weight} beside it"
                    )));
                }
            }
        }
        let shape = view.shape().to_vec();
        let values = if view.dtype() == St::I8 {
            let scale = st
                .tensor(&format!("{name}{SCALE}"))
                .map_err(|_| Error::Weights(format!("int8 tensor {name} has no {SCALE}")))?;
            let scales = read_f32(&scale)?;
            let cols = shape.get(1).copied().unwrap_or(0);
            if shape.len() != 2 || scales.len() != shape[0] {
                return Err(Error::Weights(format!(
                    "int8 tensor {name} {shape:?} does not match its {} scales",
                    scales.len()
                )));
            }
            view.data()
                .iter()
                .enumerate()
                .map(|(i, &b)| b as i8 as f32 * scales[i / cols])
                .collect()
        } else {
            read_f32(&view)?
        };
        out.insert(name, (St::F32, shape, write_as(&values, St::F32)));
    }
    serialize(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
        let map = tensors
            .iter()
            .map(|(n, s, v)| {
                let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (n.to_string(), (St::F32, s.clone(), data))
            })
            .collect();
        serialize(&map).unwrap()
    }

    #[test]
    fn round_trip_is_within_half_a_step_per_row() {
        let w: Vec<f32> = (0..12).map(|i| (i as f32 - 5.0) * 0.37).collect();
        let bytes = file(&[
            ("a.weight", vec![3, 4], w.clone()),
            ("a.bias", vec![3], vec![0.5, -1.0, 2.0]),
        ]);
        let q = quantize(&bytes).unwrap();
        assert!(is_quantized(&q).unwrap() && !is_quantized(&bytes).unwrap());
        let back = dequantize(&q).unwrap();
        let st = SafeTensors::deserialize(&back).unwrap();
        assert_eq!(st.names().len(), 2);
        let got = read_f32(&st.tensor("a.weight").unwrap()).unwrap();
        for (row, (g, o)) in got.chunks(4).zip(w.chunks(4)).enumerate() {
            let step = o.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
            for (a, b) in g.iter().zip(o) {
                assert!((a - b).abs() <= step / 2.0 + 1e-6, "row {row}: {a} vs {b}");
            }
        }
        assert_eq!(
            read_f32(&st.tensor("a.bias").unwrap()).unwrap(),
            vec![0.5, -1.0, 2.0]
        );
    }

    #[test]
    fn a_missing_scale_is_an_error() {
        let q = quantize(&file(&[("a.weight", vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])])).unwrap();
        let st = SafeTensors::deserialize(&q).unwrap();
        let w = st.tensor("a.weight").unwrap();
        let only = BTreeMap::from([(
            "a.weight".to_string(),
            (St::I8, w.shape().to_vec(), w.data().to_vec()),
        )]);
        let err = dequantize(&serialize(&only).unwrap()).unwrap_err();
        assert!(err.to_string().contains("int8_scale"), "{err}");
    }
}
