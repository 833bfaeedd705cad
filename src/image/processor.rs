//! The Idefics3 / SmolVLM image processor, as transformers' PIL path runs it (what the hub's
//! checkpoints were trained with): the longest edge resized to `size.longest_edge`, then (with
//! `do_image_splitting`) both sides rounded up to multiples of `max_image_size.longest_edge` and
//! cut into square tiles, row by row, followed by the whole image squashed to one tile (the global
//! view); without splitting, only that squashed image. Every resize is Pillow's, on 8 bits
//! ([`super::resample`]); then rescale and normalise. The settings come from the checkpoint's
//! `preprocessor_config.json`; one that this module cannot honour is an error naming it.

use serde::Deserialize;

use super::Picture;
use super::resample::{Filter, resize_u8};
use crate::error::{Error, Result};

/// The checkpoint's processor settings file, optional in a bundle.
pub const FILE: &str = "preprocessor_config.json";

/// transformers' absolute cap on the first resize (`MAX_IMAGE_SIZE`).
const MAX_IMAGE_SIZE: usize = 4096;

#[derive(Debug, Clone, Deserialize)]
struct Edge {
    longest_edge: Option<usize>,
}

/// `preprocessor_config.json` of an Idefics3 / SmolVLM checkpoint; absent keys take the image
/// processor class's defaults. (`do_pad` pads a batch's images to the largest; one image's
/// tiles are all one size, so it is not read.)
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct Raw {
    image_processor_type: Option<String>,
    do_resize: bool,
    size: Edge,
    resample: u32,
    do_image_splitting: bool,
    max_image_size: Edge,
    do_rescale: bool,
    rescale_factor: f64,
    do_normalize: bool,
    image_mean: Vec<f64>,
    image_std: Vec<f64>,
    do_convert_rgb: bool,
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            image_processor_type: None,
            do_resize: true,
            size: Edge {
                longest_edge: Some(4 * 364),
            },
            resample: 1,
            do_image_splitting: true,
            max_image_size: Edge {
                longest_edge: Some(364),
            },
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: vec![0.5; 3],
            image_std: vec![0.5; 3],
            do_convert_rgb: true,
        }
    }
}

/// SmolVLM-256M / -500M's processor settings (longest edge 2048, 512-px tiles with splitting,
/// Lanczos, mean and std 0.5), for the random models of `init --preset smolvlm-*`.
pub fn smolvlm_json() -> String {
    let value = serde_json::json!({
        "image_processor_type": "Idefics3ImageProcessor",
        "processor_class": "Idefics3Processor",
        "do_convert_rgb": true,
        "do_resize": true,
        "size": {"longest_edge": 2048},
        "resample": 1,
        "do_image_splitting": true,
        "max_image_size": {"longest_edge": 512},
        "do_rescale": true,
        "rescale_factor": 1.0 / 255.0,
        "do_normalize": true,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "do_pad": true
    });
    serde_json::to_string_pretty(&value).expect("JSON value serialises") + "\n"
}

/// The checkpoint's `preprocessor_config.json` with `do_image_splitting` off: what fine-tuning
/// feeds (each film as the global view alone, one tile) and what the fine-tuned bundle then
/// answers through, so that it is asked as it was trained.
pub fn without_splitting(json: &str) -> Result<(String, Settings)> {
    let bad = |m: String| Error::Config(format!("{FILE}: {m}"));
    let mut value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    object.insert("do_image_splitting".into(), serde_json::Value::Bool(false));
    let text = serde_json::to_string_pretty(&value).expect("JSON value serialises") + "\n";
    let settings = Settings::from_json(&text)?;
    Ok((text, settings))
}

/// Checked processor settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `size.longest_edge` when `do_resize`.
    pub longest_edge: Option<usize>,
    /// `max_image_size.longest_edge`: the side of every tile.
    pub tile: usize,
    pub split: bool,
    pub filter: Filter,
    pub rescale: Option<f64>,
    /// Per channel `(mean, std)` when `do_normalize`.
    pub normalize: Option<[(f32, f32); 3]>,
}

impl Settings {
    /// Parses and checks `preprocessor_config.json`.
    pub fn from_json(text: &str) -> Result<Self> {
        let bad = |m: String| Error::Config(format!("preprocessor_config.json: {m}"));
        let raw: Raw = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if let Some(kind) = &raw.image_processor_type {
            let known = ["Idefics3ImageProcessor", "SmolVLMImageProcessor"];
            if !known
                .iter()
                .any(|k| kind.trim_end_matches("Fast").trim_end_matches("Pil") == *k)
            {
                return Err(bad(format!(
                    "image_processor_type {kind} is not supported (only {})",
                    known.join(" and ")
                )));
            }
        }
        let filter = Filter::from_pil(raw.resample).ok_or_else(|| {
            bad(format!(
                "resample {} is not supported (1 Lanczos, 2 bilinear, 3 bicubic)",
                raw.resample
            ))
        })?;
        if !raw.do_convert_rgb {
            return Err(bad("do_convert_rgb false is not supported".into()));
        }
        let longest_edge = match (raw.do_resize, raw.size.longest_edge) {
            (false, _) => None,
            (true, Some(e)) if (1..=MAX_IMAGE_SIZE).contains(&e) => Some(e),
            (true, e) => return Err(bad(format!("size.longest_edge {e:?} is not supported"))),
        };
        let tile = match raw.max_image_size.longest_edge {
            Some(t) if (1..=MAX_IMAGE_SIZE).contains(&t) => t,
            t => {
                return Err(bad(format!(
                    "max_image_size.longest_edge {t:?} is not supported"
                )));
            }
        };
        let three = |v: &[f64], name: &str| -> Result<[f32; 3]> {
            match v {
                [a] => Ok([*a as f32; 3]),
                [a, b, c] => Ok([*a as f32, *b as f32, *c as f32]),
                _ => Err(bad(format!("{name} needs 1 or 3 values, not {}", v.len()))),
            }
        };
        let normalize = if raw.do_normalize {
            let (m, s) = (
                three(&raw.image_mean, "image_mean")?,
                three(&raw.image_std, "image_std")?,
            );
            if s.iter().any(|&s| s == 0.0 || !s.is_finite()) {
                return Err(bad("image_std holds a zero".into()));
            }
            Some([(m[0], s[0]), (m[1], s[1]), (m[2], s[2])])
        } else {
            None
        };
        Ok(Self {
            longest_edge,
            tile,
            split: raw.do_image_splitting,
            filter,
            rescale: raw.do_rescale.then_some(raw.rescale_factor),
            normalize,
        })
    }
}

/// One image as the model takes it: `rows * cols` tiles row by row, then the global view (or the
/// global view alone when `rows == cols == 0`), each `[3, size, size]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiles {
    pub rows: usize,
    pub cols: usize,
    pub size: usize,
    pub pixels: Vec<f32>,
}

impl Tiles {
    pub fn count(&self) -> usize {
        self.rows * self.cols + 1
    }
}

/// The first resize's output `(height, width)`: the longest edge to `longest`, the other side
/// truncated and then made even, all under [`MAX_IMAGE_SIZE`].
pub fn resized_size(height: usize, width: usize, longest: usize) -> (usize, usize) {
    let aspect = width as f64 / height as f64;
    let even = |v: usize| v + v % 2;
    let (h, w) = if width >= height {
        (even((longest as f64 / aspect) as usize), longest)
    } else {
        (longest, even((longest as f64 * aspect) as usize))
    };
    let (mut h, mut w) = (h.max(1), w.max(1));
    let aspect = w as f64 / h as f64;
    if w >= h && w > MAX_IMAGE_SIZE {
        w = MAX_IMAGE_SIZE;
        h = (w as f64 / aspect) as usize;
    } else if h > w && h > MAX_IMAGE_SIZE {
        h = MAX_IMAGE_SIZE;
        w = (h as f64 * aspect) as usize;
    }
    (h.max(1), w.max(1))
}

/// `resize_for_vision_encoder`: both sides rounded up to multiples of `tile`, keeping the aspect
/// ratio from the longer side (0 for a side so thin that it truncates to nothing).
pub fn tiled_size(height: usize, width: usize, tile: usize) -> (usize, usize) {
    let aspect = width as f64 / height as f64;
    let up = |v: usize| v.div_ceil(tile) * tile;
    if width >= height {
        let w = up(width);
        (up((w as f64 / aspect) as usize), w)
    } else {
        let h = up(height);
        (h, up((h as f64 * aspect) as usize))
    }
}

/// The sizes an image goes through: `(height, width)` after the first resize and after the
/// resize to whole tiles, and the grid of tiles (0, 0 when it is not split).
struct Plan {
    resized: (usize, usize),
    tiled: (usize, usize),
    grid: (usize, usize),
}

fn plan(height: usize, width: usize, s: &Settings) -> Result<Plan> {
    let resized = match s.longest_edge {
        Some(e) => resized_size(height, width, e),
        None => (height, width),
    };
    if !s.split {
        return Ok(Plan {
            resized,
            tiled: resized,
            grid: (0, 0),
        });
    }
    let (h, w) = tiled_size(resized.0, resized.1, s.tile);
    if h == 0 || w == 0 {
        return Err(Error::Image(format!(
            "a {width}x{height} image is too narrow to cut into {}-px tiles",
            s.tile
        )));
    }
    let grid = if h > s.tile || w > s.tile {
        (h / s.tile, w / s.tile)
    } else {
        (0, 0)
    };
    Ok(Plan {
        resized,
        tiled: (h, w),
        grid,
    })
}

/// Rows and columns of tiles for an image of `height` x `width` (0, 0 when it is not split).
pub fn grid(height: usize, width: usize, s: &Settings) -> Result<(usize, usize)> {
    Ok(plan(height, width, s)?.grid)
}

/// Runs the processor on a picture (8-bit quantised first, as a PNG or JPEG would be).
pub fn process(picture: &Picture, s: &Settings) -> Result<Tiles> {
    let ch = picture.channels;
    let (w0, h0) = (picture.width as usize, picture.height as usize);
    let Plan {
        resized,
        tiled,
        grid: (rows, cols),
    } = plan(h0, w0, s)?;
    let resize = |img: &[u8], (fh, fw): (usize, usize), (th, tw): (usize, usize)| {
        if (fh, fw) == (th, tw) {
            img.to_vec()
        } else {
            resize_u8(img, (fw, fh), ch, (tw, th), s.filter)
        }
    };
    let img = picture.to_bytes();
    let img = resize(&img, (h0, w0), resized);
    let img = resize(&img, resized, tiled);
    let (t, w) = (s.tile, tiled.1);
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(rows * cols + 1);
    for r in 0..rows {
        for c in 0..cols {
            let mut crop = Vec::with_capacity(t * t * ch);
            for y in r * t..(r + 1) * t {
                crop.extend_from_slice(&img[(y * w + c * t) * ch..(y * w + (c + 1) * t) * ch]);
            }
            frames.push(crop);
        }
    }
    frames.push(resize(&img, tiled, (t, t)));
    let plane = t * t;
    let mut pixels = vec![0.0f32; frames.len() * 3 * plane];
    for (f, frame) in frames.iter().enumerate() {
        let out = &mut pixels[f * 3 * plane..(f + 1) * 3 * plane];
        for (i, px) in frame.chunks_exact(ch).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = value(px[if ch == 1 { 0 } else { c }], c, s);
            }
        }
    }
    Ok(Tiles {
        rows,
        cols,
        size: t,
        pixels,
    })
}

/// One 8-bit value rescaled (in f64, then f32, as numpy) and normalised (in f32).
fn value(v: u8, channel: usize, s: &Settings) -> f32 {
    let x = match s.rescale {
        Some(f) => (v as f64 * f) as f32,
        None => v as f32,
    };
    match s.normalize {
        Some(mean_std) => (x - mean_std[channel].0) / mean_std[channel].1,
        None => x,
    }
}
