//! Loaders: MS-CXR v1.1.0 (CSV), MS-CXR v1.0.0 (COCO-style JSON), and the generic JSONL. Images
//! are found under an images root (MIMIC-CXR DICOM, or MIMIC-CXR-JPG with the same stem).
//! Unusable rows are reported with file and row, not silently dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::record::{ImageSource, JsonlRow, Loaded, Problem, Record, check};
use crate::error::{Error, Result};
use crate::protocol::answer::PixelBox;

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// The image a dataset row names: as given, or the MIMIC-CXR-JPG twin of a DICOM path.
pub fn resolve_image(root: &Path, rel: &str) -> Option<PathBuf> {
    let p = root.join(rel);
    if p.is_file() {
        return Some(p);
    }
    ["jpg", "png", "dcm"]
        .iter()
        .map(|ext| p.with_extension(ext))
        .find(|q| q.is_file())
}

struct Row<'a> {
    image: &'a str,
    phrase: String,
    category: String,
    box_px: PixelBox,
    size: Option<(u32, u32)>,
    split: Option<String>,
}

/// Turns rows into records, collecting the problems of each.
fn collect<'a>(
    file: &Path,
    root: &Path,
    rows: impl Iterator<Item = (usize, std::result::Result<Row<'a>, String>)>,
) -> Loaded {
    let name = file.display().to_string();
    let mut out = Loaded::default();
    for (row, parsed) in rows {
        let problem = |message: String| Problem {
            file: name.clone(),
            row,
            message,
        };
        let r = match parsed {
            Ok(r) => r,
            Err(m) => {
                out.problems.push(problem(m));
                continue;
            }
        };
        let Some(path) = resolve_image(root, r.image) else {
            out.problems.push(problem(format!(
                "missing image {}",
                root.join(r.image).display()
            )));
            continue;
        };
        let (width, height) = match r.size {
            Some(s) => s,
            None => match crate::image::read_size(&path) {
                Ok(s) => s,
                Err(e) => {
                    out.problems
                        .push(problem(format!("{}: {e}", path.display())));
                    continue;
                }
            },
        };
        if let Some(m) = check(&r.category, &r.box_px, width, height) {
            out.problems.push(problem(m));
            continue;
        }
        if r.phrase.trim().is_empty() {
            out.problems.push(problem("empty phrase".into()));
            continue;
        }
        out.records.push(Record {
            image: ImageSource::File(path),
            phrase: r.phrase,
            category: r.category,
            box_px: r.box_px,
            width,
            height,
            split: r.split,
        });
    }
    out
}

/// Generic JSONL; image paths are relative to the file's folder.
pub fn jsonl(path: &Path) -> Result<Loaded> {
    let text = read_text(path)?;
    let root = path.parent().unwrap_or(Path::new("."));
    let rows: Vec<(usize, std::result::Result<JsonlRow, String>)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            (
                i + 1,
                serde_json::from_str::<JsonlRow>(l).map_err(|e| format!("not a record: {e}")),
            )
        })
        .collect();
    let parsed = rows.iter().map(|(i, r)| {
        let row = r.as_ref().map_err(Clone::clone).map(|j| Row {
            image: &j.image,
            phrase: j.phrase.clone(),
            category: j.category.clone(),
            box_px: PixelBox::from_xywh(j.box_xywh[0], j.box_xywh[1], j.box_xywh[2], j.box_xywh[3]),
            size: j.width.zip(j.height),
            split: j.split.clone(),
        });
        (*i, row)
    });
    Ok(collect(path, root, parsed))
}

#[derive(Deserialize)]
struct CsvRow {
    #[allow(dead_code)]
    dicom_id: String,
    category_name: String,
    label_text: String,
    path: String,
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    image_width: u32,
    image_height: u32,
    #[serde(default)]
    split: Option<String>,
}

/// MS-CXR v1.1.0 CSV.
pub fn mscxr_csv(path: &Path, images: &Path) -> Result<Loaded> {
    let text = read_text(path)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<(usize, std::result::Result<CsvRow, String>)> = reader
        .deserialize::<CsvRow>()
        .enumerate()
        .map(|(i, r)| (i + 2, r.map_err(|e| format!("not an MS-CXR row: {e}"))))
        .collect();
    let parsed = rows.iter().map(|(i, r)| {
        let row = r.as_ref().map_err(Clone::clone).map(|c| Row {
            image: &c.path,
            phrase: c.label_text.clone(),
            category: c.category_name.clone(),
            box_px: PixelBox::from_xywh(c.x, c.y, c.w, c.h),
            size: Some((c.image_width, c.image_height)),
            split: c.split.clone(),
        });
        (*i, row)
    });
    Ok(collect(path, images, parsed))
}

#[derive(Deserialize)]
struct Coco {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: u64,
    #[serde(alias = "file_name")]
    path: String,
    width: u32,
    height: u32,
    #[serde(default)]
    split: Option<String>,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    image_id: u64,
    category_id: u64,
    bbox: [f32; 4],
    #[serde(alias = "phrase", alias = "caption")]
    label_text: String,
}

#[derive(Deserialize)]
struct CocoCategory {
    id: u64,
    name: String,
}

/// MS-CXR v1.0.0 COCO-style JSON; row numbers count annotations from 1.
pub fn mscxr_json(path: &Path, images: &Path) -> Result<Loaded> {
    let coco: Coco = serde_json::from_str(&read_text(path)?).map_err(|e| {
        Error::Other(format!(
            "{}: not an MS-CXR v1.0.0 JSON file: {e}",
            path.display()
        ))
    })?;
    let by_id: HashMap<u64, &CocoImage> = coco.images.iter().map(|i| (i.id, i)).collect();
    let names: HashMap<u64, &str> = coco
        .categories
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    let parsed = coco.annotations.iter().enumerate().map(|(k, a)| {
        let row = match (by_id.get(&a.image_id), names.get(&a.category_id)) {
            (None, _) => Err(format!("annotation names unknown image {}", a.image_id)),
            (_, None) => Err(format!("unknown category id {}", a.category_id)),
            (Some(img), Some(cat)) => Ok(Row {
                image: &img.path,
                phrase: a.label_text.clone(),
                category: cat.to_string(),
                box_px: PixelBox::from_xywh(a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]),
                size: Some((img.width, img.height)),
                split: img.split.clone(),
            }),
        };
        (k + 1, row)
    });
    Ok(collect(path, images, parsed))
}

/// Reads a dataset file by its extension: `.jsonl`, `.csv` (MS-CXR v1.1.0) or `.json` (v1.0.0).
pub fn load(path: &Path, images: Option<&Path>) -> Result<Loaded> {
    let images = images.unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")));
    match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl") => jsonl(path),
        Some("csv") => mscxr_csv(path, images),
        Some("json") => mscxr_json(path, images),
        _ => Err(Error::Other(format!(
            "{}: expected a .jsonl, .csv (MS-CXR v1.1.0) or .json (MS-CXR v1.0.0) file",
            path.display()
        ))),
    }
}
