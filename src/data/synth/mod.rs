//! The built-in synthetic corpus: phantom films from a real CT, findings of the eight MS-CXR
//! categories drawn where they belong, exact boxes from the lesion masks, MS-CXR-style phrases.
//! Deterministic by (seed, split, index); validation and test use poses never seen in training.

pub mod anatomy;
pub mod canvas;
pub mod compose;
pub mod digitised;
pub mod film;
pub mod framing;
pub mod lesions;
pub mod maps;
pub mod objects;
pub mod patient;
pub mod phantom;
pub mod pleura;
pub mod regions;
pub mod shift;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use self::canvas::Canvas;
pub use self::phantom::Split;
use crate::data::phrases::{CATEGORIES, Finding, Pick, Side, Zone, phrase};
use crate::image::Picture;
use crate::protocol::answer::PixelBox;

impl Pick for ChaCha8Rng {
    fn below(&mut self, n: usize) -> usize {
        self.random_range(0..n)
    }
}

/// One finding of a synthetic film: its description and exact box.
#[derive(Debug, Clone)]
pub struct SynthFinding {
    pub category: usize,
    pub finding: Finding,
    pub phrase: String,
    pub box_px: PixelBox,
}

#[derive(Debug, Clone)]
pub struct SynthSample {
    pub picture: Picture,
    pub findings: Vec<SynthFinding>,
    /// Anatomy phrases (`phrases::ANATOMY`) with the boxes of their projected structures.
    pub anatomy: Vec<(&'static str, PixelBox)>,
    /// The film's objects (`objects.rs`: electrode, side marker, label) with their boxes.
    pub objects: Vec<(&'static str, PixelBox)>,
    pub pose: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct Synth {
    pub seed: u64,
    pub split: Split,
    /// Side of the square output, in pixels.
    pub size: usize,
    /// Wide geometry: the thorax zoomed, shifted and turned over a range several times wider
    /// than the validation and test films', so that where anything is cannot be guessed from
    /// the phrase (stage 1 uses it; see `with_wide_geometry`).
    pub wide: bool,
    /// (category, share): the film's first finding is this category with this probability
    /// (see `with_focus`); None: every category equally often.
    pub focus: Option<(usize, f64)>,
    /// Upright films read as a reader reads them (see `with_upright`).
    pub upright: bool,
    /// Films beyond the corpus's ranges, for measuring (see `with_shift`).
    pub shifted: bool,
    /// Films with a digitiser's looks: borders, tilt, crop, exposure, labels (`with_digitised`).
    pub digitised: bool,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// A finding of `category` with side, zone and severity where that finding can be.
fn choose_finding(category: usize, r: &mut ChaCha8Rng) -> Finding {
    let side = if r.random_bool(0.5) {
        Side::Left
    } else {
        Side::Right
    };
    let pick = |r: &mut ChaCha8Rng, zones: &[Zone]| zones[r.random_range(0..zones.len())];
    let (side, zone) = match CATEGORIES[category] {
        "Cardiomegaly" | "Edema" => (Side::Both, Zone::Whole),
        "Pleural Effusion" => (side, Zone::Basal),
        "Pneumothorax" => (
            side,
            if r.random_bool(0.6) {
                Zone::Apical
            } else {
                Zone::Whole
            },
        ),
        "Atelectasis" => (side, pick(r, &[Zone::Lower, Zone::Basal])),
        "Lung Opacity" => (
            side,
            pick(
                r,
                &[Zone::Upper, Zone::Middle, Zone::Lower, Zone::Perihilar],
            ),
        ),
        _ => (side, pick(r, &[Zone::Upper, Zone::Middle, Zone::Lower])),
    };
    Finding {
        category,
        side,
        zone,
        severity: r.random_range(0..3),
        nodular: false,
    }
}

fn draw(c: &mut Canvas, r: &mut ChaCha8Rng, f: &mut Finding) -> Option<canvas::Bounds> {
    match CATEGORIES[f.category] {
        "Atelectasis" => lesions::atelectasis(c, r, f),
        "Cardiomegaly" => lesions::cardiomegaly(c, r, f),
        "Consolidation" => lesions::airspace(c, r, f, false),
        "Edema" => lesions::edema(c, r, f),
        "Lung Opacity" => lesions::lung_opacity(c, r, f),
        "Pleural Effusion" => pleura::pleural_effusion(c, r, f),
        "Pneumonia" => lesions::airspace(c, r, f, true),
        _ => pleura::pneumothorax(c, r, f),
    }
}

impl Synth {
    pub fn new(seed: u64, split: Split, size: usize) -> Self {
        Self {
            seed,
            split,
            size,
            wide: false,
            focus: None,
            upright: false,
            shifted: false,
            digitised: false,
        }
    }

    /// Draws `category` as the first finding of `share` of the films (the rest as usual), so
    /// that training asks more often about a finding it reads badly. Off, the data stream is
    /// exactly the unfocused one.
    pub fn with_focus(mut self, focus: Option<(usize, f64)>) -> Self {
        self.focus = focus;
        self
    }

    /// Films whose framing varies more widely (lungs 40-95 % of the width, shift +-13 %, turn
    /// +-0.11 rad, patients deformed 1.5 times as much; `framing.rs`, `patient.rs`).
    /// With the usual framing, a model trained from scratch learns every box from the phrase
    /// alone and never looks at the film; stage 1 trains on these so that it has to.
    pub fn with_wide_geometry(mut self, wide: bool) -> Self {
        self.wide = wide;
        self
    }

    /// Upright films, as a reader reads them (`:upright` in a dataset's name): the domes of the
    /// diaphragm lowered as on an upright PA film in inspiration (`Patient::with_upright_domes`),
    /// and the lungs labelled as far as a film shows them, down to the domes, not into the
    /// recesses behind the abdomen that the supine CT labels lung (`regions::cut_below_domes`).
    /// So the lung and lobe boxes, the zones findings are placed by, and the hemidiaphragms
    /// (from the dome's apex down to the lung's lowest point) follow the film, not the CT.
    /// Off, the films are exactly those of corpora before it.
    pub fn with_upright(mut self, upright: bool) -> Self {
        self.upright = upright;
        self
    }

    /// Films unlike the validation films, to measure how answers fail on unusual films: the
    /// wide geometry (`with_wide_geometry`) and a look beyond the acquisition ranges
    /// (`shift::appearance`). Off, the films are exactly those without it.
    pub fn with_shift(mut self, shifted: bool) -> Self {
        self.shifted = shifted;
        self.wide |= shifted;
        self
    }

    /// Seven films in ten as another hospital's film reaches the model: a border or a band, a
    /// tilt, a crop, another exposure, burned-in labels (`digitised.rs`), their boxes moved
    /// with them. What the out-of-distribution model is fitted on, so that such films read as
    /// chest films. Off, the films are exactly those without it.
    pub fn with_digitised(mut self, digitised: bool) -> Self {
        self.digitised = digitised;
        self
    }

    /// Sample `index` of this corpus.
    pub fn sample(&self, index: u64) -> SynthSample {
        let salt = match self.split {
            Split::Train => 0x7472,
            Split::Val => 0x7661,
            Split::Test => 0x7465,
        };
        let mut r =
            ChaCha8Rng::seed_from_u64(mix(self.seed ^ mix(salt) ^ mix(index.wrapping_add(1))));
        let poses = phantom::poses(self.split);
        let pose = poses[r.random_range(0..poses.len())];
        let p = &phantom::phantoms()[pose];
        // The patient (deformed phantom plus the body the CT cut off), framed on a whole film,
        // with ribs, clavicles, scapulae and spine at a contrast of their own.
        let framing = framing::Framing::new(p, self.size, self.wide, &mut r);
        let mut patient = patient::Patient::new(p, &mut r, if self.wide { 1.5 } else { 1.0 });
        if self.upright {
            patient = patient.with_upright_domes(p, &mut r);
        }
        let bone_gain = [
            r.random_range(1.0..3.2),
            r.random_range(1.0..2.2),
            r.random_range(0.8..1.6),
        ];
        let map = maps::Gridded::new(self.size, 4, |x, y| {
            let (sx, sy) = framing.to_phantom(x, y);
            patient.deform(sx, sy)
        });
        let beyond = |x, y, edge| patient.beyond(x, y, edge);
        // Upright, the domes come down past the ribs, which stay where they are.
        let bones = self.upright.then(|| {
            maps::Gridded::new(self.size, 4, |x, y| {
                let (sx, sy) = framing.to_phantom(x, y);
                patient.deform_bones(sx, sy)
            })
        });
        let mut canvas = Canvas::warp(p, self.size, &map, beyond, bone_gain, bones.as_ref());
        patient::breasts(&mut canvas, &mut r);
        if self.upright {
            regions::cut_below_domes(&mut canvas.labels, canvas.w);
            canvas.upright = true;
        }
        let wanted = if r.random_bool(0.7) {
            1
        } else if r.random_bool(0.8) {
            2
        } else {
            3
        };
        let mut findings: Vec<SynthFinding> = Vec::new();
        for _ in 0..12 {
            if findings.len() == wanted {
                break;
            }
            let category = match self.focus {
                Some((c, share)) if findings.is_empty() && r.random_bool(share) => c,
                _ => r.random_range(0..CATEGORIES.len()),
            };
            if findings.iter().any(|f| f.category == category) {
                continue;
            }
            let mut finding = choose_finding(category, &mut r);
            if let Some(b) = draw(&mut canvas, &mut r, &mut finding) {
                let phrase = phrase(&finding, &mut r);
                findings.push(SynthFinding {
                    category,
                    finding,
                    phrase,
                    box_px: b.to_box(),
                });
            }
        }
        let anatomy = anatomy::boxes(&canvas);
        let (mut data, objects) = film::expose(&canvas, &mut r);
        if self.shifted {
            shift::appearance(&mut data, self.size, self.size, &mut r);
        }
        let (mut anatomy, mut objects) = (anatomy, objects);
        if self.digitised && r.random_bool(0.7) {
            let map = digitised::digitise(&mut data, self.size, &mut r);
            let moved = |b: &mut PixelBox| *b = map.map_box(b, self.size);
            findings.iter_mut().for_each(|f| moved(&mut f.box_px));
            anatomy.iter_mut().for_each(|(_, b)| moved(b));
            objects.iter_mut().for_each(|(_, b)| moved(b));
        }
        let picture =
            Picture::new(self.size as u32, self.size as u32, 1, data).expect("square film");
        SynthSample {
            picture,
            anatomy,
            objects,
            findings,
            pose,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = Synth::new(1, Split::Train, 128).sample(5);
        let b = Synth::new(1, Split::Train, 128).sample(5);
        assert_eq!(a.picture, b.picture);
        assert_eq!(a.findings.len(), b.findings.len());
        assert_ne!(
            Synth::new(2, Split::Train, 128).sample(5).picture,
            a.picture
        );
    }

    /// A lung opacity's phrase names the shape that was drawn: "nodular" only for nodules,
    /// "ill-defined" only for patches, and the nodules' boxes are the smaller.
    #[test]
    fn lung_opacity_phrases_name_the_drawn_shape() {
        let (mut widths, mut named) = ([Vec::new(), Vec::new()], [0, 0]);
        for i in 0..400 {
            for f in Synth::new(3, Split::Train, 224).sample(i).findings {
                if CATEGORIES[f.category] != "Lung Opacity" {
                    continue;
                }
                let nodular = f.finding.nodular;
                widths[nodular as usize].push(f.box_px.x2 - f.box_px.x1);
                if f.phrase.contains("nodular") || f.phrase.contains("ill-defined") {
                    assert_eq!(f.phrase.contains("nodular"), nodular, "{}", f.phrase);
                    named[nodular as usize] += 1;
                }
            }
        }
        assert!(named[0] > 5 && named[1] > 5, "{named:?}");
        let mean = |v: &Vec<f32>| v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean(&widths[1]) < mean(&widths[0]), "{widths:?}");
    }

    #[test]
    fn focus_raises_its_category_share_and_off_changes_nothing() {
        let lo = CATEGORIES
            .iter()
            .position(|c| *c == "Lung Opacity")
            .unwrap();
        let plain = Synth::new(4, Split::Train, 96);
        let share = |s: &Synth| {
            let films: Vec<_> = (0..200).map(|i| s.sample(i)).collect();
            let with = films
                .iter()
                .filter(|f| f.findings.iter().any(|f| f.category == lo));
            with.count() as f64 / films.len() as f64
        };
        let (base, focused) = (share(&plain), share(&plain.with_focus(Some((lo, 0.6)))));
        assert!(base < 0.35 && focused > 0.6, "{base} {focused}");
        let off = plain.with_focus(None).sample(9);
        assert_eq!(off.picture, plain.sample(9).picture);
    }

    #[test]
    fn splits_use_their_own_poses() {
        for i in 0..20 {
            let s = Synth::new(0, Split::Test, 64).sample(i);
            assert_eq!(phantom::phantoms()[s.pose].split, Split::Test);
        }
    }
}
