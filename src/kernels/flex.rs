//! The fused functions on flex: `simd.rs`, `attention.rs` and `norm.rs` over the tensors' values
//! (f32, made contiguous); other dtypes take the composition.

use burn::backend::Flex;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::prelude::*;

use super::flex_products as products;
use super::{Fused, attention, composed, norm, rotary, simd};

/// `f` over a flex tensor's values, one fused pass; the composition `or` for other dtypes.
fn flex_map(
    x: FloatTensor<Flex>,
    f: impl Fn(f32) -> f32 + Copy + Send + Sync,
    or: fn(FloatTensor<Flex>) -> FloatTensor<Flex>,
) -> FloatTensor<Flex> {
    let Some([xs]) = dense_f32([&x]) else {
        return or(x);
    };
    flex_from(simd::map(slice(&xs), f), x.layout().shape().clone())
}

/// `f` over two same-shaped flex tensors' values.
fn flex_zip(
    x: FloatTensor<Flex>,
    y: FloatTensor<Flex>,
    f: impl Fn(f32, f32) -> f32 + Copy + Send + Sync,
    or: fn(FloatTensor<Flex>, FloatTensor<Flex>) -> FloatTensor<Flex>,
) -> FloatTensor<Flex> {
    let same = x.layout().shape() == y.layout().shape();
    let Some([xs, ys]) = dense_f32([&x, &y]).filter(|_| same) else {
        return or(x, y);
    };
    flex_from(
        simd::zip(slice(&xs), slice(&ys), f),
        x.layout().shape().clone(),
    )
}

impl Fused for Flex {
    fn product(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match products::product(&a, &b, None) {
            Some(out) => out,
            None => Flex::float_matmul(a, b),
        }
    }
    fn causal_product(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        part: attention::Causal,
    ) -> FloatTensor<Self> {
        match products::causal_product(&a, &b, part) {
            Some(out) => out,
            None => Self::product(a, b),
        }
    }
    fn affine(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        match products::affine(&x, &w, None) {
            Some(out) => out,
            None => Flex::linear(x, w, None),
        }
    }
    fn affine_bias(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match products::affine(&x, &w, Some(&bias)) {
            Some(out) => out,
            None => Flex::linear(x, w, Some(bias)),
        }
    }
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
    fn add(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_zip(a, b, |x, y| x + y, Flex::float_add)
    }
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_zip(gate, up, |g, u| simd::silu(g) * u, composed::swiglu::<Flex>)
    }
    fn swiglu_backward_gate(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let same = gate.layout().shape() == up.layout().shape()
            && gate.layout().shape() == grad.layout().shape();
        let Some([g, u, dy]) = dense_f32([&gate, &up, &grad]).filter(|_| same) else {
            return composed::swiglu_backward_gate::<Flex>(gate, up, grad);
        };
        let dg = simd::zip3(slice(&g), slice(&u), slice(&dy), simd::swiglu_backward_gate);
        flex_from(dg, gate.layout().shape().clone())
    }
    fn swiglu_backward_up(gate: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_zip(
            gate,
            grad,
            |g, dy| dy * simd::silu(g),
            composed::swiglu_backward_up::<Flex>,
        )
    }
    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        inverse: bool,
    ) -> FloatTensor<Self> {
        let dims = x.layout().shape().clone();
        let fits = dims.num_dims() == 4
            && dims[3].is_multiple_of(2)
            && cos.layout().shape().num_elements() == dims[1] * dims[3]
            && sin.layout().shape().num_elements() == dims[1] * dims[3];
        let Some([xs, c, s]) = dense_f32([&x, &cos, &sin]).filter(|_| fits) else {
            return composed::rope::<Flex>(x, cos, sin, inverse);
        };
        let sizes = [dims[1], dims[2], dims[3]];
        let y = rotary::apply(slice(&xs), slice(&c), slice(&s), sizes, inverse);
        flex_from(y, dims)
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
        let fits = gamma.layout().shape().num_elements() == last_dim(&x);
        let Some([xs, g]) = dense_f32([&x, &gamma]).filter(|_| fits) else {
            return composed::rms_norm::<Flex>(x, gamma, eps);
        };
        let y = norm::forward(slice(&xs), slice(&g), eps as f32);
        flex_from(y, x.layout().shape().clone())
    }
    fn rms_norm_backward_x(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        let fits = gamma.layout().shape().num_elements() == last_dim(&x)
            && grad.layout().shape() == x.layout().shape();
        let Some([xs, g, dy]) = dense_f32([&x, &gamma, &grad]).filter(|_| fits) else {
            return composed::rms_norm_backward_x::<Flex>(x, gamma, grad, eps);
        };
        let dx = norm::backward_x(slice(&xs), slice(&g), slice(&dy), eps as f32);
        flex_from(dx, x.layout().shape().clone())
    }
    fn rms_norm_backward_gamma(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        let d = last_dim(&x);
        let fits = grad.layout().shape() == x.layout().shape();
        let Some([xs, dy]) = dense_f32([&x, &grad]).filter(|_| fits) else {
            return composed::rms_norm_backward_gamma::<Flex>(x, grad, eps);
        };
        flex_from(
            norm::backward_gamma(slice(&xs), slice(&dy), d, eps as f32),
            [d].into(),
        )
    }
    fn attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f64,
        causal: bool,
    ) -> FloatTensor<Self> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(out) = blocked_attention(&q, &k, &v, scale, causal) {
            return out;
        }
        let options = burn::tensor::ops::AttentionModuleOptions {
            scale: Some(scale),
            is_causal: causal,
            ..Default::default()
        };
        <Flex as ModuleOps<Flex>>::attention(q, k, v, None, None, options)
    }
    fn softmax_rows(x: FloatTensor<Self>, scale: f64, causal: bool) -> FloatTensor<Self> {
        let dims = x.layout().shape().clone();
        let n = dims.num_dims();
        let Some([xs]) = dense_f32([&x]).filter(|_| n >= 2) else {
            return composed::softmax_rows::<Flex>(x, scale, causal);
        };
        let (queries, cols) = (dims[n - 2], dims[n - 1]);
        let p = attention::softmax_rows(slice(&xs), cols, queries, scale as f32, causal);
        flex_from(p, dims)
    }
    fn softmax_rows_backward(
        p: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: f64,
    ) -> FloatTensor<Self> {
        let same = grad.layout().shape() == p.layout().shape();
        let Some([ps, gs]) = dense_f32([&p, &grad]).filter(|_| same) else {
            return composed::softmax_rows_backward::<Flex>(p, grad, scale);
        };
        let ds =
            attention::softmax_rows_backward(slice(&ps), slice(&gs), last_dim(&p), scale as f32);
        flex_from(ds, p.layout().shape().clone())
    }
}

/// `blocked.rs` over flex tensors read through their strides: `None` for another dtype, a
/// negative stride, or heads that do not group.
#[cfg(not(target_arch = "wasm32"))]
fn blocked_attention(
    q: &FloatTensor<Flex>,
    k: &FloatTensor<Flex>,
    v: &FloatTensor<Flex>,
    scale: f64,
    causal: bool,
) -> Option<FloatTensor<Flex>> {
    use super::blocked::{View, attention};
    fn view(t: &FloatTensor<Flex>) -> Option<View<'_>> {
        let layout = t.layout();
        let strides = layout.strides();
        let fits = t.dtype() == burn::tensor::DType::F32
            && strides.len() == 4
            && strides.iter().all(|s| *s >= 0);
        fits.then(|| View {
            values: t.storage::<f32>(),
            offset: layout.start_offset(),
            strides: [0, 1, 2, 3].map(|i| strides[i] as usize),
        })
    }
    let (qv, kv, vv) = (view(q)?, view(k)?, view(v)?);
    let (sq, sk, sv) = (q.layout().shape(), k.layout().shape(), v.layout().shape());
    let [b, h, queries, d] = [sq[0], sq[1], sq[2], sq[3]];
    let (kv_heads, keys) = (sk[1], sk[2]);
    let same_kv = sk[0] == b && sv[0] == b && sv[1] == kv_heads && sv[2] == keys;
    if !same_kv || sk[3] != d || sv[3] != d || kv_heads == 0 || h % kv_heads != 0 {
        return None;
    }
    let sizes = [b, h, kv_heads, queries, keys, d];
    let out = attention(&qv, &kv, &vv, sizes, scale as f32, causal);
    Some(flex_from(out, [b, h, queries, d].into()))
}

/// Contiguous f32 copies of `ts` (the same tensors where they are already), or `None` when one
/// is of another dtype: the composition then runs.
fn dense_f32<const N: usize>(ts: [&FloatTensor<Flex>; N]) -> Option<[FloatTensor<Flex>; N]> {
    let f32s = ts.iter().all(|t| t.dtype() == burn::tensor::DType::F32);
    f32s.then(|| ts.map(|t| dense(t.clone())))
}

/// The size of the last dimension (a row).
fn last_dim(t: &FloatTensor<Flex>) -> usize {
    let shape = t.layout().shape();
    shape[shape.num_dims() - 1]
}

fn flex_from(values: Vec<f32>, shape: burn::tensor::Shape) -> FloatTensor<Flex> {
    Flex::float_from_data(TensorData::new(values, shape), &Default::default())
}

/// The values of a contiguous f32 tensor.
fn slice(t: &FloatTensor<Flex>) -> &[f32] {
    t.as_slice::<f32>().expect("dense f32")
}

/// A contiguous copy of `t` where it is not one already.
fn dense(t: FloatTensor<Flex>) -> FloatTensor<Flex> {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}
