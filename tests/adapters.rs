//! Several adapters on one base: a bundle holds the base weights and PEFT adapters beside them
//! (`adapters/NAME/`), survives a write and a read with its checksums, and switching to an adapter
//! answers exactly as the merged model (`import-peft` without `--name`) does; switching back gives
//! the base's answers. The adapter is `tests/fixtures/adapter` (stage 2 trained on the parity
//! fixture, see its README).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use medground::Grounder;
use medground::data::synth::{Split, Synth};
use medground::weights::{Bundle, peft};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn with_adapter() -> (Bundle, Bundle) {
    let base = Bundle::read_dir(&fixture("parity")).unwrap();
    let config = std::fs::read(fixture("adapter").join(peft::CONFIG)).unwrap();
    let weights = std::fs::read(fixture("adapter").join(peft::WEIGHTS_FILE)).unwrap();
    let merged = peft::merge(&base, &config, &weights).unwrap();
    (
        base.with_adapter("findings", config, weights).unwrap(),
        merged,
    )
}

fn answers(g: &Grounder) -> Vec<(String, f32)> {
    let films = Synth::new(2, Split::Test, 96);
    (0..3)
        .map(|i| {
            let s = films.sample(i);
            g.answer(&s.picture, &s.findings[0].phrase).unwrap()
        })
        .collect()
}

#[test]
fn switching_adapters_answers_as_the_merged_model() {
    let (bundle, merged) = with_adapter();
    let dir = tempfile::tempdir().unwrap();
    bundle.write_dir(dir.path()).unwrap();
    let read = Bundle::read_dir(dir.path()).unwrap();
    assert_eq!(read.adapters(), vec!["findings".to_string()]);

    let device = Device::flex();
    let plain =
        Grounder::from_bundle(&Bundle::read_dir(&fixture("parity")).unwrap(), &device).unwrap();
    let merged = Grounder::from_bundle(&merged, &device).unwrap();
    let mut g = Grounder::from_bundle(&read, &device).unwrap();
    assert_eq!(g.adapters(), vec!["findings".to_string()]);
    let base = answers(&g);
    assert_eq!(
        base,
        answers(&plain),
        "the bundle's own weights are the base"
    );
    g.use_adapter(Some("findings")).unwrap();
    assert_eq!(g.adapter.as_deref(), Some("findings"));
    let adapted = answers(&g);
    assert_eq!(adapted, answers(&merged));
    assert_ne!(adapted, base, "the adapter changes nothing");
    g.use_adapter(None).unwrap();
    assert_eq!(answers(&g), base);

    let e = g.use_adapter(Some("anatomy")).unwrap_err().to_string();
    assert!(
        e.contains("no adapter \"anatomy\"") && e.contains("findings"),
        "{e}"
    );
    assert!(plain.adapters().is_empty());
}

#[test]
fn a_manifest_cannot_name_files_outside_the_bundle() {
    let (bundle, _) = with_adapter();
    let dir = tempfile::tempdir().unwrap();
    bundle.write_dir(dir.path()).unwrap();
    let path = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("adapters/findings/", "../../")).unwrap();
    let e = Bundle::read_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("outside the bundle"), "{e}");
    // The browser's path (files fetched by the manifest's names) refuses it the same way.
    let bad = text.replace("adapters/findings/", "../../");
    let e = Bundle::from_files(bundle.files.clone(), Some(bad.as_bytes()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("outside the bundle"), "{e}");
    // A listed adapter file that is missing is named.
    std::fs::write(&path, text).unwrap();
    std::fs::remove_file(dir.path().join("adapters/findings/adapter_config.json")).unwrap();
    let e = Bundle::read_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("adapter_config.json"), "{e}");
}

#[test]
fn bad_adapter_names_are_refused() {
    let base = Bundle::read_dir(&fixture("parity")).unwrap();
    for name in ["", "../x", "a b"] {
        assert!(
            base.clone().with_adapter(name, vec![], vec![]).is_err(),
            "{name:?}"
        );
    }
}
