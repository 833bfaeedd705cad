//! Fused activations: SiLU (the text MLP's gate) and `gelu_pytorch_tanh` (the vision MLP's),
//! each one pass forward and one pass backward through Burn's backend extension.
//!
//! Burn composes `silu` as `x * sigmoid(x)` and our tanh GELU as five elementwise ops, each a pass
//! over the tensor, the sigmoid a scalar loop on one thread in the CPU backend (flex); under
//! autodiff each op keeps its own state and has its own backward pass (docs/speed.md). Here, on
//! flex, the forward pass is one vectorised, threaded pass (`simd.rs`) that keeps only the input,
//! and the backward pass is another. Other backends (wgpu, WebGPU, CUDA) run the composition,
//! which their own fusion compiles into one kernel. The same functions run in the browser's CPU
//! fallback (one thread there).

pub mod attention;
pub mod norm;
pub mod simd;

use burn::backend::TensorMetadata;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, Flex, backend_extension};
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
        let scores = Self::float_matmul(q, Self::float_swap_dims(k, 2, 3));
        Self::float_matmul(Self::softmax_rows(scores, scale, causal), v)
    }
}

/// The same functions as compositions of Burn's ops: the bodies on every backend but flex.
mod composed {
    use super::*;

    const K: f64 = 0.797_884_560_802_865_4; // sqrt(2 / pi)
    const C: f64 = 0.044715;

    pub fn silu<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
        B::float_mul(x.clone(), B::sigmoid(x))
    }

    /// `grad * s * (1 + x (1 - s))`, `s = sigmoid(x)`.
    pub fn silu_backward<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        let s = B::sigmoid(x.clone());
        let one_minus = B::float_add_scalar(B::float_neg(s.clone()), 1.0.into());
        let inner = B::float_add_scalar(B::float_mul(x, one_minus), 1.0.into());
        B::float_mul(grad, B::float_mul(s, inner))
    }

    /// `2 sqrt(2/pi) (x + 0.044715 x^3)`: `gelu_tanh(x) = x * sigmoid(this)`.
    fn arg<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
        let cube = B::float_mul(B::float_mul(x.clone(), x.clone()), x.clone());
        let inner = B::float_add(x, B::float_mul_scalar(cube, C.into()));
        B::float_mul_scalar(inner, (2.0 * K).into())
    }

    pub fn gelu_tanh<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
        B::float_mul(x.clone(), B::sigmoid(arg::<B>(x)))
    }

    pub fn softmax_rows<B: Backend>(x: FloatTensor<B>, scale: f64, causal: bool) -> FloatTensor<B> {
        let shape = x.shape();
        let last = shape.num_dims() - 1;
        let x = B::float_mul_scalar(x, scale.into());
        let x = if causal {
            let (queries, cols) = (shape[last - 1], shape[last]);
            let hidden: Vec<bool> = (0..queries * cols)
                .map(|i| i % cols + queries > i / cols + cols)
                .collect();
            let device = x.device();
            let mask = B::bool_from_data(TensorData::new(hidden, [queries, cols]), &device);
            let mut dims = vec![1; last - 1];
            dims.extend([queries, cols]);
            let mask = B::bool_expand(B::bool_reshape(mask, dims.into()), shape.clone());
            B::float_mask_fill(x, mask, f32::NEG_INFINITY.into())
        } else {
            x
        };
        B::softmax(x, last)
    }

    pub fn softmax_rows_backward<B: Backend>(
        p: FloatTensor<B>,
        grad: FloatTensor<B>,
        scale: f64,
    ) -> FloatTensor<B> {
        let last = p.shape().num_dims() - 1;
        let dot = B::float_sum_dim(B::float_mul(p.clone(), grad.clone()), last);
        let ds = B::float_mul(p, B::float_sub(grad, dot));
        B::float_mul_scalar(ds, scale.into())
    }

    /// `1 / sqrt(mean(x^2) + eps)` per row, the last dimension kept (as 1).
    fn inv_rms<B: Backend>(x: FloatTensor<B>, eps: f64) -> FloatTensor<B> {
        let last = x.shape().num_dims() - 1;
        let mean = B::float_mean_dim(B::float_mul(x.clone(), x), last);
        B::float_recip(B::float_sqrt(B::float_add_scalar(mean, eps.into())))
    }

    /// `gamma` shaped to broadcast over `x`'s rows.
    fn rows_of<B: Backend>(gamma: FloatTensor<B>, x: &FloatTensor<B>) -> FloatTensor<B> {
        let shape = x.shape();
        let mut dims = vec![1; shape.num_dims() - 1];
        dims.push(shape[shape.num_dims() - 1]);
        B::float_reshape(gamma, dims.into())
    }

    pub fn rms_norm<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        eps: f64,
    ) -> FloatTensor<B> {
        let gamma = rows_of::<B>(gamma, &x);
        let r = inv_rms::<B>(x.clone(), eps);
        B::float_mul(B::float_mul(x, r), gamma)
    }

    pub fn rms_norm_backward_x<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        grad: FloatTensor<B>,
        eps: f64,
    ) -> FloatTensor<B> {
        let shape = x.shape();
        let (last, d) = (shape.num_dims() - 1, shape[shape.num_dims() - 1]);
        let h = B::float_mul(grad, rows_of::<B>(gamma, &x));
        let r = inv_rms::<B>(x.clone(), eps);
        let s = B::float_sum_dim(B::float_mul(h.clone(), x.clone()), last);
        let r3 = B::float_mul(B::float_mul(r.clone(), r.clone()), r.clone());
        let k = B::float_div_scalar(B::float_mul(r3, s), (d as f64).into());
        B::float_sub(B::float_mul(h, r), B::float_mul(x, k))
    }

    pub fn rms_norm_backward_gamma<B: Backend>(
        x: FloatTensor<B>,
        grad: FloatTensor<B>,
        eps: f64,
    ) -> FloatTensor<B> {
        let shape = x.shape();
        let d = shape[shape.num_dims() - 1];
        let r = inv_rms::<B>(x.clone(), eps);
        let t = B::float_mul(B::float_mul(grad, x), r);
        let rows = shape.num_elements() / d;
        B::float_reshape(
            B::float_sum_dim(B::float_reshape(t, [rows, d].into()), 0),
            [d].into(),
        )
    }

    /// `grad * (s + x s (1 - s) 2 sqrt(2/pi) (1 + 3 c x^2))`, `s = sigmoid(arg(x))`.
    pub fn gelu_tanh_backward<B: Backend>(
        x: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> FloatTensor<B> {
        let s = B::sigmoid(arg::<B>(x.clone()));
        let one_minus = B::float_add_scalar(B::float_neg(s.clone()), 1.0.into());
        let x2 = B::float_mul(x.clone(), x.clone());
        let du = B::float_mul_scalar(
            B::float_add_scalar(B::float_mul_scalar(x2, (3.0 * C).into()), 1.0.into()),
            (2.0 * K).into(),
        );
        let slope = B::float_mul(B::float_mul(x, s.clone()), one_minus);
        B::float_mul(grad, B::float_add(B::float_mul(slope, du), s))
    }
}

/// `f` over a flex tensor's values, one fused pass; the composition `or` for other dtypes.
fn flex_map(
    x: FloatTensor<Flex>,
    f: impl Fn(f32) -> f32 + Copy + Send + Sync,
    or: fn(FloatTensor<Flex>) -> FloatTensor<Flex>,
) -> FloatTensor<Flex> {
    if x.dtype() != burn::tensor::DType::F32 {
        return or(x);
    }
    let shape = x.layout().shape().clone();
    let x = if x.as_slice::<f32>().is_some() {
        x
    } else {
        x.to_contiguous()
    };
    let values = simd::map(x.as_slice::<f32>().expect("contiguous f32"), f);
    Flex::float_from_data(TensorData::new(values, shape), &Default::default())
}

/// `f` over two same-shaped flex tensors' values.
fn flex_zip(
    x: FloatTensor<Flex>,
    y: FloatTensor<Flex>,
    f: impl Fn(f32, f32) -> f32 + Copy + Send + Sync,
    or: fn(FloatTensor<Flex>, FloatTensor<Flex>) -> FloatTensor<Flex>,
) -> FloatTensor<Flex> {
    let f32s = [x.dtype(), y.dtype()]
        .iter()
        .all(|d| *d == burn::tensor::DType::F32);
    if !f32s || x.layout().shape() != y.layout().shape() {
        return or(x, y);
    }
    let shape = x.layout().shape().clone();
    let dense = |t: FloatTensor<Flex>| {
        if t.as_slice::<f32>().is_some() {
            t
        } else {
            t.to_contiguous()
        }
    };
    let (x, y) = (dense(x), dense(y));
    let values = simd::zip(
        x.as_slice::<f32>().expect("contiguous f32"),
        y.as_slice::<f32>().expect("contiguous f32"),
        f,
    );
    Flex::float_from_data(TensorData::new(values, shape), &Default::default())
}

impl Fused for Flex {
    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_map(x, simd::silu, composed::silu::<Flex>)
    }
    fn silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_zip(
            x,
            grad,
            simd::silu_backward,
            composed::silu_backward::<Flex>,
        )
    }
    fn gelu_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_map(x, simd::gelu_tanh, composed::gelu_tanh::<Flex>)
    }
    fn gelu_tanh_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_zip(
            x,
            grad,
            simd::gelu_tanh_backward,
            composed::gelu_tanh_backward::<Flex>,
        )
    }
    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        let Some((xs, g, _)) = flex_rms(&x, &gamma, None) else {
            return composed::rms_norm::<Flex>(x, gamma, eps);
        };
        let y = norm::forward(
            xs.as_slice().expect("dense"),
            g.as_slice().expect("dense"),
            eps as f32,
        );
        flex_from(y, x.layout().shape().clone())
    }
    fn rms_norm_backward_x(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        let Some((xs, g, Some(dy))) = flex_rms(&x, &gamma, Some(&grad)) else {
            return composed::rms_norm_backward_x::<Flex>(x, gamma, grad, eps);
        };
        let slice = |t: &FloatTensor<Flex>| t.as_slice::<f32>().expect("dense").to_vec();
        let dx = norm::backward_x(&slice(&xs), &slice(&g), &slice(&dy), eps as f32);
        flex_from(dx, x.layout().shape().clone())
    }
    fn rms_norm_backward_gamma(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        let shape = x.layout().shape().clone();
        let d = shape[shape.num_dims() - 1];
        let ones = flex_from(vec![1.0; d], [d].into());
        let Some((xs, _, Some(dy))) = flex_rms(&x, &ones, Some(&grad)) else {
            return composed::rms_norm_backward_gamma::<Flex>(x, grad, eps);
        };
        let dg = norm::backward_gamma(
            xs.as_slice().expect("dense"),
            dy.as_slice().expect("dense"),
            d,
            eps as f32,
        );
        flex_from(dg, [d].into())
    }
    fn softmax_rows(x: FloatTensor<Self>, scale: f64, causal: bool) -> FloatTensor<Self> {
        let dims = x.layout().shape().clone();
        let n = dims.num_dims();
        if x.dtype() != burn::tensor::DType::F32 || n < 2 {
            return composed::softmax_rows::<Flex>(x, scale, causal);
        }
        let (queries, cols) = (dims[n - 2], dims[n - 1]);
        let x = dense(x);
        let p = attention::softmax_rows(
            x.as_slice().expect("dense"),
            cols,
            queries,
            scale as f32,
            causal,
        );
        Flex::float_from_data(TensorData::new(p, dims), &Default::default())
    }
    fn softmax_rows_backward(
        p: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: f64,
    ) -> FloatTensor<Self> {
        let dims = p.layout().shape().clone();
        let f32s = [p.dtype(), grad.dtype()]
            .iter()
            .all(|d| *d == burn::tensor::DType::F32);
        if !f32s || grad.layout().shape() != &dims {
            return composed::softmax_rows_backward::<Flex>(p, grad, scale);
        }
        let cols = dims[dims.num_dims() - 1];
        let (p, grad) = (dense(p), dense(grad));
        let ds = attention::softmax_rows_backward(
            p.as_slice().expect("dense"),
            grad.as_slice().expect("dense"),
            cols,
            scale as f32,
        );
        Flex::float_from_data(TensorData::new(ds, dims), &Default::default())
    }
}

/// RMSNorm's kernels on f32 flex tensors; `None` for others (the composition then runs).
fn flex_rms(
    x: &FloatTensor<Flex>,
    gamma: &FloatTensor<Flex>,
    grad: Option<&FloatTensor<Flex>>,
) -> Option<(
    FloatTensor<Flex>,
    FloatTensor<Flex>,
    Option<FloatTensor<Flex>>,
)> {
    let f32 = |t: &FloatTensor<Flex>| t.dtype() == burn::tensor::DType::F32;
    let shape = x.layout().shape();
    let d = shape[shape.num_dims() - 1];
    let fits = f32(x) && f32(gamma) && gamma.layout().shape().num_elements() == d;
    if !fits || grad.is_some_and(|g| !f32(g) || g.layout().shape() != shape) {
        return None;
    }
    Some((
        dense(x.clone()),
        dense(gamma.clone()),
        grad.map(|g| dense(g.clone())),
    ))
}

fn flex_from(values: Vec<f32>, shape: burn::tensor::Shape) -> FloatTensor<Flex> {
    Flex::float_from_data(TensorData::new(values, shape), &Default::default())
}

/// A contiguous copy of `t` where it is not one already.
fn dense(t: FloatTensor<Flex>) -> FloatTensor<Flex> {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
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

/// `gelu_pytorch_tanh`: `x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2`, computed as
/// `x * sigmoid(2u)` (the same function).
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_flex(&x) {
        Tensor::from_dispatch(<Dispatch as Fused>::gelu_tanh(x.into_dispatch()))
    } else {
        Tensor::from_dispatch(composed::gelu_tanh::<Dispatch>(x.into_dispatch()))
    }
}

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

#[cfg(feature = "autodiff")]
mod tracked;

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::Distribution;

    /// Values and input gradients of `fused` against `composed` on flex under autodiff, over
    /// values wide enough to reach both tails, to 1e-5 of the largest.
    fn parity(fused: fn(Tensor<3>) -> Tensor<3>, composed: fn(Tensor<3>) -> Tensor<3>) {
        let device = Device::flex().autodiff();
        device.seed(7);
        let x = Tensor::<3>::random([4, 33, 257], Distribution::Normal(0.0, 4.0), &device);
        let w = Tensor::<3>::random([4, 33, 257], Distribution::Default, &device);
        let run = |f: fn(Tensor<3>) -> Tensor<3>| {
            let x = x.clone().require_grad();
            let y = f(x.clone());
            let grads = (y.clone() * w.clone()).sum().backward();
            let g = x.grad(&grads).expect("gradient");
            (
                y.inner().into_data().try_to_vec::<f32>().unwrap(),
                g.into_data().try_to_vec::<f32>().unwrap(),
            )
        };
        let ((y1, g1), (y2, g2)) = (run(fused), run(composed));
        for (name, a, b) in [("values", y1, y2), ("gradients", g1, g2)] {
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = a
                .iter()
                .zip(&b)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst <= 1e-5 * scale, "{name}: off by {worst} of {scale}");
        }
        // Without autodiff too, and on a non-contiguous view.
        let plain = x.inner().swap_dims(1, 2);
        let (a, b) = (fused(plain.clone()), composed(plain));
        let worst = (a - b).abs().max().into_scalar::<f32>();
        assert!(worst <= 1e-4, "plain view: off by {worst}");
    }

    #[test]
    fn fused_silu_matches_the_composition() {
        parity(super::silu, burn::tensor::activation::silu);
    }

    #[test]
    fn fused_gelu_tanh_matches_the_composition() {
        parity(super::gelu_tanh, |x| {
            Tensor::from_dispatch(super::composed::gelu_tanh::<burn::backend::Dispatch>(
                x.into_dispatch(),
            ))
        });
    }

    /// Attention under autodiff as one op against Burn's decomposition: outputs and the gradients
    /// of Q, K and V, causal (queries = keys) and not, grouped-query heads repeated as the text
    /// model repeats them.
    #[test]
    fn fused_attention_matches_burns() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let r =
            |dims: [usize; 4]| Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.5), &device);
        let (q, k, v, w) = (
            r([3, 4, 37, 16]),
            r([3, 2, 37, 16]),
            r([3, 2, 37, 16]),
            r([3, 4, 37, 16]),
        );
        let repeat = |x: Tensor<4>| {
            x.unsqueeze_dim::<5>(2)
                .expand([3, 2, 2, 37, 16])
                .reshape([3, 4, 37, 16])
        };
        for causal in [true, false] {
            let run = |fused: bool| {
                let (q, k, v) = (
                    q.clone().require_grad(),
                    k.clone().require_grad(),
                    v.clone().require_grad(),
                );
                let (kk, vv) = (repeat(k.clone()), repeat(v.clone()));
                let out = if fused {
                    super::attention(q.clone(), kk, vv, causal)
                } else {
                    let options = burn::tensor::ops::AttentionModuleOptions {
                        is_causal: causal,
                        ..Default::default()
                    };
                    burn::tensor::module::attention(q.clone(), kk, vv, None, None, options)
                };
                let grads = (out.clone() * w.clone()).sum().backward();
                let flat = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
                [
                    flat(out.inner()),
                    flat(q.grad(&grads).unwrap()),
                    flat(k.grad(&grads).unwrap()),
                    flat(v.grad(&grads).unwrap()),
                ]
            };
            let (ours, burns) = (run(true), run(false));
            for (name, a, b) in ["output", "dQ", "dK", "dV"]
                .iter()
                .zip(&ours)
                .zip(&burns)
                .map(|((n, a), b)| (n, a, b))
            {
                let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                let worst = a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    worst <= 1e-5 * scale,
                    "causal {causal} {name}: off by {worst} of {scale}"
                );
            }
        }
    }

    /// RMSNorm as one op against Burn's module: outputs, the input's and gamma's gradients.
    #[test]
    fn fused_rms_norm_matches_burns() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let mut norm = burn::nn::RmsNormConfig::new(48)
            .with_epsilon(1e-5)
            .init(&device);
        let gamma = Tensor::<1>::random([48], Distribution::Normal(1.0, 0.3), &device);
        norm.gamma = burn::module::Param::from_tensor(gamma);
        let x = Tensor::<3>::random([5, 19, 48], Distribution::Normal(0.0, 2.0), &device);
        let w = Tensor::<3>::random([5, 19, 48], Distribution::Default, &device);
        let run = |fused: bool| {
            let x = x.clone().require_grad();
            let y = if fused {
                super::rms_norm(&norm, x.clone())
            } else {
                norm.forward(x.clone())
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            let flat = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
            let dg = norm.gamma.val().grad(&grads).expect("gamma's gradient");
            [
                flat(y.inner()),
                flat(x.grad(&grads).unwrap()),
                flat(dg.reshape([1, 1, 48])),
            ]
        };
        let (ours, burns) = (run(true), run(false));
        for ((name, a), b) in ["output", "dx", "dgamma"].iter().zip(&ours).zip(&burns) {
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst <= 1e-5 * scale, "{name}: off by {worst} of {scale}");
        }
    }

    /// The composed bodies (other backends' path) give the fused kernels' values.
    #[test]
    fn compositions_match_the_kernels() {
        use burn::backend::Dispatch;
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 7, 7], Distribution::Normal(0.0, 2.0), &device);
        let g = Tensor::<4>::random([2, 3, 7, 7], Distribution::Default, &device);
        let d = |t: &Tensor<4>| t.clone().into_dispatch();
        for causal in [true, false] {
            let ours = Tensor::<4>::from_dispatch(<Dispatch as super::Fused>::softmax_rows(
                d(&x),
                0.7,
                causal,
            ));
            let theirs = Tensor::<4>::from_dispatch(super::composed::softmax_rows::<Dispatch>(
                d(&x),
                0.7,
                causal,
            ));
            assert!((ours.clone() - theirs).abs().max().into_scalar::<f32>() < 1e-6);
            let a = Tensor::<4>::from_dispatch(<Dispatch as super::Fused>::softmax_rows_backward(
                d(&ours),
                d(&g),
                0.7,
            ));
            let b = Tensor::<4>::from_dispatch(super::composed::softmax_rows_backward::<Dispatch>(
                d(&ours),
                d(&g),
                0.7,
            ));
            assert!((a - b).abs().max().into_scalar::<f32>() < 1e-6);
        }
        let gamma = Tensor::<1>::random([7], Distribution::Default, &device).into_dispatch();
        let a = Tensor::<4>::from_dispatch(<Dispatch as super::Fused>::rms_norm_backward_x(
            d(&x),
            gamma.clone(),
            d(&g),
            1e-5,
        ));
        let b = Tensor::<4>::from_dispatch(super::composed::rms_norm_backward_x::<Dispatch>(
            d(&x),
            gamma,
            d(&g),
            1e-5,
        ));
        assert!((a - b).abs().max().into_scalar::<f32>() < 1e-5);
        let a = Tensor::<1>::from_dispatch(<Dispatch as super::Fused>::rms_norm_backward_gamma(
            d(&x),
            d(&g),
            1e-5,
        ));
        let b = Tensor::<1>::from_dispatch(super::composed::rms_norm_backward_gamma::<Dispatch>(
            d(&x),
            d(&g),
            1e-5,
        ));
        assert!((a - b).abs().max().into_scalar::<f32>() < 1e-5);
    }

    /// The composition is the tanh formula itself (checked against it directly).
    #[test]
    fn gelu_tanh_is_pytorchs_tanh_formula() {
        let device = Device::flex();
        let x = Tensor::<1>::from_floats([-5.0, -1.5, -0.3, 0.0, 0.2, 1.0, 3.0, 8.0], &device);
        let reference = burn::tensor::activation::gelu_approximate(x.clone());
        let worst = (super::gelu_tanh(x) - reference)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(worst < 1e-6, "{worst}");
    }
}
