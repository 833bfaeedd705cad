//! Evaluation on a set of records: each phrase is grounded with the evaluation prompt and scored
//! by IoU against its box; per-category and overall mIoU and Acc@0.3/0.5/0.7, malformed answers.

use serde::Serialize;

use crate::data::phrases::CATEGORIES;
use crate::data::record::Record;
use crate::error::Result;
use crate::grounder::Grounder;
use crate::protocol::GridBox;
use crate::protocol::answer::PixelBox;
use crate::protocol::metrics::{Scores, Summary};
use crate::protocol::structures::asked_structure;

#[derive(Debug, Clone)]
pub struct Prediction {
    pub record: usize,
    /// The record whose film was asked (`record` itself unless `Films::Other`).
    pub film: usize,
    pub text: String,
    pub box_px: Option<PixelBox>,
    pub iou: f32,
    /// The model's answer probability (uncalibrated).
    pub probability: f32,
    /// The film's out-of-distribution score, where the bundle holds the model.
    pub ood: Option<f32>,
    /// For a structure with a curve of its own, how well its boxes on shifted views agree.
    pub agreement: Option<f32>,
}

pub struct Evaluation {
    pub scores: Scores,
    pub predictions: Vec<Prediction>,
}

#[derive(Serialize)]
pub struct Table {
    pub categories: Vec<(String, Summary)>,
    pub overall: Summary,
}

/// Which film each phrase is asked of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Films {
    /// Its own: the evaluation proper.
    Own,
    /// Another record's (half the set away): what answering from the phrase alone scores. A
    /// model that grounds from the film scores far below its `Own` figures here.
    Other,
}

/// For which answers `evaluate` measures the agreement of the boxes on shifted views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// Where the bundle's calibration reads it (what `ground` reports).
    Needed,
    /// For every anatomy phrase of a structure with a curve (what `calibrate` fits).
    Structures,
}

pub fn evaluate(
    g: &Grounder,
    records: &[Record],
    films: Films,
    agreement: Agreement,
    mut progress: impl FnMut(usize),
) -> Result<Evaluation> {
    let mut scores = Scores::default();
    let mut predictions = Vec::with_capacity(records.len());
    let n = records.len();
    // The film last encoded: phrases of one film come together, and each film is read once.
    let mut encoded: Option<(usize, crate::grounder::Encoded)> = None;
    for (i, r) in records.iter().enumerate() {
        let film = match films {
            Films::Own => i,
            Films::Other => (i + n / 2) % n,
        };
        let same = encoded
            .as_ref()
            .is_some_and(|(f, _)| records[*f].image.same(&records[film].image));
        if !same {
            encoded = Some((film, g.encode(&*records[film].picture()?)?));
        }
        let encoded_film = &encoded.as_ref().expect("encoded above").1;
        let (text, probability) = g.answer_encoded(encoded_film, &r.phrase)?;
        let ood = encoded_film.distribution.map(|d| d.0);
        let grid = GridBox::parse(&text).ok();
        let (box_px, iou) = match grid {
            Some(grid) => {
                let b = grid.to_pixels(r.width, r.height);
                scores.add(&r.category, b.iou(&r.box_px));
                (Some(b), b.iou(&r.box_px))
            }
            None => {
                scores.add_malformed(&r.category);
                (None, 0.0)
            }
        };
        let wanted = match agreement {
            Agreement::Structures => asked_structure(&r.phrase).is_some(),
            Agreement::Needed => g
                .calibration
                .as_ref()
                .is_some_and(|c| c.needs_agreement(&r.phrase)),
        };
        let agreement = match grid {
            Some(grid) if wanted => {
                let (w, h) = encoded_film.size();
                let own = grid.to_pixels(w, h);
                Some(g.agreement_encoded(encoded_film, &r.phrase, &own)?)
            }
            _ => None,
        };
        predictions.push(Prediction {
            record: i,
            film,
            text,
            box_px,
            iou,
            probability,
            ood,
            agreement,
        });
        progress(i + 1);
    }
    Ok(Evaluation {
        scores,
        predictions,
    })
}

impl Evaluation {
    /// Each answer's probability and whether it hit (IoU >= 0.5): what calibration fits and ECE
    /// measures.
    pub fn outcomes(&self) -> (Vec<f32>, Vec<bool>) {
        self.predictions
            .iter()
            .map(|p| {
                (
                    p.probability,
                    p.iou >= crate::protocol::calibration::HIT_IOU,
                )
            })
            .unzip()
    }

    /// The eight findings in the paper's order (those present), then any other category.
    pub fn table(&self) -> Table {
        let mut names: Vec<String> = CATEGORIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| self.scores.categories().any(|k| k == c))
            .collect();
        names.extend(
            self.scores
                .categories()
                .filter(|k| !CATEGORIES.contains(&k.as_str()))
                .cloned(),
        );
        Table {
            categories: names
                .iter()
                .map(|c| (c.clone(), self.scores.category(c)))
                .collect(),
            overall: self.scores.overall(),
        }
    }
}

impl Table {
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| category | N | mIoU | Acc@0.3 | Acc@0.5 | Acc@0.7 | malformed |\n|---|---:|---:|---:|---:|---:|---:|\n",
        );
        let row = |name: &str, s: &Summary| {
            format!(
                "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} |\n",
                s.n, s.miou, s.acc[0], s.acc[1], s.acc[2], s.malformed
            )
        };
        for (c, s) in &self.categories {
            out += &row(c, s);
        }
        out += &row("**overall**", &self.overall);
        out
    }
}
