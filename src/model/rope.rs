//! Rotary position embedding in the "rotate half" layout of HF Llama: the first and second half
//! of each head's dimensions form the (real, imaginary) pairs.

use burn::prelude::*;

/// Cosine and sine tables for one run of positions `start..start + len`.
pub struct Rope {
    cos: Tensor<4>,
    sin: Tensor<4>,
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
        let table = |v: Vec<f32>| {
            Tensor::<1>::from_data(TensorData::new(v, [len * head_dim]), device)
                .reshape([1, 1, len, head_dim])
        };
        Self {
            cos: table(cos),
            sin: table(sin),
        }
    }

    /// `[batch, heads, len, head_dim]` -> same shape, rotated by position.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, s, d] = x.dims();
        let half = d / 2;
        let x1 = x.clone().slice([0..b, 0..h, 0..s, 0..half]);
        let x2 = x.clone().slice([0..b, 0..h, 0..s, half..d]);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}
