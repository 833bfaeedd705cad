//! MS-CXR-style phrases: finding + laterality + zone + size/severity words and synonyms, and the
//! anatomy phrases of the alignment stage. Deterministic given a random source.

/// The eight MS-CXR findings, in the order of the paper's table.
pub const CATEGORIES: [&str; 8] = [
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Lung Opacity",
    "Pleural Effusion",
    "Pneumonia",
    "Pneumothorax",
];

/// Side of the patient a finding lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
    Both,
}

/// Where in the lung a finding lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Upper,
    Middle,
    Lower,
    Apical,
    Basal,
    Perihilar,
    Whole,
}

/// Everything a phrase may say about one finding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    pub category: usize,
    pub side: Side,
    pub zone: Zone,
    /// 0 small/mild, 1 moderate, 2 large/severe.
    pub severity: u8,
    /// Lung opacity only: a well-defined nodule (true) or an ill-defined patch. The film's
    /// drawing decides it (`synth::lesions::lung_opacity`), so the phrase says what is drawn.
    pub nodular: bool,
}

/// Minimal random source so phrase choice is reproducible from a seed on every target.
pub trait Pick {
    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize;
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn side_word(side: Side, r: &mut impl Pick) -> &'static str {
    match side {
        Side::Left => "left",
        Side::Right => "right",
        Side::Both => r.pick(&["bilateral", "bibasilar"]),
    }
}

fn zone_words(zone: Zone, side: Side) -> &'static [&'static str] {
    match zone {
        Zone::Upper => &["upper lobe", "upper zone", "upper lung"],
        Zone::Middle if side == Side::Left => &["mid lung", "lingular", "mid zone"],
        Zone::Middle => &["mid lung", "middle lobe", "mid zone"],
        Zone::Lower => &["lower lobe", "lower zone", "lung base"],
        Zone::Apical => &["apical", "apex"],
        Zone::Basal => &["basal", "base", "basilar"],
        Zone::Perihilar => &["perihilar", "hilar"],
        Zone::Whole => &["lung"],
    }
}

fn severity_word(severity: u8, r: &mut impl Pick) -> &'static str {
    match severity {
        0 => r.pick(&["small", "mild", "minimal", "subtle", "trace"]),
        1 => r.pick(&["moderate", "moderate-sized", "", ""]),
        _ => r.pick(&["large", "severe", "extensive", "marked"]),
    }
}

/// One phrase for `f`, in one of several MS-CXR styles.
pub fn phrase(f: &Finding, r: &mut impl Pick) -> String {
    let side = side_word(f.side, r);
    let zone = r.pick(zone_words(f.zone, f.side));
    let sev = severity_word(f.severity, r);
    let text = match CATEGORIES[f.category] {
        "Atelectasis" => match r.below(4) {
            0 => format!("{side} {zone} atelectasis"),
            1 => format!("{sev} {side} basilar atelectasis"),
            2 => format!("plate-like atelectasis in the {side} {zone}"),
            _ => format!("{side} {zone} subsegmental atelectasis"),
        },
        "Cardiomegaly" => r
            .pick(&[
                "cardiomegaly",
                "enlarged cardiac silhouette",
                "the heart is enlarged",
                "moderate cardiomegaly",
                "mild enlargement of the cardiac silhouette",
                "severe cardiomegaly",
                "enlarged heart",
            ])
            .to_string(),
        "Consolidation" => match r.below(4) {
            0 => format!("{side} {zone} consolidation"),
            1 => format!("consolidation in the {side} {zone}"),
            2 => format!("{sev} {side} {zone} airspace consolidation"),
            _ => format!("focal consolidation at the {side} {zone}"),
        },
        "Edema" => r
            .pick(&[
                "pulmonary edema",
                "mild pulmonary edema",
                "moderate pulmonary edema",
                "interstitial edema",
                "perihilar edema",
                "pulmonary vascular congestion and edema",
                "severe pulmonary edema",
            ])
            .to_string(),
        "Lung Opacity" => match r.below(4) {
            0 => format!("{side} {zone} opacity"),
            1 => format!("{sev} opacity in the {side} {zone}"),
            _ if f.nodular => format!("nodular opacity in the {side} {zone}"),
            _ => format!("ill-defined {side} {zone} opacity"),
        },
        "Pleural Effusion" => match r.below(4) {
            0 => format!("{sev} {side} pleural effusion"),
            1 => format!("{side} pleural effusion"),
            2 => format!("{sev} {side} effusion"),
            _ => format!("{side} sided pleural effusion"),
        },
        "Pneumonia" => match r.below(3) {
            0 => format!("{side} {zone} pneumonia"),
            1 => format!("pneumonia in the {side} {zone}"),
            _ => format!("{side} {zone} opacity concerning for pneumonia"),
        },
        _ if f.zone == Zone::Apical => match r.below(4) {
            0 => format!("{sev} {side} apical pneumothorax"),
            1 => format!("{side} apical pneumothorax"),
            2 => format!("apical pneumothorax on the {side}"),
            _ => format!("{side} apical pneumothorax"),
        },
        _ => match r.below(3) {
            0 => format!("{sev} {side} pneumothorax"),
            1 => format!("{side} lateral pneumothorax"),
            _ => format!("{sev} {side} sided pneumothorax"),
        },
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Anatomy phrases for the alignment stage.
/// Category name of anatomy phrases.
pub const ANATOMY_CATEGORY: &str = "Anatomy";

pub const ANATOMY: [&str; 12] = [
    "the heart",
    "the right lung",
    "the left lung",
    "the right upper lobe",
    "the left upper lobe",
    "the right lower lobe",
    "the left lower lobe",
    "the trachea",
    "the right hemidiaphragm",
    "the left hemidiaphragm",
    "the right costophrenic angle",
    "the left costophrenic angle",
];

/// A small linear congruential source, enough for choosing words reproducibly.
pub struct Lcg(pub u64);

impl Pick for Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Text the tiny tokenizer is trained on: many phrases of every category, the anatomy phrases
/// and the instruction templates.
pub fn tokenizer_corpus() -> Vec<String> {
    let mut r = Lcg(7);
    let sides = [Side::Left, Side::Right, Side::Both];
    let zones = [
        Zone::Upper,
        Zone::Middle,
        Zone::Lower,
        Zone::Apical,
        Zone::Basal,
        Zone::Perihilar,
        Zone::Whole,
    ];
    let mut out = Vec::new();
    for (category, name) in CATEGORIES.iter().enumerate() {
        for i in 0..400 {
            let f = Finding {
                category,
                side: sides[i % 3],
                zone: zones[i % 7],
                severity: (i % 3) as u8,
                nodular: i % 2 == 0,
            };
            out.push(phrase(&f, &mut r));
        }
        out.push(name.to_lowercase());
    }
    for t in crate::protocol::prompt::TEMPLATES {
        for a in ANATOMY {
            out.push(format!("[refer] {}", t.replace("{}", a)));
        }
    }
    out.push("User: Assistant:".into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_phrases_with_its_words() {
        let mut r = Lcg(1);
        for category in 0..CATEGORIES.len() {
            let f = Finding {
                category,
                side: Side::Left,
                zone: Zone::Lower,
                severity: 0,
                nodular: false,
            };
            let p = phrase(&f, &mut r);
            assert!(!p.is_empty() && !p.contains("  "), "{p:?}");
            let key = [
                "atelecta",
                "heart|cardi",
                "consolidation",
                "edema",
                "opacity",
                "effusion",
                "pneumonia",
                "pneumothorax",
            ][category];
            assert!(
                key.split('|').any(|k| p.contains(k)),
                "{p:?} for {}",
                CATEGORIES[category]
            );
        }
    }

    #[test]
    fn corpus_is_reproducible() {
        assert_eq!(tokenizer_corpus(), tokenizer_corpus());
        assert!(tokenizer_corpus().len() > 3000);
    }
}
