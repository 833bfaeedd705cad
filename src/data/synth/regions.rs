//! Where things are on a synthetic film: lungs by side, lobes, zones, the medial-lateral axis.

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
