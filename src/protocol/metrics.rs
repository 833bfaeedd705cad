//! Grounding metrics: IoU per pair; per category and overall mIoU and Acc@t.

use std::collections::BTreeMap;

use serde::Serialize;

/// Thresholds reported by `eval`.
pub const THRESHOLDS: [f32; 3] = [0.3, 0.5, 0.7];

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub n: usize,
    pub miou: f32,
    /// Share of pairs with IoU >= 0.3, 0.5, 0.7.
    pub acc: [f32; 3],
    pub malformed: usize,
}

/// Accumulates IoUs by category.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    by_category: BTreeMap<String, Vec<f32>>,
    malformed: BTreeMap<String, usize>,
}

impl Scores {
    pub fn add(&mut self, category: &str, iou: f32) {
        self.by_category
            .entry(category.to_string())
            .or_default()
            .push(iou);
    }
    /// A malformed answer counts as IoU 0 and is tallied.
    pub fn add_malformed(&mut self, category: &str) {
        self.add(category, 0.0);
        *self.malformed.entry(category.to_string()).or_default() += 1;
    }
    pub fn categories(&self) -> impl Iterator<Item = &String> {
        self.by_category.keys()
    }
    pub fn category(&self, name: &str) -> Summary {
        summarise(
            self.by_category
                .get(name)
                .map(|v| v.as_slice())
                .unwrap_or(&[]),
            self.malformed.get(name).copied().unwrap_or(0),
        )
    }
    pub fn overall(&self) -> Summary {
        let all: Vec<f32> = self.by_category.values().flatten().copied().collect();
        summarise(&all, self.malformed.values().sum())
    }
}

fn summarise(ious: &[f32], malformed: usize) -> Summary {
    let n = ious.len();
    if n == 0 {
        return Summary {
            malformed,
            ..Default::default()
        };
    }
    let share = |t: f32| ious.iter().filter(|&&v| v >= t).count() as f32 / n as f32;
    Summary {
        n,
        miou: ious.iter().sum::<f32>() / n as f32,
        acc: THRESHOLDS.map(share),
        malformed,
    }
}

/// The Brier score: the mean squared gap between each stated chance and its outcome (0 or 1).
pub fn brier(probs: &[f32], hits: &[bool]) -> f64 {
    let n = probs.len().max(1) as f64;
    let gap = |(&p, &h): (&f32, &bool)| (p as f64 - f64::from(u8::from(h))).powi(2);
    probs.iter().zip(hits).map(gap).sum::<f64>() / n
}

/// How well stated chances tell hits from misses: the chance that a random hit was stated
/// above a random miss (ties count half; NaN without both).
pub fn discrimination(probs: &[f32], hits: &[bool]) -> f64 {
    let pick = |want: bool| -> Vec<f32> {
        probs
            .iter()
            .zip(hits)
            .filter(|&(_, &h)| h == want)
            .map(|(&p, _)| p)
            .collect()
    };
    let (hit, miss) = (pick(true), pick(false));
    if hit.is_empty() || miss.is_empty() {
        return f64::NAN;
    }
    super::ood::auroc(&miss, &hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_per_category_and_overall() {
        let mut s = Scores::default();
        s.add("Edema", 0.6);
        s.add("Edema", 0.2);
        s.add_malformed("Pneumothorax");
        let e = s.category("Edema");
        assert_eq!(e.n, 2);
        assert!((e.miou - 0.4).abs() < 1e-6);
        assert_eq!(e.acc, [0.5, 0.5, 0.0]);
        let all = s.overall();
        assert_eq!((all.n, all.malformed), (3, 1));
        assert!((all.miou - 0.8 / 3.0).abs() < 1e-6);
        assert_eq!(s.category("Cardiomegaly").n, 0);
    }

    #[test]
    fn brier_and_discrimination_of_stated_chances() {
        let hits = [true, true, false, false];
        assert_eq!(brier(&[1.0, 1.0, 0.0, 0.0], &hits), 0.0);
        assert!((brier(&[0.5; 4], &hits) - 0.25).abs() < 1e-12);
        assert_eq!(discrimination(&[0.9, 0.8, 0.3, 0.1], &hits), 1.0);
        // One miss stated above one hit: 3 of 4 pairs ordered.
        assert_eq!(discrimination(&[0.9, 0.2, 0.3, 0.1], &hits), 0.75);
        assert!(discrimination(&[0.9, 0.8], &[true, true]).is_nan());
    }
}
