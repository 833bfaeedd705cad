//! One in-memory record type for every source (synthetic, MS-CXR CSV or JSON, generic JSONL),
//! and the report of rows that could not be used.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::image::Picture;
use crate::protocol::answer::PixelBox;

/// Where a record's image comes from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    File(PathBuf),
    Memory(Arc<Picture>),
}

impl ImageSource {
    /// Whether both name the same film (one file, or one picture in memory).
    pub fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::File(a), Self::File(b)) => a == b,
            (Self::Memory(a), Self::Memory(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// One phrase/box pair.
#[derive(Debug, Clone)]
pub struct Record {
    pub image: ImageSource,
    pub phrase: String,
    pub category: String,
    /// Ground truth in pixels of the original image.
    pub box_px: PixelBox,
    pub width: u32,
    pub height: u32,
    pub split: Option<String>,
}

impl Record {
    /// The record's picture, decoded if it lives in a file.
    pub fn picture(&self) -> crate::error::Result<Arc<Picture>> {
        match &self.image {
            ImageSource::Memory(p) => Ok(p.clone()),
            ImageSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| crate::error::Error::io(path, e))?;
                crate::image::decode(&bytes)
                    .map(Arc::new)
                    .map_err(|e| crate::error::Error::Image(format!("{}: {e}", path.display())))
            }
        }
    }
}

/// A row that was left out, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: String,
    /// 1-based row (line) number in `file`; 0 when the problem is the file itself.
    pub row: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.row, self.message)
    }
}

/// Records read from a source, and the rows left out.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub records: Vec<Record>,
    pub problems: Vec<Problem>,
}

/// The generic JSONL line: `{"image": path, "phrase": str, "box": [x, y, w, h], "category": str}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JsonlRow {
    pub image: String,
    pub phrase: String,
    #[serde(rename = "box")]
    pub box_xywh: [f32; 4],
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// Checks a box against its image and the category against the eight findings (plus anatomy for
/// the alignment stage); returns the reason a row is unusable.
pub fn check(category: &str, b: &PixelBox, width: u32, height: u32) -> Option<String> {
    if !super::phrases::CATEGORIES.contains(&category)
        && category != super::phrases::ANATOMY_CATEGORY
    {
        return Some(format!("unknown category {category:?}"));
    }
    let tol = 1.0;
    let inside =
        b.x1 >= -tol && b.y1 >= -tol && b.x2 <= width as f32 + tol && b.y2 <= height as f32 + tol;
    // NaN and infinite coordinates fail these comparisons too.
    if !(b.x2 > b.x1 && b.y2 > b.y1 && inside) {
        return Some(format!(
            "box [{}, {}, {}, {}] lies outside the {width}x{height} image",
            b.x1,
            b.y1,
            b.x2 - b.x1,
            b.y2 - b.y1
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_outside_inverted_or_not_finite_are_refused() {
        let b = |x1, y1, x2, y2| PixelBox { x1, y1, x2, y2 };
        assert_eq!(check("Edema", &b(10.0, 10.0, 50.0, 60.0), 100, 100), None);
        assert!(check("Edema", &b(10.0, 10.0, 50.0, 60.0), 40, 100).is_some());
        assert!(check("Edema", &b(50.0, 10.0, 10.0, 60.0), 100, 100).is_some());
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for k in 0..4 {
                let mut c = [10.0, 10.0, 50.0, 60.0];
                c[k] = v;
                let bad = b(c[0], c[1], c[2], c[3]);
                assert!(check("Edema", &bad, 100, 100).is_some(), "{c:?}");
            }
        }
        assert!(check("Fracture", &b(10.0, 10.0, 50.0, 60.0), 100, 100).is_some());
    }
}
