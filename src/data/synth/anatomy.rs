//! The anatomy phrases' boxes on a synthetic film, from the canvas's label bits.

use super::canvas::{Bounds, Canvas};
use super::phantom::bits::*;
use super::regions;
use crate::protocol::answer::PixelBox;

/// Boxes of the anatomy phrases on a canvas, from its label bits; on an upright canvas each
/// hemidiaphragm from its dome's apex down to its lung's lowest point and the trachea down to
/// its carina, as a reader boxes them.
pub fn boxes(c: &Canvas) -> Vec<(&'static str, PixelBox)> {
    let mut out = Vec::new();
    let structures: [(&'static str, u16); 8] = [
        ("the heart", HEART),
        ("the right lung", RIGHT_LUNG),
        ("the left lung", LEFT_LUNG),
        ("the right upper lobe", LUNG_UPPER_RIGHT),
        ("the left upper lobe", LUNG_UPPER_LEFT),
        ("the right lower lobe", LUNG_LOWER_RIGHT),
        ("the left lower lobe", LUNG_LOWER_LEFT),
        ("the trachea", TRACHEA),
    ];
    for (name, bits) in structures {
        let b = match bits {
            TRACHEA if c.upright => trachea_to_carina(c),
            _ => c.bounds(bits),
        };
        if let Some(b) = b {
            out.push((name, b.to_box()));
        }
    }
    // Hemidiaphragm: the bottom tenth of each lung; costophrenic angle: its lateral third.
    for (side, bits, lateral_right) in [("right", RIGHT_LUNG, false), ("left", LEFT_LUNG, true)] {
        if let Some(b) = c.bounds(bits) {
            let mut dome = b.to_box();
            let apex = c
                .upright
                .then(|| regions::dome_apex(&c.labels, c.w, bits))
                .flatten()
                .filter(|&a| a > b.y0 && a <= b.y1);
            dome.y1 = match apex {
                Some(a) => (a as f32).min(dome.y2 - 0.05 * (dome.y2 - dome.y1)),
                None => dome.y2 - 0.12 * (dome.y2 - dome.y1),
            };
            let w = dome.x2 - dome.x1;
            let mut angle = dome;
            if lateral_right {
                angle.x1 = angle.x2 - w / 3.0
            } else {
                angle.x2 = angle.x1 + w / 3.0
            }
            out.push((
                if side == "right" {
                    "the right hemidiaphragm"
                } else {
                    "the left hemidiaphragm"
                },
                dome,
            ));
            out.push((
                if side == "right" {
                    "the right costophrenic angle"
                } else {
                    "the left costophrenic angle"
                },
                angle,
            ));
        }
    }
    out
}

/// The trachea's label down to the carina: the CT's airway label runs on into both main
/// bronchi (a box half the chest wide and down to the hila), while a reader boxes the tracheal
/// column alone. The carina is the first row, below the label's top third, at which the label
/// spreads to more than twice the column's median width there.
fn trachea_to_carina(c: &Canvas) -> Option<Bounds> {
    let whole = c.bounds(TRACHEA)?;
    let rows: Vec<(usize, usize, usize)> = (whole.y0..=whole.y1)
        .filter_map(|y| {
            let mut xs = (0..c.w).filter(|&x| c.has(y * c.w + x, TRACHEA));
            let first = xs.next()?;
            Some((y, first, xs.next_back().unwrap_or(first)))
        })
        .collect();
    let third = rows.len().div_ceil(3);
    let mut widths: Vec<usize> = rows[..third].iter().map(|&(_, a, b)| b - a + 1).collect();
    widths.sort_unstable();
    let column = widths[widths.len() / 2];
    let carina = rows[third..]
        .iter()
        .position(|&(_, a, b)| b - a + 1 > 2 * column)
        .map_or(rows.len(), |k| third + k);
    let kept = &rows[..carina];
    Some(Bounds {
        x0: kept.iter().map(|r| r.1).min()?,
        y0: kept[0].0,
        x1: kept.iter().map(|r| r.2).max()?,
        y1: kept[kept.len() - 1].0,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Split, Synth, SynthSample};
    use crate::protocol::answer::PixelBox;

    fn named(s: &SynthSample, name: &str) -> PixelBox {
        s.anatomy.iter().find(|(n, _)| *n == name).expect(name).1
    }

    /// Upright films box the trachea as a reader does, the column down to the carina: narrow,
    /// and ending above the hila. The other films keep the whole airway label, main bronchi
    /// and all: wider than a column.
    #[test]
    fn upright_trachea_stops_at_the_carina() {
        let side = 224.0;
        let mut whole_wide = 0;
        for i in 0..12 {
            let up = Synth::new(7, Split::Val, 224).with_upright(true).sample(i);
            let t = named(&up, "the trachea");
            let whole = named(&Synth::new(7, Split::Val, 224).sample(i), "the trachea");
            assert!(
                t.x2 - t.x1 < 0.13 * side,
                "film {i}: {t:?} wider than a column"
            );
            assert!(t.y2 - t.y1 > 0.15 * side, "film {i}: {t:?} too short");
            assert!(t.y2 < 0.55 * side, "film {i}: {t:?} reaches below the hila");
            whole_wide += usize::from(whole.x2 - whole.x1 > 0.13 * side);
        }
        assert!(
            whole_wide >= 9,
            "{whole_wide} of 12 whole labels wider than a column"
        );
    }
}
