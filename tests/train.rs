//! Training on a very small configuration (the parity fixture as base, 64 px synthetic films):
//! the loss falls, stage 2 leaves the base weights alone, merged weights answer as the unmerged
//! LoRA model does, the PEFT adapter round-trips, and a killed run resumes to the same result.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use burn::prelude::*;
use medground::Grounder;
use medground::data::synth::{Split, Synth};
use medground::model::Idefics3;
use medground::train::TrainConfig;
use medground::train::run::{run, write_outputs};
use medground::weights::{Bundle, Dtype, peft};

mod common;
use common::{fixture, losses};

fn config(out: &Path, steps: usize) -> TrainConfig {
    common::small_stage2(out, steps, 1e-2)
}

fn answers(g: &Grounder) -> Vec<String> {
    let films = Synth::new(5, Split::Test, 64);
    (0..4)
        .map(|i| {
            let s = films.sample(i);
            g.answer(
                &s.picture,
                ["small left pleural effusion", "cardiomegaly"][i as usize % 2],
            )
            .unwrap()
            .0
        })
        .collect()
}

#[test]
fn stage2_learns_with_adapters_only_and_its_outputs_agree() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 40);
    let done = run(&cfg, false).unwrap();

    let l = losses(dir.path());
    let (first, last) = (
        l[..5].iter().sum::<f32>() / 5.0,
        l[l.len() - 5..].iter().sum::<f32>() / 5.0,
    );
    assert!(last < 0.6 * first, "loss {first} -> {last}");
    assert!(
        done.trainable < done.total / 5,
        "{} of {} trainable",
        done.trainable,
        done.total
    );

    // The base is untouched: frozen vision, frozen text weights under their adapters.
    let device = Device::flex();
    let bundle = Bundle::read_dir(&fixture()).unwrap();
    let original = Grounder::from_bundle(&bundle, &device).unwrap().model;
    let same = |a: Tensor<2>, b: Tensor<2>| {
        a.into_data().try_to_vec::<f32>().unwrap() == b.into_data().try_to_vec::<f32>().unwrap()
    };
    let (t0, o0) = (
        &done.model.model.text_model.layers[0],
        &original.model.text_model.layers[0],
    );
    // The stage2 preset adapts every linear of the text model, and nothing else.
    assert!(
        t0.self_attn.q_proj.weight.adapter().is_some()
            && t0.self_attn.k_proj.weight.adapter().is_some()
            && t0.mlp.down_proj.weight.adapter().is_some()
    );
    let v0 = &done.model.model.vision_model.encoder.layers[0];
    assert!(v0.self_attn.q_proj.weight.adapter().is_none());
    assert!(same(
        t0.self_attn.q_proj.weight.base(),
        o0.self_attn.q_proj.weight.val()
    ));
    assert!(same(
        t0.self_attn.v_proj.weight.base(),
        o0.self_attn.v_proj.weight.val()
    ));
    assert!(same(
        t0.mlp.up_proj.weight.base(),
        o0.mlp.up_proj.weight.val()
    ));
    assert!(same(
        t0.input_layernorm.gamma.val().unsqueeze_dim(0),
        o0.input_layernorm.gamma.val().unsqueeze_dim(0)
    ));
    let v = |m: &Idefics3| m.model.vision_model.encoder.layers[1].mlp.fc1.weight.val();
    assert!(same(v(&done.model), v(&original)));
    // ... while the adapters and the connector moved.
    assert!(!same(
        t0.self_attn.q_proj.weight.val(),
        o0.self_attn.q_proj.weight.val()
    ));
    let c = |m: &Idefics3| m.model.connector.modality_projection.proj.weight.val();
    assert!(!same(c(&done.model), c(&original)));

    // Merged (f32) weights answer exactly as the unmerged LoRA model.
    let unmerged = Grounder {
        model: done.model.clone(),
        config: original_config(),
        tokens: tokens(),
        device: device.clone(),
        calibration: None,
        ood: None,
        switchable: None,
        adapter: None,
        processor: None,
        chat: None,
        tower_runs: Default::default(),
        rope: medground::model::rope::Rope::for_model(&original_config().text_config, &device),
    };
    let want = answers(&unmerged);
    let merged_dir = tempfile::tempdir().unwrap();
    let json = std::fs::read(fixture().join("tokenizer.json")).unwrap();
    let merged = write_outputs(
        &cfg,
        &done.model,
        &original_config(),
        json,
        &[],
        merged_dir.path(),
        Dtype::F32,
    )
    .unwrap();
    let g = Grounder::from_bundle(&Bundle::read_dir(&merged).unwrap(), &device).unwrap();
    assert_eq!(answers(&g), want);

    // The PEFT adapter, merged into the base in weight space, gives the same answers too.
    let adapter = merged_dir.path().join("adapter");
    let config: peft::AdapterConfig =
        serde_json::from_slice(&std::fs::read(adapter.join(peft::CONFIG)).unwrap()).unwrap();
    assert_eq!(
        (config.r, config.target_modules.clone()),
        (
            4,
            peft::TargetModules::Pattern(
                r"model\.text_model\.layers\.[0-9]+\.(mlp\.down_proj|mlp\.gate_proj|mlp\.up_proj|self_attn\.k_proj|self_attn\.o_proj|self_attn\.q_proj|self_attn\.v_proj)"
                    .into()
            )
        )
    );
    let imported = peft::merge(
        &bundle,
        &std::fs::read(adapter.join(peft::CONFIG)).unwrap(),
        &std::fs::read(adapter.join(peft::WEIGHTS_FILE)).unwrap(),
    )
    .unwrap();
    let g = Grounder::from_bundle(&imported, &device).unwrap();
    assert_eq!(answers(&g), want);
}

fn original_config() -> medground::model::Idefics3Config {
    medground::model::Idefics3Config::from_json(
        &std::fs::read_to_string(fixture().join("config.json")).unwrap(),
    )
    .unwrap()
}

fn tokens() -> medground::tokens::Tokens {
    medground::tokens::Tokens::from_bytes(&std::fs::read(fixture().join("tokenizer.json")).unwrap())
        .unwrap()
}

fn train_cli(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medground"));
    c.args([
        "train",
        "--config",
        config.to_str().unwrap(),
        "--eval",
        "synth:2:test",
    ]);
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

fn checkpoint_step(out: &Path) -> usize {
    std::fs::read_to_string(out.join("checkpoint/progress.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["step"].as_u64())
        .unwrap_or(0) as usize
}

#[test]
fn a_killed_run_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let mut c = config(out, 40);
        c.optim.batch = 8;
        c.data.train = "synth:16:train".into();
        std::fs::write(
            dir.path().join(format!(
                "{}.toml",
                out.file_name().unwrap().to_str().unwrap()
            )),
            c.to_toml(),
        )
        .unwrap();
    }
    assert!(
        train_cli(&dir.path().join("a.toml"))
            .status()
            .unwrap()
            .success()
    );

    let mut child = train_cli(&dir.path().join("b.toml")).spawn().unwrap();
    let start = Instant::now();
    while checkpoint_step(&b) < 10 {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at = checkpoint_step(&b);
    assert!(
        killed_at < 40 && !b.join("bundle").exists(),
        "the run finished before it was killed"
    );
    // Without --resume the run refuses to overwrite the checkpoint.
    assert_eq!(
        train_cli(&dir.path().join("b.toml"))
            .status()
            .unwrap()
            .code(),
        Some(2)
    );
    // --resume continues under the config the run saved: another base is refused, as it is.
    let resume = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_medground"));
        c.args(["train", "--resume", "--eval", "synth:2:test", "--out"])
            .arg(&b)
            .args(extra)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        c.output().unwrap()
    };
    let saved = std::fs::read(b.join("config.toml")).unwrap();
    let refused = resume(&["--base", "assets/demo"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(said.contains("as it was started"), "{said}");
    assert_eq!(std::fs::read(b.join("config.toml")).unwrap(), saved);
    assert!(resume(&[]).status.success());

    let (la, lb) = (losses(&a), losses(&b));
    assert_eq!(la.len(), 40);
    assert_eq!(lb.len(), 40);
    for (step, (x, y)) in la.iter().zip(&lb).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * x.abs().max(1.0),
            "step {}: {x} vs {y} (killed at {killed_at})",
            step + 1
        );
    }
    let wa = std::fs::read(a.join("bundle/model.safetensors")).unwrap();
    let wb = std::fs::read(b.join("bundle/model.safetensors")).unwrap();
    let differing = wa.iter().zip(&wb).filter(|(x, y)| x != y).count();
    assert!(
        differing * 1000 < wa.len(),
        "{differing} of {} bytes differ",
        wa.len()
    );
}

/// Stage 1 trains the whole model, the vision tower included (with Burn's default AdamW epsilon
/// of 1e-5 its tiny gradients moved nothing, and the model never learnt to look at films), with
/// the dense probe and the image-token targets beside the answer loss (the probe's offsets head
/// may join on resume); the probe is not shipped but `probe` reads it from the checkpoint.
#[test]
fn stage1_moves_the_vision_tower_and_ships_without_the_probe() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = TrainConfig::preset("stage1").unwrap();
    c.base = fixture().to_string_lossy().into_owned();
    c.optim.steps = 10;
    c.optim.warmup_steps = 2;
    c.optim.batch = 4;
    c.data.val = "synth:2:val".into();
    c.run.out = dir.path().to_string_lossy().into_owned();
    c.run.eval_every = 1000;
    c.run.checkpoint_every = 100;
    run(&c, false).unwrap();
    // Resumed with the probe's offsets (where in each patch a box's centre lies) added: the
    // checkpoint has no offsets head, which starts fresh; everything else loads.
    c.optim.steps = 12;
    c.optim.dense_offset_weight = 0.5;
    let done = run(&c, true).unwrap();
    assert_eq!(done.trainable, done.total);

    let original = Grounder::from_bundle(&Bundle::read_dir(&fixture()).unwrap(), &Device::flex())
        .unwrap()
        .model;
    let patch = |m: &Idefics3| {
        m.model
            .vision_model
            .embeddings
            .patch_embedding
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (a, b) = (patch(&done.model), patch(&original));
    let shift = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
    assert!(shift > 1e-3, "patch embedding moved {shift:.2e} on average");

    let names = |d: &Path| {
        let b = Bundle::read_dir(d).unwrap();
        let mut n: Vec<String> = safetensors::SafeTensors::deserialize(b.file("model.safetensors"))
            .unwrap()
            .names()
            .into_iter()
            .map(String::from)
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&done.bundle), names(&fixture()));

    // `probe` reads the checkpoint's dense probe on held-out films: one row per finding.
    let (step, rows) = medground::train::probe::report(dir.path(), 6).unwrap();
    assert_eq!((step, rows.len()), (12, 8));
    assert!(rows.iter().map(|r| r.n).sum::<usize>() >= 6, "{rows:?}");
    for r in &rows {
        assert!((0.0..=1.0).contains(&r.peak_in_box) && (0.0..=1.0).contains(&r.miou));
        assert!(r.n == 0 || (0.0..224.0).contains(&r.centre_error), "{r:?}");
    }
}

/// `--devices cpu,cpu`: each micro-batch split in two shards that train in parallel threads on
/// forked replicas, their gradients summed on the first device. Each shard's loss terms are
/// weighted by its share of their targets, so the steps are one device's, up to rounding, in
/// stage 2 (answer tokens) and stage 1 (answer, image-token targets and the dense probe).
#[test]
fn data_parallel_steps_match_one_device() {
    let dir = tempfile::tempdir().unwrap();
    for stage in [1u8, 2] {
        let mut logs = Vec::new();
        for device in ["cpu", "cpu,cpu"] {
            let out = dir.path().join(format!("{stage}-{device}"));
            let mut c = config(&out, 6);
            if stage == 1 {
                let mut s1 = TrainConfig::preset("stage1").unwrap();
                (s1.base, s1.optim, s1.data, s1.run) = (c.base, c.optim, c.data, c.run);
                s1.data.train = "synth".into();
                c = s1;
            }
            c.optim.batch = 5;
            c.optim.accumulate = 2;
            c.run.device = device.into();
            run(&c, false).unwrap();
            logs.push(losses(&out));
        }
        assert_eq!(logs[0].len(), 6);
        for (step, (x, y)) in logs[0].iter().zip(&logs[1]).enumerate() {
            assert!(
                (x - y).abs() <= 1e-3 * x.abs().max(1.0),
                "stage {stage} step {}: one device {x}, two {y}",
                step + 1
            );
        }
    }
    let mut c = config(&dir.path().join("one"), 1);
    c.optim.batch = 1;
    c.run.device = "cpu,cpu".into();
    let err = run(&c, false).err().unwrap().to_string();
    assert!(err.contains("cannot be split across 2 devices"), "{err}");
    // Refused before the first step: nothing was trained or saved.
    assert!(!dir.path().join("one/log.csv").exists());
}

/// Every gradient `grads` holds for `model`'s parameters, flattened in visiting order.
fn gradient_values<M: burn::module::Module>(
    model: &M,
    grads: &burn::optim::GradientsParams,
) -> Vec<f32> {
    struct Collect<'a>(&'a burn::optim::GradientsParams, Vec<f32>);
    impl burn::module::ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(param.id) {
                self.1.extend(g.into_data().try_to_vec::<f32>().unwrap());
            }
        }
    }
    let mut c = Collect(grads, Vec::new());
    model.visit(&mut c);
    c.1
}

/// Stage 2's frozen vision tower run outside autodiff, then served from the feature cache: the
/// same loss and the same gradients as the tower inside the graph; a film met again (here twice
/// in one batch, then the whole batch again) runs the tower once.
#[test]
fn the_feature_cache_gives_the_tracked_towers_loss_and_gradients() {
    use burn::optim::GradientsParams;
    use medground::train::base::prepare;
    use medground::train::batch::{Source, build};
    use medground::train::cache::{FeatureCache, frozen};
    use medground::train::loss::{Shares, Trainee};

    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), 1);
    let device = Device::flex().autodiff();
    let base = prepare(&c, &device).unwrap();
    assert!(frozen(&base.model.model.vision_model));
    let trainee = Trainee {
        model: base.model,
        probe: None,
        offsets: None,
    };
    let source = Source::Synth {
        synth: Synth::new(3, Split::Train, 64),
        stage: 2,
        anatomy: 0.0,
    };
    let examples: Vec<_> = [0u64, 1, 2, 0]
        .iter()
        .map(|&i| source.example(i, 9).unwrap())
        .collect();
    let (config, tokens) = (&base.config, &base.tokens);
    let tb = build(
        &examples,
        tokens,
        config,
        c.optim.coord_sigma,
        false,
        &base.framing,
        &device,
    )
    .unwrap();
    assert_eq!(tb.keys[0], tb.keys[3]);
    assert_ne!(tb.keys[0], tb.keys[1]);
    let step = |frozen: Option<&FeatureCache>| {
        let loss = trainee.loss(&tb, config.image_token_id, 1.0, 0.0, Shares::WHOLE, frozen);
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &trainee);
        (value, gradient_values(&trainee, &grads))
    };
    let (tracked, tracked_grads) = step(None);
    let cache = FeatureCache::new(64 << 20);
    let (first, first_grads) = step(Some(&cache));
    assert_eq!(
        cache.counts(),
        (0, 4),
        "a new batch: the tower runs on every film"
    );
    let held = cache.bytes();
    assert!(held > 0);
    let (again, again_grads) = step(Some(&cache));
    assert_eq!(
        cache.counts(),
        (4, 4),
        "the same films again: all from the cache"
    );
    assert_eq!(cache.bytes(), held, "film 0 is held once");
    assert!(!tracked_grads.is_empty() && tracked_grads.len() == first_grads.len());
    for (name, value, grads) in [
        ("uncached", first, &first_grads),
        ("cached", again, &again_grads),
    ] {
        assert!(
            (value - tracked).abs() <= 1e-5 * tracked.abs(),
            "{name} loss {value} vs {tracked}"
        );
        let scale = tracked_grads.iter().fold(0f32, |m, g| m.max(g.abs()));
        let worst = tracked_grads
            .iter()
            .zip(grads.iter())
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= 1e-5 * scale,
            "{name} gradients differ by {worst} (largest {scale})"
        );
    }
    assert_eq!(
        first_grads, again_grads,
        "the cache returns the features it stored"
    );
    // Budget 0: the tower still runs outside autodiff, nothing is kept.
    let none = FeatureCache::new(0);
    let (value, _) = step(Some(&none));
    assert_eq!((value, none.bytes()), (first, 0));
}
