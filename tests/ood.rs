//! The shipped demo's out-of-distribution flag, measured where no choice looked: the held-out
//! outside set (`tests/fixtures/ood_heldout`, deid-data's cookies photos, a cat's radiograph, a
//! head CT, ultrasounds) against synthetic validation films, the real sample film and its copies
//! as other hospitals' films reach a reader (`tests/fixtures/chest_copies`: black and white
//! borders, a 5-degree tilt, a crop to the lungs, a burned-in label, a black band). Every chest
//! film must read inside and every other image outside, at the bundle's own threshold. (The
//! score reads a film without the flat bands along its edges, `image::views::trim`: before,
//! the black band below and the CT slice were on the wrong side.)

mod shell;
use shell::medground;

fn sweep(outside: &str) -> serde_json::Value {
    let out = tempfile::tempdir().unwrap();
    let run = medground(&[
        "eval",
        "anatomy:24:val:3:upright",
        "--model",
        "assets/demo",
        "--ood",
        outside,
        "--inside",
        "tests/fixtures/chest_rg1.dcm",
        "--inside",
        "tests/fixtures/chest_copies",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!("{stdout}");
    serde_json::from_slice(&std::fs::read(out.path().join("ood.json")).unwrap()).unwrap()
}

fn scores(j: &serde_json::Value, side: &str) -> Vec<(String, f64)> {
    j[side]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x[0].as_str().unwrap().to_string(), x[1].as_f64().unwrap()))
        .collect()
}

fn check(outside_dir: &str, outside_count: usize) {
    let j = sweep(outside_dir);
    let threshold = j["threshold"].as_f64().unwrap();
    let inside = scores(&j, "inside");
    let outside = scores(&j, "outside");
    assert_eq!(outside.len(), outside_count);
    // 24 synthetic films, the sample and its 6 copies.
    assert_eq!(inside.len(), 24 + 1 + 6, "{inside:?}");
    for copy in [
        "chest_rg1.dcm",
        "black_border",
        "white_border",
        "tilted",
        "cropped",
        "label",
        "black_band",
    ] {
        assert!(
            inside.iter().any(|(name, _)| name.contains(copy)),
            "{copy} not scored"
        );
    }
    let flagged: Vec<_> = inside.iter().filter(|x| x.1 > threshold).collect();
    assert!(
        flagged.is_empty(),
        "chest films flagged outside: {flagged:?} (threshold {threshold})"
    );
    let taken: Vec<_> = outside.iter().filter(|x| x.1 <= threshold).collect();
    assert!(
        taken.is_empty(),
        "outside images taken as inside: {taken:?} (threshold {threshold})"
    );
    let auroc = j["auroc"].as_f64().unwrap();
    assert!(auroc >= 0.99, "AUROC {auroc}");
}

#[test]
fn held_out_outside_images_read_outside_and_real_films_inside() {
    check("tests/fixtures/ood_heldout", 12);
}

#[test]
fn the_outside_set_it_was_fitted_against_reads_outside() {
    check("tests/fixtures/ood", 49);
}
