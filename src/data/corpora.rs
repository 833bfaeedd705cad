//! Opening datasets by name: synthetic corpora in memory, or files through the loaders.

use std::path::Path;
use std::sync::Arc;

use super::load;
use super::phrases;
use super::record::{ImageSource, Loaded, Record};
use super::synth::{Split, Synth};
use crate::error::{Error, Result};

/// What a synthetic dataset asks of its films.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asks {
    /// `synth:`: every finding.
    Findings,
    /// `anatomy:`: the anatomy of the real-film check (`CHECKED_ANATOMY`).
    Anatomy,
}

/// The anatomy phrases that `tests/fixtures/chest_rg1_boxes.jsonl` has boxes for on the real
/// film, asked of synthetic films by `anatomy:N[:split[:seed]]`.
pub const CHECKED_ANATOMY: [&str; 6] = [
    "the right lung",
    "the left lung",
    "the heart",
    "the trachea",
    "the right hemidiaphragm",
    "the left hemidiaphragm",
];

/// A synthetic dataset's name: `synth:N[:split[:seed]][:upright][:shifted][:digitised]` or the
/// same with `anatomy:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthSpec {
    pub n: usize,
    pub split: Split,
    pub seed: u64,
    pub asks: Asks,
    /// `:upright`: the upright films of `Synth::with_upright`.
    pub upright: bool,
    /// `:shifted`: films framed, shaped and exposed beyond the validation films' ranges
    /// (`Synth::with_shift`): a domain shift the model was not tuned on, on which `calibrate`
    /// measures how its answers fail on unusual films.
    pub shifted: bool,
    /// `:digitised`: films as other hospitals' reach the model (borders, tilt, crop, labels;
    /// `Synth::with_digitised`), what the out-of-distribution model is fitted on.
    pub digitised: bool,
}

/// Parses `synth:N[:split[:seed]][:upright][:shifted][:digitised]` and the same with
/// `anatomy:`.
pub fn parse_synth(spec: &str) -> Result<Option<SynthSpec>> {
    let (rest, asks) = match (spec.strip_prefix("synth:"), spec.strip_prefix("anatomy:")) {
        (Some(rest), _) => (rest, Asks::Findings),
        (_, Some(rest)) => (rest, Asks::Anatomy),
        _ => return Ok(None),
    };
    let bad = || {
        Error::Other(format!(
            "bad synthetic dataset {spec:?}: use \
             synth:N[:train|val|test[:seed]][:upright][:shifted][:digitised] \
             (or anatomy:N[:...] for the anatomy phrases)"
        ))
    };
    let mut parts: Vec<&str> = rest.split(':').collect();
    let mut flag = |name: &str| {
        let on = parts.len() > 1 && parts.last() == Some(&name);
        if on {
            parts.pop();
        }
        on
    };
    let digitised = flag("digitised");
    let shifted = flag("shifted");
    let upright = flag("upright");
    if parts.len() > 3 {
        return Err(bad());
    }
    let n = parts[0].parse().map_err(|_| bad())?;
    let split = match parts.get(1).copied().unwrap_or("test") {
        "train" => Split::Train,
        "val" => Split::Val,
        "test" => Split::Test,
        _ => return Err(bad()),
    };
    let seed = parts
        .get(2)
        .map(|s| s.parse())
        .transpose()
        .map_err(|_| bad())?
        .unwrap_or(0);
    Ok(Some(SynthSpec {
        n,
        split,
        seed,
        asks,
        upright,
        shifted,
        digitised,
    }))
}

/// Records of `n` synthetic films (one per finding, or per checked anatomy phrase), generated
/// in memory.
pub fn synth_records(synth: &Synth, n: usize, asks: Asks) -> Vec<Record> {
    let split = format!("{:?}", synth.split).to_lowercase();
    (0..n as u64)
        .flat_map(|i| {
            let s = synth.sample(i);
            let picture = Arc::new(s.picture);
            let pairs: Vec<(String, String, _)> = match asks {
                Asks::Findings => s
                    .findings
                    .into_iter()
                    .map(|f| {
                        (
                            f.phrase,
                            phrases::CATEGORIES[f.category].to_string(),
                            f.box_px,
                        )
                    })
                    .collect(),
                Asks::Anatomy => s
                    .anatomy
                    .into_iter()
                    .filter(|(name, _)| CHECKED_ANATOMY.contains(name))
                    .map(|(name, b)| (name.to_string(), phrases::ANATOMY_CATEGORY.into(), b))
                    .collect(),
            };
            pairs
                .into_iter()
                .map(|(phrase, category, box_px)| Record {
                    image: ImageSource::Memory(picture.clone()),
                    phrase,
                    category,
                    box_px,
                    width: picture.width,
                    height: picture.height,
                    split: Some(split.clone()),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Opens a dataset: `synth:N[:split[:seed]][:upright][:shifted]` or `anatomy:...` (films of
/// `size` pixels) or a file for [`load::load`].
pub fn open(spec: &str, images: Option<&Path>, size: usize) -> Result<Loaded> {
    match parse_synth(spec)? {
        Some(s) => Ok(Loaded {
            records: synth_records(
                &Synth::new(s.seed, s.split, size)
                    .with_upright(s.upright)
                    .with_shift(s.shifted)
                    .with_digitised(s.digitised),
                s.n,
                s.asks,
            ),
            problems: vec![],
        }),
        None => load::load(Path::new(spec), images),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `anatomy:N` asks the checked anatomy of the same films `synth:N` asks the findings of.
    #[test]
    fn anatomy_specs_ask_the_checked_anatomy_of_the_same_films() {
        let spec = SynthSpec {
            n: 4,
            split: Split::Val,
            seed: 2,
            asks: Asks::Anatomy,
            upright: false,
            shifted: false,
            digitised: false,
        };
        assert_eq!(parse_synth("anatomy:4:val:2").unwrap(), Some(spec));
        let upright = SynthSpec {
            upright: true,
            ..spec
        };
        assert_eq!(
            parse_synth("anatomy:4:val:2:upright").unwrap(),
            Some(upright)
        );
        let shifted = SynthSpec {
            shifted: true,
            ..upright
        };
        assert_eq!(
            parse_synth("anatomy:4:val:2:upright:shifted").unwrap(),
            Some(shifted)
        );
        assert!(parse_synth("anatomy:4:val:2:shifted:upright").is_err());
        let digitised = parse_synth("synth:4:val:2:upright:digitised")
            .unwrap()
            .unwrap();
        assert!(digitised.digitised && digitised.upright && !digitised.shifted);
        assert!(parse_synth("anatomy:x").is_err());
        assert!(parse_synth("synth:4:val:2:sideways").is_err());
        assert!(parse_synth("synth:upright").is_err());
        let a = open("anatomy:3:val:2", None, 96).unwrap().records;
        let f = open("synth:3:val:2", None, 96).unwrap().records;
        assert!(a.len() >= 3 * 4, "{} anatomy records", a.len());
        assert!(a.iter().all(|r| r.category == phrases::ANATOMY_CATEGORY
            && CHECKED_ANATOMY.contains(&r.phrase.as_str())));
        let (ImageSource::Memory(pa), ImageSource::Memory(pf)) = (&a[0].image, &f[0].image) else {
            panic!("synthetic records live in memory");
        };
        assert_eq!(pa.data, pf.data);
    }
}
