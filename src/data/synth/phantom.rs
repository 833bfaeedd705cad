//! The phantom films rendered by `tools/assets/render_phantoms.py` from a real chest CT: per pose,
//! the line integral of attenuation, the part of it that crosses bone (ribs, clavicles and
//! scapulae, spine) and a bit mask of projected anatomy. Embedded in the binary, decoded once.

use std::sync::OnceLock;

use serde::Deserialize;

use super::canvas::{Bounds, bounds_where};
use super::compose::soften_twice;
use crate::error::{Error, Result};

/// Anatomy bits of the label maps, in the order of `phantoms.json`'s `label_bits`.
pub mod bits {
    pub const LUNG_UPPER_LEFT: u16 = 1 << 0;
    pub const LUNG_LOWER_LEFT: u16 = 1 << 1;
    pub const LUNG_UPPER_RIGHT: u16 = 1 << 2;
    pub const LUNG_MIDDLE_RIGHT: u16 = 1 << 3;
    pub const LUNG_LOWER_RIGHT: u16 = 1 << 4;
    pub const HEART: u16 = 1 << 5;
    pub const TRACHEA: u16 = 1 << 6;
    pub const RIBS: u16 = 1 << 7;
    pub const CLAVICLES: u16 = 1 << 8;
    pub const SPINE: u16 = 1 << 9;
    pub const LIVER: u16 = 1 << 10;
    pub const STOMACH_SPLEEN: u16 = 1 << 11;
    pub const AORTA: u16 = 1 << 12;
    pub const SCAPULAE: u16 = 1 << 13;
    pub const LEFT_LUNG: u16 = LUNG_UPPER_LEFT | LUNG_LOWER_LEFT;
    pub const RIGHT_LUNG: u16 = LUNG_UPPER_RIGHT | LUNG_MIDDLE_RIGHT | LUNG_LOWER_RIGHT;
    pub const LUNGS: u16 = LEFT_LUNG | RIGHT_LUNG;
    /// Lung behind the abdomen on an upright film (set by `regions::cut_below_domes`, not by
    /// the CT's labels).
    pub const RECESS: u16 = 1 << 14;
    /// What lies under the domes of the diaphragm.
    pub const ABDOMEN: u16 = LIVER | STOMACH_SPLEEN;
}

pub const NAMES: [&str; 14] = [
    "lung_upper_left",
    "lung_lower_left",
    "lung_upper_right",
    "lung_middle_right",
    "lung_lower_right",
    "heart",
    "trachea",
    "ribs",
    "clavicles",
    "spine",
    "liver",
    "stomach_spleen",
    "aorta",
    "scapulae",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

/// Bone channels of `Phantom::bones`, in the order of `phantoms.json`'s `bone_channels`.
pub const BONE_CHANNELS: [&str; 3] = ["ribs", "clavicles+scapulae", "spine"];

/// One pose: line integral (attenuation, mm * 1/mm), its bone part per channel and anatomy
/// bits, `width x height`.
pub struct Phantom {
    pub width: usize,
    pub height: usize,
    pub integral: Vec<f32>,
    /// The part of `integral` that runs through each of `BONE_CHANNELS`' structures, the three
    /// side by side at each pixel.
    pub bones: Vec<[f32; 3]>,
    /// `integral` less its bones: what does not move with them.
    pub soft: Vec<f32>,
    /// `integral` blurred (radius 6 px, twice): what the body beyond the CT's field of view
    /// continues from, without streaks of the edge's detail.
    pub smooth: Vec<f32>,
    pub labels: Vec<u16>,
    pub split: Split,
    /// Bounds of both lungs and of the heart: the landmarks framing and deformation use.
    pub lungs: Bounds,
    pub heart: Bounds,
    /// Per side (the patient's right, then left): the row of the dome's apex and of that lung's
    /// lowest point, which on this supine CT lies deep behind the abdomen.
    pub domes: [(f32, f32); 2],
}

#[derive(Deserialize)]
struct Meta {
    integral_scale: f32,
    bones_scale: f32,
    bone_channels: Vec<String>,
    label_bits: Vec<String>,
    poses: Vec<PoseMeta>,
}

#[derive(Deserialize)]
struct PoseMeta {
    split: Split,
}

macro_rules! pose_files {
    ($($n:literal),*) => {
        [$((
            include_bytes!(concat!("../../../assets/phantoms/pose_", $n, ".png")).as_slice(),
            include_bytes!(concat!("../../../assets/phantoms/pose_", $n, "_labels.png")).as_slice(),
            include_bytes!(concat!("../../../assets/phantoms/pose_", $n, "_bones.png")).as_slice(),
        )),*]
    };
}

static FILES: [(&[u8], &[u8], &[u8]); 16] = pose_files!(
    "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15"
);
static META: &str = include_str!("../../../assets/phantoms/phantoms.json");

fn decode16(bytes: &[u8]) -> Result<(usize, usize, Vec<u16>)> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| Error::Other(format!("phantom: {e}")))?
        .into_luma16();
    Ok((img.width() as usize, img.height() as usize, img.into_raw()))
}

/// A 16-bit RGB PNG, its three channels side by side at each pixel.
fn decode16_rgb(bytes: &[u8]) -> Result<(usize, usize, Vec<u16>)> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| Error::Other(format!("phantom bones: {e}")))?
        .into_rgb16();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok((w, h, img.into_raw()))
}

fn load() -> Result<Vec<Phantom>> {
    let meta: Meta =
        serde_json::from_str(META).map_err(|e| Error::Other(format!("phantoms.json: {e}")))?;
    if meta.label_bits != NAMES
        || meta.bone_channels != BONE_CHANNELS
        || meta.poses.len() != FILES.len()
    {
        return Err(Error::Other(
            "phantoms.json does not match this build".into(),
        ));
    }
    FILES
        .iter()
        .zip(&meta.poses)
        .map(|((img, lab, bone), pose)| {
            let (width, height, raw) = decode16(img)?;
            let (_, _, labels) = decode16(lab)?;
            let (bw, bh, rgb) = decode16_rgb(bone)?;
            if (bw, bh) != (width, height)
                || labels.len() != raw.len()
                || rgb.len() != 3 * raw.len()
            {
                return Err(Error::Other("phantom files differ in size".into()));
            }
            let unit = |v: u16, s: f32| v as f32 / 65535.0 * s;
            let scale = |v: &[u16], s: f32| v.iter().map(|&v| unit(v, s)).collect();
            let bounds = |b: u16| {
                bounds_where(width, labels.len(), |i| labels[i] & b != 0)
                    .ok_or_else(|| Error::Other("phantom without lungs or heart".into()))
            };
            let integral: Vec<f32> = scale(&raw, meta.integral_scale);
            let bone = |v: u16| unit(v, meta.bones_scale);
            let bones: Vec<[f32; 3]> = rgb
                .chunks_exact(3)
                .map(|c| [bone(c[0]), bone(c[1]), bone(c[2])])
                .collect();
            let soft = integral
                .iter()
                .zip(&bones)
                .map(|(v, b)| v - b[0] - b[1] - b[2])
                .collect();
            let smooth = soften_twice(&integral, width, height, 6);
            let mut domes = [(0.0, 0.0); 2];
            for (d, lung) in domes.iter_mut().zip([bits::RIGHT_LUNG, bits::LEFT_LUNG]) {
                let bottom = bounds(lung)?.y1 as f32;
                let apex = super::regions::dome_apex(&labels, width, lung);
                *d = (apex.map_or(bottom, |a| a as f32), bottom);
            }
            Ok(Phantom {
                domes,
                width,
                height,
                integral,
                smooth,
                bones,
                soft,
                lungs: bounds(bits::LUNGS)?,
                heart: bounds(bits::HEART)?,
                labels,
                split: pose.split,
            })
        })
        .collect()
}

/// All poses, decoded on first use.
pub fn phantoms() -> &'static [Phantom] {
    static CELL: OnceLock<Vec<Phantom>> = OnceLock::new();
    CELL.get_or_init(|| load().expect("embedded phantoms decode"))
}

/// Indices of the poses of `split`.
pub fn poses(split: Split) -> Vec<usize> {
    phantoms()
        .iter()
        .enumerate()
        .filter(|(_, p)| p.split == split)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poses_decode_with_anatomy_where_it_belongs() {
        let all = phantoms();
        assert_eq!(all.len(), 16);
        let p = &all[0];
        assert_eq!(p.integral.len(), p.width * p.height);
        // Heart mostly on the image's right half (patient's left on a PA film).
        let (mut left, mut right) = (0, 0);
        for (i, &l) in p.labels.iter().enumerate() {
            if l & bits::HEART != 0 {
                if i % p.width < p.width / 2 {
                    left += 1
                } else {
                    right += 1
                }
            }
        }
        assert!(right > left, "heart: {left} left, {right} right");
        // The splits never share a pose.
        let (tr, va, te) = (poses(Split::Train), poses(Split::Val), poses(Split::Test));
        assert!(!tr.is_empty() && !va.is_empty() && !te.is_empty());
        assert!(tr.iter().all(|i| !va.contains(i) && !te.contains(i)));
    }
}
