//! Shared by the tests against transformers' outputs (parity, processor, structure): the
//! fixtures' `expected.safetensors` arrays and the 1e-4 comparison.
#![allow(dead_code)] // each test crate uses its own part

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;

/// Name -> (shape, f32 values) of a safetensors file of f32 tensors.
pub type Arrays = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

pub fn arrays(path: &Path) -> Arrays {
    let bytes = std::fs::read(path).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, (view.shape().to_vec(), data))
        })
        .collect()
}

/// A tensor of an array's shape and values.
pub fn tensor<const D: usize>(array: &(Vec<usize>, Vec<f32>), device: &Device) -> Tensor<D> {
    let (shape, data) = array;
    let shape: [usize; D] = shape.as_slice().try_into().expect("rank");
    Tensor::<1>::from_data(TensorData::new(data.clone(), [data.len()]), device).reshape(shape)
}

/// Same shape, and every value within 1e-4 (relative above 1).
pub fn assert_close(name: &str, got: Tensor<3>, want: &(Vec<usize>, Vec<f32>)) {
    assert_eq!(got.dims().to_vec(), want.0, "{name} shape");
    let got = got.into_data().try_to_vec::<f32>().unwrap();
    let mut worst = 0.0f32;
    for (a, b) in got.iter().zip(&want.1) {
        worst = worst.max((a - b).abs() / b.abs().max(1.0));
    }
    assert!(worst <= 1e-4, "{name}: largest difference {worst}");
}
