//! Running the `medground` binary from tests: its output, a one-line JSON answer, and a clear
//! failure (exit code 2, a message naming the problem, no panic, nothing on stdout).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn medground(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medground"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// A random-weight tiny bundle, written once per test run.
pub fn bundle() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = medground(&["init", "--out", dir.path().to_str().unwrap(), "--seed", "3"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

pub fn fixture(name: &str) -> String {
    root()
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

pub fn ground(image: &str, phrase: &str, model: &Path) -> Output {
    medground(&[
        "ground",
        "--image",
        image,
        "--phrase",
        phrase,
        "--model",
        model.to_str().unwrap(),
    ])
}

pub fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in {stderr:?}");
    assert!(
        !stderr.contains("internal error") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

pub fn answer(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    serde_json::from_str(text.trim()).unwrap()
}
