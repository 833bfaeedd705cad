//! Contact sheets: films with their boxes and phrases, for looking at data and predictions.

use image::RgbImage;
use image::imageops::{FilterType, resize};

use super::draw::{gray_rgb, rect_rgb, text_rgb};
use crate::image::Picture;
use crate::protocol::answer::PixelBox;

/// One tile: a picture and labelled boxes (`color` per box).
pub struct Tile<'a> {
    pub picture: &'a Picture,
    pub boxes: Vec<(PixelBox, [u8; 3], String)>,
}

pub const COLORS: [[u8; 3]; 4] = [[255, 60, 60], [60, 220, 90], [80, 160, 255], [255, 200, 40]];

/// A grid of tiles, `tile` pixels wide, phrases written under each film.
pub fn sheet(tiles: &[Tile], columns: usize, tile: u32) -> RgbImage {
    let text_rows = 4u32;
    let cell_h = tile + text_rows * 10 + 6;
    let rows = tiles.len().div_ceil(columns) as u32;
    let mut out = RgbImage::from_pixel(
        columns as u32 * (tile + 6),
        rows * cell_h,
        image::Rgb([24, 24, 24]),
    );
    for (k, t) in tiles.iter().enumerate() {
        let (ox, oy) = (
            (k % columns) as u32 * (tile + 6) + 3,
            (k / columns) as u32 * cell_h + 3,
        );
        let luma = t.picture.luma();
        let film = resize(
            &gray_rgb(&luma, t.picture.width, t.picture.height),
            tile,
            tile,
            FilterType::Triangle,
        );
        let mut film = film;
        let (sx, sy) = (
            tile as f32 / t.picture.width as f32,
            tile as f32 / t.picture.height as f32,
        );
        for (b, color, _) in &t.boxes {
            rect_rgb(
                &mut film,
                [b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy],
                2,
                *color,
            );
        }
        image::imageops::overlay(&mut out, &film, ox as i64, oy as i64);
        let mut line = 0u32;
        for (_, color, label) in &t.boxes {
            for chunk in wrap(label, (tile / 8) as usize) {
                if line < text_rows {
                    text_rgb(
                        &mut out,
                        ox as i64,
                        (oy + tile + 3 + line * 10) as i64,
                        &chunk,
                        1,
                        *color,
                    );
                    line += 1;
                }
            }
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}
