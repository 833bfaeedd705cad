//! The CPU backend's kernels (beside `model/`, which holds the checkpoint's module tree and calls
//! these): fused kernels through Burn's backend extension: SiLU and SwiGLU (the text MLP's gate), the
//! tanh GELU (the vision MLP's), RMSNorm, rotary positions, and attention for training, each one
//! pass forward and one backward.
//!
//! Burn composes these from elementwise ops, each a pass over the tensor (the sigmoid a scalar
//! loop on one thread in the CPU backend, flex), and under autodiff each op keeps its own state
//! and has its own backward pass (docs/speed.md). Here, on flex, each is one vectorised, threaded
//! pass over the values (`flex.rs`: `simd.rs`, `norm.rs`, `attention.rs`), and under autodiff
//! one tracked op with a hand-written backward pass (`tracked.rs`). Other backends (wgpu,
//! WebGPU, CUDA) run the composition (`composed.rs`), which their own fusion compiles. The same
//! functions run in the browser's CPU fallback (one thread there).
//!
//! Training's matrix products (the linear layers' `affine`, attention's `product`) are here too:
//! natively on flex they run through `product.rs` (`flex_products.rs` reads the tensors), in wasm
//! and on the other backends through Burn's own; and attention outside training over long
//! sequences, in blocks of query rows (`blocked.rs`, native flex).

pub mod attention;
#[cfg(not(target_arch = "wasm32"))]
mod blocked;
#[cfg(not(target_arch = "wasm32"))]
mod few_rows;
pub mod norm;
#[cfg(not(target_arch = "wasm32"))]
pub mod product;
pub mod rotary;
pub mod simd;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension};
use burn::prelude::*;

/// The extension: composed bodies by default, fused on flex, with a one-pass backward under
/// autodiff.
#[backend_extension(Flex: cfg(all()), Autodiff: cfg(feature = "autodiff"))]
pub trait Fused: Backend {
    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::silu::<Self>(x)
    }
    /// `grad * d silu(x) / dx`.
    fn silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::silu_backward::<Self>(x, grad)
    }
    fn gelu_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::gelu_tanh::<Self>(x)
    }
    /// `grad * d gelu_tanh(x) / dx`.
    fn gelu_tanh_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::gelu_tanh_backward::<Self>(x, grad)
    }
    /// `silu(gate) * up`: the text MLP's gated activation.
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::swiglu::<Self>(gate, up)
    }
    /// The gate's gradient, `grad * up * silu'(gate)`.
    fn swiglu_backward_gate(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed::swiglu_backward_gate::<Self>(gate, up, grad)
    }
    /// The up projection's gradient, `grad * silu(gate)`.
    fn swiglu_backward_up(gate: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::swiglu_backward_up::<Self>(gate, grad)
    }
    /// Rotary positions over `x` `[batch, positions, heads, head_dim]`, the tables
    /// `[positions, head_dim]`; `inverse` turns them back (the backward pass: `rotary.rs`).
    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        inverse: bool,
    ) -> FloatTensor<Self> {
        composed::rope::<Self>(x, cos, sin, inverse)
    }
    /// `a + b` of one shape: Burn's sum, over the threads on flex (flex's own is one thread
    /// below 4M values).
    fn add(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_add(a, b)
    }
    /// `a b` over the last two dimensions, the leading ones broadcast: Burn's `matmul`.
    fn product(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_matmul(a, b)
    }
    /// One of causal attention's products (`part` says which, `attention::Causal`): on flex the
    /// values the mask makes irrelevant are skipped (left 0), half of each product's work;
    /// elsewhere the whole `product`.
    fn causal_product(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        part: attention::Causal,
    ) -> FloatTensor<Self> {
        let _ = part;
        Self::product(a, b)
    }
    /// `x w` over `x`'s last dimension, `w` `[d_in, d_out]`: Burn's `linear` without a bias.
    fn affine(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::linear(x, w, None)
    }
    /// `x w + bias`, `bias` `[d_out]`: Burn's `linear` (outside training: not tracked here).
    fn affine_bias(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::linear(x, w, Some(bias))
    }
    /// `softmax(scale * x)` over the last dimension; with `causal`, masked as `attention.rs` says.
    fn softmax_rows(x: FloatTensor<Self>, scale: f64, causal: bool) -> FloatTensor<Self> {
        composed::softmax_rows::<Self>(x, scale, causal)
    }
    /// The gradient of the scores from the probabilities `p` and their gradient.
    fn softmax_rows_backward(
        p: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: f64,
    ) -> FloatTensor<Self> {
        composed::softmax_rows_backward::<Self>(p, grad, scale)
    }
    /// RMSNorm over the last dimension: `x / sqrt(mean(x^2) + eps) * gamma`.
    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        composed::rms_norm::<Self>(x, gamma, eps)
    }
    /// `grad`'s share of the input's gradient.
    fn rms_norm_backward_x(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        composed::rms_norm_backward_x::<Self>(x, gamma, grad, eps)
    }
    /// `grad`'s share of gamma's gradient, `[d]`.
    fn rms_norm_backward_gamma(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        composed::rms_norm_backward_gamma::<Self>(x, grad, eps)
    }
    /// `softmax(scale Q K^T) V`, `[batch, heads, queries, head_dim]`.
    fn attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f64,
        causal: bool,
    ) -> FloatTensor<Self> {
        let scores = Self::product(q, Self::float_swap_dims(k, 2, 3));
        Self::product(Self::softmax_rows(scores, scale, causal), v)
    }
}

/// Whether `x` lives on flex (with or without autodiff): the fused path's backend. The
/// environment variable `MEDGROUND_FUSED=0` turns the fused path off (to measure it against
/// Burn's composition: docs/speed.md).
fn on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *ON.get_or_init(|| std::env::var("MEDGROUND_FUSED").map_or(true, |v| v != "0"));
    on && matches!(x.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// `x * sigmoid(x)`.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_flex(&x) {
        Tensor::from_dispatch(<Dispatch as Fused>::silu(x.into_dispatch()))
    } else {
        burn::tensor::activation::silu(x)
    }
}

/// `silu(gate) * up` (SwiGLU's gating), one pass on flex.
pub fn swiglu<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    if on_flex(&gate) {
        let out = <Dispatch as Fused>::swiglu(gate.into_dispatch(), up.into_dispatch());
        Tensor::from_dispatch(out)
    } else {
        burn::tensor::activation::silu(gate) * up
    }
}

/// `a + b` of one shape; over the threads on flex.
pub fn add<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    if on_flex(&a) && a.dims() == b.dims() {
        Tensor::from_dispatch(<Dispatch as Fused>::add(
            a.into_dispatch(),
            b.into_dispatch(),
        ))
    } else {
        a + b
    }
}

/// Rotary positions over `x` `[batch, positions, heads, head_dim]` with the tables `cos` and
/// `sin` `[positions, head_dim]`: one pass on flex, Burn's composition elsewhere.
pub fn rope(x: Tensor<4>, cos: Tensor<2>, sin: Tensor<2>) -> Tensor<4> {
    let out = if on_flex(&x) {
        <Dispatch as Fused>::rope(
            x.into_dispatch(),
            cos.into_dispatch(),
            sin.into_dispatch(),
            false,
        )
    } else {
        composed::rope::<Dispatch>(
            x.into_dispatch(),
            cos.into_dispatch(),
            sin.into_dispatch(),
            false,
        )
    };
    Tensor::from_dispatch(out)
}

/// `gelu_pytorch_tanh`: `x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2`, computed as
/// `x * sigmoid(2u)` (the same function).
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_flex(&x) {
        Tensor::from_dispatch(<Dispatch as Fused>::gelu_tanh(x.into_dispatch()))
    } else {
        Tensor::from_dispatch(composed::gelu_tanh::<Dispatch>(x.into_dispatch()))
    }
}

/// `x w + bias`: Burn's `linear` (`w` `[d_in, d_out]`). On flex in training (under autodiff),
/// one tracked op whose products, forward and backward, are split over the threads
/// (`product.rs`); outside it the same products, and a few rows (a new token) streamed through
/// `w` once (`few_rows.rs`); elsewhere Burn's. Flex's own product outside training allocates
/// each output twice over, adds the bias on one thread, and runs a new token's product on one
/// thread (the prefill and new tokens timed both ways: docs/speed.md).
pub fn affine<const D: usize>(x: Tensor<D>, w: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<D> {
    let tracked = x.is_autodiff();
    if !on_flex(&x) {
        return burn::tensor::module::linear(x, w, bias);
    }
    let (x, w) = (x.into_dispatch(), w.into_dispatch());
    match bias {
        // Under autodiff the bias is added by Burn's (broadcast) sum, which tracks its gradient.
        Some(b) if tracked => {
            Tensor::from_dispatch(<Dispatch as Fused>::affine(x, w)) + b.unsqueeze()
        }
        Some(b) => Tensor::from_dispatch(<Dispatch as Fused>::affine_bias(x, w, b.into_dispatch())),
        None => Tensor::from_dispatch(<Dispatch as Fused>::affine(x, w)),
    }
}

/// Queries times keys from which attention outside training takes `blocked.rs` on flex: the
/// tiny model's vision tower (196 x 196) gains (docs/speed.md); one new token against the
/// cache (1 x 1100 at SmolVLM's size) stays with flex's.
const LONG: usize = 16 * 1024;

/// `softmax(Q K^T / sqrt(head_dim)) V` over `[batch, heads, tokens, head_dim]`, with `causal`
/// each query seeing the keys up to its position (aligned bottom-right, as Burn's mask is).
/// Training on flex takes the one-op path (`attention.rs`); elsewhere Burn's attention (on flex
/// without autodiff, its own fused forward pass).
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, causal: bool) -> Tensor<4> {
    if q.is_autodiff() && on_flex(&q) {
        let scale = 1.0 / (q.dims()[3] as f64).sqrt();
        let out = <Dispatch as Fused>::attention(
            q.into_dispatch(),
            k.into_dispatch(),
            v.into_dispatch(),
            scale,
            causal,
        );
        return Tensor::from_dispatch(out);
    }
    let [_, _, queries, d] = q.dims();
    if on_flex(&q) && queries * k.dims()[2] >= LONG {
        let scale = 1.0 / (d as f64).sqrt();
        let (q, k, v) = (q.into_dispatch(), k.into_dispatch(), v.into_dispatch());
        return Tensor::from_dispatch(<Dispatch as Fused>::attention(q, k, v, scale, causal));
    }
    let options = burn::tensor::ops::AttentionModuleOptions {
        is_causal: causal,
        ..Default::default()
    };
    burn::tensor::module::attention(q, k, v, None, None, options)
}

/// Burn's `RmsNorm` module, fused on flex.
pub fn rms_norm<const D: usize>(norm: &burn::nn::RmsNorm, x: Tensor<D>) -> Tensor<D> {
    if !on_flex(&x) {
        return norm.forward(x);
    }
    let gamma = norm.gamma.val().into_dispatch();
    Tensor::from_dispatch(<Dispatch as Fused>::rms_norm(
        x.into_dispatch(),
        gamma,
        norm.epsilon,
    ))
}

mod composed;
mod flex;
mod flex_products;
#[cfg(test)]
mod tests;
#[cfg(feature = "autodiff")]
mod tracked;
