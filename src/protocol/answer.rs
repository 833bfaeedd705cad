//! The answer format `{<x1><y1><x2><y2>}`: integers on a 0–100 grid of the image's width and
//! height (images are squashed to a square, so the grid maps straight back to original pixels).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest grid value.
pub const GRID: u32 = 100;

/// A box on the 0–100 grid, `x1 <= x2` and `y1 <= y2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridBox {
    pub x1: u32,
    pub y1: u32,
    pub x2: u32,
    pub y2: u32,
}

/// A box in pixels of the original image, corners `(x1, y1)` and `(x2, y2)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PixelBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl PixelBox {
    /// From the `[x, y, w, h]` form used by MS-CXR and COCO.
    pub fn from_xywh(x: f32, y: f32, w: f32, h: f32) -> Self {
        Self {
            x1: x,
            y1: y,
            x2: x + w,
            y2: y + h,
        }
    }
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }
    pub fn iou(&self, other: &PixelBox) -> f32 {
        let inter = PixelBox {
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
            x2: self.x2.min(other.x2),
            y2: self.y2.min(other.y2),
        }
        .area();
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

impl GridBox {
    pub fn new(x1: u32, y1: u32, x2: u32, y2: u32) -> Result<Self> {
        if x2 > GRID || y2 > GRID || x1 > x2 || y1 > y2 {
            return Err(Error::Other(format!(
                "box <{x1}><{y1}><{x2}><{y2}> is not ordered on the 0-{GRID} grid"
            )));
        }
        Ok(Self { x1, y1, x2, y2 })
    }

    /// Quantises a pixel box of an image `width x height` onto the grid (floor, as the paper).
    pub fn from_pixels(b: &PixelBox, width: u32, height: u32) -> Self {
        let q =
            |v: f32, size: u32| ((v / size as f32 * GRID as f32).floor().max(0.0) as u32).min(GRID);
        let (x1, x2) = (q(b.x1, width), q(b.x2, width));
        let (y1, y2) = (q(b.y1, height), q(b.y2, height));
        Self {
            x1: x1.min(x2),
            y1: y1.min(y2),
            x2,
            y2,
        }
    }

    /// Back to pixels of an image `width x height`.
    pub fn to_pixels(&self, width: u32, height: u32) -> PixelBox {
        let s = |v: u32, size: u32| v as f32 / GRID as f32 * size as f32;
        PixelBox {
            x1: s(self.x1, width),
            y1: s(self.y1, height),
            x2: s(self.x2, width),
            y2: s(self.y2, height),
        }
    }

    /// `{<x1><y1><x2><y2>}`.
    pub fn to_text(&self) -> String {
        format!("{{<{}><{}><{}><{}>}}", self.x1, self.y1, self.x2, self.y2)
    }

    /// Parses the answer text; surrounding white space is allowed, nothing else.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Other(format!("not a box answer: {text:?}"));
        let inner = text
            .trim()
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(bad)?;
        let inner = inner
            .strip_prefix('<')
            .and_then(|t| t.strip_suffix('>'))
            .ok_or_else(bad)?;
        let parts: Vec<&str> = inner.split("><").collect();
        if parts.len() != 4 {
            return Err(bad());
        }
        let mut v = [0u32; 4];
        for (slot, p) in v.iter_mut().zip(&parts) {
            let canonical = !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'));
            if !canonical {
                return Err(bad());
            }
            *slot = p.parse().map_err(|_| bad())?;
        }
        Self::new(v[0], v[1], v[2], v[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let b = GridBox::new(3, 40, 57, 100).unwrap();
        assert_eq!(b.to_text(), "{<3><40><57><100>}");
        assert_eq!(GridBox::parse(" {<3><40><57><100>}\n").unwrap(), b);
    }

    #[test]
    fn rejects_malformed_answers() {
        for bad in [
            "",
            "{}",
            "{<1><2><3>}",
            "{<1><2><3><4><5>}",
            "<1><2><3><4>",
            "{<1><2><3><4>",
            "{<01><2><3><4>}",
            "{<1><2><101><4>}",
            "{<50><2><40><4>}",
            "{<1><20><3><4>}",
            "{<1>< 2><3><4>}",
            "{<a><2><3><4>}",
            "{<-1><2><3><4>}",
        ] {
            assert!(GridBox::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn grid_quantisation_follows_the_paper() {
        let px = PixelBox::from_xywh(100.0, 50.0, 300.0, 200.0);
        let g = GridBox::from_pixels(&px, 1000, 500);
        assert_eq!(g, GridBox::new(10, 10, 40, 50).unwrap());
        let back = g.to_pixels(1000, 500);
        assert_eq!(
            back,
            PixelBox {
                x1: 100.0,
                y1: 50.0,
                x2: 400.0,
                y2: 250.0
            }
        );
        // Out-of-image coordinates clamp to the grid.
        let g = GridBox::from_pixels(&PixelBox::from_xywh(-5.0, -5.0, 2000.0, 2000.0), 100, 100);
        assert_eq!(g, GridBox::new(0, 0, 100, 100).unwrap());
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = PixelBox::from_xywh(0.0, 0.0, 10.0, 10.0);
        let b = PixelBox::from_xywh(5.0, 0.0, 10.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&PixelBox::from_xywh(20.0, 20.0, 1.0, 1.0)), 0.0);
    }
}
