//! The training step's pieces timed one by one on the CPU backend (`tools/profile.sh`, figures in
//! docs/speed.md): matrix products at the tiny model's shapes, the
//! elementwise ops, SiLU forward and backward through autodiff, and the vision tower's parts. `cargo run --release --example profile_ops
//! --features cli -- CONFIG.json`.

use std::time::{Duration, Instant};

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{sigmoid, silu};
use medground::kernels::Fused;
use medground::model::Idefics3Config;
use medground::model::vision::VisionTransformer;

/// Forces a lazy result: reads one element.
fn done<const D: usize>(t: Tensor<D>) {
    let _ = t
        .flatten::<1>(0, D - 1)
        .narrow(0, 0, 1)
        .into_scalar::<f32>();
}

/// Mean time of `f` over 10 calls after 2 untimed ones.
fn mean<F: FnMut()>(mut f: F) -> Duration {
    for _ in 0..2 {
        f();
    }
    let start = Instant::now();
    for _ in 0..10 {
        f();
    }
    start.elapsed() / 10
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or("assets/base/config.json".into());
    let text = std::fs::read_to_string(&path).expect("a model's config.json");
    let cfg: Idefics3Config = serde_json::from_str(&text).expect("config.json");
    let dev = Device::flex();
    let rand = |shape: [usize; 3]| Tensor::<3>::random(shape, Distribution::Default, &dev);

    println!(
        "| matrix product | flex (gemm crate) GFLOP/s | medground's training path (`product.rs`) GFLOP/s |\n|---|---:|---:|"
    );
    let products = [
        (
            "gate/up_proj [16,239,256] x [256,768]",
            [1, 16 * 239, 256, 768],
        ),
        (
            "down_proj [16,239,768] x [768,256]",
            [1, 16 * 239, 768, 256],
        ),
        ("q/o_proj [16,239,256] x [256,256]", [1, 16 * 239, 256, 256]),
        (
            "vision fc1 [16,196,192] x [192,768]",
            [1, 16 * 196, 192, 768],
        ),
        ("LoRA A [16,239,256] x [256,16]", [1, 16 * 239, 256, 16]),
        ("LoRA B [16,239,16] x [16,256]", [1, 16 * 239, 16, 256]),
        (
            "text scores Q K^T [64,239,64] x [64,239]",
            [64, 239, 64, 239],
        ),
        ("text mix P V [64,239,239] x [239,64]", [64, 239, 239, 64]),
        ("vision scores [48,196,64] x [64,196]", [48, 196, 64, 196]),
    ];
    for (name, [b, m, k, n]) in products {
        let (a, w) = (rand([b, m, k]), rand([b, k, n]));
        let t = mean(|| done(a.clone().matmul(w.clone())));
        let ours = mean(|| {
            done(Tensor::<3>::from_dispatch(<Dispatch as Fused>::product(
                a.clone().into_dispatch(),
                w.clone().into_dispatch(),
            )))
        });
        let rate = |t: Duration| 2.0 * (b * m * k * n) as f64 / t.as_secs_f64() / 1e9;
        println!("| {name} | {:.1} | {:.1} |", rate(t), rate(ours));
    }

    let x = rand([16, 196, 768]);
    let y = rand([16, 196, 768]);
    println!(
        "\n| elementwise op on [16,196,768] (2.4 M values, the vision MLP's width) | ms |\n|---|---:|"
    );
    type Op<'a> = Box<dyn Fn() -> Tensor<3> + 'a>;
    let ops: [(&str, Op); 5] = [
        ("x * y", Box::new(|| x.clone() * y.clone())),
        ("x * 3", Box::new(|| x.clone() * 3.0)),
        ("exp(x)", Box::new(|| x.clone().exp())),
        ("sigmoid(x)", Box::new(|| sigmoid(x.clone()))),
        (
            "sigmoid(x), two halves on two threads",
            Box::new(|| {
                let (a, b) = rayon::join(
                    || sigmoid(x.clone().narrow(0, 0, 8)),
                    || sigmoid(x.clone().narrow(0, 8, 8)),
                );
                Tensor::cat(vec![a, b], 0)
            }),
        ),
    ];
    for (name, op) in ops {
        println!(
            "| {name} | {:.1} |",
            mean(|| done(op())).as_secs_f64() * 1e3
        );
    }

    // The text MLP's activation through autodiff, as training runs it: Burn's silu is sigmoid
    // then a product, and its backward three more tensor ops; `x * 2` is the floor of any
    // elementwise op's forward and backward at this size.
    let adev = dev.clone().autodiff();
    let xa = Tensor::<3>::random([16, 239, 768], Distribution::Default, &adev).require_grad();
    let grad_of = |f: &dyn Fn(Tensor<3>) -> Tensor<3>| {
        let grads = f(xa.clone()).sum().backward();
        done(xa.grad(&grads).expect("a gradient"));
    };
    println!("\n| forward + backward on [16,239,768] (autodiff) | ms |\n|---|---:|");
    for (name, f) in [
        (
            "silu(x), Burn's composition",
            &silu as &dyn Fn(Tensor<3>) -> Tensor<3>,
        ),
        ("silu(x), fused (medground's)", &medground::kernels::silu),
        ("x * 2 (the floor)", &|x: Tensor<3>| x * 2.0),
    ] {
        println!(
            "| {name} | {:.1} |",
            mean(|| grad_of(f)).as_secs_f64() * 1e3
        );
    }

    let tower = VisionTransformer::new(&cfg.vision_config, &dev);
    let side = cfg.vision_config.image_size;
    let pixels = Tensor::<4>::random([16, 3, side, side], Distribution::Default, &dev);
    let mut parts = [Duration::ZERO; 5];
    for rep in 0..4 {
        let mut t = [Duration::ZERO; 5];
        let mut timed = |i: usize, f: &mut dyn FnMut() -> Tensor<3>| {
            let start = Instant::now();
            let out = f();
            done(out.clone());
            t[i] += start.elapsed();
            out
        };
        let mut x = timed(0, &mut || tower.embeddings.forward(pixels.clone()));
        for l in &tower.encoder.layers {
            let n = timed(1, &mut || l.layer_norm1.forward(x.clone()));
            let a = timed(2, &mut || l.self_attn.forward(n.clone()));
            x = timed(4, &mut || x.clone() + a.clone());
            let n = timed(1, &mut || l.layer_norm2.forward(x.clone()));
            let m = timed(3, &mut || l.mlp.forward(n.clone()));
            x = timed(4, &mut || x.clone() + m.clone());
        }
        if rep > 0 {
            parts.iter_mut().zip(t).for_each(|(p, t)| *p += t / 3);
        }
    }
    println!("\n| vision tower, batch 16, forward | ms |\n|---|---:|");
    let names = [
        "patch embedding",
        "layer norms",
        "attention",
        "MLP (fc1, GELU, fc2)",
        "residual adds",
    ];
    for (name, p) in names.iter().zip(parts) {
        println!("| {name} | {:.0} |", p.as_secs_f64() * 1e3);
    }
    let total: Duration = parts.iter().sum();
    println!("| total | {:.0} |", total.as_secs_f64() * 1e3);
}
