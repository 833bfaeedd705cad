//! The fused functions as compositions of Burn's ops: the trait's default bodies (every backend
//! but flex), and flex's own for what its kernels do not take.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};
use burn::prelude::*;

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

/// `silu(gate) * up`.
pub fn swiglu<B: Backend>(gate: FloatTensor<B>, up: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mul(silu::<B>(gate), up)
}

pub fn swiglu_backward_gate<B: Backend>(
    gate: FloatTensor<B>,
    up: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    silu_backward::<B>(gate, B::float_mul(grad, up))
}

pub fn swiglu_backward_up<B: Backend>(
    gate: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    B::float_mul(grad, silu::<B>(gate))
}

/// `x cos + rotate_half(x) sin` (with `inverse`, `- rotate_half(x) sin`) over `x`
/// `[batch, positions, heads, head_dim]`, the tables `[positions, head_dim]`.
pub fn rope<B: Backend>(
    x: FloatTensor<B>,
    cos: FloatTensor<B>,
    sin: FloatTensor<B>,
    inverse: bool,
) -> FloatTensor<B> {
    use burn::tensor::Slice;
    let [b, s, h, d] = x.shape().dims();
    let half = d / 2;
    let part = |r: std::ops::Range<usize>| {
        let slices = [0..b, 0..s, 0..h, r].map(Slice::from);
        B::float_slice(x.clone(), &slices)
    };
    let (x1, x2) = (part(0..half), part(half..d));
    let rotated = B::float_cat(vec![B::float_neg(x2), x1], 3);
    let table = |t: FloatTensor<B>| B::float_reshape(t, [1, s, 1, d].into());
    let sin = table(sin);
    let sin = if inverse { B::float_neg(sin) } else { sin };
    B::float_add(
        B::float_mul(x.clone(), table(cos)),
        B::float_mul(rotated, sin),
    )
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

pub fn rms_norm<B: Backend>(x: FloatTensor<B>, gamma: FloatTensor<B>, eps: f64) -> FloatTensor<B> {
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
pub fn gelu_tanh_backward<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
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
