//! Where things are on a synthetic film: lungs by side, lobes, zones, the medial-lateral axis,
//! the domes of the diaphragm.

use super::canvas::Bounds;
use super::phantom::bits;
use crate::data::phrases::{Side, Zone};

pub fn lung_bits(side: Side) -> u16 {
    match side {
        Side::Left => bits::LEFT_LUNG,
        Side::Right => bits::RIGHT_LUNG,
        Side::Both => bits::LUNGS,
    }
}

/// +1 when the patient's lateral side of this lung is toward larger x (patient left = image right).
pub fn lateral_sign(side: Side) -> f32 {
    if side == Side::Left { 1.0 } else { -1.0 }
}

/// 0 at the medial edge of a lung's bounds, 1 at the lateral edge.
pub fn lateral_t(x: f32, b: Bounds, side: Side) -> f32 {
    let t = (x - b.x0 as f32) / b.width();
    if side == Side::Left { t } else { 1.0 - t }
}

/// Whether `(x, y)` lies in the vertical band of `zone` of a lung with bounds `b`.
pub fn in_zone(zone: Zone, x: f32, y: f32, b: Bounds, side: Side) -> bool {
    let t = (y - b.y0 as f32) / b.height();
    match zone {
        Zone::Upper => t < 0.42,
        Zone::Middle => (0.35..0.65).contains(&t),
        Zone::Lower => t > 0.58,
        Zone::Apical => t < 0.22,
        Zone::Basal => t > 0.72,
        Zone::Perihilar => (0.3..0.62).contains(&t) && lateral_t(x, b, side) < 0.45,
        Zone::Whole => true,
    }
}

/// The lobe (bits) a zone of one side falls in, for lobar findings.
pub fn lobe(side: Side, zone: Zone) -> u16 {
    match (side, zone) {
        (Side::Left, Zone::Upper | Zone::Apical | Zone::Middle) => bits::LUNG_UPPER_LEFT,
        (Side::Left, _) => bits::LUNG_LOWER_LEFT,
        (_, Zone::Upper | Zone::Apical) => bits::LUNG_UPPER_RIGHT,
        (_, Zone::Middle) => bits::LUNG_MIDDLE_RIGHT,
        _ => bits::LUNG_LOWER_RIGHT,
    }
}

/// The dome of the diaphragm under the lung `lung` (bits) on a `w`-wide label map: the highest
/// row at which a column that holds this lung meets the abdomen (liver, stomach, spleen) below
/// or behind it. None where no abdomen lies under that lung (cropped off the film).
pub fn dome_apex(labels: &[u16], w: usize, lung: u16) -> Option<usize> {
    let h = labels.len() / w.max(1);
    let mut apex: Option<usize> = None;
    for x in 0..w {
        let mut seen = false;
        for y in 0..h {
            let l = labels[y * w + x];
            seen |= l & lung != 0;
            if l & bits::ABDOMEN != 0 {
                if seen {
                    apex = Some(apex.map_or(y, |a| a.min(y)));
                }
                break;
            }
        }
    }
    apex
}

/// The lungs as a reader sees them on an upright film: in each column, lung bits are cleared from
/// the first abdomen pixel down (the recesses behind the liver, stomach and spleen, which a CT
/// labels lung but a film shows as abdomen); those pixels keep `RECESS` instead.
pub fn cut_below_domes(labels: &mut [u16], w: usize) {
    let h = labels.len() / w.max(1);
    for x in 0..w {
        if let Some(top) = (0..h).find(|&y| labels[y * w + x] & bits::ABDOMEN != 0) {
            for y in top..h {
                let v = &mut labels[y * w + x];
                if *v & bits::LUNGS != 0 {
                    *v = (*v & !bits::LUNGS) | bits::RECESS;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Split, Synth, phantom};
    use super::*;
    use crate::data::phrases::CATEGORIES;

    #[test]
    fn the_cut_clears_lung_from_the_abdomen_down_and_finds_the_apex() {
        // Two columns, six rows: lung in both, liver under the first from row 3.
        let (l, a) = (bits::LUNG_LOWER_RIGHT, bits::LIVER);
        let mut labels = vec![l, l, l, l, l | a, l, l | a, l, a, l, a, 0];
        assert_eq!(dome_apex(&labels, 2, bits::RIGHT_LUNG), Some(2));
        assert_eq!(dome_apex(&labels, 2, bits::LEFT_LUNG), None);
        cut_below_domes(&mut labels, 2);
        let lung: Vec<bool> = labels.iter().map(|v| v & bits::LUNGS != 0).collect();
        assert_eq!(
            lung,
            [
                true, true, true, true, false, true, false, true, false, true, false, false
            ]
        );
        assert_eq!(labels[8], a, "the abdomen's bits stay");
        assert_eq!(labels[4], a | bits::RECESS, "the recess is marked");
    }

    /// The supine CT's right dome sits at about half its lung's height; upright films bring both
    /// domes down to where an upright film has them, and their hemidiaphragm boxes start there.
    #[test]
    fn upright_films_lower_the_domes_the_ct_has_high() {
        for p in phantom::phantoms() {
            let (apex, bottom) = p.domes[0];
            let at = (apex - p.lungs.y0 as f32) / (bottom - p.lungs.y0 as f32);
            assert!(at < 0.65, "right dome at {at} of the lung");
        }
        let s = Synth::new(5, Split::Val, 160).with_upright(true);
        for side in ["right", "left"] {
            let at: Vec<f32> = (0..30)
                .map(|i| {
                    let a = s.sample(i).anatomy;
                    let find = |n: String| a.iter().find(|(k, _)| *k == n).unwrap().1;
                    let lung = find(format!("the {side} lung"));
                    let dome = find(format!("the {side} hemidiaphragm"));
                    assert!(dome.y1 >= lung.y1 && dome.y2 == lung.y2 && dome.x1 == lung.x1);
                    (dome.y1 - lung.y1) / (lung.y2 - lung.y1)
                })
                .collect();
            let mean = at.iter().sum::<f32>() / at.len() as f32;
            assert!(
                (0.7..0.95).contains(&mean),
                "{side} dome at {mean} of the lung"
            );
        }
    }

    /// On the CT's lungs a right lower-zone lesion rarely finds room above the high right dome;
    /// on upright films the right lung takes about as many as the left.
    #[test]
    fn upright_films_find_room_for_right_basal_findings() {
        let at = CATEGORIES.iter().position(|c| *c == "Atelectasis").unwrap();
        let sides = |s: Synth| {
            let mut n = [0f32; 2];
            for i in 0..400 {
                for f in s.sample(i).findings.iter().filter(|f| f.category == at) {
                    n[(f.finding.side == Side::Left) as usize] += 1.0;
                }
            }
            n[0] / n[1]
        };
        let plain = Synth::new(6, Split::Train, 128);
        let (before, after) = (sides(plain), sides(plain.with_upright(true)));
        assert!(
            before < 0.7 && after > 0.75,
            "right / left {before} -> {after}"
        );
    }
}
