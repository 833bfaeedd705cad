//! The fused functions on flex: `simd.rs`, `attention.rs` and `norm.rs` over the tensors' values
//! (f32, made contiguous); other dtypes take the composition.

use burn::backend::Flex;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::prelude::*;

use super::{Fused, attention, composed, norm, simd};

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
        let dx = norm::backward_x(slice(&xs), slice(&g), slice(&dy), eps as f32);
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

/// `x`, `gamma` and the gradient, contiguous.
type Dense3 = (
    FloatTensor<Flex>,
    FloatTensor<Flex>,
    Option<FloatTensor<Flex>>,
);

/// RMSNorm's kernels on f32 flex tensors; `None` for others (the composition then runs).
fn flex_rms(
    x: &FloatTensor<Flex>,
    gamma: &FloatTensor<Flex>,
    grad: Option<&FloatTensor<Flex>>,
) -> Option<Dense3> {
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
