//! Shared by the training tests: a very small stage-2 configuration (the parity fixture as
//! base, 64 px synthetic films) and the losses a run logged.

use std::path::{Path, PathBuf};

use medground::train::TrainConfig;

pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity")
}

/// Stage 2 on the parity fixture: LoRA r 4, batch 4, four training films, no evaluation.
pub fn small_stage2(out: &Path, steps: usize, lr: f64) -> TrainConfig {
    let mut c = TrainConfig::preset("stage2").unwrap();
    c.base = fixture().to_string_lossy().into_owned();
    c.lora.rank = 4;
    c.lora.alpha = 8.0;
    c.optim.steps = steps;
    c.optim.warmup_steps = 2.min(steps);
    c.optim.batch = 4;
    c.optim.lr = lr;
    c.data.train = "synth:4:train".into();
    c.data.val = "synth:2:val".into();
    c.run.out = out.to_string_lossy().into_owned();
    c.run.eval_every = 1000;
    c.run.checkpoint_every = 5;
    c
}

/// The loss of each step, from the run's log.csv.
pub fn losses(out: &Path) -> Vec<f32> {
    std::fs::read_to_string(out.join("log.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}
