//! `calibrate [DATASET] --model DIR`: grounds every phrase of a validation set, fits the map from
//! the model's answer probability to the chance that the box hits (IoU >= 0.5), and writes it into
//! the bundle as `calibration.json` (the manifest updated), or into a copy with `--out`.

use std::path::PathBuf;

use clap::Args;
use medground::eval::{Agreement, Films};
use medground::protocol::calibration::{self, Calibration, Method};
use medground::protocol::structures::{self, Signals};
use medground::weights::Bundle;
use medground::{Error, Grounder, Result};

use super::DEMO_MODEL;

/// An unusual film's score, for the printout: twice the validation films' 99th percentile.
const UNUSUAL: f32 = 5.0;
/// The views' agreement of a typical hit, and of a doubtful answer, for the printout.
const AGREEING: f32 = 0.9;
const DISAGREEING: f32 = 0.65;

#[derive(Args)]
pub struct CalibrateArgs {
    /// Validation data (any dataset `eval` reads); never the split you report on.
    #[arg(default_value = "synth:600:val:7:upright")]
    dataset: String,
    #[arg(long)]
    images: Option<PathBuf>,
    /// The bundle to calibrate (written in place unless --out).
    #[arg(long, default_value = DEMO_MODEL)]
    model: PathBuf,
    /// Write the calibrated bundle here instead.
    #[arg(long)]
    out: Option<PathBuf>,
    /// isotonic (a monotone step curve; default) or platt (a sigmoid of the log-odds).
    #[arg(long, value_enum, default_value_t = Method::Isotonic)]
    method: Method,
    /// Draw the reliability diagram (before and after, on the fitting data) into this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Films of the training kind for the out-of-distribution model (`ood.safetensors`): its
    /// Gaussian is fitted on their vision features. Use your training set when you trained on
    /// your own data. (`:digitised` films, with borders, tilt, crop and labels, rank real
    /// films' copies and outside images apart but leave a thin margin: docs/real_inputs.md.)
    #[arg(long, default_value = "synth:1000:train:11:upright")]
    fit_films: String,
    /// Held-out films of the same kind that set the threshold (`ood::MARGIN` times their 99th
    /// percentile score); empty (the default): the calibration films above.
    #[arg(long, default_value = "")]
    threshold_films: String,
    /// Anatomy phrases of validation films, for the anatomy curve (empty: none).
    #[arg(long, default_value = "anatomy:300:val:7:upright")]
    anatomy: String,
    /// Anatomy phrases of films shifted beyond the corpus's ranges: with --anatomy's, they fit
    /// each structure's curve by how unusual the film is (needs the out-of-distribution model;
    /// empty: no such curves).
    #[arg(long, default_value = "anatomy:300:val:8:upright:shifted")]
    shifted: String,
    /// Skip the out-of-distribution model.
    #[arg(long)]
    no_ood: bool,
}

pub fn run(a: CalibrateArgs) -> Result<()> {
    if a.dataset.starts_with("synth:") && a.dataset.contains(":test") {
        return Err(Error::Other(
            "calibrate on validation data (e.g. synth:600:val:7:upright), not on the test split"
                .into(),
        ));
    }
    let device = medground::device::parse(&a.device)?;
    let bundle = Bundle::read_dir(&a.model)?;
    let mut g = Grounder::from_bundle(&bundle, &device)?;
    // Refitted below; the findings' curve needs no film scores, the structures' the new model's.
    g.ood = None;
    let (records, e) = super::eval::grounded(
        &g,
        &a.dataset,
        a.images.as_deref(),
        Films::Own,
        Agreement::Needed,
    )?;
    let (probs, hits) = e.outcomes();
    let mut c = Calibration::fit(&probs, &hits, a.method, &a.dataset)?;
    let rate = hits.iter().filter(|&&h| h).count() as f64 / hits.len() as f64;
    println!(
        "{} answers, {:.3} of them hits; ECE {:.3} -> {:.3} ({}, fitted here)",
        c.n, rate, c.ece_before, c.ece_after, c.method
    );
    let out = a.out.unwrap_or(a.model);
    // The out-of-distribution model first: the structures' curves read each film's score.
    let mut bundle = bundle;
    if !a.no_ood {
        let held_out = if a.threshold_films.is_empty() {
            records.clone()
        } else {
            let size = g.config.vision_config.image_size;
            medground::data::open(&a.threshold_films, None, size)?.records
        };
        let o = super::ood::fit(&g, &a.fit_films, &held_out)?;
        bundle = bundle.with_file(medground::protocol::ood::FILE, o.to_bytes());
        g.ood = Some(o);
    }
    let mut structured = vec![];
    for (set, pooled) in [(&a.anatomy, true), (&a.shifted, false)] {
        if set.is_empty() || (!pooled && g.ood.is_none()) {
            continue;
        }
        let (records, e) = super::eval::grounded(&g, set, None, Films::Own, Agreement::Structures)?;
        let (p, h) = e.outcomes();
        if pooled {
            let curve = Calibration::fit(&p, &h, a.method, set)?;
            println!(
                "anatomy: {} answers; ECE {:.3} -> {:.3}",
                curve.n, curve.ece_before, curve.ece_after
            );
            c.anatomy = Some(Box::new(curve));
        }
        for (pred, hit) in e.predictions.iter().zip(h) {
            if let Some(score) = pred.ood {
                let signals = Signals {
                    score,
                    agreement: pred.agreement,
                };
                structured.push((records[pred.record].phrase.clone(), signals, hit));
            }
        }
    }
    c.structures = structures::fit(&structured);
    let at = |s: &structures::Structure, score: f32, agreement: f32| {
        let signals = Signals {
            score,
            agreement: Some(agreement),
        };
        s.apply(signals).unwrap_or(f32::NAN)
    };
    for s in &c.structures {
        println!(
            "{}: {} answers, index {:.2} x agreement + {:.2} x -ln score; chance of a hit \
             {:.3} on a typical film with the views agreeing at {AGREEING}, {:.3} at score \
             {UNUSUAL:.1} agreeing at {DISAGREEING}",
            s.name,
            s.n,
            s.weights[0],
            s.weights[1],
            at(s, 1.0, AGREEING),
            at(s, UNUSUAL, DISAGREEING),
        );
    }
    let bundle = bundle.with_file(calibration::FILE, c.to_json().into_bytes());
    bundle.write_dir(&out)?;
    if let Some(plot) = &a.plot {
        let after: Vec<f32> = probs.iter().map(|&p| c.apply(p)).collect();
        let curves: Vec<_> = super::eval::reliability_sets(&probs, &hits, Some(&after))
            .into_iter()
            .map(|(label, _, b, colour)| (format!("{label} (fitting data)"), b, colour))
            .collect();
        medground::train::plot::reliability(&curves, plot)?;
    }
    eprintln!("wrote {} into {}", calibration::FILE, out.display());
    Ok(())
}
