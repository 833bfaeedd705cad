//! HF checkpoint folders on the command line: the structure fixture (an Idefics3 shaped like
//! SmolVLM-256M, with its processor) answers; a folder missing a file, a sharded checkpoint,
//! another architecture and a processor setting medground does not support are each refused with
//! a message naming it and exit code 2.

use std::path::Path;

mod shell;
use shell::{answer, assert_fails_with, fixture, ground, root};

/// A copy of the structure fixture's checkpoint files, to break one at a time.
fn checkpoint() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("tests/fixtures/structure");
    for f in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "preprocessor_config.json",
        "processor_config.json",
        "chat_template.jinja",
    ] {
        std::fs::copy(from.join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn edit(dir: &Path, name: &str, from: &str, to: &str) {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in {name}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_checkpoint_folder_answers_through_its_processor() {
    let dir = checkpoint();
    let out = answer(&ground(
        &fixture("structure/tall.png"),
        "the heart",
        dir.path(),
    ));
    let b = out["boxNorm"].as_array().unwrap();
    assert_eq!(b.len(), 4, "{out}");
}

#[test]
fn checkpoint_folders_medground_cannot_run_are_clear_errors() {
    let image = fixture("structure/tall.png");
    let run = |dir: &Path| ground(&image, "the heart", dir);

    let dir = checkpoint();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    assert_fails_with(&run(dir.path()), "has no tokenizer.json");

    let dir = checkpoint();
    let weights = dir.path().join("model.safetensors");
    std::fs::remove_file(&weights).unwrap();
    assert_fails_with(&run(dir.path()), "has no model.safetensors");
    std::fs::write(dir.path().join("model.safetensors.index.json"), "{}").unwrap();
    assert_fails_with(&run(dir.path()), "sharded checkpoint");

    let dir = checkpoint();
    edit(dir.path(), "config.json", "\"idefics3\"", "\"llava\"");
    assert_fails_with(&run(dir.path()), "model_type \"llava\"");

    let dir = checkpoint();
    edit(
        dir.path(),
        "config.json",
        "Idefics3ForConditionalGeneration",
        "LlavaForConditionalGeneration",
    );
    assert_fails_with(&run(dir.path()), "LlavaForConditionalGeneration");

    let dir = checkpoint();
    edit(
        dir.path(),
        "preprocessor_config.json",
        "\"resample\": 1",
        "\"resample\": 0",
    );
    assert_fails_with(&run(dir.path()), "resample");

    let dir = checkpoint();
    edit(
        dir.path(),
        "config.json",
        "\"gelu_pytorch_tanh\"",
        "\"quick_gelu\"",
    );
    assert_fails_with(&run(dir.path()), "unknown variant `quick_gelu`");

    let dir = checkpoint();
    edit(dir.path(), "config.json", "\"silu\"", "\"gelu\"");
    assert_fails_with(&run(dir.path()), "text MLP is SwiGLU and runs silu only");

    let dir = checkpoint();
    edit(dir.path(), "chat_template.jinja", "{% endfor %}", "");
    assert_fails_with(&run(dir.path()), "chat_template.jinja");
}

#[test]
fn fine_tuning_a_checkpoint_feeds_and_ships_its_processor_without_splitting() {
    let base = checkpoint();
    let run = tempfile::tempdir().unwrap();
    let out = shell::medground(&[
        "train",
        "--preset",
        "paper",
        "--base",
        base.path().to_str().unwrap(),
        "--steps",
        "3",
        "--out",
        run.path().to_str().unwrap(),
        "--eval",
        "synth:2:test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = tempfile::tempdir().unwrap();
    let out = shell::medground(&[
        "export",
        "--run",
        run.path().to_str().unwrap(),
        "--out",
        exported.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for bundle in [run.path().join("bundle"), exported.path().join("bundle")] {
        // The films were fed as the processor's global view; the bundle is asked the same way.
        let text = std::fs::read_to_string(bundle.join("preprocessor_config.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["do_image_splitting"], false, "{}", bundle.display());
        assert_eq!(json["max_image_size"]["longest_edge"], 64);
        // Trained inside the base's chat template, asked inside it.
        assert!(bundle.join("chat_template.jinja").is_file());
        let a = answer(&ground(
            &fixture("structure/tall.png"),
            "the heart",
            &bundle,
        ));
        assert_eq!(a["boxNorm"].as_array().unwrap().len(), 4, "{a}");
    }
}
