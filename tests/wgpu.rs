//! The native GPU path against the CPU: with `--features wgpu` (CI runs it on Vulkan through
//! Mesa's lavapipe, a real Vulkan driver on the CPU), the shipped demo answers exactly as on the
//! CPU, and a short stage-2 run on a very small configuration logs the CPU's losses: the first
//! step's to 1e-4, later ones within 0.5 %. Without the feature this file compiles to nothing.
#![cfg(feature = "wgpu")]

mod common;

use std::path::{Path, PathBuf};

use medground::Grounder;
use medground::data::synth::{Split, Synth};
use medground::train::TrainConfig;
use medground::train::run::run;
use medground::weights::Bundle;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_demo_answers_on_wgpu_as_on_the_cpu() {
    let bundle = Bundle::read_dir(&root().join("assets/demo")).unwrap();
    let cpu = Grounder::from_bundle(&bundle, &medground::device::parse("cpu").unwrap()).unwrap();
    let gpu = Grounder::from_bundle(&bundle, &medground::device::parse("wgpu").unwrap()).unwrap();
    let films = Synth::new(3, Split::Test, cpu.config.vision_config.image_size);
    for i in 0..3 {
        let s = films.sample(i);
        let phrase = &s.findings[0].phrase;
        let (a, b) = (
            cpu.ground(&s.picture, phrase).unwrap(),
            gpu.ground(&s.picture, phrase).unwrap(),
        );
        let ((a, pa), (b, pb)) = ((a.text, a.probability), (b.text, b.probability));
        eprintln!("{phrase:?}: cpu {a} {pa:.6}, wgpu {b} {pb:.6}");
        assert_eq!(a, b, "{phrase:?}");
        assert!(
            (pa - pb).abs() < 1e-4,
            "{phrase:?}: confidence {pa} vs {pb}"
        );
    }
}

fn config(out: &Path, device: &str) -> TrainConfig {
    let mut c = common::small_stage2(out, 3, 1e-3);
    c.run.checkpoint_every = 1000;
    c.run.device = device.into();
    c
}

#[test]
fn stage2_on_wgpu_logs_the_cpus_losses() {
    let dirs: Vec<PathBuf> = (0..2)
        .map(|_| tempfile::tempdir().unwrap().keep())
        .collect();
    run(&config(&dirs[0], "cpu"), false).unwrap();
    run(&config(&dirs[1], "wgpu"), false).unwrap();
    let (cpu, gpu) = (common::losses(&dirs[0]), common::losses(&dirs[1]));
    eprintln!("cpu {cpu:?}\nwgpu {gpu:?}");
    assert_eq!(cpu.len(), 3);
    assert_eq!(gpu.len(), 3);
    assert!(
        (cpu[0] - gpu[0]).abs() < 1e-4,
        "first step {} vs {}",
        cpu[0],
        gpu[0]
    );
    for (step, (c, g)) in cpu.iter().zip(&gpu).enumerate().skip(1) {
        assert!(
            (c - g).abs() <= 0.005 * c.abs(),
            "step {}: {c} vs {g}",
            step + 1
        );
    }
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}
