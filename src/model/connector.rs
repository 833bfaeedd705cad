//! `model.connector`: pixel shuffle merges each `s x s` block of neighbouring patch features into
//! one token (the analogue of the paper's 4-token merge), then one bias-free projection maps it
//! into the text model's embedding space.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::config::Idefics3Config;
use super::lora::linear;

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
        linear(&self.modality_projection.proj, self.pixel_shuffle(features))
    }

    /// The same connector at pixel-shuffle scale `s`, for starting a finer (or coarser) grid of
    /// image tokens from a trained model: each of the new projection's `s^2` per-patch blocks is
    /// the sum of the old per-patch blocks divided by `s^2`, so a region of equal patch features
    /// keeps its embedding.
    pub fn regrid(self, s: usize) -> Self {
        let old = self.scale_factor;
        let w = self.modality_projection.proj.weight.val();
        let [input, out] = w.dims();
        let d = input / (old * old);
        let block = w
            .reshape([old * old, d, out])
            .sum_dim(0)
            .reshape([d, out])
            .div_scalar((s * s) as f64);
        let proj = Linear {
            weight: burn::module::Param::from_tensor(block.repeat_dim(0, s * s)),
            bias: None,
        };
        Self {
            modality_projection: SimpleMlp { proj },
            scale_factor: s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A film of equal patch features gives every new token the embedding the old ones had.
    #[test]
    fn regrid_keeps_the_embedding_of_uniform_patches() {
        let device = Device::flex();
        device.seed(3);
        let c = Idefics3Config::tiny(100, 5);
        let conn = Connector::new(&c, &device);
        let d = c.vision_config.hidden_size;
        let seq = c.vision_config.patches_per_side().pow(2);
        let f = Tensor::<1>::random([d], burn::tensor::Distribution::Default, &device);
        let x = f.clone().reshape([1, 1, d]).repeat_dim(1, seq);
        let before = conn.forward(x.clone());
        let fine = conn.regrid(1);
        let after = fine.forward(x);
        assert_eq!(after.dims(), [1, seq, c.text_config.hidden_size]);
        let want = before
            .slice([0..1, 0..1])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let got = after
            .slice([0..1, seq - 1..seq])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
        let coarse = fine.regrid(2);
        assert_eq!(
            coarse
                .forward(f.reshape([1, 1, d]).repeat_dim(1, seq))
                .dims()[1],
            seq / 4
        );
    }
}
