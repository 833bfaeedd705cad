//! `curves.png`: training loss and validation Acc@0.5 / mIoU against the step, drawn from
//! `log.csv`; `reliability.png`: stated confidence against observed hit rate.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::data::draw::{rect_rgb, text_rgb};
use crate::error::{Error, Result};
use crate::protocol::calibration::Bin;

const W: u32 = 900;
const H: u32 = 360;

pub fn curves(log: &Path, out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(log).map_err(|e| Error::io(log, e))?;
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .filter(|r: &Vec<f64>| r.len() >= 6)
        .collect();
    let mut img = RgbImage::from_pixel(W, H, Rgb([255, 255, 255]));
    let last = rows.last().map_or(1.0, |r| r[0]).max(1.0);
    let loss: Vec<(f64, f64)> = rows.iter().map(|r| (r[0], r[1])).collect();
    let max_loss = loss.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-6);
    panel(
        &mut img,
        10,
        "training loss",
        &loss,
        last,
        max_loss,
        Rgb([200, 60, 40]),
    );
    let acc: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r[4].is_finite())
        .map(|r| (r[0], r[4]))
        .collect();
    let miou: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r[5].is_finite())
        .map(|r| (r[0], r[5]))
        .collect();
    panel(
        &mut img,
        460,
        "validation Acc@0.5 (blue), mIoU (green)",
        &acc,
        last,
        1.0,
        Rgb([40, 90, 220]),
    );
    draw_line(&mut img, 460, &miou, last, 1.0, Rgb([40, 170, 70]));
    img.save(out)
        .map_err(|e| Error::Other(format!("cannot write {}: {e}", out.display())))
}

fn panel(
    img: &mut RgbImage,
    x0: u32,
    title: &str,
    pts: &[(f64, f64)],
    max_x: f64,
    max_y: f64,
    color: Rgb<u8>,
) {
    text_rgb(img, x0 as i64, 8, title, 1, [0, 0, 0]);
    text_rgb(img, x0 as i64, 24, &format!("{max_y:.3}"), 1, [90, 90, 90]);
    text_rgb(
        img,
        x0 as i64 + 360,
        H as i64 - 14,
        &format!("{max_x:.0}"),
        1,
        [90, 90, 90],
    );
    for x in x0 + 40..x0 + 430 {
        img.put_pixel(x, H - 30, Rgb([0, 0, 0]));
    }
    for y in 30..H - 30 {
        img.put_pixel(x0 + 40, y, Rgb([0, 0, 0]));
    }
    draw_line(img, x0, pts, max_x, max_y, color);
}

fn draw_line(
    img: &mut RgbImage,
    x0: u32,
    pts: &[(f64, f64)],
    max_x: f64,
    max_y: f64,
    color: Rgb<u8>,
) {
    let to_px = |(x, y): (f64, f64)| {
        let px = x0 as f64 + 40.0 + x / max_x * 390.0;
        let py = (H - 30) as f64 - (y / max_y).clamp(0.0, 1.0) * (H - 60) as f64;
        (px, py)
    };
    for pair in pts.windows(2) {
        let (a, b) = (to_px(pair[0]), to_px(pair[1]));
        let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()) as usize).max(1);
        for k in 0..=n {
            let t = k as f64 / n as f64;
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            if x >= 0.0 && y >= 0.0 && (x as u32) < W && (y as u32) < H {
                img.put_pixel(x as u32, y as u32, color);
            }
        }
    }
}

/// A reliability diagram: for each set of bins (e.g. before and after calibration), each bin's
/// observed hit rate (a dot, sized by its share of answers) against its mean stated confidence;
/// the diagonal is perfect calibration.
pub fn reliability(sets: &[(String, Vec<Bin>, [u8; 3])], out: &Path) -> Result<()> {
    const S: u32 = 420;
    const M: i64 = 50;
    let side = (S as i64 - 2 * M) as f64;
    let mut img = RgbImage::from_pixel(S, S + 20 * sets.len() as u32, Rgb([255, 255, 255]));
    let to_px = |c: f64, a: f64| {
        (
            M + (c.clamp(0.0, 1.0) * side) as i64,
            S as i64 - M - (a.clamp(0.0, 1.0) * side) as i64,
        )
    };
    rect_rgb(
        &mut img,
        [
            M as f32,
            M as f32,
            (S as i64 - M) as f32,
            (S as i64 - M) as f32,
        ],
        1,
        [0, 0, 0],
    );
    for k in 0..=300 {
        let (x, y) = to_px(k as f64 / 300.0, k as f64 / 300.0);
        img.put_pixel(x as u32, y as u32, Rgb([160, 160, 160]));
    }
    text_rgb(
        &mut img,
        M,
        16,
        "hit rate (IoU >= 0.5) vs stated confidence",
        1,
        [0, 0, 0],
    );
    text_rgb(&mut img, M - 8, S as i64 - M + 8, "0", 1, [90, 90, 90]);
    text_rgb(
        &mut img,
        S as i64 - M - 8,
        S as i64 - M + 8,
        "1",
        1,
        [90, 90, 90],
    );
    text_rgb(&mut img, M - 16, M - 4, "1", 1, [90, 90, 90]);
    for (i, (label, bins, color)) in sets.iter().enumerate() {
        let total: usize = bins.iter().map(|b| b.n).sum::<usize>().max(1);
        for b in bins.iter().filter(|b| b.n > 0) {
            let (x, y) = to_px(b.confidence, b.accuracy);
            let r = (2.0 + 10.0 * (b.n as f64 / total as f64).sqrt()) as i64;
            for dy in -r..=r {
                for dx in -r..=r {
                    let (px, py) = (x + dx, y + dy);
                    if dx * dx + dy * dy <= r * r
                        && px >= 0
                        && py >= 0
                        && px < S as i64
                        && py < S as i64
                    {
                        img.put_pixel(px as u32, py as u32, Rgb(*color));
                    }
                }
            }
        }
        let y = S as i64 + 20 * i as i64;
        text_rgb(&mut img, M, y, label, 1, *color);
    }
    img.save(out)
        .map_err(|e| Error::Other(format!("cannot write {}: {e}", out.display())))
}
