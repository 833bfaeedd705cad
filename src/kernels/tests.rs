//! Each fused function against Burn's composition: values and gradients.

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
    let r = |dims: [usize; 4]| Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.5), &device);
    // Short, longer than a causal product's block of rows (`product::banded`), and fewer queries
    // than keys (the mask aligned bottom-right).
    for (queries, keys) in [(37, 37), (150, 150), (70, 150)] {
        let (q, k, v, w) = (
            r([3, 4, queries, 16]),
            r([3, 2, keys, 16]),
            r([3, 2, keys, 16]),
            r([3, 4, queries, 16]),
        );
        let repeat = |x: Tensor<4>| {
            x.unsqueeze_dim::<5>(2)
                .expand([3, 2, 2, keys, 16])
                .reshape([3, 4, keys, 16])
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
                    "{queries} x {keys}, causal {causal} {name}: off by {worst} of {scale}"
                );
            }
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
    // Rotary positions both ways, on a view ([batch 2, positions 3, heads 7, head_dim 6]).
    let x = x.reshape([2, 3, 7, 7]).slice([0..2, 0..3, 0..7, 0..6]);
    let table = |_| Tensor::<2>::random([3, 6], Distribution::Default, &device).into_dispatch();
    let (cos, sin) = (table(0), table(1));
    for inverse in [false, true] {
        let a = Tensor::<4>::from_dispatch(<Dispatch as super::Fused>::rope(
            d(&x),
            cos.clone(),
            sin.clone(),
            inverse,
        ));
        let b = Tensor::<4>::from_dispatch(super::composed::rope::<Dispatch>(
            d(&x),
            cos.clone(),
            sin.clone(),
            inverse,
        ));
        assert!((a - b).abs().max().into_scalar::<f32>() < 1e-5);
    }
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

/// A copy of `t` laid out afresh (contiguous).
fn fresh<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    Tensor::from_data(t.to_data(), &t.device())
}

/// `affine` (the CPU's products, `product.rs`) against Burn's `linear`: the output and the
/// gradients of `x`, `w` and the bias under autodiff, with `x` contiguous or a transposed view
/// and `w` contiguous or a transposed view; outside autodiff with many rows and few
/// (`few_rows.rs`); and a batched `product` with a broadcast operand.
#[test]
fn affine_matches_burns_linear() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let r = |dims: [usize; 3]| Tensor::<3>::random(dims, Distribution::Normal(0.0, 1.0), &device);
    let (bias, dy) = (r([1, 1, 90]).reshape([90]), r([3, 41, 90]));
    for x_view in [false, true] {
        for w_view in [false, true] {
            // The stored tensors, and the views the layer sees.
            let x = if x_view {
                r([41, 3, 70])
            } else {
                r([3, 41, 70])
            };
            let w = r([1, 70, 90]).reshape([70, 90]);
            let w = if w_view { fresh(w.transpose()) } else { w };
            let run = |fused: bool| {
                let (x, w, bias) = (
                    x.clone().require_grad(),
                    w.clone().require_grad(),
                    bias.clone().require_grad(),
                );
                let xv = if x_view {
                    x.clone().swap_dims(0, 1)
                } else {
                    x.clone()
                };
                let wv = if w_view {
                    w.clone().transpose()
                } else {
                    w.clone()
                };
                let y = if fused {
                    super::affine(xv, wv, Some(bias.clone()))
                } else {
                    burn::tensor::module::linear(xv, wv, Some(bias.clone()))
                };
                let grads = (y.clone() * dy.clone()).sum().backward();
                let vec = |t: TensorData| t.try_to_vec::<f32>().unwrap();
                [
                    vec(y.inner().into_data()),
                    vec(x.grad(&grads).unwrap().into_data()),
                    vec(w.grad(&grads).unwrap().into_data()),
                    vec(bias.grad(&grads).unwrap().into_data()),
                ]
            };
            let (ours, burns) = (run(true), run(false));
            for ((what, a), b) in ["y", "dx", "dw", "db"].iter().zip(&ours).zip(&burns) {
                let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                let worst = a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    a.len() == b.len() && worst <= 1e-5 * scale,
                    "x view {x_view}, w view {w_view}, {what}: off by {worst} of {scale}"
                );
            }
        }
    }
    let plain = Device::flex();
    // Outside autodiff, with a bias: a batch of rows (`product.rs`), one new token and a few rows
    // (`few_rows.rs`, through a stored and a transposed weight; large enough to be split).
    for (rows, d_in, d_out) in [(700, 40, 24), (1, 576, 600), (5, 300, 1000)] {
        let x = Tensor::<3>::random([3, rows, d_in], Distribution::Default, &plain);
        let x = if rows < 16 { x.narrow(0, 0, 1) } else { x };
        let b = Tensor::<1>::random([d_out], Distribution::Default, &plain);
        let w = Tensor::<2>::random([d_in, d_out], Distribution::Default, &plain);
        let wt = fresh(w.clone().transpose()).transpose();
        for w in [w, wt] {
            let ours = super::affine(x.clone(), w.clone(), Some(b.clone()));
            let theirs = burn::tensor::module::linear(x.clone(), w, Some(b.clone()));
            let scale = theirs.clone().abs().max().into_scalar::<f32>();
            let worst = (ours - theirs).abs().max().into_scalar::<f32>();
            assert!(
                worst <= 1e-5 * scale,
                "affine of {rows} x {d_in} x {d_out} with a bias outside autodiff: off by {worst}"
            );
        }
    }
    let a = Tensor::<4>::random([2, 3, 17, 9], Distribution::Default, &plain);
    let b = Tensor::<4>::random([2, 1, 13, 9], Distribution::Default, &plain).swap_dims(2, 3);
    let ours = Tensor::<4>::from_dispatch(<burn::backend::Dispatch as super::Fused>::product(
        a.clone().into_dispatch(),
        b.clone().into_dispatch(),
    ));
    let worst = (ours - a.matmul(b)).abs().max().into_scalar::<f32>();
    assert!(worst <= 1e-5, "batched product: off by {worst}");
}

/// Values and gradients of two functions of two tensors on flex under autodiff, to 1e-5.
fn parity2(
    inputs: [Tensor<4>; 2],
    ours: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
    theirs: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
) {
    let device = inputs[0].device();
    let dims = inputs[0].dims();
    let w = Tensor::<4>::random(dims, Distribution::Default, &device);
    let run = |f: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>| {
        let [a, b] = inputs.clone().map(|t| t.require_grad());
        let y = f(a.clone(), b.clone());
        let grads = (y.clone() * w.clone()).sum().backward();
        let flat = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        let grad = |t: &Tensor<4>| t.grad(&grads).map(flat).unwrap_or_default();
        [flat(y.inner()), grad(&a), grad(&b)]
    };
    let (x, y) = (run(&ours), run(&theirs));
    for ((name, a), b) in ["values", "first's gradient", "second's"]
        .iter()
        .zip(&x)
        .zip(&y)
    {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            a.len() == b.len() && worst <= 1e-5 * scale,
            "{name}: off by {worst} of {scale}"
        );
    }
}

/// SwiGLU's gating as one op against `silu(gate) * up`: values and both gradients.
#[test]
fn fused_swiglu_matches_the_composition() {
    let device = Device::flex().autodiff();
    device.seed(11);
    let r = || Tensor::<4>::random([2, 4, 33, 65], Distribution::Normal(0.0, 4.0), &device);
    parity2([r(), r()], super::swiglu, |gate, up| {
        burn::tensor::activation::silu(gate) * up
    });
}

/// Rotary positions as one op against the rotate-half composition on `[batch, positions,
/// heads, head_dim]`, with tables as the model's (each angle repeated over the two halves):
/// values and the input's gradient.
#[test]
fn fused_rope_matches_the_composition() {
    let device = Device::flex().autodiff();
    device.seed(13);
    let (b, s, h, d) = (3usize, 11usize, 4usize, 16usize);
    let angles: Vec<f32> = (0..s * d)
        .map(|i| (i / d) as f32 * 0.9f32.powi((i % d % (d / 2)) as i32))
        .collect();
    let table = |f: fn(f32) -> f32| {
        let v = angles.iter().map(|a| f(*a)).collect::<Vec<_>>();
        Tensor::<2>::from_data(TensorData::new(v, [s, d]), &device)
    };
    let (cos, sin) = (table(f32::cos), table(f32::sin));
    let x = Tensor::<4>::random([b, s, h, d], Distribution::Normal(0.0, 2.0), &device);
    let unused = Tensor::<4>::zeros([b, s, h, d], &device);
    parity2(
        [x, unused],
        |x, _| super::rope(x, cos.clone(), sin.clone()),
        |x, _| {
            let x1 = x.clone().slice([0..b, 0..s, 0..h, 0..d / 2]);
            let x2 = x.clone().slice([0..b, 0..s, 0..h, d / 2..d]);
            let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
            let t = |t: Tensor<2>| t.reshape([1, s, 1, d]);
            x * t(cos.clone()) + rotated * t(sin.clone())
        },
    );
}

/// Attention outside training over a long sequence (`blocked.rs`) against Burn's: a strided
/// query view, grouped kv heads, causal (fewer queries than keys) and not.
#[test]
fn blocked_attention_matches_burns() {
    let device = Device::flex();
    device.seed(17);
    let r = |dims: [usize; 4]| Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.5), &device);
    let q = r([2, 300, 4, 16]).swap_dims(1, 2);
    let (k, v) = (r([2, 2, 900, 16]), r([2, 2, 900, 16]));
    let repeat = |x: Tensor<4>| {
        x.unsqueeze_dim::<5>(2)
            .expand([2, 2, 2, 900, 16])
            .reshape([2, 4, 900, 16])
    };
    for causal in [true, false] {
        let ours = super::attention(q.clone(), k.clone(), v.clone(), causal);
        let options = burn::tensor::ops::AttentionModuleOptions {
            is_causal: causal,
            ..Default::default()
        };
        let theirs = burn::tensor::module::attention(
            q.clone(),
            repeat(k.clone()),
            repeat(v.clone()),
            None,
            None,
            options,
        );
        let worst = (ours - theirs).abs().max().into_scalar::<f32>();
        assert!(worst <= 1e-5, "causal {causal}: off by {worst}");
    }
}
