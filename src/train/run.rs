//! The training loop: AdamW, warmup then cosine, per-tensor gradient clipping, gradient
//! accumulation, checkpoints with resume, validation, a progress bar, a CSV log and a plot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::optim::AdamWConfig;
use burn::prelude::*;

use super::base::{Base, prepare};
use super::batch::{Framing, Source, prefetch};
use super::cache::{FeatureCache, frozen};
use super::checkpoint::{self, Progress};
use super::config::TrainConfig;
use super::dense;
use super::loss::Trainee;
use super::step::{StepContext, optimizer_step};
use crate::data::synth::{Split, Synth};
use crate::error::{Error, Result};
use crate::eval::{Agreement, Films, evaluate};
use crate::grounder::Grounder;
use crate::model::{Idefics3, Idefics3Config};
use crate::tokens::Tokens;
use crate::weights::{Bundle, Dtype, safetensors};

/// Where the tiny preset's tokenizer lives.
pub use super::base::{TOKENIZER, trainable_params};

/// The dense probe's offsets head may be added when a stage-1 run is resumed.
const OFFSETS: &str = "offsets.";

/// What a finished run leaves: `out/bundle` (merged weights), `out/adapter` (PEFT, stage 2),
/// the last validation figures, and the trained model itself (unmerged).
pub struct Finished {
    pub bundle: PathBuf,
    pub model: Idefics3,
    pub val_acc50: f32,
    pub val_miou: f32,
    pub trainable: usize,
    pub total: usize,
}

pub fn run(cfg: &TrainConfig, resume: bool) -> Result<Finished> {
    let out = PathBuf::from(&cfg.run.out);
    let found = checkpoint::latest(&out);
    if found.is_some() && !resume {
        return Err(Error::Other(format!(
            "{} holds a checkpoint: pass --resume to continue it, or choose another --out",
            out.display()
        )));
    }
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    std::fs::write(out.join("config.toml"), cfg.to_toml())
        .map_err(|e| Error::io(out.join("config.toml"), e))?;
    let devices: Vec<Device> = crate::device::parse_list(&cfg.run.device)?
        .into_iter()
        .map(|d| d.autodiff())
        .collect();
    let device = devices[0].clone();
    let Base {
        model,
        config,
        tokens,
        tokenizer_json,
        framing,
        files,
    } = prepare(cfg, &device)?;
    let total = model.num_params();
    let trainable = trainable_params(&model);
    let mut model = trainee(cfg, model, &config, &device);
    eprintln!(
        "trainable parameters: {trainable} of {total} ({:.2}%)",
        100.0 * trainable as f64 / total as f64
    );
    if devices.len() > 1 {
        // Refused here, before any step, rather than at the first micro-batch.
        super::step::shards(cfg.optim.batch, devices.len())?;
        eprintln!(
            "data parallel: each micro-batch split across {} devices ({})",
            devices.len(),
            cfg.run.device
        );
    }
    let o = &cfg.optim;
    let mut optim = o.adamw().init();
    let mut progress = Progress {
        step: 0,
        samples: 0,
    };
    if let Some(dir) = found {
        let (m, opt, p) = checkpoint::load(&dir, model, optim, &[OFFSETS])?;
        (model, optim, progress) = (m, opt, p);
        eprintln!("resumed from {} at step {}", dir.display(), progress.step);
    }
    let source = match cfg.data.synth_stream() {
        Some(upright) => Source::Synth {
            synth: Synth::new(cfg.data.seed, Split::Train, config.vision_config.image_size)
                .with_wide_geometry(cfg.stage == 1)
                .with_focus(cfg.data.focus()?)
                .with_upright(upright),
            stage: cfg.stage,
            anatomy: cfg.data.anatomy_share()?,
        },
        None => {
            let images = cfg.data.images.as_deref().map(Path::new);
            Source::Records(
                crate::data::open(&cfg.data.train, images, config.vision_config.image_size)?
                    .records,
            )
        }
    };
    let val = crate::data::open(
        &cfg.data.val,
        cfg.data.images.as_deref().map(Path::new),
        config.vision_config.image_size,
    )?
    .records;
    // The frozen tower runs outside autodiff; a dataset's films repeat, so keep their features.
    let repeats = matches!(source, Source::Records(_));
    let budget = if repeats {
        cfg.run.feature_cache_mb << 20
    } else {
        0
    };
    let cache = FeatureCache::new(budget);
    let frozen = (devices.len() == 1 && frozen(&model.model.model.vision_model)).then_some(&cache);
    let batches = prefetch(
        Arc::new(source),
        cfg.data.seed,
        o.batch,
        progress.step * o.accumulate,
    );
    let cx = StepContext {
        tokens: &tokens,
        config: &config,
        optim: o,
        framing: &framing,
        devices: &devices,
        frozen,
    };
    let mut log = Log::open(&out, progress.step)?;
    let bar = super::progress::Progress::new("train", o.steps as u64, progress.step as u64);
    let (mut acc50, mut miou) = (f32::NAN, f32::NAN);
    let mut window = std::time::Instant::now();
    let mut window_samples = 0u64;
    while progress.step < o.steps {
        let step = progress.step;
        let lr = cfg.lr_at(step);
        let next = || {
            batches
                .recv()
                .map_err(|_| Error::Other("the data thread stopped".into()))?
        };
        let loss;
        (model, loss) = optimizer_step(model, &mut optim, lr, o.accumulate, next, &cx)?;
        let loss = loss.into_scalar::<f32>();
        progress.step += 1;
        progress.samples += (o.batch * o.accumulate) as u64;
        window_samples += (o.batch * o.accumulate) as u64;
        let rate = window_samples as f64 / window.elapsed().as_secs_f64();
        bar.set_message(format!("loss {loss:.3}, lr {lr:.2e}, {rate:.1} samples/s"));
        bar.set_position(progress.step as u64);
        let last = progress.step == o.steps;
        if progress.step.is_multiple_of(cfg.run.eval_every) || last {
            let g = Grounder {
                model: model.model.valid(),
                config: config.clone(),
                tokens: tokens.clone(),
                device: device.clone(),
                calibration: None,
                ood: None,
                switchable: None,
                adapter: None,
                processor: framing.processor.clone(),
                chat: framing.chat.clone(),
                tower_runs: Default::default(),
                rope: crate::model::rope::Rope::for_model(&config.text_config, &device),
            };
            let e = evaluate(&g, &val, Films::Own, Agreement::Needed, |_| {})?;
            let overall = e.scores.overall();
            (acc50, miou) = (overall.acc[1], overall.miou);
            bar.println(format!(
                "step {}: validation Acc@0.5 {acc50:.3}, mIoU {miou:.3}",
                progress.step
            ));
            window = std::time::Instant::now();
            window_samples = 0;
        }
        log.row(progress.step, loss, lr, rate, acc50, miou)?;
        if progress.step.is_multiple_of(cfg.run.checkpoint_every) || last {
            checkpoint::save(&out, &model, &optim, progress)?;
        }
    }
    bar.finish();
    super::plot::curves(&out.join("log.csv"), &out.join("curves.png"))?;
    let model = model.model.valid();
    let bundle_dir = write_outputs(
        cfg,
        &model,
        &config,
        tokenizer_json,
        &files,
        &out,
        Dtype::F16,
    )?;
    Ok(Finished {
        bundle: bundle_dir,
        model,
        val_acc50: acc50,
        val_miou: miou,
        trainable,
        total,
    })
}

/// The model with what trains beside it: stage 1's dense probe (`dense.rs`).
fn trainee(
    cfg: &TrainConfig,
    model: Idefics3,
    config: &Idefics3Config,
    device: &Device,
) -> Trainee {
    let hidden = config.vision_config.hidden_size;
    let probe = (cfg.stage == 1).then(|| dense::head(hidden, device));
    let offsets =
        (cfg.stage == 1 && cfg.optim.dense_offsets()).then(|| dense::offsets_head(hidden, device));
    Trainee {
        model,
        probe,
        offsets,
    }
}

/// Writes `out/bundle` (LoRA merged into the base) and, for stage 2, `out/adapter` (PEFT).
pub fn write_outputs(
    cfg: &TrainConfig,
    model: &Idefics3,
    config: &Idefics3Config,
    tokenizer_json: Vec<u8>,
    files: &[(String, Vec<u8>)],
    out: &Path,
    dtype: Dtype,
) -> Result<PathBuf> {
    if cfg.stage >= 2 {
        let (adapter_config, adapter) = crate::weights::peft::export(
            model,
            cfg.lora.rank,
            cfg.lora.alpha,
            cfg.lora.train_connector,
        )?;
        let dir = out.join("adapter");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        std::fs::write(dir.join(crate::weights::peft::CONFIG), adapter_config)
            .map_err(|e| Error::io(&dir, e))?;
        std::fs::write(dir.join(crate::weights::peft::WEIGHTS_FILE), adapter)
            .map_err(|e| Error::io(&dir, e))?;
    }
    let weights = safetensors::save(&model.clone().materialize(), dtype)?;
    let bundle_dir = out.join("bundle");
    let bundle = files.iter().fold(
        Bundle::new(config.to_json(), tokenizer_json, weights, dtype),
        |b, (name, bytes)| b.with_file(name, bytes.clone()),
    );
    bundle.write_dir(&bundle_dir)?;
    Ok(bundle_dir)
}

/// A run as of its last checkpoint: its config, the model with what trained beside it, the
/// model config, tokenizer and the step.
pub struct Restored {
    pub cfg: TrainConfig,
    pub trainee: Trainee,
    pub config: Idefics3Config,
    pub tokens: Tokens,
    pub tokenizer_json: Vec<u8>,
    pub framing: Framing,
    pub files: Vec<(String, Vec<u8>)>,
    pub step: usize,
}

/// Rebuilds a run's model from its `config.toml` and last checkpoint.
pub fn restore(run_dir: &Path) -> Result<Restored> {
    let text = std::fs::read_to_string(run_dir.join("config.toml"))
        .map_err(|e| Error::io(run_dir.join("config.toml"), e))?;
    let cfg = TrainConfig::from_toml(&text)?;
    let device = Device::flex().autodiff();
    let base = prepare(&cfg, &device)?;
    let model = trainee(&cfg, base.model, &base.config, &device);
    let optim = AdamWConfig::new().init();
    let dir = checkpoint::latest(run_dir)
        .ok_or_else(|| Error::Other(format!("{} has no checkpoint", run_dir.display())))?;
    let (trainee, _, p) = checkpoint::load(&dir, model, optim, &[OFFSETS])?;
    Ok(Restored {
        cfg,
        trainee,
        config: base.config,
        tokens: base.tokens,
        tokenizer_json: base.tokenizer_json,
        framing: base.framing,
        files: base.files,
        step: p.step,
    })
}

/// A run's last checkpoint -> its outputs in `out` (the `export` command).
pub fn export(run_dir: &Path, out: &Path, dtype: Dtype) -> Result<PathBuf> {
    let r = restore(run_dir)?;
    eprintln!("exporting {} at step {}", run_dir.display(), r.step);
    let model = r.trainee.model.valid();
    write_outputs(
        &r.cfg,
        &model,
        &r.config,
        r.tokenizer_json,
        &r.files,
        out,
        dtype,
    )
}

/// `log.csv`, cut back to the checkpoint's step on resume so it matches the model.
struct Log(std::fs::File, PathBuf);

impl Log {
    fn open(out: &Path, step: usize) -> Result<Self> {
        let path = out.join("log.csv");
        let header = "step,loss,lr,samples_per_s,val_acc50,val_miou";
        let kept: Vec<String> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter(|l| {
                l.split(',')
                    .next()
                    .and_then(|s| s.parse::<usize>().ok())
                    .is_some_and(|s| s <= step)
            })
            .map(String::from)
            .collect();
        let mut file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        writeln!(file, "{header}").map_err(|e| Error::io(&path, e))?;
        for l in kept {
            writeln!(file, "{l}").map_err(|e| Error::io(&path, e))?;
        }
        Ok(Self(file, path))
    }

    fn row(
        &mut self,
        step: usize,
        loss: f32,
        lr: f64,
        rate: f64,
        acc: f32,
        miou: f32,
    ) -> Result<()> {
        writeln!(
            self.0,
            "{step},{loss:.5},{lr:.3e},{rate:.2},{acc:.4},{miou:.4}"
        )
        .map_err(|e| Error::io(&self.1, e))
    }
}
