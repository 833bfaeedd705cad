//! Llama text model, `model.text_model` in an Idefics3 checkpoint: RMSNorm, rotary positions,
//! grouped-query attention with a KV cache, SwiGLU feed-forward.

use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::prelude::*;

use super::config::TextConfig;
use super::lora::linear;
use super::rope::Rope;
use crate::kernels::{attention, rms_norm, swiglu};

/// Keys and values of every layer, preallocated for `capacity` positions and written in place
/// at each step (as llama-burn's cache is), with the model's rotary tables for those positions.
#[derive(Debug)]
pub struct KvCache {
    /// Per layer, keys and values `[batch, kv_heads, capacity, head_dim]` (taken out while
    /// written, so that the write finds them unshared and goes in place).
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
    rope: Rope,
}

impl KvCache {
    /// An empty cache for `batch` rows of up to `capacity` positions of `model`, reading the
    /// rotary tables `rope` (the model's, [`Rope::for_model`]).
    pub fn new(
        model: &LlamaModel,
        batch: usize,
        capacity: usize,
        rope: &Rope,
        device: &Device,
    ) -> Self {
        let a = &model.layers[0].self_attn;
        let shape = [batch, a.num_kv_heads, capacity, a.head_dim];
        Self {
            layers: (0..model.layers.len())
                .map(|_| Some((Tensor::zeros(shape, device), Tensor::zeros(shape, device))))
                .collect(),
            len: 0,
            rope: rope.clone(),
        }
    }

    /// Number of positions already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes this step's keys/values for `layer` after the positions held and returns the
    /// history up to them; past the capacity the cache grows.
    fn write(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [b, h, s, d] = k.dims();
        let (start, end) = (self.len, self.len + s);
        let (mut kc, mut vc) = self.layers[layer]
            .take()
            .expect("a layer's cache, put back after each write");
        let capacity = kc.dims()[2];
        if end > capacity {
            let more = [b, h, end - capacity, d];
            let device = k.device();
            kc = Tensor::cat(vec![kc, Tensor::zeros(more, &device)], 2);
            vc = Tensor::cat(vec![vc, Tensor::zeros(more, &device)], 2);
        }
        let kc = kc.slice_assign([0..b, 0..h, start..end, 0..d], k);
        let vc = vc.slice_assign([0..b, 0..h, start..end, 0..d], v);
        self.layers[layer] = Some((kc.clone(), vc.clone()));
        (
            kc.slice([0..b, 0..h, 0..end, 0..d]),
            vc.slice([0..b, 0..h, 0..end, 0..d]),
        )
    }
}

/// `self_attn`: bias-free projections, `num_key_value_heads` shared by groups of query heads.
#[derive(Module, Debug)]
pub struct TextAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

impl TextAttention {
    pub fn new(c: &TextConfig, device: &Device) -> Self {
        let (d, hd) = (c.hidden_size, c.head_dim());
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Self {
            q_proj: lin(d, c.num_attention_heads * hd),
            k_proj: lin(d, c.kv_heads() * hd),
            v_proj: lin(d, c.kv_heads() * hd),
            o_proj: lin(c.num_attention_heads * hd, d),
            num_heads: c.num_attention_heads,
            num_kv_heads: c.kv_heads(),
            head_dim: hd,
        }
    }

    fn forward(
        &self,
        x: Tensor<3>,
        rope: &Rope,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let (h, kvh, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let heads = |t: Tensor<3>, n| t.reshape([b, s, n, hd]);
        let q = rope
            .apply(heads(linear(&self.q_proj, x.clone()), h))
            .swap_dims(1, 2);
        let k = rope
            .apply(heads(linear(&self.k_proj, x.clone()), kvh))
            .swap_dims(1, 2);
        let v = heads(linear(&self.v_proj, x), kvh).swap_dims(1, 2);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.write(layer, k, v),
            None => (k, v),
        };
        let (k, v) = (repeat_kv(k, h / kvh), repeat_kv(v, h / kvh));
        let out = attention(q, k, v, true);
        linear(&self.o_proj, out.swap_dims(1, 2).reshape([b, s, h * hd]))
    }
}

/// `[b, kv_heads, s, d]` -> `[b, kv_heads * n, s, d]`, each KV head serving `n` query heads.
fn repeat_kv(x: Tensor<4>, n: usize) -> Tensor<4> {
    if n == 1 {
        return x;
    }
    let [b, kvh, s, d] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([b, kvh, n, s, d])
        .reshape([b, kvh * n, s, d])
}

/// `mlp`: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct TextMlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl TextMlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = linear(&self.gate_proj, x.clone());
        linear(&self.down_proj, swiglu(gate, linear(&self.up_proj, x)))
    }
}

/// `layers.N`.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: TextAttention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: TextMlp,
}

impl DecoderLayer {
    pub fn new(c: &TextConfig, device: &Device) -> Self {
        let norm = || {
            RmsNormConfig::new(c.hidden_size)
                .with_epsilon(c.rms_norm_eps)
                .init(device)
        };
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Self {
            input_layernorm: norm(),
            self_attn: TextAttention::new(c, device),
            post_attention_layernorm: norm(),
            mlp: TextMlp {
                gate_proj: lin(c.hidden_size, c.intermediate_size),
                up_proj: lin(c.hidden_size, c.intermediate_size),
                down_proj: lin(c.intermediate_size, c.hidden_size),
            },
        }
    }
}

/// `model.text_model`.
#[derive(Module, Debug)]
pub struct LlamaModel {
    pub embed_tokens: Embedding,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
    pub rope_theta: f64,
}

impl LlamaModel {
    pub fn new(c: &TextConfig, device: &Device) -> Self {
        Self {
            embed_tokens: EmbeddingConfig::new(c.vocab_size, c.hidden_size).init(device),
            layers: (0..c.num_hidden_layers)
                .map(|_| DecoderLayer::new(c, device))
                .collect(),
            norm: RmsNormConfig::new(c.hidden_size)
                .with_epsilon(c.rms_norm_eps)
                .init(device),
            rope_theta: c.rope_theta(),
        }
    }

    /// `[batch, seq]` ids -> `[batch, seq, hidden]` embeddings.
    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.embed_tokens.forward(ids)
    }

    /// Runs the decoder over `embeds`, which continue the positions held in `cache` (if any),
    /// and returns the final normalised hidden states.
    pub fn forward(&self, embeds: Tensor<3>, mut cache: Option<&mut KvCache>) -> Tensor<3> {
        let [_, s, _] = embeds.dims();
        let head_dim = self.layers[0].self_attn.head_dim;
        let rope = match &cache {
            Some(c) if c.len + s <= c.rope.len() => c.rope.at(c.len, s),
            Some(c) => Rope::new(self.rope_theta, head_dim, c.len, s, &embeds.device()),
            None => Rope::new(self.rope_theta, head_dim, 0, s, &embeds.device()),
        };
        let mut x = embeds;
        for (i, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| (c, i));
            let h = layer.self_attn.forward(
                rms_norm(&layer.input_layernorm, x.clone()),
                &rope,
                layer_cache,
            );
            x = x + h;
            x = x.clone()
                + layer
                    .mlp
                    .forward(rms_norm(&layer.post_attention_layernorm, x));
        }
        if let Some(c) = cache {
            c.len += s;
        }
        rms_norm(&self.norm, x)
    }
}
