//! Where a grounding query's time goes on the CPU backend (`tools/profile.sh`, figures in
//! docs/speed.md): the vision tower, the connector with the merge, the prompt's prefill and the
//! new tokens, each a mean over 8 queries after 2 untimed ones, on the bundle `bench` grounds
//! with (one image at the tower's size). PyTorch's side: `tools/reference/ground_parts.py`.
//! `cargo run --release --example ground_parts --features cli -- BUNDLE_DIR`.

use std::time::Instant;

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
        let mut cache = KvCache::new();
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
    let [v, c, p, d] = sums;
    println!(
        "| {} prompt tokens | vision {v:.1} | connector and merge {c:.1} | prefill {p:.1} | {NEW} new tokens {d:.1} | ms |",
        batch.ids[0].len()
    );
    Ok(())
}
