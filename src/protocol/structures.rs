//! The confidence of an anatomy answer by structure and by how unusual the film is. The model's
//! answer probability says nothing about an anatomy box (about 0.35 for hits and misses alike:
//! the coordinates' distributions are as wide for both), but two things do: which structure is
//! asked (a thin hemidiaphragm is missed where a lung is not) and how far the film lies from
//! the training films (its out-of-distribution score). So each structure gets a curve of its
//! hit rate falling with the score, fitted by `calibrate` on validation films and on films
//! shifted beyond the corpus's ranges (`:shifted`), where the misses are.

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

/// One structure's hit rate against the film's out-of-distribution score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Structure {
    pub name: String,
    pub n: usize,
    /// (-ln score, hit rate), both rising: the rate falls as the film gets more unusual. Each
    /// step's rate is (hits + 1) / (answers + 2), so that no finite sample states certainty.
    pub points: Vec<[f64; 2]>,
}

/// The structure `phrase` names, if it names one of `STRUCTURES` (matched in lower case).
pub fn structure_of(phrase: &str) -> Option<&'static str> {
    let p = phrase.to_lowercase();
    STRUCTURES.iter().copied().find(|s| p.contains(s))
}

fn x_of(score: f32) -> f64 {
    -(score.max(1e-6) as f64).ln()
}

impl Structure {
    /// The chance of a hit on a film of out-of-distribution `score`: flat beyond the fitted
    /// range, linear between steps.
    pub fn apply(&self, score: f32) -> f32 {
        super::calibration::through(&self.points, x_of(score)) as f32
    }

    pub fn is_valid(&self) -> bool {
        super::calibration::is_rising_curve(&self.points)
    }
}

/// A curve for each structure with enough answers among `(phrase, film score, hit)`.
pub fn fit(answers: &[(String, f32, bool)]) -> Vec<Structure> {
    STRUCTURES
        .iter()
        .filter_map(|&name| {
            let (xs, ys): (Vec<f32>, Vec<f64>) = answers
                .iter()
                .filter(|(p, s, _)| structure_of(p) == Some(name) && s.is_finite())
                .map(|(_, s, h)| (x_of(*s) as f32, f64::from(u8::from(*h))))
                .unzip();
            if xs.len() < MIN_ANSWERS {
                return None;
            }
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
            Some(Structure {
                name: name.into(),
                n: xs.len(),
                points,
            })
        })
        .collect()
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
            answers.push(("the left hemidiaphragm".to_string(), score, thin_hit));
            answers.push(("the heart".to_string(), score, true));
        }
        answers.push(("the trachea".to_string(), 1.0, false));
        let curves = fit(&answers);
        assert_eq!(curves.len(), 2, "{curves:?}");
        let thin = curves
            .iter()
            .find(|c| c.name == "left hemidiaphragm")
            .unwrap();
        let heart = curves.iter().find(|c| c.name == "heart").unwrap();
        assert!(thin.is_valid() && heart.is_valid());
        assert!(thin.apply(2.0) > 0.95, "{}", thin.apply(2.0));
        assert!(
            (thin.apply(7.0) - 1.0 / 3.0).abs() < 0.05,
            "{}",
            thin.apply(7.0)
        );
        assert!(thin.apply(100.0) <= thin.apply(7.0));
        assert!(heart.apply(7.0) > 0.99 && heart.apply(7.0) < 1.0);
        let back: Structure = serde_json::from_str(&serde_json::to_string(thin).unwrap()).unwrap();
        assert_eq!(back.points.len(), thin.points.len());
    }
}
