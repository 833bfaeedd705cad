//! `calibrate` end to end on the shipped demo with small sets: the findings and anatomy
//! curves, the out-of-distribution model, and a curve per anatomy structure by how well its
//! boxes agree on shifted views and how unusual the film is, which `ground` then states as the
//! confidence for that structure.

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
    // Each curve runs along `w0 * agreement + w1 * -ln(score)`, weights at least 0 summing to 1.
    let index = |s: &serde_json::Value, agreement: f64, score: f64| {
        let w = s["weights"].as_array().unwrap();
        let (w0, w1) = (w[0].as_f64().unwrap(), w[1].as_f64().unwrap());
        assert!(
            w0 >= 0.0 && w1 >= 0.0 && (w0 + w1 - 1.0).abs() < 1e-9,
            "{s}"
        );
        w0 * agreement - w1 * score.ln()
    };
    for s in structures {
        assert_eq!(s["n"], 60, "{s}");
        let points = s["points"].as_array().unwrap();
        // Rising along the index: the chance falls as the views disagree and the film gets
        // more unusual, short of 1.
        let typical = through(points, index(s, 0.95, 1.0));
        let unusual = through(points, index(s, 0.5, 6.0));
        assert!(unusual <= typical && typical < 1.0 && unusual > 0.0, "{s}");
    }
    // `ground` states each structure's curve at the film's score and, where the curve reads
    // it, at the agreement of the boxes on shifted views, which it reports.
    for phrase in ["the heart", "the left hemidiaphragm"] {
        let a = answer(&ground(&fixture("chest_rg1.dcm"), phrase, out.path()));
        let name = phrase.trim_start_matches("the ");
        let s = structures.iter().find(|s| s["name"] == name).unwrap();
        let reads = s["weights"][0].as_f64().unwrap() > 0.0;
        assert_eq!(a["agreement"].is_number(), reads, "{a} {s}");
        let agreement = a["agreement"].as_f64().unwrap_or(0.0);
        assert!((0.0..=1.0).contains(&agreement), "{a}");
        let score = a["oodScore"].as_f64().unwrap();
        let expected = through(s["points"].as_array().unwrap(), index(s, agreement, score));
        let stated = a["confidence"].as_f64().unwrap();
        assert!(
            (stated - expected).abs() < 1e-5,
            "{phrase}: {stated} vs {expected} at {score}, agreement {agreement}"
        );
    }
}
