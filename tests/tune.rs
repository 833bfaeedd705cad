//! The in-memory fine-tune (`train::tune::Tuner`, what the browser's `fineTune` runs) takes the
//! steps a native `train` run of the same config takes: same films, seed and schedule, same
//! losses.

use std::path::Path;
use std::process::Command;

use burn::prelude::*;
use medground::train::TrainConfig;
use medground::train::tune::Tuner;
use medground::weights::Bundle;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn medground(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_medground"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_in_memory_fine_tune_logs_the_native_runs_losses() {
    let dir = tempfile::tempdir().unwrap();
    let films = dir.path().join("films");
    let films_arg = films.to_str().unwrap();
    medground(&[
        "data",
        "synth",
        "--n",
        "6",
        "--out",
        films_arg,
        "--split",
        "val",
        "--seed",
        "3",
        "--upright",
    ]);
    let jsonl = films.join("val.jsonl");
    let mut cfg = TrainConfig::preset("stage2").unwrap();
    cfg.base = root().join("assets/demo").to_string_lossy().into_owned();
    cfg.data.train = jsonl.to_string_lossy().into_owned();
    cfg.data.val = cfg.data.train.clone();
    cfg.optim.steps = 4;
    cfg.optim.warmup_steps = 2;
    cfg.optim.batch = 4;
    cfg.run.eval_every = 100;
    cfg.run.checkpoint_every = 100;
    cfg.run.out = dir.path().join("run").to_string_lossy().into_owned();
    let toml = dir.path().join("tune.toml");
    std::fs::write(&toml, cfg.to_toml()).unwrap();
    medground(&[
        "train",
        "--config",
        toml.to_str().unwrap(),
        "--eval",
        &cfg.data.train,
    ]);
    let log = std::fs::read_to_string(dir.path().join("run/log.csv")).unwrap();
    let native: Vec<f32> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(native.len(), 4, "{log}");

    let records = medground::data::open(&cfg.data.train, None, 224)
        .unwrap()
        .records;
    let bundle = Bundle::read_dir(&root().join("assets/demo")).unwrap();
    let mut tuner = Tuner::new(&bundle, cfg, records, &Device::flex()).unwrap();
    for (step, want) in native.iter().enumerate() {
        let loss = tuner.step().unwrap();
        assert!(
            (loss - want).abs() < 1e-4,
            "step {step}: {loss} in memory, {want} natively"
        );
    }
    // The native run's last losses fell: it learnt (a guard against a test of nothing).
    assert!(native[3] < native[0], "{native:?}");
}
