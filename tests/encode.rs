//! A film is read once and asked many phrases: `eval` runs the vision tower once per film (and
//! once more for the six shifted views of a film whose structure phrases read their agreement,
//! as one batch), and an answer from the encoded film is the answer `ground` gives.

use std::sync::atomic::Ordering;

use burn::prelude::*;
use medground::Grounder;
use medground::data::open;
use medground::eval::{Agreement, Films, evaluate};
use medground::weights::Bundle;

fn demo() -> Grounder {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    Grounder::from_bundle(&Bundle::read_dir(&dir).unwrap(), &Device::flex()).unwrap()
}

#[test]
fn eval_runs_the_tower_once_per_film() {
    let g = demo();
    let size = g.config.vision_config.image_size;
    // Each film's finding phrases, then three anatomy phrases on it, as `eval` meets them.
    let mut records = vec![];
    for r in open("synth:6:val:11:upright", None, size).unwrap().records {
        let next_film = !records
            .last()
            .is_some_and(|l: &medground::data::record::Record| l.image.same(&r.image));
        records.push(r.clone());
        if next_film {
            for phrase in ["the heart", "right lung", "the left hemidiaphragm"] {
                let mut a = r.clone();
                a.phrase = phrase.into();
                a.category = "anatomy".into();
                records.push(a);
            }
        }
    }
    let (films, bordered) = {
        let mut f: Vec<&medground::data::record::Record> = vec![];
        for r in &records {
            if !f.last().is_some_and(|l| l.image.same(&r.image)) {
                f.push(r);
            }
        }
        // A film with flat bands along an edge is read once more for its out-of-distribution
        // score, without them (`image::views::trim`).
        let bordered = f
            .iter()
            .filter(|r| medground::image::views::trim(&r.picture().unwrap()).is_some())
            .count();
        (f.len(), bordered)
    };
    assert!(
        records.len() >= 3 * films,
        "{} phrases on {films} films",
        records.len()
    );
    let calibration = g.calibration.as_ref().expect("the demo is calibrated");
    // Films with at least one phrase whose confidence reads the views' agreement.
    let with_views = {
        let mut n = 0;
        let mut last: Option<&medground::data::record::Record> = None;
        let mut counted = false;
        for r in &records {
            if !last.is_some_and(|l| l.image.same(&r.image)) {
                counted = false;
            }
            if calibration.needs_agreement(&r.phrase) && !counted {
                n += 1;
                counted = true;
            }
            last = Some(r);
        }
        n
    };
    let before = g.tower_runs.load(Ordering::Relaxed);
    let e = evaluate(&g, &records, Films::Own, Agreement::Needed, |_| {}).unwrap();
    let runs = g.tower_runs.load(Ordering::Relaxed) - before;
    eprintln!(
        "{} phrases on {films} films ({bordered} bordered, {with_views} with views): {runs} tower runs",
        records.len()
    );
    assert!(with_views > 0);
    assert_eq!(runs, films + bordered + with_views);
    // Each answer is the one `ground` gives the phrase on its film alone.
    for p in e.predictions.iter().step_by(5) {
        let r = &records[p.record];
        let alone = g.ground(&r.picture().unwrap(), &r.phrase).unwrap();
        assert_eq!(alone.text, p.text, "{}", r.phrase);
        assert!(
            (alone.probability - p.probability).abs() < 1e-5,
            "{}",
            r.phrase
        );
        if let (Some(a), Some(b)) = (alone.agreement, p.agreement) {
            assert!((a - b).abs() < 1e-5, "{}: {a} vs {b}", r.phrase);
        }
    }
}

#[test]
fn an_encoded_film_answers_every_phrase_as_ground_does() {
    let g = demo();
    let film = medground::image::decode(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/chest_rg1.dcm"
        ))
        .unwrap(),
    )
    .unwrap();
    let encoded = g.encode(&film).unwrap();
    let runs = g.tower_runs.load(Ordering::Relaxed);
    for phrase in [
        "the heart",
        "right lung",
        "small left pleural effusion",
        "the left hemidiaphragm",
    ] {
        let a = g.ground_encoded(&encoded, phrase).unwrap();
        let b = g.ground(&film, phrase).unwrap();
        assert_eq!((&a.text, a.box_norm), (&b.text, b.box_norm), "{phrase}");
        assert!((a.probability - b.probability).abs() < 1e-5, "{phrase}");
        assert_eq!(a.confidence.is_some(), b.confidence.is_some(), "{phrase}");
        assert!(
            (a.confidence.unwrap_or(0.0) - b.confidence.unwrap_or(0.0)).abs() < 1e-5,
            "{phrase}"
        );
        assert_eq!(a.agreement.is_some(), b.agreement.is_some(), "{phrase}");
        assert_eq!(a.in_distribution, b.in_distribution);
    }
    // Four phrases on the encoded film, four on the film alone (each once more for its views
    // when it reads them); the encoded film's views were encoded once.
    let reads_views = [
        "the heart",
        "right lung",
        "small left pleural effusion",
        "the left hemidiaphragm",
    ]
    .iter()
    .filter(|p| g.calibration.as_ref().unwrap().needs_agreement(p))
    .count();
    let runs = g.tower_runs.load(Ordering::Relaxed) - runs;
    assert_eq!(runs, usize::from(reads_views > 0) + 4 + reads_views);
}
