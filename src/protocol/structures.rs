//! The confidence of an anatomy answer by structure, by how well its box holds on shifted views
//! of the film, and by how unusual the film is. The model's answer probability says nothing
//! about an anatomy box (about 0.35 for hits and misses alike: the coordinates' distributions
//! are as wide for both), but three things do: which structure is asked (a thin hemidiaphragm
//! is missed where a lung is not), whether the box follows the film's content when the frame
//! moves (`Grounder::agreement`: a box found from the anatomy moves with it, a guess tied to
//! the frame does not) and how far the film lies from the training films (its
//! out-of-distribution score). So each structure gets a logistic index of the last two and a
//! rising curve of its hit rate along that index, fitted by `calibrate` on validation films and
//! on films shifted beyond the corpus's ranges (`:shifted`), where the misses are.

use serde::{Deserialize, Serialize};

use super::calibration::pava;

/// The structures with a curve of their own, as phrases name them; any other anatomy phrase
/// gets the pooled anatomy curve.
pub const STRUCTURES: [&str; 6] = [
    "right hemidiaphragm",
    "left hemidiaphragm",
    "right lung",
    "left lung",
    "trachea",
    "heart",
];

/// Fewer answers of a structure than this and it gets no curve.
const MIN_ANSWERS: usize = 40;

/// One structure's hit rate along an index of the views' agreement and the film's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Structure {
    pub name: String,
    pub n: usize,
    /// The index is `weights[0] * agreement + weights[1] * -ln(score)`, both weights at least
    /// 0. Bundles calibrated before the views' agreement have `[0, 1]`: the score alone.
    #[serde(default = "score_only")]
    pub weights: [f64; 2],
    /// (index, hit rate), both rising. Each step's rate is (hits + 1) / (answers + 2), so that
    /// no finite sample states certainty.
    pub points: Vec<[f64; 2]>,
}

fn score_only() -> [f64; 2] {
    [0.0, 1.0]
}

/// What is known of one answer to a structure: the film's out-of-distribution score, and the
/// agreement of its boxes on shifted views where it was measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signals {
    pub score: f32,
    pub agreement: Option<f32>,
}

/// The structure `phrase` names, if it names one of `STRUCTURES` (matched in lower case).
pub fn structure_of(phrase: &str) -> Option<&'static str> {
    let p = phrase.to_lowercase();
    STRUCTURES.iter().copied().find(|s| p.contains(s))
}

/// The structure an anatomy phrase asks for (a finding that names a structure, such as "right
/// lung opacity", asks for none): the phrases whose confidence a structure's curve gives.
pub fn asked_structure(phrase: &str) -> Option<&'static str> {
    structure_of(phrase).filter(|_| super::prompt::is_anatomy(phrase))
}

fn x_of(score: f32) -> f64 {
    -(score.max(1e-6) as f64).ln()
}

impl Structure {
    /// Whether the curve reads the views' agreement (then `apply` needs it).
    pub fn needs_agreement(&self) -> bool {
        self.weights[0] > 0.0
    }

    fn index(&self, s: Signals) -> Option<f64> {
        let agreement = match s.agreement {
            Some(a) => a as f64,
            None if self.needs_agreement() => return None,
            None => 0.0,
        };
        Some(self.weights[0] * agreement + self.weights[1] * x_of(s.score))
    }

    /// The chance of a hit: flat beyond the fitted range, linear between steps; None when the
    /// curve reads the agreement and `s` has none.
    pub fn apply(&self, s: Signals) -> Option<f32> {
        let x = self.index(s)?;
        Some(super::calibration::through(&self.points, x) as f32)
    }

    pub fn is_valid(&self) -> bool {
        self.weights.iter().all(|w| w.is_finite() && *w >= 0.0)
            && self.weights.iter().any(|&w| w > 0.0)
            && super::calibration::is_rising_curve(&self.points)
    }
}

/// A curve for each structure with enough answers among `(phrase, signals, hit)`: along the
/// agreement and the score where every answer has its agreement, else the score alone.
pub fn fit(answers: &[(String, Signals, bool)]) -> Vec<Structure> {
    STRUCTURES
        .iter()
        .filter_map(|&name| {
            let rows: Vec<(Signals, f64)> = answers
                .iter()
                .filter(|(p, s, _)| structure_of(p) == Some(name) && s.score.is_finite())
                .map(|(_, s, h)| (*s, f64::from(u8::from(*h))))
                .collect();
            if rows.len() < MIN_ANSWERS {
                return None;
            }
            let weights = if rows.iter().all(|(s, _)| s.agreement.is_some()) {
                let features: Vec<[f64; 2]> = rows
                    .iter()
                    .map(|(s, _)| [s.agreement.unwrap_or(0.0) as f64, x_of(s.score)])
                    .collect();
                let ys: Vec<f64> = rows.iter().map(|r| r.1).collect();
                index_weights(&features, &ys)
            } else {
                score_only()
            };
            let mut curve = Structure {
                name: name.into(),
                n: rows.len(),
                weights,
                points: vec![],
            };
            let (xs, ys): (Vec<f32>, Vec<f64>) = rows
                .iter()
                .map(|&(s, y)| (curve.index(s).unwrap_or(0.0) as f32, y))
                .unzip();
            let mut points = Vec::new();
            let mut floor = 0.0f64;
            for b in pava(&xs, &ys) {
                // Shrunk towards a half by one hit and one miss, kept rising.
                floor = floor.max((b.hits + 1.0) / (b.n + 2.0));
                points.push([b.lo, floor]);
                if b.hi > b.lo {
                    points.push([b.hi, floor]);
                }
            }
            curve.points = points;
            Some(curve)
        })
        .collect()
}

/// The direction of a logistic regression of the hits on two features (each standardised,
/// a little ridge so that a structure always hit stays finite), negative weights set to 0 (a
/// higher agreement or a more typical film never lowers the chance), scaled to sum to 1.
fn index_weights(features: &[[f64; 2]], ys: &[f64]) -> [f64; 2] {
    let n = features.len() as f64;
    let mean = |k: usize| features.iter().map(|f| f[k]).sum::<f64>() / n;
    let (m0, m1) = (mean(0), mean(1));
    let sd = |k: usize, m: f64| {
        (features.iter().map(|f| (f[k] - m).powi(2)).sum::<f64>() / n)
            .sqrt()
            .max(1e-9)
    };
    let (s0, s1) = (sd(0, m0), sd(1, m1));
    let z: Vec<[f64; 3]> = features
        .iter()
        .map(|f| [1.0, (f[0] - m0) / s0, (f[1] - m1) / s1])
        .collect();
    let mut w = [0.0f64; 3];
    for _ in 0..50 {
        let mut g = [0.0; 3];
        let mut h = [[0.0; 3]; 3];
        for (x, &y) in z.iter().zip(ys) {
            let p = 1.0 / (1.0 + (-(w[0] * x[0] + w[1] * x[1] + w[2] * x[2])).exp());
            for i in 0..3 {
                g[i] += (p - y) * x[i];
                for j in 0..3 {
                    h[i][j] += p * (1.0 - p) * x[i] * x[j];
                }
            }
        }
        for i in 0..3 {
            g[i] += RIDGE * w[i];
            h[i][i] += RIDGE;
        }
        let step = solve3(h, g);
        for i in 0..3 {
            w[i] -= step[i];
        }
    }
    let raw = [(w[1] / s0).max(0.0), (w[2] / s1).max(0.0)];
    let sum = raw[0] + raw[1];
    if sum > 0.0 && sum.is_finite() {
        [raw[0] / sum, raw[1] / sum]
    } else {
        score_only()
    }
}

/// The ridge of `index_weights`, on standardised features.
const RIDGE: f64 = 1.0;

/// `h x = g` for a symmetric positive definite 3 x 3 `h` (Gaussian elimination).
fn solve3(mut h: [[f64; 3]; 3], mut g: [f64; 3]) -> [f64; 3] {
    for c in 0..3 {
        for r in c + 1..3 {
            let (f, pivot) = (h[r][c] / h[c][c], h[c]);
            for (x, p) in h[r][c..].iter_mut().zip(&pivot[c..]) {
                *x -= f * p;
            }
            g[r] -= f * g[c];
        }
    }
    let mut x = [0.0; 3];
    for r in (0..3).rev() {
        let rest: f64 = (r + 1..3).map(|k| h[r][k] * x[k]).sum();
        x[r] = (g[r] - rest) / h[r][r];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_find_their_structure() {
        assert_eq!(
            structure_of("The left hemidiaphragm"),
            Some("left hemidiaphragm")
        );
        assert_eq!(structure_of("the trachea"), Some("trachea"));
        assert_eq!(structure_of("the right lung"), Some("right lung"));
        assert_eq!(structure_of("the left lower lobe"), None);
    }

    /// A structure missed more often on unusual films gets a falling curve; one always found
    /// stays high but short of certainty; one with few answers gets none.
    #[test]
    fn curves_fall_with_the_score_where_the_misses_are() {
        let mut answers = vec![];
        for i in 0..400 {
            let score = 1.0 + (i % 8) as f32; // 1 .. 8
            // The thin structure: hit on typical films, one in three beyond score 4.
            let thin_hit = score <= 4.0 || i % 3 == 0;
            let s = Signals {
                score,
                agreement: None,
            };
            answers.push(("the left hemidiaphragm".to_string(), s, thin_hit));
            answers.push(("the heart".to_string(), s, true));
        }
        let s = Signals {
            score: 1.0,
            agreement: None,
        };
        answers.push(("the trachea".to_string(), s, false));
        let curves = fit(&answers);
        assert_eq!(curves.len(), 2, "{curves:?}");
        let thin = curves
            .iter()
            .find(|c| c.name == "left hemidiaphragm")
            .unwrap();
        let heart = curves.iter().find(|c| c.name == "heart").unwrap();
        assert!(thin.is_valid() && heart.is_valid());
        assert_eq!(thin.weights, [0.0, 1.0]);
        let at = |c: &Structure, score: f32| {
            c.apply(Signals {
                score,
                agreement: None,
            })
            .unwrap()
        };
        assert!(at(thin, 2.0) > 0.95, "{}", at(thin, 2.0));
        assert!(
            (at(thin, 7.0) - 1.0 / 3.0).abs() < 0.05,
            "{}",
            at(thin, 7.0)
        );
        assert!(at(thin, 100.0) <= at(thin, 7.0));
        assert!(at(heart, 7.0) > 0.99 && at(heart, 7.0) < 1.0);
        let back: Structure = serde_json::from_str(&serde_json::to_string(thin).unwrap()).unwrap();
        assert_eq!(back.points.len(), thin.points.len());
    }

    /// Where the views' agreement tells hits from misses and the score does not, the index
    /// leans on the agreement, and a low agreement reads a low chance; without it the curve
    /// cannot answer.
    #[test]
    fn the_index_leans_on_the_signal_that_tells_hits_from_misses() {
        let mut answers = vec![];
        for i in 0..600 {
            let score = 1.0 + (i % 5) as f32;
            let agreement = 0.5 + 0.45 * ((i * 37) % 100) as f32 / 100.0; // 0.5 .. 0.95
            // Misses below an agreement of 0.7 two times in three, never above.
            let hit = agreement >= 0.7 || i % 3 == 0;
            let s = Signals {
                score,
                agreement: Some(agreement),
            };
            answers.push(("the trachea".to_string(), s, hit));
        }
        let curve = &fit(&answers)[0];
        assert!(curve.is_valid() && curve.needs_agreement(), "{curve:?}");
        assert!(curve.weights[0] > 0.8, "{:?}", curve.weights);
        let at = |agreement: f32| {
            curve
                .apply(Signals {
                    score: 2.0,
                    agreement: Some(agreement),
                })
                .unwrap()
        };
        assert!(
            at(0.55) < 0.45 && at(0.9) > 0.95,
            "{} {}",
            at(0.55),
            at(0.9)
        );
        let none = Signals {
            score: 2.0,
            agreement: None,
        };
        assert_eq!(curve.apply(none), None);
    }
}
