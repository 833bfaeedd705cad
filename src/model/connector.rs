//! `model.connector`: pixel shuffle merges each `s x s` block of neighbouring patch features into
//! one token (the analogue of the paper's 4-token merge), then one bias-free projection maps it
//! into the text model's embedding space.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::config::Idefics3Config;

/// `modality_projection`.
#[derive(Module, Debug)]
pub struct SimpleMlp {
    pub proj: Linear,
}

#[derive(Module, Debug)]
pub struct Connector {
    pub modality_projection: SimpleMlp,
    pub scale_factor: usize,
}

impl Connector {
    pub fn new(c: &Idefics3Config, device: &Device) -> Self {
        let s = c.scale_factor;
        let input = c.vision_config.hidden_size * s * s;
        Self {
            modality_projection: SimpleMlp {
                proj: LinearConfig::new(input, c.text_config.hidden_size)
                    .with_bias(false)
                    .init(device),
            },
            scale_factor: s,
        }
    }

    /// `[batch, side*side, d]` -> `[batch, side*side/s^2, d*s^2]`, in the element order of
    /// transformers' `Idefics3Connector.pixel_shuffle`.
    pub fn pixel_shuffle(&self, x: Tensor<3>) -> Tensor<3> {
        let s = self.scale_factor;
        let [b, seq, d] = x.dims();
        let side = (seq as f64).sqrt().round() as usize;
        let x = x.reshape([b, side, side / s, d * s]);
        let x = x.swap_dims(1, 2);
        let x = x.reshape([b, side / s, side / s, d * s * s]);
        let x = x.swap_dims(1, 2);
        x.reshape([b, seq / (s * s), d * s * s])
    }

    pub fn forward(&self, features: Tensor<3>) -> Tensor<3> {
        self.modality_projection
            .proj
            .forward(self.pixel_shuffle(features))
    }
}
