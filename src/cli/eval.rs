//! `eval DATASET --model DIR`: the paper's per-category table (Markdown and JSON), a PNG sheet
//! of predictions (red) against ground truth (green), and how well the confidence is calibrated
//! (expected calibration error; `reliability.png`).

use std::path::{Path, PathBuf};

use clap::Args;
use medground::data::open;
use medground::data::preview::{Tile, sheet};
use medground::data::record::Record;
use medground::eval::{Agreement, Evaluation, Films, evaluate};
use medground::protocol::calibration::{Bin, bins, ece, is_anatomy};
use medground::protocol::metrics::{brier, discrimination};
use medground::train::progress::Progress;
use medground::weights::Bundle;
use medground::{Error, Grounder, Result};

use super::DEMO_MODEL;

#[derive(Args)]
pub struct EvalArgs {
    /// A .jsonl, MS-CXR .csv/.json, synth:N[:split[:seed]] (findings of synthetic films) or
    /// anatomy:N[:split[:seed]] (their anatomy: lungs, heart, trachea, hemidiaphragms).
    dataset: String,
    #[arg(long)]
    images: Option<PathBuf>,
    #[arg(long, default_value = DEMO_MODEL)]
    model: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Write table.md, table.json, predictions.jsonl (one line per phrase), predictions.png and
    /// reliability.png here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Ask each phrase of another record's film: the score of answering from the phrase alone,
    /// the baseline a grounding model must beat by far.
    #[arg(long)]
    other_film: bool,
    /// A folder of images from outside what the model knows (photos, other modalities, ...):
    /// scores them and the evaluation films with the bundle's out-of-distribution model and
    /// prints the AUROC (`ood.json` with --out).
    #[arg(long)]
    ood: Option<PathBuf>,
    /// More images (or folders of them) counted as inside for --ood (e.g. real films).
    #[arg(long)]
    inside: Vec<PathBuf>,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let films = if a.other_film {
        Films::Other
    } else {
        Films::Own
    };
    let (g, records) = table(
        &a.dataset,
        a.images.as_deref(),
        &a.model,
        &a.device,
        a.out.as_deref(),
        films,
    )?;
    match &a.ood {
        Some(dir) => super::ood::sweep(&g, &records, &a.inside, dir, a.out.as_deref()),
        None => Ok(()),
    }
}

pub fn table(
    dataset: &str,
    images: Option<&Path>,
    model: &Path,
    device: &str,
    out: Option<&Path>,
    films: Films,
) -> Result<(Grounder, Vec<Record>)> {
    let device = medground::device::parse(device)?;
    let g = Grounder::from_owned(Bundle::read_dir(model)?, &device)?;
    let (records, e) = grounded(&g, dataset, images, films, Agreement::Needed)?;
    let t = e.table();
    println!("{}", t.markdown());
    let (probs, hits) = e.outcomes();
    let calibrated: Option<Vec<f32>> = g.calibration.as_ref().map(|c| {
        e.predictions
            .iter()
            .map(|p| c.apply_to(p.probability, &records[p.record].phrase, p.ood, p.agreement))
            .collect()
    });
    let sets = reliability_sets(&probs, &hits, calibrated.as_deref());
    println!("ECE of the answer probability: {:.3}", sets[0].1);
    if let (Some(c), Some(set), Some(after)) = (&g.calibration, sets.get(1), &calibrated) {
        println!(
            "ECE of the calibrated confidence (fitted on {}): {:.3}",
            c.fitted_on, set.1
        );
        for (kind, anatomy) in [("findings", false), ("anatomy", true)] {
            let (v, h): (Vec<f32>, Vec<bool>) = e
                .predictions
                .iter()
                .zip(after.iter().zip(&hits))
                .filter(|(p, _)| is_anatomy(&records[p.record].phrase) == anatomy)
                .map(|(_, (&v, &h))| (v, h))
                .unzip();
            if !v.is_empty() {
                println!(
                    "  {kind}: {} phrases, ECE {:.3}, Brier {:.4}, hits told from misses {:.3} (AUROC)",
                    v.len(),
                    ece(&v, &h),
                    brier(&v, &h),
                    discrimination(&v, &h)
                );
            }
        }
    }
    if let Some(out) = out {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let curves: Vec<_> = sets
            .into_iter()
            .map(|(label, _, b, c)| (label, b, c))
            .collect();
        medground::train::plot::reliability(&curves, &out.join("reliability.png"))?;
        let write = |name: &str, text: String| {
            std::fs::write(out.join(name), text).map_err(|e| Error::io(out.join(name), e))
        };
        write("table.md", t.markdown())?;
        write(
            "table.json",
            serde_json::to_string_pretty(&t).expect("table serialises"),
        )?;
        let lines: Vec<String> = e
            .predictions
            .iter()
            .map(|p| {
                let r = &records[p.record];
                serde_json::json!({
                    "record": p.record,
                    "film": p.film,
                    "phrase": r.phrase,
                    "category": r.category,
                    "truth": r.box_px,
                    "answer": p.text,
                    "box": p.box_px,
                    "iou": p.iou,
                    "probability": p.probability,
                    "confidence": g.confidence(p.probability, &r.phrase, p.ood, p.agreement),
                    "ood": p.ood,
                    "agreement": p.agreement,
                })
                .to_string()
            })
            .collect();
        write("predictions.jsonl", lines.join("\n") + "\n")?;
        let shown: Vec<_> = e.predictions.iter().take(32).collect();
        let pictures = shown
            .iter()
            .map(|p| records[p.film].picture())
            .collect::<Result<Vec<_>>>()?;
        let tiles: Vec<Tile> = shown
            .iter()
            .zip(&pictures)
            .map(|(p, pic)| {
                let r = &records[p.record];
                let mut boxes = vec![(r.box_px, [60, 220, 90], r.phrase.clone())];
                if let Some(b) = p.box_px {
                    boxes.push((b, [255, 60, 60], format!("IoU {:.2}", p.iou)));
                }
                Tile {
                    picture: pic,
                    boxes,
                }
            })
            .collect();
        super::data::save(&sheet(&tiles, 8, 224), &out.join("predictions.png"))?;
    }
    Ok((g, records))
}

/// Every usable record of `dataset`, each phrase grounded on `films` (with a progress bar).
pub fn grounded(
    g: &Grounder,
    dataset: &str,
    images: Option<&Path>,
    films: Films,
    agreement: Agreement,
) -> Result<(Vec<Record>, Evaluation)> {
    let loaded = open(dataset, images, g.config.vision_config.image_size)?;
    for p in loaded.problems.iter().take(10) {
        eprintln!("skipped {p}");
    }
    let records = loaded.records;
    if records.is_empty() {
        return Err(Error::Other(format!("{dataset}: no usable records")));
    }
    let bar = Progress::new("eval", records.len() as u64, 0);
    let e = evaluate(g, &records, films, agreement, |i| {
        bar.set_position(i as u64)
    })?;
    bar.finish();
    Ok((records, e))
}

/// The reliability diagram's curves, each with its ECE: the answer probability, and the
/// calibrated confidence when there is one.
pub fn reliability_sets(
    probs: &[f32],
    hits: &[bool],
    calibrated: Option<&[f32]>,
) -> Vec<(String, f64, Vec<Bin>, [u8; 3])> {
    let mut sets = vec![];
    for (name, values, colour) in [
        ("answer probability", Some(probs), [200, 60, 40]),
        ("calibrated confidence", calibrated, [40, 90, 220]),
    ] {
        if let Some(v) = values {
            let e = ece(v, hits);
            sets.push((format!("{name}, ECE {e:.3}"), e, bins(v, hits), colour));
        }
    }
    sets
}
