//! `train`: a stage from a TOML config or a preset, printed at start; ends with an eval table.

use std::path::{Path, PathBuf};

use clap::Args;
use medground::train::{TrainConfig, run::run};
use medground::{Error, Result};

#[derive(Args)]
pub struct TrainArgs {
    /// TOML config (see `configs/`); without it, --preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// stage1 (alignment of the tiny base), stage2 (PFMVG with LoRA), paper (stage 2, r 64,
    /// alpha 16); default stage2.
    #[arg(long, conflicts_with = "config")]
    preset: Option<String>,
    /// Continue the run in --out from its last checkpoint, under the config it saved there
    /// (--steps, --device and the --dense-*-weight may change it; other changes are refused).
    #[arg(long)]
    resume: bool,
    #[arg(long)]
    out: Option<String>,
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long)]
    base: Option<String>,
    /// Weight of the inside-a-box side of stage 1's dense probe ([optim] dense_pos_weight).
    #[arg(long)]
    dense_pos_weight: Option<f32>,
    /// Weight of the loss of stage 1's dense probe offsets, where in each patch a box's centre
    /// lies ([optim] dense_offset_weight; 0 = none).
    #[arg(long)]
    dense_offset_weight: Option<f32>,
    /// Ask more about this finding ([data] focus, e.g. "Lung Opacity") ...
    #[arg(long)]
    focus: Option<String>,
    /// ... in this share of the synthetic films ([data] focus_share, 0-1, default 0.5).
    #[arg(long)]
    focus_share: Option<f64>,
    /// Stage 2: ask an anatomy phrase instead of a finding in this share of the examples
    /// ([data] anatomy_share, 0-1; default 0), so that the demo keeps the base's anatomy.
    #[arg(long)]
    anatomy_share: Option<f64>,
    /// cpu, wgpu, vulkan or cuda[:N]; several, comma-separated (`--devices cuda:0,cuda:1`),
    /// train data parallel: each micro-batch split across them.
    #[arg(long, visible_alias = "devices")]
    device: Option<String>,
    /// Print the resolved config as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Evaluate on this dataset at the end (default: the synthetic test split, upright films).
    #[arg(long, default_value = "synth:200:test:upright")]
    eval: String,
}

fn read_config(path: &Path) -> Result<TrainConfig> {
    TrainConfig::from_toml(&std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?)
}

pub fn run_cmd(args: TrainArgs) -> Result<()> {
    let asked = match (&args.config, &args.preset) {
        (Some(path), _) => Some(read_config(path)?),
        (None, Some(name)) => Some(TrainConfig::preset(name)?),
        (None, None) => None,
    };
    let mut cfg = match &asked {
        Some(c) => c.clone(),
        None => TrainConfig::preset("stage2")?,
    };
    if let Some(out) = &args.out {
        cfg.run.out = out.clone();
    }
    // On --resume the run's own config is the starting point; flags then change it.
    let saved = Path::new(&cfg.run.out).join("config.toml");
    let saved = if args.resume && saved.is_file() {
        Some(read_config(&saved)?)
    } else {
        None
    };
    if let (Some(saved), None) = (&saved, &asked) {
        let out = std::mem::take(&mut cfg.run.out);
        cfg = saved.clone();
        cfg.run.out = out;
    }
    if let Some(steps) = args.steps {
        cfg.optim.steps = steps;
        cfg.optim.warmup_steps = cfg.optim.warmup_steps.min(steps / 4);
    }
    if let Some(base) = args.base {
        cfg.base = base;
    }
    if let Some(w) = args.dense_offset_weight {
        cfg.optim.dense_offset_weight = w;
    }
    if let Some(w) = args.dense_pos_weight {
        cfg.optim.dense_pos_weight = w;
    }
    if let Some(focus) = args.focus {
        cfg.data.focus = Some(focus);
    }
    if let Some(share) = args.focus_share {
        cfg.data.focus_share = Some(share);
    }
    if let Some(share) = args.anatomy_share {
        cfg.data.anatomy_share = Some(share);
    }
    cfg.data.focus()?;
    cfg.data.anatomy_share()?;
    if let Some(device) = args.device {
        cfg.run.device = device;
    }
    if let Some(saved) = &saved {
        saved.resumable_as(&cfg)?;
    }
    if args.print_config {
        print!("{}", cfg.to_toml());
        return Ok(());
    }
    eprintln!("{}", cfg.to_toml());
    let finished = run(&cfg, args.resume)?;
    eprintln!(
        "done: bundle in {}; validation Acc@0.5 {:.3}, mIoU {:.3}",
        finished.bundle.display(),
        finished.val_acc50,
        finished.val_miou
    );
    super::eval::table(
        &args.eval,
        None,
        &finished.bundle,
        // The first of the training devices.
        medground::device::names(&cfg.run.device)
            .next()
            .unwrap_or("cpu"),
        None,
        medground::eval::Films::Own,
    )
    .map(|_| ())
}
