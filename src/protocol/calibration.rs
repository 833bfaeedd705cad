//! Calibrated confidence: the model's answer probability (the geometric mean of its box tokens'
//! probabilities) mapped to the chance that the box overlaps the truth at IoU >= 0.5, fitted on a
//! validation split by `calibrate` and stored in the bundle as `calibration.json`. Two maps:
//! isotonic regression (a monotone step curve through the hit rates, by pool-adjacent-violators,
//! flat along each step, linear between steps) and Platt scaling on the log-odds,
//! `sigmoid(a * logit(p) + b)`. The expected calibration error (ECE, 10 equal-width bins) says
//! how far stated chances are from observed hit rates.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::protocol::prompt::is_anatomy;
use crate::protocol::structures::{Signals, Structure, asked_structure};

/// The file a bundle keeps its calibration in (optional; listed in the manifest when present).
pub const FILE: &str = "calibration.json";
/// Bins of the ECE and of the reliability diagram.
pub const BINS: usize = 10;
/// IoU from which a box counts as right.
pub const HIT_IOU: f32 = 0.5;

/// How answer probabilities map to the chance of a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Method {
    /// A rising step curve through `points` (pool-adjacent-violators).
    Isotonic,
    /// `sigmoid(a * logit(p) + b)`.
    Platt,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Isotonic => "isotonic",
            Self::Platt => "platt",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub method: Method,
    #[serde(default)]
    pub a: f64,
    #[serde(default)]
    pub b: f64,
    /// Isotonic: (answer probability, chance of a hit) at each step's two ends, rising.
    #[serde(default)]
    pub points: Vec<[f64; 2]>,
    /// The dataset it was fitted on, its size, and the ECE there before and after.
    pub fitted_on: String,
    pub n: usize,
    pub ece_before: f64,
    pub ece_after: f64,
    /// A curve of its own for anatomy phrases ("the heart", "the trachea"): their answers are
    /// surer than findings' at the same hit rate, so one curve for both would mislead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anatomy: Option<Box<Calibration>>,
    /// Curves of their own for the commonest anatomy structures, by how unusual the film is
    /// (`structures.rs`): used for those phrases when the film's out-of-distribution score is
    /// known, ahead of the anatomy curve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub structures: Vec<Structure>,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Calibration {
    /// Fits the map `method` to answer probabilities and their outcomes.
    pub fn fit(probs: &[f32], hits: &[bool], method: Method, fitted_on: &str) -> Result<Self> {
        if probs.len() != hits.len() || probs.len() < 20 {
            return Err(Error::Other(format!(
                "calibration needs at least 20 answers with their outcome, got {}",
                probs.len()
            )));
        }
        let ys: Vec<f64> = hits.iter().map(|&h| f64::from(u8::from(h))).collect();
        let (a, b, points) = match method {
            Method::Platt => {
                let xs: Vec<f64> = probs.iter().map(|&p| logit(p as f64)).collect();
                let (a, b) = platt(&xs, &ys);
                (a, b, vec![])
            }
            Method::Isotonic => (0.0, 0.0, isotonic(probs, &ys)),
        };
        let mut c = Self {
            method,
            a,
            b,
            points,
            fitted_on: fitted_on.into(),
            n: probs.len(),
            ece_before: ece(probs, hits),
            ece_after: 0.0,
            anatomy: None,
            structures: vec![],
        };
        let after: Vec<f32> = probs.iter().map(|&p| c.apply(p)).collect();
        c.ece_after = ece(&after, hits);
        Ok(c)
    }

    /// The calibrated chance for a raw answer probability to `phrase` on a film of
    /// out-of-distribution `score` (None: not known), `agreement` the agreement of its boxes on
    /// shifted views where measured: through its structure's curve when there is one and it
    /// has what it reads, else the anatomy curve for anatomy phrases, else the findings' curve.
    pub fn apply_to(
        &self,
        p: f32,
        phrase: &str,
        score: Option<f32>,
        agreement: Option<f32>,
    ) -> f32 {
        let anatomy = is_anatomy(phrase);
        let structured =
            score.and_then(|score| self.structure(phrase)?.apply(Signals { score, agreement }));
        match (structured, &self.anatomy) {
            (Some(chance), _) => chance,
            (None, Some(a)) if anatomy => a.apply(p),
            _ => self.apply(p),
        }
    }

    /// The curve of the structure `phrase` names, if it is an anatomy phrase with one.
    fn structure(&self, phrase: &str) -> Option<&Structure> {
        let name = asked_structure(phrase)?;
        self.structures.iter().find(|s| s.name == name)
    }

    /// Whether the confidence of `phrase` reads the agreement of its boxes on shifted views
    /// (then `Grounder::agreement` is worth its six more answers).
    pub fn needs_agreement(&self, phrase: &str) -> bool {
        self.structure(phrase)
            .is_some_and(Structure::needs_agreement)
    }

    /// The calibrated chance for a raw answer probability (the findings' curve).
    pub fn apply(&self, p: f32) -> f32 {
        let p = p as f64;
        match self.method {
            Method::Platt => sigmoid(self.a * logit(p) + self.b) as f32,
            Method::Isotonic => through(&self.points, p) as f32,
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let c: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::Weights(format!("{FILE} is malformed: {e}")))?;
        let finite = |v: f64| v.is_finite();
        let ok = match c.method {
            Method::Platt => finite(c.a) && finite(c.b),
            Method::Isotonic => is_rising_curve(&c.points),
        } && c.anatomy.as_ref().is_none_or(|a| a.anatomy.is_none())
            && c.structures.iter().all(Structure::is_valid);
        if let Some(a) = &c.anatomy {
            Self::parse(serde_json::to_string(a).expect("serialises").as_bytes())?;
        }
        if !ok {
            return Err(Error::Weights(format!(
                "{FILE}: malformed parameters for the {} method",
                c.method
            )));
        }
        Ok(c)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("calibration serialises")
    }
}

/// Whether `pts` is a curve [`through`] reads: not empty, finite x, chances in [0, 1], both
/// rising.
pub(crate) fn is_rising_curve(pts: &[[f64; 2]]) -> bool {
    !pts.is_empty()
        && pts
            .iter()
            .all(|&[x, y]| x.is_finite() && (0.0..=1.0).contains(&y))
        && pts
            .windows(2)
            .all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1])
}

/// The step curve through `pts` (rising in x) at `x`: flat beyond its ends, linear between.
pub(crate) fn through(pts: &[[f64; 2]], x: f64) -> f64 {
    let k = pts.partition_point(|q| q[0] <= x);
    match k {
        0 => pts[0][1],
        k if k == pts.len() => pts[k - 1][1],
        k => {
            let ([x0, y0], [x1, y1]) = (pts[k - 1], pts[k]);
            y0 + (y1 - y0) * (x - x0) / (x1 - x0).max(1e-12)
        }
    }
}

/// Platt's `(a, b)`: Newton's method on the log-loss, halving a step until the loss falls (plain
/// Newton overshoots when the probabilities bunch up near 1); a tiny ridge keeps it finite when
/// the hits separate perfectly.
fn platt(xs: &[f64], ys: &[f64]) -> (f64, f64) {
    const RIDGE: f64 = 1e-3;
    let loss = |a: f64, b: f64| {
        let data: f64 = xs
            .iter()
            .zip(ys)
            .map(|(&x, &y)| {
                let z = a * x + b;
                (-z.abs()).exp().ln_1p() + z.max(0.0) - y * z
            })
            .sum();
        data + RIDGE / 2.0 * (a * a + b * b)
    };
    let (mut a, mut b) = (1.0f64, 0.0f64);
    let mut current = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb) = (RIDGE * a, RIDGE * b);
        let (mut haa, mut hab, mut hbb) = (RIDGE, 0.0, RIDGE);
        for (&x, &y) in xs.iter().zip(ys) {
            let p = sigmoid(a * x + b);
            let w = (p * (1.0 - p)).max(1e-12);
            ga += (p - y) * x;
            gb += p - y;
            haa += w * x * x;
            hab += w * x;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        let mut t = 1.0;
        while t > 1e-9 && loss(a - t * da, b - t * db) > current {
            t /= 2.0;
        }
        if t <= 1e-9 {
            break;
        }
        (a, b) = (a - t * da, b - t * db);
        current = loss(a, b);
        if t * (da.abs() + db.abs()) < 1e-10 {
            break;
        }
    }
    (a, b)
}

/// A run of answers pooled by [`pava`]: from `lo` to `hi`, `hits` of `n`.
pub(crate) struct Block {
    pub lo: f64,
    pub hi: f64,
    pub hits: f64,
    pub n: f64,
}

/// Pool-adjacent-violators over the answers sorted by `xs`: blocks whose hit rate does not rise
/// are merged.
pub(crate) fn pava(xs: &[f32], ys: &[f64]) -> Vec<Block> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&i, &j| xs[i].total_cmp(&xs[j]));
    let mut blocks: Vec<Block> = Vec::new();
    for &i in &order {
        let p = xs[i] as f64;
        // Equal probabilities pool first: one block per distinct value (the last block ends at
        // the previous probability, merged or not).
        match blocks.last_mut() {
            Some(last) if last.hi == p => {
                last.hits += ys[i];
                last.n += 1.0;
            }
            _ => blocks.push(Block {
                lo: p,
                hi: p,
                hits: ys[i],
                n: 1.0,
            }),
        }
        while blocks.len() > 1 {
            let (b0, b1) = (&blocks[blocks.len() - 2], &blocks[blocks.len() - 1]);
            if b0.hits / b0.n < b1.hits / b1.n {
                break;
            }
            let b1 = blocks.pop().expect("two blocks");
            let b0 = blocks.last_mut().expect("two blocks");
            b0.hi = b1.hi;
            b0.hits += b1.hits;
            b0.n += b1.n;
        }
    }
    blocks
}

/// The isotonic curve: each [`pava`] block gives its hit rate at its lowest and highest
/// probability, so the curve is flat inside a block and linear between blocks (as
/// scikit-learn's is).
fn isotonic(probs: &[f32], ys: &[f64]) -> Vec<[f64; 2]> {
    let blocks = pava(probs, ys);
    let mut points = Vec::with_capacity(2 * blocks.len());
    for b in &blocks {
        points.push([b.lo, b.hits / b.n]);
        if b.hi > b.lo {
            points.push([b.hi, b.hits / b.n]);
        }
    }
    points
}

/// One bin of a reliability diagram: answers whose stated chance falls in `[lo, hi)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
    /// Mean stated chance and observed hit rate of the bin's answers.
    pub confidence: f64,
    pub accuracy: f64,
}

pub fn bins(probs: &[f32], hits: &[bool]) -> Vec<Bin> {
    let mut out: Vec<Bin> = (0..BINS)
        .map(|k| Bin {
            lo: k as f64 / BINS as f64,
            hi: (k + 1) as f64 / BINS as f64,
            n: 0,
            confidence: 0.0,
            accuracy: 0.0,
        })
        .collect();
    for (&p, &y) in probs.iter().zip(hits) {
        let k = ((p.clamp(0.0, 1.0) as f64 * BINS as f64) as usize).min(BINS - 1);
        out[k].n += 1;
        out[k].confidence += p as f64;
        out[k].accuracy += f64::from(u8::from(y));
    }
    for b in &mut out {
        if b.n > 0 {
            b.confidence /= b.n as f64;
            b.accuracy /= b.n as f64;
        }
    }
    out
}

/// Expected calibration error: the bins' |hit rate - mean chance|, weighted by their share.
pub fn ece(probs: &[f32], hits: &[bool]) -> f64 {
    let n = probs.len().max(1) as f64;
    bins(probs, hits)
        .iter()
        .map(|b| b.n as f64 / n * (b.accuracy - b.confidence).abs())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_maps_fix_an_overconfident_model() {
        // Stated 0.95 and right 60 % of the time; stated 0.8 and right a fifth of the time.
        let mut probs = vec![];
        let mut hits = vec![];
        for i in 0..400 {
            let strong = i % 2 == 0;
            probs.push(if strong { 0.95 } else { 0.8 });
            hits.push(if strong { i % 10 < 6 } else { i % 10 == 1 });
        }
        let c = Calibration::fit(&probs, &hits, Method::Platt, "test").unwrap();
        assert!(c.ece_before > 0.4, "{}", c.ece_before);
        assert!(c.ece_after < 0.02, "{}", c.ece_after);
        assert!((c.apply(0.95) - 0.6).abs() < 0.02 && (c.apply(0.8) - 0.2).abs() < 0.02);
        // Monotone, and the file round-trips.
        assert!(c.apply(0.9) > c.apply(0.85));
        // (serde_json reads floats to within an ulp or so, not always bit for bit.)
        let back = Calibration::parse(c.to_json().as_bytes()).unwrap();
        assert!((back.a - c.a).abs() < 1e-12 && (back.b - c.b).abs() < 1e-12);
        assert_eq!((back.n, &back.fitted_on), (c.n, &c.fitted_on));
        let unknown = Calibration::parse(
            br#"{"method":"magic","fitted_on":"x","n":1,"ece_before":0,"ece_after":0}"#,
        );
        let message = unknown.unwrap_err().to_string();
        assert!(message.contains("unknown variant `magic`"), "{message}");
        assert!(Calibration::fit(&probs[..5], &hits[..5], Method::Platt, "t").is_err());
        // Isotonic gives the same two rates, rising, and reads back.
        let c = Calibration::fit(&probs, &hits, Method::Isotonic, "test").unwrap();
        assert_eq!(c.points.len(), 2); // each rate at one probability: one point a step
        assert!((c.apply(0.95) - 0.6).abs() < 1e-6 && (c.apply(0.8) - 0.2).abs() < 1e-6);
        assert!((c.apply(0.875) - 0.4).abs() < 1e-6 && c.apply(0.5) == c.apply(0.8));
        assert!(c.ece_after < 1e-6);
        assert_eq!(
            Calibration::parse(c.to_json().as_bytes()).unwrap().points,
            c.points
        );
        let falling = r#"{"method":"isotonic","points":[[0.1,0.9],[0.2,0.1]],"fitted_on":"x","n":1,"ece_before":0,"ece_after":0}"#;
        assert!(Calibration::parse(falling.as_bytes()).is_err());
    }

    #[test]
    fn ece_of_a_calibrated_set_is_small() {
        // Stated k/10, right in k of every 10.
        let probs: Vec<f32> = (0..1000).map(|i| (i % 10) as f32 / 10.0).collect();
        let hits: Vec<bool> = (0..1000).map(|i| (i / 10) % 10 < i % 10).collect();
        let e = ece(&probs, &hits);
        assert!(e < 1e-6, "{e}");
        assert!(ece(&probs, &vec![true; 1000]) > 0.4);
    }
}
