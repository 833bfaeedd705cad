//! A linear layer with its LoRA adapter computed as PEFT computes it.
//!
//! Burn's LoRA (`apply_lora`) reparameterises the weight: each forward pass materialises
//! `W + scale A B` and multiplies by it, so the backward pass forms the full weight gradient
//! `x^T dy` (a product as large as the forward's) only to project it onto `A` and `B`. Here the
//! adapter takes its own path, `x W + scale (x A) B`: the frozen `W` gets no gradient, and the
//! factors' gradients come from products of the adapter's rank. The same function, less work;
//! and at inference (one new token at a time) no `W + scale A B` per layer per token.

use burn::module::LoraAdapter;
use burn::nn::Linear;
use burn::prelude::*;

use crate::kernels::{add, affine};

/// `lin.forward(x)`, with the adapter (if any) on its own path where that pays (`split`).
pub fn linear<const D: usize>(lin: &Linear, x: Tensor<D>) -> Tensor<D> {
    match lin.weight.adapter() {
        Some(lora) if split(lin, lora.a.dims()[1]) => split_linear(lin, lora, x),
        _ => affine(x, lin.weight.val(), lin.bias.as_ref().map(|b| b.val())),
    }
}

/// `x W + b + scale (x A) B`.
fn split_linear<const D: usize>(lin: &Linear, lora: &LoraAdapter, x: Tensor<D>) -> Tensor<D> {
    let bias = lin.bias.as_ref().map(|b| b.val());
    // The scale on B (rank x d_out values), and the sum over the threads (`kernels::add`): the
    // two passes over the output Burn's ops would make on one thread.
    let b = lora.b.val().mul_scalar(lora.scale);
    let low = affine(affine(x.clone(), lora.a.val(), None), b, None);
    let low = if low.dtype() != x.dtype() {
        low.cast(x.dtype())
    } else {
        low
    };
    add(affine(x, lin.weight.base(), bias), low)
}

/// Whether the adapter takes its own path on this layer. The split path's products have the
/// rank as a dimension, which run at about half the rate of the large ones (docs/speed.md),
/// plus a sum over the output, so it pays where the weight gradient it avoids is large against
/// them: `d_in d_out >= 16 r (d_in + d_out)` (measured with `bench`: SmolVLM-256M's MLP and
/// query projections run faster split, the tiny model's layers the same either way).
/// `MEDGROUND_LORA` forces one path (docs/speed.md, "Switches").
fn split(lin: &Linear, rank: usize) -> bool {
    static FORCED: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    let forced = FORCED.get_or_init(|| match std::env::var("MEDGROUND_LORA").as_deref() {
        Ok("split") => Some(true),
        Ok("merged") => Some(false),
        _ => None,
    });
    let [d_in, d_out] = lin.weight.dims();
    forced.unwrap_or(d_in * d_out >= 16 * rank * (d_in + d_out))
}

#[cfg(test)]
mod tests {
    use burn::module::{Lora, ParamGroup};
    use burn::nn::LinearConfig;
    use burn::prelude::*;
    use burn::tensor::Distribution;

    /// The split path gives the reparameterised layer's output and the factors' gradients.
    #[test]
    fn split_lora_matches_burns_reparameterisation() {
        let device = Device::flex().autodiff();
        device.seed(11);
        let lin = LinearConfig::new(24, 40)
            .with_bias(true)
            .init(&device)
            .no_grad();
        let lin = lin.apply_lora(
            Lora::new(4, 8.0).set_param_group(ParamGroup::from_regex(r"weight").unwrap()),
        );
        let x = Tensor::<3>::random([3, 5, 24], Distribution::Default, &device);
        // B starts at zero: one SGD step moves it, so that both factors get gradients below.
        let grads = lin.forward(x.clone()).sum().backward();
        let grads = burn::optim::GradientsParams::from_grads(grads, &lin);
        let mut sgd = burn::optim::SgdConfig::new().init();
        let lin = sgd.step(0.1, lin, grads);
        let w = Tensor::<3>::random([3, 5, 40], Distribution::Default, &device);
        let run = |split_path: bool| {
            let y = if split_path {
                super::split_linear(&lin, lin.weight.adapter().unwrap(), x.clone())
            } else {
                lin.forward(x.clone())
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            let l = lin.weight.adapter().unwrap();
            let g = |p: &burn::module::Param<Tensor<2>>| {
                p.val()
                    .grad(&grads)
                    .unwrap()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
            };
            [
                y.inner().into_data().try_to_vec::<f32>().unwrap(),
                g(&l.a),
                g(&l.b),
            ]
        };
        let (ours, burns) = (run(true), run(false));
        for ((name, a), b) in ["output", "dA", "dB"].iter().zip(&ours).zip(&burns) {
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                scale > 0.0 && worst <= 1e-5 * scale,
                "{name}: off by {worst} of {scale}"
            );
        }
    }
}
