//! Rotary position embedding in the "rotate half" layout of HF Llama: the first and second half
//! of each head's dimensions form the (real, imaginary) pairs.

use burn::prelude::*;

use crate::kernels;

/// Cosine and sine tables for one run of positions `start..start + len`, `[len, head_dim]`.
#[derive(Debug, Clone)]
pub struct Rope {
    cos: Tensor<2>,
    sin: Tensor<2>,
}

impl Rope {
    /// The tables of every position the text model can reach (`max_position_embeddings`),
    /// built once per model; each decoding step takes its rows with [`Self::at`].
    pub fn for_model(c: &crate::model::config::TextConfig, device: &Device) -> Self {
        Self::new(
            c.rope_theta(),
            c.head_dim(),
            0,
            c.max_position_embeddings,
            device,
        )
    }

    /// The rows of positions `start..start + len`.
    pub fn at(&self, start: usize, len: usize) -> Self {
        let [_, d] = self.cos.dims();
        Self {
            cos: self.cos.clone().slice([start..start + len, 0..d]),
            sin: self.sin.clone().slice([start..start + len, 0..d]),
        }
    }

    /// Positions the tables hold.
    pub fn len(&self) -> usize {
        self.cos.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

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

    /// `[batch, len, heads, head_dim]` -> same shape, rotated by position (`kernels::rope`).
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        kernels::rope(x, self.cos.clone(), self.sin.clone())
    }
}
