//! Rotary position embedding in the "rotate half" layout of HF Llama: the first and second half
//! of each head's dimensions form the (real, imaginary) pairs.

use burn::prelude::*;

use super::fused;

/// Cosine and sine tables for one run of positions `start..start + len`, `[len, head_dim]`.
pub struct Rope {
    cos: Tensor<2>,
    sin: Tensor<2>,
}

impl Rope {
    pub fn new(theta: f64, head_dim: usize, start: usize, len: usize, device: &Device) -> Self {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(len * head_dim);
        let mut sin = Vec::with_capacity(len * head_dim);
        for pos in start..start + len {
            for j in 0..head_dim {
                // inv_freq is computed in f32, as transformers does.
                let inv = (1.0 / theta.powf((2 * (j % half)) as f64 / head_dim as f64)) as f32;
                let angle = pos as f32 * inv;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let table =
            |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [len, head_dim]), device);
        Self {
            cos: table(cos),
            sin: table(sin),
        }
    }

    /// `[batch, len, heads, head_dim]` -> same shape, rotated by position (`fused::rope`).
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        fused::rope(x, self.cos.clone(), self.sin.clone())
    }
}
