//! The `ground` and `bench` commands end to end: a well-formed box on PNG and DICOM inputs, bad
//! input as a clear message with exit code 2 (never a panic), and bench's figures and inputs.

use std::path::{Path, PathBuf};

mod shell;
use shell::{answer, assert_fails_with, bundle, fixture, ground, medground, root};

#[test]
fn grounds_a_dicom_film_and_a_png_with_well_formed_boxes() {
    let overlay = tempfile::NamedTempFile::with_suffix(".png").unwrap();
    let out = medground(&[
        "ground",
        "--image",
        &fixture("chest_rg1.dcm"),
        "--phrase",
        "small left pleural effusion",
        "--model",
        bundle().to_str().unwrap(),
        "--overlay",
        overlay.path().to_str().unwrap(),
    ]);
    let a = answer(&out);
    let norm: Vec<u64> = a["boxNorm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        norm[0] <= norm[2] && norm[1] <= norm[3] && norm[2] <= 100 && norm[3] <= 100,
        "{a}"
    );
    assert_eq!(
        a["text"],
        format!("{{<{}><{}><{}><{}>}}", norm[0], norm[1], norm[2], norm[3])
    );
    // Pixels of the original 460 x 488 film.
    let px: Vec<f64> = a["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (px[0] - norm[0] as f64 * 4.6).abs() < 1e-3 && (px[3] - norm[3] as f64 * 4.88).abs() < 1e-3,
        "{a}"
    );
    let c = a["confidence"].as_f64().unwrap();
    assert!(c > 0.0 && c <= 1.0);
    assert!(a["ms"].as_f64().unwrap() > 0.0);
    let drawn = image::open(overlay.path()).unwrap();
    assert_eq!((drawn.width(), drawn.height()), (460, 488));

    let a = answer(&ground(
        &fixture("chest_rg1_expected.png"),
        "cardiomegaly",
        bundle(),
    ));
    assert!(a["text"].as_str().unwrap().starts_with('{'));
}

#[test]
fn bad_images_are_clear_errors() {
    assert_fails_with(
        &ground("/nonexistent/film.png", "effusion", bundle()),
        "cannot read /nonexistent/film.png",
    );
    assert_fails_with(
        &ground(
            &root().join("Cargo.toml").to_string_lossy(),
            "effusion",
            bundle(),
        ),
        "not a PNG, JPEG or DICOM",
    );
    let dir = tempfile::tempdir().unwrap();
    let png = std::fs::read(fixture("chest_rg1_expected.png")).unwrap();
    let cut = dir.path().join("cut.png");
    std::fs::write(&cut, &png[..png.len() / 3]).unwrap();
    assert_fails_with(
        &ground(cut.to_str().unwrap(), "effusion", bundle()),
        "not a readable image",
    );
    let dcm = std::fs::read(fixture("chest_rg1.dcm")).unwrap();
    let cut = dir.path().join("cut.dcm");
    std::fs::write(&cut, &dcm[..dcm.len() / 2]).unwrap();
    assert_fails_with(
        &ground(cut.to_str().unwrap(), "effusion", bundle()),
        "broken DICOM",
    );
}

#[test]
fn bad_phrases_are_clear_errors() {
    let film = fixture("chest_rg1_expected.png");
    assert_fails_with(&ground(&film, "   ", bundle()), "the phrase is empty");
    assert_fails_with(
        &ground(&film, &"effusion ".repeat(40), bundle()),
        "characters; at most 300",
    );
    // A checkpoint folder without a manifest, whose context is too short for a long phrase.
    let dir = tempfile::tempdir().unwrap();
    for f in ["tokenizer.json", "model.safetensors"] {
        std::fs::copy(bundle().join(f), dir.path().join(f)).unwrap();
    }
    let config = std::fs::read_to_string(bundle().join("config.json")).unwrap();
    let config = config.replace(
        "\"max_position_embeddings\": 256",
        "\"max_position_embeddings\": 100",
    );
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let long = "small left pleural effusion with adjacent basilar atelectasis and a moderate right apical pneumothorax";
    assert_fails_with(
        &ground(&film, long, dir.path()),
        "exceeds the model's context of 100",
    );
    answer(&ground(&film, "effusion", dir.path()));
}

#[test]
fn bad_weights_are_clear_errors() {
    let film = fixture("chest_rg1_expected.png");
    let copy = |dir: &Path| {
        for f in [
            "config.json",
            "tokenizer.json",
            "model.safetensors",
            "manifest.json",
        ] {
            std::fs::copy(bundle().join(f), dir.join(f)).unwrap();
        }
    };
    let dir = tempfile::tempdir().unwrap();
    copy(dir.path());
    let weights: PathBuf = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(&weights, &bytes).unwrap();
    assert_fails_with(
        &ground(&film, "effusion", dir.path()),
        "model.safetensors fails its checksum",
    );

    std::fs::remove_file(&weights).unwrap();
    assert_fails_with(&ground(&film, "effusion", dir.path()), "model.safetensors");
    assert_fails_with(
        &ground(&film, "effusion", Path::new("/nonexistent-model")),
        "is not a model folder",
    );
}

#[test]
fn data_synth_is_deterministic_and_strict_loading_fails_on_bad_rows() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [&a, &b] {
        let out = medground(&[
            "data",
            "synth",
            "--n",
            "6",
            "--out",
            d.path().to_str().unwrap(),
            "--seed",
            "9",
            "--size",
            "96",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let read = |d: &tempfile::TempDir, f: &str| std::fs::read(d.path().join(f)).unwrap();
    assert_eq!(read(&a, "train.jsonl"), read(&b, "train.jsonl"));
    // The upright films are other films, and the corpus by name says so too.
    let up = tempfile::tempdir().unwrap();
    let args = [
        "data",
        "synth",
        "--n",
        "6",
        "--seed",
        "9",
        "--size",
        "96",
        "--upright",
    ];
    let out = medground(&[&args[..], &["--out", up.path().to_str().unwrap()]].concat());
    assert!(out.status.success());
    assert_ne!(
        read(&up, "images/train_000000.png"),
        read(&a, "images/train_000000.png")
    );
    let stats = medground(&["data", "stats", "anatomy:3:val:1:upright"]);
    assert!(String::from_utf8_lossy(&stats.stdout).contains("total"));
    assert_fails_with(
        &medground(&["data", "stats", "synth:3:val:1:sideways"]),
        "bad synthetic dataset",
    );
    for i in 0..6 {
        let f = format!("images/train_{i:06}.png");
        assert_eq!(read(&a, &f), read(&b, &f));
    }
    let jsonl = a.path().join("train.jsonl");
    let sheet = a.path().join("sheet.png");
    let out = medground(&[
        "data",
        "preview",
        jsonl.to_str().unwrap(),
        "--out",
        sheet.to_str().unwrap(),
    ]);
    assert!(out.status.success() && sheet.exists());
    let stats = medground(&["data", "stats", jsonl.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&stats.stdout).contains("total"));

    let bad = fixture("mscxr/records.jsonl");
    let out = medground(&["data", "stats", &bad]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("records.jsonl:3: missing image"));
    assert_fails_with(
        &medground(&["data", "stats", &bad, "--strict"]),
        "4 unusable rows (--strict)",
    );
}

/// `bench` measures what it says on the shipped bundles and writes the inputs the PyTorch side
/// replays: a batch whose labels mark exactly the answer tokens, and the query.
#[test]
fn bench_reports_figures_and_writes_the_batch_it_timed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let json = dir.path().join("native.json");
    let out = medground(&[
        "bench",
        "--steps",
        "1",
        "--queries",
        "1",
        "--batch",
        "2",
        "--save-inputs",
        d,
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(f["train_samples_per_s"].as_f64().unwrap() > 0.0);
    // The step's two passes, timed apart, are parts of it (the optimizer step is the rest).
    let (fwd, bwd) = (
        f["train_forward_ms"].as_f64().unwrap(),
        f["train_backward_ms"].as_f64().unwrap(),
    );
    assert!(fwd > 0.0 && bwd > 0.0, "{fwd} {bwd}");
    assert!(
        fwd + bwd <= 1.5 * f["train_step_ms"].as_f64().unwrap(),
        "{fwd} {bwd} {f}"
    );
    assert!(f["ground_ms"].as_f64().unwrap() > 0.0);
    assert!(f["peak_rss_train_mb"].as_f64().unwrap() >= f["peak_rss_infer_mb"].as_f64().unwrap());
    assert_eq!(f["new_tokens"], 6); // `{`, four grid tokens, `}`
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("inputs.json")).unwrap()).unwrap();
    assert_eq!(meta["lora"]["rank"], 16);
    let bytes = std::fs::read(dir.path().join("inputs.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let seq = meta["seq"].as_u64().unwrap() as usize;
    assert_eq!(st.tensor("input_ids").unwrap().shape(), [2, seq]);
    assert_eq!(st.tensor("pixel_values").unwrap().shape(), [2, 3, 224, 224]);
    let ints = |name: &str| -> Vec<i64> {
        let t = st.tensor(name).unwrap();
        let data = t.data();
        data.chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let (labels, ids) = (ints("labels"), ints("input_ids"));
    for row in 0..2 {
        let marked: Vec<usize> = (0..seq)
            .filter(|&j| labels[row * seq + j] != -100)
            .collect();
        assert!(!marked.is_empty());
        // The answer is one run of tokens, and each label is the token at its own position.
        assert_eq!(marked.last().unwrap() - marked[0] + 1, marked.len());
        for j in marked {
            assert_eq!(labels[row * seq + j], ids[row * seq + j]);
        }
    }
}

/// `eval DATASET --model <test bundle> --out OUT`, then its table.json and predictions.jsonl.
fn eval_into(dataset: &str, out: &Path) -> (serde_json::Value, Vec<serde_json::Value>) {
    let o = medground(&[
        "eval",
        dataset,
        "--model",
        bundle().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = serde_json::from_str(&std::fs::read_to_string(out.join("table.json")).unwrap());
    let lines = std::fs::read_to_string(out.join("predictions.jsonl")).unwrap();
    let rows = lines.lines().map(|l| serde_json::from_str(l).unwrap());
    (table.unwrap(), rows.collect())
}

#[test]
fn eval_writes_the_table_and_one_prediction_per_phrase() {
    let out = tempfile::tempdir().unwrap();
    let (table, rows) = eval_into("synth:6:test", out.path());
    let n = table["overall"]["n"].as_u64().unwrap() as usize;
    assert_eq!(rows.len(), n);
    assert!(n >= 6, "at least one phrase per film");
    let mut iou_sum = 0.0;
    for r in &rows {
        assert!(!r["phrase"].as_str().unwrap().is_empty());
        assert_eq!(r["record"], r["film"]);
        // The IoU is the one of the written box against the written truth.
        let b = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
        let (p, t) = (&r["box"], &r["truth"]);
        let w = (b(p, "x2").min(b(t, "x2")) - b(p, "x1").max(b(t, "x1"))).max(0.0);
        let h = (b(p, "y2").min(b(t, "y2")) - b(p, "y1").max(b(t, "y1"))).max(0.0);
        let area = |v| (b(v, "x2") - b(v, "x1")) * (b(v, "y2") - b(v, "y1"));
        let iou = w * h / (area(p) + area(t) - w * h);
        assert!((iou - r["iou"].as_f64().unwrap()).abs() < 1e-4, "{r}");
        iou_sum += iou;
    }
    let miou = table["overall"]["miou"].as_f64().unwrap();
    assert!((miou - iou_sum / n as f64).abs() < 1e-4);
    assert!(out.path().join("predictions.png").exists());
}

/// The by-eye boxes on the real film (tests/fixtures/chest_rg1_boxes.jsonl) load like any
/// JSONL: the DICOM decoded, the boxes within its 460 x 488 pixels, the anatomy rows under the
/// `Anatomy` category; `eval` scores each of them.
#[test]
fn eval_reads_the_real_films_by_eye_boxes() {
    let out = tempfile::tempdir().unwrap();
    let (table, rows) = eval_into("tests/fixtures/chest_rg1_boxes.jsonl", out.path());
    let phrases: Vec<&str> = rows.iter().map(|r| r["phrase"].as_str().unwrap()).collect();
    for p in [
        "the right lung",
        "the left lung",
        "the heart",
        "the trachea",
    ] {
        assert!(phrases.contains(&p), "{p} missing from {phrases:?}");
    }
    for r in &rows {
        let t = &r["truth"];
        assert!(t["x2"].as_f64().unwrap() <= 460.0 && t["y2"].as_f64().unwrap() <= 488.0);
        let iou = r["iou"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&iou));
    }
    assert_eq!(table["overall"]["n"].as_u64().unwrap() as usize, rows.len());
}

/// `init --from B --scale-factor 1`: the base on a grid of 196 image tokens still answers
/// well-formed boxes (the context grown to hold them); a scale the patch grid cannot take is a
/// clear error.
#[test]
fn init_regrids_a_bundle_to_finer_image_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let regrid = |s: &str| {
        medground(&[
            "init",
            "--from",
            "assets/base",
            "--scale-factor",
            s,
            "--out",
            out_dir,
        ])
    };
    assert_fails_with(&regrid("3"), "scale_factor");
    assert!(regrid("1").status.success());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["scale_factor"], 1);
    assert_eq!(
        config["text_config"]["max_position_embeddings"],
        256 + 196 - 49
    );
    let a = answer(&ground(
        &fixture("chest_rg1_expected.png"),
        "cardiomegaly",
        dir.path(),
    ));
    let text = a["text"].as_str().unwrap();
    assert!(text.starts_with("{<") && text.ends_with(">}"), "{a}");
}

#[test]
fn several_phrases_on_one_film_give_a_line_each_as_alone() {
    let demo = root().join("assets/demo");
    let film = fixture("chest_rg1.dcm");
    let phrases = ["the heart", "right lung", "small left pleural effusion"];
    let mut args = vec![
        "ground",
        "--image",
        &film,
        "--model",
        demo.to_str().unwrap(),
    ];
    for p in &phrases {
        args.extend(["--phrase", p]);
    }
    let out = medground(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), phrases.len(), "{text}");
    for (line, phrase) in lines.iter().zip(phrases) {
        let alone = answer(&ground(&film, phrase, &demo));
        assert_eq!(line["text"], alone["text"], "{phrase}");
        assert_eq!(line["confidence"], alone["confidence"], "{phrase}");
    }
}

#[test]
fn outside_images_have_no_confidence() {
    let demo = root().join("assets/demo");
    let a = answer(&ground(
        &fixture("ood/photos/chelsea.png"),
        "the heart",
        &demo,
    ));
    assert_eq!(a["inDistribution"], serde_json::Value::Bool(false), "{a}");
    assert!(a["confidence"].is_null(), "{a}");
    assert_eq!(a["calibrated"], serde_json::Value::Bool(false), "{a}");
    assert!(a["probability"].as_f64().is_some_and(|p| p > 0.0), "{a}");
    let a = answer(&ground(&fixture("chest_rg1.dcm"), "the heart", &demo));
    assert_eq!(a["inDistribution"], serde_json::Value::Bool(true), "{a}");
    assert!(a["confidence"].is_number(), "{a}");
    assert_eq!(a["calibrated"], serde_json::Value::Bool(true), "{a}");
}

#[test]
fn long_commands_report_progress_in_a_log() {
    // stderr is a pipe here, as in a log file or CI: plain lines, not a hidden bar.
    let dir = tempfile::tempdir().unwrap();
    let out = medground(&[
        "data",
        "synth",
        "--n",
        "12",
        "--out",
        dir.path().to_str().unwrap(),
        "--split",
        "val",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("data synth: 12/12 (100 %)"), "{stderr}");
    let jsonl = dir.path().join("val.jsonl");
    let out = medground(&[
        "eval",
        jsonl.to_str().unwrap(),
        "--model",
        root().join("assets/demo").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("eval: ") && stderr.contains(" (100 %)"),
        "{stderr}"
    );
}
