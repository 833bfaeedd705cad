//! SigLIP-style vision tower, `model.vision_model` in an Idefics3 checkpoint:
//! patch embedding + learned positions, pre-norm transformer layers, final layer norm.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;

use super::config::VisionConfig;
use super::lora::linear;
use crate::kernels::{attention, gelu_tanh};

/// `embeddings`: a strided convolution cuts the image into patches, then a learned position
/// vector is added to each. Inputs are full square images, so positions are `0..num_patches`.
#[derive(Module, Debug)]
pub struct VisionEmbeddings {
    pub patch_embedding: Conv2d,
    pub position_embedding: Embedding,
}

impl VisionEmbeddings {
    pub fn new(c: &VisionConfig, device: &Device) -> Self {
        let p = c.patch_size;
        Self {
            patch_embedding: Conv2dConfig::new([c.num_channels, c.hidden_size], [p, p])
                .with_stride([p, p])
                .init(device),
            position_embedding: EmbeddingConfig::new(c.patches_per_side().pow(2), c.hidden_size)
                .init(device),
        }
    }

    /// `[batch, channels, H, W]` -> `[batch, patches, hidden]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<3> {
        let patches = self.patch_embedding.forward(pixels);
        let [b, d, h, w] = patches.dims();
        let x = patches.reshape([b, d, h * w]).swap_dims(1, 2);
        let positions = self.position_embedding.weight.val().narrow(0, 0, h * w);
        x + positions.unsqueeze_dim::<3>(0)
    }
}

/// Bidirectional multi-head attention with biases (`self_attn`).
#[derive(Module, Debug)]
pub struct VisionAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    pub num_heads: usize,
}

impl VisionAttention {
    pub fn new(c: &VisionConfig, device: &Device) -> Self {
        let d = c.hidden_size;
        let lin = || LinearConfig::new(d, d).init(device);
        Self {
            q_proj: lin(),
            k_proj: lin(),
            v_proj: lin(),
            out_proj: lin(),
            num_heads: c.num_attention_heads,
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, s, d] = x.dims();
        let h = self.num_heads;
        let heads = |t: Tensor<3>| t.reshape([b, s, h, d / h]).swap_dims(1, 2);
        let q = heads(linear(&self.q_proj, x.clone()));
        let k = heads(linear(&self.k_proj, x.clone()));
        let v = heads(linear(&self.v_proj, x));
        let out = attention(q, k, v, false);
        linear(&self.out_proj, out.swap_dims(1, 2).reshape([b, s, d]))
    }
}

/// Two-layer perceptron (`mlp.fc1`, `mlp.fc2`).
#[derive(Module, Debug)]
pub struct VisionMlp {
    pub fc1: Linear,
    pub fc2: Linear,
    /// `gelu_pytorch_tanh` (the SigLIP default) when true, exact GELU otherwise.
    pub tanh_gelu: bool,
}

impl VisionMlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = linear(&self.fc1, x);
        let x = if self.tanh_gelu {
            gelu_tanh(x)
        } else {
            gelu(x)
        };
        linear(&self.fc2, x)
    }
}

/// `encoder.layers.N`: pre-norm attention and MLP blocks with residuals.
#[derive(Module, Debug)]
pub struct VisionEncoderLayer {
    pub layer_norm1: LayerNorm,
    pub self_attn: VisionAttention,
    pub layer_norm2: LayerNorm,
    pub mlp: VisionMlp,
}

impl VisionEncoderLayer {
    pub fn new(c: &VisionConfig, device: &Device) -> Self {
        let norm = || {
            LayerNormConfig::new(c.hidden_size)
                .with_epsilon(c.layer_norm_eps)
                .init(device)
        };
        Self {
            layer_norm1: norm(),
            self_attn: VisionAttention::new(c, device),
            layer_norm2: norm(),
            mlp: VisionMlp {
                fc1: LinearConfig::new(c.hidden_size, c.intermediate_size).init(device),
                fc2: LinearConfig::new(c.intermediate_size, c.hidden_size).init(device),
                tanh_gelu: c.hidden_act == crate::model::config::Activation::GeluTanh,
            },
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x));
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct VisionEncoder {
    pub layers: Vec<VisionEncoderLayer>,
}

/// `model.vision_model`.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    pub embeddings: VisionEmbeddings,
    pub encoder: VisionEncoder,
    pub post_layernorm: LayerNorm,
}

impl VisionTransformer {
    pub fn new(c: &VisionConfig, device: &Device) -> Self {
        Self {
            embeddings: VisionEmbeddings::new(c, device),
            encoder: VisionEncoder {
                layers: (0..c.num_hidden_layers)
                    .map(|_| VisionEncoderLayer::new(c, device))
                    .collect(),
            },
            post_layernorm: LayerNormConfig::new(c.hidden_size)
                .with_epsilon(c.layer_norm_eps)
                .init(device),
        }
    }

    /// `[batch, channels, H, W]` pixels in [-1, 1] -> `[batch, patches, hidden]` features.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<3> {
        let mut x = self.embeddings.forward(pixels);
        for layer in &self.encoder.layers {
            x = layer.forward(x);
        }
        self.post_layernorm.forward(x)
    }
}
