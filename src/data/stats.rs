//! Dataset statistics: per-category counts and the distribution of box sizes and positions, as
//! text and as a PNG of bar charts.

use std::collections::BTreeMap;

use image::RgbImage;

use super::draw::text_rgb;
use super::record::Record;

pub const BINS: usize = 10;

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub counts: BTreeMap<String, usize>,
    /// Box area as a share of the image, in tenths.
    pub area: [usize; BINS],
    /// Box centre across and down the image, in tenths.
    pub centre_x: [usize; BINS],
    pub centre_y: [usize; BINS],
}

fn bin(v: f32) -> usize {
    ((v.clamp(0.0, 0.999)) * BINS as f32) as usize
}

impl Stats {
    pub fn new(records: &[Record]) -> Self {
        let mut s = Stats::default();
        for r in records {
            *s.counts.entry(r.category.clone()).or_default() += 1;
            let (w, h) = (r.width as f32, r.height as f32);
            s.area[bin(r.box_px.area() / (w * h))] += 1;
            s.centre_x[bin((r.box_px.x1 + r.box_px.x2) / 2.0 / w)] += 1;
            s.centre_y[bin((r.box_px.y1 + r.box_px.y2) / 2.0 / h)] += 1;
        }
        s
    }

    pub fn text(&self) -> String {
        let mut out = String::from("category              n\n");
        for (c, n) in &self.counts {
            out += &format!("{c:<20} {n:>4}\n");
        }
        out += &format!(
            "{:<20} {:>4}\n",
            "total",
            self.counts.values().sum::<usize>()
        );
        let row = |name: &str, h: &[usize; BINS]| {
            format!(
                "{name:<20} {}\n",
                h.iter().map(|v| format!("{v:>5}")).collect::<String>()
            )
        };
        out += &format!(
            "\n{:<20} {}\n",
            "tenths:",
            (0..BINS)
                .map(|i| format!("{:>5}", format!("{i}-{}", i + 1)))
                .collect::<String>()
        );
        out += &row("box area / image", &self.area);
        out += &row("box centre x", &self.centre_x);
        out += &row("box centre y", &self.centre_y);
        out
    }

    pub fn png(&self) -> RgbImage {
        let mut img = RgbImage::from_pixel(900, 520, image::Rgb([255, 255, 255]));
        let counts: Vec<(String, usize)> =
            self.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        bars(&mut img, 20, 20, 860, 200, "findings per category", &counts);
        let tenths = |h: &[usize; BINS]| -> Vec<(String, usize)> {
            h.iter()
                .enumerate()
                .map(|(i, &v)| (format!("{}", i), v))
                .collect()
        };
        bars(
            &mut img,
            20,
            290,
            270,
            200,
            "box area / image (tenths)",
            &tenths(&self.area),
        );
        bars(
            &mut img,
            315,
            290,
            270,
            200,
            "box centre x (tenths)",
            &tenths(&self.centre_x),
        );
        bars(
            &mut img,
            610,
            290,
            270,
            200,
            "box centre y (tenths)",
            &tenths(&self.centre_y),
        );
        img
    }
}

/// A labelled bar chart in the rectangle at `(x, y)` of `w x h` pixels.
pub fn bars(
    img: &mut RgbImage,
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    title: &str,
    data: &[(String, usize)],
) {
    text_rgb(img, x as i64, y as i64, title, 1, [0, 0, 0]);
    let max = data.iter().map(|d| d.1).max().unwrap_or(1).max(1);
    let slot = w / data.len().max(1) as u32;
    let base = y + h - 12;
    for (k, (label, v)) in data.iter().enumerate() {
        let bh = ((h - 40) as f32 * *v as f32 / max as f32) as u32;
        let x0 = x + k as u32 * slot + 2;
        for yy in base - bh..base {
            for xx in x0..x0 + slot.saturating_sub(4).max(1) {
                img.put_pixel(xx, yy, image::Rgb([70, 110, 200]));
            }
        }
        text_rgb(
            img,
            x0 as i64,
            (base - bh) as i64 - 10,
            &v.to_string(),
            1,
            [0, 0, 0],
        );
        let short: String = label.chars().take((slot / 8) as usize).collect();
        text_rgb(img, x0 as i64, base as i64 + 3, &short, 1, [0, 0, 0]);
    }
}
