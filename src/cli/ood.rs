//! The out-of-distribution model on the command line: `calibrate` fits it on the vision
//! features of training films (threshold from the validation films), `eval --ood DIR` sweeps a
//! folder of images from outside against the evaluation films and prints the AUROC.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use medground::data::open;
use medground::data::record::{ImageSource, Record};
use medground::protocol::ood::{self, Ood, auroc};
use medground::train::progress::Progress;
use medground::{Error, Grounder, Result};

/// Each distinct film of `records` once, in order.
pub fn films(records: &[Record]) -> Vec<&Record> {
    let mut seen = BTreeMap::new();
    for r in records {
        let key = match &r.image {
            ImageSource::File(p) => p.display().to_string(),
            ImageSource::Memory(a) => format!("{:p}", std::sync::Arc::as_ptr(a)),
        };
        seen.entry(key).or_insert(r);
    }
    let mut out: Vec<&Record> = seen.into_values().collect();
    out.sort_by_key(|r| records.iter().position(|x| std::ptr::eq(x, *r)));
    out
}

/// Pooled vision features of each film, with a progress bar.
pub fn features(g: &Grounder, films: &[&Record]) -> Result<Vec<Vec<f32>>> {
    let bar = Progress::new("vision features", films.len() as u64, 0);
    let out = films
        .iter()
        .map(|r| {
            bar.inc(1);
            g.features(&*r.picture()?)
        })
        .collect();
    bar.finish();
    out
}

/// Fits the model on the films of `fit_set` with the threshold from `held_out`'s films.
pub fn fit(g: &Grounder, fit_set: &str, held_out: &[Record]) -> Result<Ood> {
    let loaded = open(fit_set, None, g.config.vision_config.image_size)?;
    let fit_films = films(&loaded.records);
    eprintln!(
        "out-of-distribution fit: vision features of {} films of {fit_set}",
        fit_films.len()
    );
    let fit_features = features(g, &fit_films)?;
    let held = features(g, &films(held_out))?;
    let o = ood::fit(&fit_features, &held, fit_set)?;
    println!(
        "out-of-distribution model: {} features, {} directions, fitted on {} films; threshold {:.2} \
         ({}x the 99th percentile of {} held-out films)",
        o.dim(),
        o.variances.len(),
        o.n,
        o.threshold,
        ood::MARGIN,
        held.len()
    );
    Ok(o)
}

/// Every image file under `dir` (PNG, JPEG, DICOM), sorted.
fn images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            out.extend(images(&path)?);
        } else if path.extension().is_some_and(|x| {
            let x = x.to_string_lossy().to_lowercase();
            ["png", "jpg", "jpeg", "dcm"].contains(&x.as_str())
        }) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Scores the evaluation films and `also_inside` against every image of `outside`; prints the
/// AUROC and what lands on the wrong side; writes `ood.json` into `out`.
pub fn sweep(
    g: &Grounder,
    records: &[Record],
    also_inside: &[PathBuf],
    outside: &Path,
    out: Option<&Path>,
) -> Result<()> {
    let o = g.ood.as_ref().ok_or_else(|| {
        Error::Other(format!(
            "the model holds no {}: run calibrate on it first",
            ood::FILE
        ))
    })?;
    let mut also = vec![];
    for p in also_inside {
        if p.is_dir() {
            also.extend(images(p)?);
        } else {
            also.push(p.clone());
        }
    }
    let mut inside: Vec<(String, f32)> = vec![];
    let inside_films = films(records);
    for (r, f) in inside_films.iter().zip(features(g, &inside_films)?) {
        inside.push((
            format!("{:?}", r.image).chars().take(80).collect(),
            o.score(&f)?,
        ));
    }
    let score_file = |p: &Path| -> Result<f32> {
        let picture = medground::image::decode(&std::fs::read(p).map_err(|e| Error::io(p, e))?)?;
        o.score(&g.features(&picture)?)
    };
    for p in &also {
        inside.push((p.display().to_string(), score_file(p)?));
    }
    let mut outside_scores: Vec<(String, f32)> = vec![];
    for p in images(outside)? {
        match score_file(&p) {
            Ok(s) => outside_scores.push((p.display().to_string(), s)),
            Err(e) => eprintln!("skipped {}: {e}", p.display()),
        }
    }
    if outside_scores.is_empty() {
        return Err(Error::Other(format!(
            "{}: no readable image",
            outside.display()
        )));
    }
    let ins: Vec<f32> = inside.iter().map(|x| x.1).collect();
    let outs: Vec<f32> = outside_scores.iter().map(|x| x.1).collect();
    let area = auroc(&ins, &outs);
    let flagged_in: Vec<_> = inside.iter().filter(|x| !o.inside(x.1)).collect();
    let missed_out: Vec<_> = outside_scores.iter().filter(|x| o.inside(x.1)).collect();
    println!(
        "out-of-distribution: AUROC {area:.4} ({} inside, {} outside); threshold {:.2}: \
         {} inside images flagged, {} outside images taken as inside",
        ins.len(),
        outs.len(),
        o.threshold,
        flagged_in.len(),
        missed_out.len()
    );
    for (name, s) in &inside[inside.len() - also.len()..] {
        println!("  inside  {s:10.2}  {name}");
    }
    for (name, s) in flagged_in.iter().take(5) {
        println!("  FLAGGED inside {s:10.2}  {name}");
    }
    for (name, s) in &missed_out {
        println!("  MISSED outside {s:10.2}  {name}");
    }
    let lowest = outside_scores.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((name, s)) = lowest {
        println!("  lowest outside {s:10.2}  {name}");
    }
    if let Some(out) = out {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let json = serde_json::json!({
            "auroc": area, "threshold": o.threshold,
            "inside": inside, "outside": outside_scores,
        });
        let path = out.join("ood.json");
        std::fs::write(&path, json.to_string()).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}
