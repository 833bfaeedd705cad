//! Where a grounding query's time goes on the CPU backend (`tools/profile.sh`, figures in
//! docs/speed.md): the vision tower, the connector with the merge, the prompt's prefill and the
//! new tokens, each a mean over 8 queries after 2 untimed ones, on the bundle `bench` grounds
//! with (one image at the tower's size). PyTorch's side: `tools/reference/ground_parts.py`.
//! `cargo run --release --example ground_parts --features cli -- BUNDLE_DIR`.

use std::time::Instant;

use burn::prelude::*;
use medground::Grounder;
use medground::data::synth::{Split, Synth};
use medground::model::text::KvCache;
use medground::weights::Bundle;

/// New tokens after the prefill, as many as a box takes (`bench`'s `new_tokens`).
const NEW: usize = 6;
const TIMED: usize = 8;

fn main() -> medground::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "assets/demo".into());
    let device = medground::device::parse("cpu")?;
    let mut g = Grounder::from_owned(Bundle::read_dir(std::path::Path::new(&dir))?, &device)?;
    g.processor = None;
    let side = g.config.vision_config.image_size;
    let film = Synth::new(0, Split::Test, side).sample(0).picture;
    let batch = g.inputs(&film, "small left pleural effusion")?; // `bench`'s phrase
    let token = g.config.image_token_id;
    let mut sums = [0f64; 4];
    for query in 0..TIMED + 2 {
        let start = Instant::now();
        let patches = g.model.model.vision_model.forward(batch.pixels.clone());
        let _ = patches.clone().into_data();
        let vision = start.elapsed().as_secs_f64();
        let embeds = g.model.embed_patches(&batch, token, patches);
        let _ = embeds.clone().into_data();
        let merged = start.elapsed().as_secs_f64();
        let seq = batch.ids[0].len();
        let mut cache = KvCache::new(&g.model.model.text_model, 1, seq + NEW, &g.rope, &device);
        let _ = g.model.last_logits(embeds, &mut cache).into_data();
        let prefilled = start.elapsed().as_secs_f64();
        for _ in 0..NEW {
            let next = g.model.embed_tokens(&[10], &device);
            let _ = g.model.last_logits(next, &mut cache).into_data();
        }
        let end = start.elapsed().as_secs_f64();
        if query >= 2 {
            let parts = [vision, merged - vision, prefilled - merged, end - prefilled];
            sums.iter_mut()
                .zip(parts)
                .for_each(|(s, p)| *s += p * 1e3 / TIMED as f64);
        }
    }
    vision_parts(&g, batch.pixels.clone());
    let [v, c, p, d] = sums;
    println!(
        "| {} prompt tokens | vision {v:.1} | connector and merge {c:.1} | prefill {p:.1} | {NEW} new tokens {d:.1} | ms |",
        batch.ids[0].len()
    );
    Ok(())
}

/// The vision tower's forward pass cut into its ops, each timed (a mean over the timed queries).
fn vision_parts(g: &Grounder, pixels: Tensor<4>) {
    use medground::kernels::{attention, gelu_tanh};
    use medground::model::lora::linear;
    let tower = &g.model.model.vision_model;
    let names = [
        "patch embedding",
        "layer norms",
        "q, k, v, out projections",
        "heads' swaps",
        "attention (scores, softmax, mix)",
        "fc1, fc2",
        "GELU",
        "residual adds",
    ];
    let mut t = [0f64; 8];
    for query in 0..TIMED + 2 {
        let mut timed = |i: usize, f: &mut dyn FnMut() -> Tensor<3>| {
            let start = Instant::now();
            let out = f();
            // One value read back: the op has run (flex is eager; a copy would add its own time).
            let _ = out
                .clone()
                .flatten::<1>(0, 2)
                .narrow(0, 0, 1)
                .into_scalar::<f32>();
            if query >= 2 {
                t[i] += start.elapsed().as_secs_f64() * 1e3 / TIMED as f64;
            }
            out
        };
        let mut x = timed(0, &mut || tower.embeddings.forward(pixels.clone()));
        for l in &tower.encoder.layers {
            let a = &l.self_attn;
            let n = timed(1, &mut || l.layer_norm1.forward(x.clone()));
            let [b, s, d] = n.dims();
            let h = a.num_heads;
            let q = timed(2, &mut || linear(&a.q_proj, n.clone()));
            let k = timed(2, &mut || linear(&a.k_proj, n.clone()));
            let v = timed(2, &mut || linear(&a.v_proj, n.clone()));
            let heads = |t: Tensor<3>| t.reshape([b, s, h, d / h]).swap_dims(1, 2);
            let (q, k, v) = (heads(q), heads(k), heads(v));
            let o = timed(4, &mut || {
                attention(q.clone(), k.clone(), v.clone(), false).reshape([b * h, s, d / h])
            });
            let o = timed(3, &mut || {
                o.clone()
                    .reshape([b, h, s, d / h])
                    .swap_dims(1, 2)
                    .reshape([b, s, d])
            });
            let o = timed(2, &mut || linear(&a.out_proj, o.clone()));
            x = timed(7, &mut || x.clone() + o.clone());
            let n = timed(1, &mut || l.layer_norm2.forward(x.clone()));
            let f = timed(5, &mut || linear(&l.mlp.fc1, n.clone()));
            let f = timed(6, &mut || gelu_tanh(f.clone()));
            let f = timed(5, &mut || linear(&l.mlp.fc2, f.clone()));
            x = timed(7, &mut || x.clone() + f.clone());
        }
    }
    println!("| vision tower's part | ms |\n|---|---:|");
    for (name, ms) in names.iter().zip(t) {
        println!("| {name} | {ms:.1} |");
    }
    println!("| total | {:.1} |", t.iter().sum::<f64>());
}
