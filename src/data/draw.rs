//! Small drawing helpers for previews, plots and burnt-in markers: an 8x8 bitmap font
//! (font8x8), rectangles, RGB canvases.

use font8x8::legacy::BASIC_LEGACY;

/// Writes `text` into a gray image of `w x h` values, each glyph pixel `scale x scale`.
#[allow(clippy::too_many_arguments)]
pub fn draw_text(
    v: &mut [f32],
    w: usize,
    h: usize,
    x: usize,
    y: usize,
    text: &str,
    scale: usize,
    value: f32,
) {
    for_glyph_pixels(text, scale, |dx, dy| {
        let (px, py) = (x + dx, y + dy);
        if px < w && py < h {
            v[py * w + px] = value;
        }
    });
}

/// Calls `f(dx, dy)` for every lit pixel of `text` rendered at `scale`.
pub fn for_glyph_pixels(text: &str, scale: usize, mut f: impl FnMut(usize, usize)) {
    for (k, ch) in text.chars().enumerate() {
        let glyph = BASIC_LEGACY.get(ch as usize).copied().unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    for sy in 0..scale {
                        for sx in 0..scale {
                            f((k * 8 + col) * scale + sx, row * scale + sy);
                        }
                    }
                }
            }
        }
    }
}

/// Text on an RGB image.
pub fn text_rgb(
    img: &mut image::RgbImage,
    x: i64,
    y: i64,
    text: &str,
    scale: usize,
    color: [u8; 3],
) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    for_glyph_pixels(text, scale, |dx, dy| {
        let (px, py) = (x + dx as i64, y + dy as i64);
        if px >= 0 && py >= 0 && px < w && py < h {
            img.put_pixel(px as u32, py as u32, image::Rgb(color));
        }
    });
}

/// Outline of the box `[x1, y1, x2, y2]` (pixels), `t` pixels thick.
pub fn rect_rgb(img: &mut image::RgbImage, b: [f32; 4], t: i64, color: [u8; 3]) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let [x1, y1, x2, y2] = b.map(|v| v.round() as i64);
    let (x2, y2) = ((x2 - 1).max(x1), (y2 - 1).max(y1));
    for y in y1.max(0)..=y2.min(h - 1) {
        for x in x1.max(0)..=x2.min(w - 1) {
            if x - x1 < t || x2 - x < t || y - y1 < t || y2 - y < t {
                img.put_pixel(x as u32, y as u32, image::Rgb(color));
            }
        }
    }
}

/// A gray picture as an RGB image.
pub fn gray_rgb(values: &[f32], w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let v = crate::image::to_byte(values[(y * w + x) as usize]);
        image::Rgb([v, v, v])
    })
}
