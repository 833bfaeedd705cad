//! `calibrate` end to end on the shipped demo with small sets: the findings and anatomy
//! curves, the out-of-distribution model, and a curve per anatomy structure by how unusual the
//! film is, which `ground` then states as the confidence for that structure.

mod shell;
use shell::{answer, fixture, ground, medground};

/// The step curve through `points` at `x`, as the crate reads it: flat beyond, linear between.
fn through(points: &[serde_json::Value], x: f64) -> f64 {
    let p: Vec<(f64, f64)> = points
        .iter()
        .map(|q| (q[0].as_f64().unwrap(), q[1].as_f64().unwrap()))
        .collect();
    let k = p.partition_point(|q| q.0 <= x);
    if k == 0 {
        return p[0].1;
    }
    if k == p.len() {
        return p[k - 1].1;
    }
    let ((x0, y0), (x1, y1)) = (p[k - 1], p[k]);
    y0 + (y1 - y0) * (x - x0) / (x1 - x0).max(1e-12)
}

#[test]
fn calibrate_fits_a_curve_per_structure_that_ground_states() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let run = medground(&[
        "calibrate",
        "synth:40:val:7:upright",
        "--model",
        "assets/demo",
        "--out",
        dir,
        "--fit-films",
        "synth:80:train:11:upright",
        "--anatomy",
        "anatomy:30:val:7:upright",
        "--shifted",
        "anatomy:30:val:8:upright:shifted",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("anatomy: 180 answers"), "{stdout}");
    assert!(out.path().join("ood.safetensors").is_file());
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("calibration.json")).unwrap())
            .unwrap();
    let structures = c["structures"].as_array().expect("structure curves");
    let names: Vec<&str> = structures
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for name in ["heart", "trachea", "left hemidiaphragm", "right lung"] {
        assert!(names.contains(&name), "{names:?}");
    }
    for s in structures {
        assert_eq!(s["n"], 60, "{s}");
        let points = s["points"].as_array().unwrap();
        // Rising in -ln(score): the chance falls as the film gets more unusual, short of 1.
        let (typical, unusual) = (through(points, 0.0), through(points, -(6.0f64).ln()));
        assert!(unusual <= typical && typical < 1.0 && unusual > 0.0, "{s}");
    }
    // `ground` states the heart's curve at the film's score.
    let a = answer(&ground(&fixture("chest_rg1.dcm"), "the heart", out.path()));
    let heart = structures.iter().find(|s| s["name"] == "heart").unwrap();
    let score = a["oodScore"].as_f64().unwrap();
    let expected = through(heart["points"].as_array().unwrap(), -score.ln());
    let stated = a["confidence"].as_f64().unwrap();
    assert!(
        (stated - expected).abs() < 1e-5,
        "{stated} vs {expected} at {score}"
    );
}
