//! `bench`: the native side of docs/BENCHMARKS.md. Stage-2 training throughput (the `stage2`
//! preset's LoRA and connector; forward, backward and AdamW step on one fixed synthetic batch),
//! the same with the frozen tower's features cached (a dataset's second epoch on), greedy
//! grounding latency (prefill and the box tokens) and peak memory, as medians after warm-up. `--save-inputs` writes the batch and the
//! query it measured, so `tools/reference/bench_torch.py` times PyTorch + PEFT on the same ones.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use clap::Args;
use medground::data::synth::{Split, Synth};
use medground::train::TrainConfig;
use medground::train::base::prepare;
use medground::train::batch::Framing;
use medground::train::batch::{Source, TrainBatch, build};
use medground::train::cache::FeatureCache;
use medground::train::loss::answer_loss;
use medground::train::run::trainable_params;
use medground::weights::Bundle;
use medground::{Error, Grounder, Result};
use serde_json::json;

use super::DEMO_MODEL;

#[derive(Args)]
pub struct BenchArgs {
    /// Base bundle the stage-2 training step adapts (the `stage2` preset: LoRA and connector).
    #[arg(long, default_value = "assets/base")]
    base: PathBuf,
    /// Bundle the grounding query runs on.
    #[arg(long, default_value = DEMO_MODEL)]
    model: PathBuf,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Timed training steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Timed grounding queries (after 3 warm-up queries).
    #[arg(long, default_value_t = 30)]
    queries: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Write inputs.safetensors and inputs.json (the batch and the query) into this folder.
    #[arg(long)]
    save_inputs: Option<PathBuf>,
    /// Write the figures as JSON here (they are always printed).
    #[arg(long)]
    json: Option<PathBuf>,
}

const PHRASE: &str = "small left pleural effusion";

pub fn run(a: BenchArgs) -> Result<()> {
    let device = medground::device::parse(&a.device)?;
    let threads = rayon::current_num_threads();
    // Grounding: the demo bundle, one film, the evaluation prompt.
    let mut g = Grounder::from_owned(Bundle::read_dir(&a.model)?, &device)?;
    // One image at the vision tower's size, as the PyTorch side is fed: the same work on both
    // sides, even for a model with SmolVLM's processor (which would cut the film into tiles).
    g.processor = None;
    let film = Synth::new(0, Split::Test, g.config.vision_config.image_size)
        .sample(0)
        .picture;
    let mut answer = String::new();
    // A query: the film read (vision tower, connector), then the phrase's answer decoded.
    let query_ms = median_ms(3, a.queries, &device, || {
        answer = g.answer(&film, PHRASE)?.0;
        Ok(())
    })?;
    // A further phrase on a film already read (what `eval`, the page's next question and
    // `ground --phrase A --phrase B` pay for each phrase after the first).
    let encoded = g.encode(&film)?;
    let phrase_ms = median_ms(3, a.queries, &device, || {
        g.answer_encoded(&encoded, PHRASE)?;
        Ok(())
    })?;
    drop(encoded);
    let new_tokens = g.tokens.encode(&answer)?.len(); // decoding stops when the box closes
    let rss_infer = peak_rss_mb();
    // The query as the PyTorch side is fed it; then the grounder goes, as PyTorch's bench drops
    // its model before training.
    let query = Query::of(&g, &film)?;
    drop(g);

    // Training: stage 2 on the base, one fixed batch of synthetic findings.
    let mut cfg = TrainConfig::preset("stage2")?;
    cfg.base = a.base.display().to_string();
    let train_device = device.clone().autodiff();
    let base = prepare(&cfg, &train_device)?;
    let (model, config, tokens) = (base.model, base.config, base.tokens);
    let trainable = trainable_params(&model);
    let source = Source::Synth {
        synth: Synth::new(0, Split::Train, config.vision_config.image_size),
        stage: 2,
        anatomy: 0.0,
    };
    let examples = (0..a.batch as u64)
        .map(|i| source.example(i, 0))
        .collect::<Result<Vec<_>>>()?;
    let tb = build(
        &examples,
        &tokens,
        &config,
        cfg.optim.coord_sigma,
        false,
        &Framing::default(), // one squashed image, as for grounding above
        &train_device,
    )?;
    let mut optim = cfg.optim.adamw().init();
    // The optimizer step consumes the model and hands back the updated one.
    let mut model = Some(model);
    // The forward pass (to the loss's value) and the backward pass of each step, apart.
    let (mut forward, mut backward) = (Vec::new(), Vec::new());
    const WARM: usize = 2;
    // As `train` runs stage 2: the frozen tower outside autodiff; a synthetic stream keeps no
    // features (budget 0), a dataset's later epochs read them from the cache (`cached`).
    let mut timed_step = |cache: &FeatureCache, times: Option<(&mut Vec<f64>, &mut Vec<f64>)>| {
        let m = model.take().expect("model");
        let start = Instant::now();
        let loss = answer_loss(&m, &tb, config.image_token_id, Some(cache));
        let _ = loss.clone().into_scalar::<f32>();
        let forward_ms = start.elapsed().as_secs_f64() * 1000.0;
        let start = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        if let Some((f, b)) = times {
            f.push(forward_ms);
            b.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        model = Some(optim.step(cfg.optim.lr, m, grads));
        Ok(())
    };
    let uncached = FeatureCache::new(0);
    let step_ms = median_ms(WARM, a.steps, &train_device, || {
        timed_step(&uncached, Some((&mut forward, &mut backward)))
    })?;
    let (forward_ms, backward_ms) = (median(&forward[WARM..]), median(&backward[WARM..]));
    let rss_train = peak_rss_mb();
    // The same batch from the second epoch on: its features come from the cache (the first
    // warm-up step fills it).
    let cache = FeatureCache::new(usize::MAX);
    let cached_ms = median_ms(WARM, a.steps, &train_device, || timed_step(&cache, None))?;
    let (hits, misses) = cache.counts();
    if misses != a.batch as u64 || hits != (a.batch * (WARM + a.steps - 1)) as u64 {
        return Err(Error::Other(format!(
            "feature cache: {hits} hits, {misses} misses"
        )));
    }

    let figures = json!({
        "backend": a.device,
        "threads": threads,
        "batch": a.batch,
        "seq": tb.seq,
        "trainable_params": trainable,
        "train_step_ms": step_ms,
        "train_samples_per_s": a.batch as f64 * 1000.0 / step_ms,
        "train_forward_ms": forward_ms,
        "train_backward_ms": backward_ms,
        "train_cached_step_ms": cached_ms,
        "train_cached_samples_per_s": a.batch as f64 * 1000.0 / cached_ms,
        "ground_ms": query_ms,
        "ground_encoded_ms": phrase_ms,
        "new_tokens": new_tokens,
        "answer": answer,
        "peak_rss_infer_mb": rss_infer,
        "peak_rss_train_mb": rss_train,
    });
    println!("{}", serde_json::to_string_pretty(&figures).expect("json"));
    if let Some(path) = &a.json {
        write(path, serde_json::to_vec_pretty(&figures).expect("json"))?;
    }
    if let Some(dir) = &a.save_inputs {
        // PEFT matches module names (no `.weight`) against the same pattern.
        let modules = cfg
            .lora
            .targets
            .trim_start_matches('^')
            .trim_end_matches('$')
            .trim_end_matches(r"\.weight");
        let meta = json!({
            "new_tokens": new_tokens, "phrase": PHRASE, "batch": a.batch, "seq": tb.seq,
            "lora": { "rank": cfg.lora.rank, "alpha": cfg.lora.alpha, "modules": modules },
            "lr": cfg.optim.lr, "weight_decay": cfg.optim.weight_decay, "eps": cfg.optim.epsilon,
            "clip_norm": cfg.optim.clip_norm,
        });
        save_inputs(dir, &query, &tb, a.batch, meta)?;
    }
    Ok(())
}

/// Median wall time of `timed` calls of `f` after `warm` untimed ones, the device synced after each.
fn median_ms(
    warm: usize,
    timed: usize,
    device: &Device,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    let mut times = Vec::with_capacity(timed);
    for k in 0..warm + timed.max(1) {
        let start = Instant::now();
        f()?;
        device.sync().map_err(|e| Error::Device(format!("{e:?}")))?;
        if k >= warm {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(median(&times))
}

fn median(times: &[f64]) -> f64 {
    let mut times = times.to_vec();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The process's peak resident memory in MB (Linux; NaN elsewhere).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn write(path: &std::path::Path, bytes: Vec<u8>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// The grounding query: the prompt's ids and the film's pixels at the tower's side.
struct Query {
    ids: Vec<i64>,
    pixels: Vec<f32>,
    side: usize,
}

impl Query {
    fn of(g: &Grounder, film: &medground::image::Picture) -> Result<Self> {
        Ok(Self {
            ids: g
                .prompt_ids(PHRASE, 0)?
                .into_iter()
                .map(i64::from)
                .collect(),
            pixels: g
                .pixels(film)
                .to_data()
                .try_to_vec::<f32>()
                .map_err(other)?,
            side: g.config.vision_config.image_size,
        })
    }
}

/// The training batch in Hugging Face form (input_ids, labels with -100 off the answers,
/// pixel_values) and the grounding query (query_ids, query_pixels).
fn save_inputs(
    dir: &std::path::Path,
    query: &Query,
    tb: &TrainBatch,
    batch: usize,
    meta: serde_json::Value,
) -> Result<()> {
    use safetensors::{Dtype as D, tensor::TensorView};
    let seq = tb.seq;
    let ids: Vec<i64> = tb.batch.ids.iter().flatten().map(|&t| t as i64).collect();
    let mut labels = vec![-100i64; batch * seq];
    for &(flat, token) in &tb.targets {
        labels[flat + 1] = token as i64;
    }
    let pixels: Vec<f32> = tb
        .batch
        .pixels
        .to_data()
        .try_to_vec::<f32>()
        .map_err(other)?;
    let (query_pixels, s) = (&query.pixels, query.side);
    let query = &query.ids;
    let bytes = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let floats = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let tensors: Vec<(&str, D, Vec<usize>, Vec<u8>)> = vec![
        ("input_ids", D::I64, vec![batch, seq], bytes(&ids)),
        ("labels", D::I64, vec![batch, seq], bytes(&labels)),
        (
            "pixel_values",
            D::F32,
            vec![batch, 3, s, s],
            floats(&pixels),
        ),
        ("query_ids", D::I64, vec![1, query.len()], bytes(query)),
        (
            "query_pixels",
            D::F32,
            vec![1, 3, s, s],
            floats(query_pixels),
        ),
    ];
    let views: HashMap<String, TensorView> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            let view = TensorView::new(*dtype, shape.clone(), data).map_err(other)?;
            Ok((name.to_string(), view))
        })
        .collect::<Result<_>>()?;
    let out = safetensors::serialize(views, None).map_err(other)?;
    write(&dir.join("inputs.safetensors"), out)?;
    write(
        &dir.join("inputs.json"),
        serde_json::to_vec_pretty(&meta).expect("json"),
    )?;
    Ok(())
}

fn other(e: impl std::fmt::Debug) -> Error {
    Error::Other(format!("{e:?}"))
}
