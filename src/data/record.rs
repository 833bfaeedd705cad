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
    if !(b.x2 > b.x1 && b.y2 > b.y1) || !inside || !b.x1.is_finite() || !b.y2.is_finite() {
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
