//! Image input, shared by native and web: decode PNG, JPEG (8/16-bit, grayscale or RGB) and DICOM
//! into a [`Picture`], then [`preprocess::model_input`] squashes it into the model's square input.

pub mod dicom;
pub mod preprocess;
pub mod processor;
pub mod resample;
pub mod views;

use std::io::Cursor;

use image::{DynamicImage, ImageReader, Limits};

use crate::error::{Error, Result};

/// Largest encoded input accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 256 << 20;
/// Largest decoded image accepted, in pixels per side and in total (decompression bombs).
pub const MAX_SIDE: u32 = 16_384;
pub const MAX_PIXELS: u64 = 64 << 20;

/// A decoded image: intensities in [0, 1], row-major, `channels` (1 or 3) interleaved.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub data: Vec<f32>,
}

impl Picture {
    /// Checked construction: dimensions within limits and data of the right length.
    pub fn new(width: u32, height: u32, channels: usize, data: Vec<f32>) -> Result<Self> {
        check_size(width, height)?;
        if !(channels == 1 || channels == 3)
            || data.len() != width as usize * height as usize * channels
        {
            return Err(Error::Image(format!(
                "{width}x{height} with {channels} channels does not match {} values",
                data.len()
            )));
        }
        Ok(Self {
            width,
            height,
            channels,
            data,
        })
    }

    /// The values as bytes (`to_byte` of each).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.data.iter().map(|&v| to_byte(v)).collect()
    }

    /// Mean of the channels at each pixel.
    pub fn luma(&self) -> Vec<f32> {
        if self.channels == 1 {
            return self.data.clone();
        }
        self.data
            .chunks_exact(3)
            .map(|p| (p[0] + p[1] + p[2]) / 3.0)
            .collect()
    }
}

/// `v.round()` for `0 <= v < 2^23` (and 0 for NaN, as `NaN.round() as u8` is): the same value
/// without the call into libm that `round` costs on targets without SSE4.1, where it is a hot
/// spot of film generation.
pub fn round_nonneg(v: f32) -> f32 {
    let t = v as u32 as f32;
    // Exact: v and its integer part share their leading bits.
    if v - t >= 0.5 { t + 1.0 } else { t }
}

/// A [0, 1] intensity as a byte: `(v.clamp(0, 1) * 255).round()`.
pub fn to_byte(v: f32) -> u8 {
    round_nonneg(v.clamp(0.0, 1.0) * 255.0) as u8
}

pub fn check_size(width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::Image("the image is empty".into()));
    }
    if width > MAX_SIDE || height > MAX_SIDE || width as u64 * height as u64 > MAX_PIXELS {
        return Err(Error::Image(format!(
            "{width}x{height} pixels is larger than the {MAX_SIDE} px / {MAX_PIXELS} pixel limit"
        )));
    }
    Ok(())
}

/// Whether `bytes` look like a DICOM Part 10 file (preamble then `DICM`).
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.len() > 132 && &bytes[128..132] == b"DICM"
}

/// Width and height of an image file without decoding its pixels (DICOM: its Rows/Columns).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_size(path: &std::path::Path) -> Result<(u32, u32)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if is_dicom(&bytes) {
        let p = dicom::decode(&bytes)?;
        return Ok((p.width, p.height));
    }
    ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| Error::Image(e.to_string()))?
        .into_dimensions()
        .map_err(|e| Error::Image(e.to_string()))
}

/// Decodes PNG, JPEG or DICOM bytes.
pub fn decode(bytes: &[u8]) -> Result<Picture> {
    decode_with_info(bytes).map(|(p, _)| p)
}

/// [`decode`], with what a DICOM file says about itself (frames, transfer syntax, window).
pub fn decode_with_info(bytes: &[u8]) -> Result<(Picture, Option<dicom::Info>)> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(Error::Image(format!(
            "the file has {} bytes; at most {MAX_INPUT_BYTES} are accepted",
            bytes.len()
        )));
    }
    if is_dicom(bytes) {
        return dicom::decode_with_info(bytes).map(|(p, info)| (p, Some(info)));
    }
    if bytes.len() > 8 && (bytes[..2] == [0x08, 0x00] || bytes[..2] == [0x02, 0x00]) {
        return Err(Error::Dicom(
            "unsupported DICOM: a bare data set without the Part 10 header (no 128-byte \
             preamble and DICM); re-save it as a DICOM file (e.g. dcmtk's dcmconv)"
                .into(),
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Image(e.to_string()))?;
    if !matches!(
        reader.format(),
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg)
    ) {
        return Err(Error::Image("not a PNG, JPEG or DICOM file".into()));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| Error::Image(e.to_string()))?;
    check_size(img.width(), img.height())?;
    Ok((from_dynamic(img), None))
}

/// Any decoded image -> a [`Picture`]: gray stays one channel, colour becomes RGB, alpha dropped.
pub fn from_dynamic(img: DynamicImage) -> Picture {
    let (width, height) = (img.width(), img.height());
    let gray = matches!(
        img,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLuma16(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageLumaA16(_)
    );
    if gray {
        let data = img
            .into_luma16()
            .into_raw()
            .into_iter()
            .map(|v| v as f32 / 65535.0)
            .collect();
        Picture {
            width,
            height,
            channels: 1,
            data,
        }
    } else {
        let data = img
            .into_rgb32f()
            .into_raw()
            .into_iter()
            .map(|v| v.clamp(0.0, 1.0))
            .collect();
        Picture {
            width,
            height,
            channels: 3,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_8_and_16_bit_gray_and_rgb() {
        let g8 = image::GrayImage::from_fn(4, 3, |x, y| image::Luma([(x * 60 + y) as u8]));
        let p = decode(&encode(
            DynamicImage::ImageLuma8(g8),
            image::ImageFormat::Png,
        ))
        .unwrap();
        assert_eq!((p.width, p.height, p.channels), (4, 3, 1));
        assert!((p.data[1] - 60.0 / 255.0).abs() < 1e-6);

        let g16 = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(2, 2, |x, _| {
            image::Luma([x as u16 * 40000])
        });
        let p = decode(&encode(
            DynamicImage::ImageLuma16(g16),
            image::ImageFormat::Png,
        ))
        .unwrap();
        assert!((p.data[1] - 40000.0 / 65535.0).abs() < 1e-6);

        let rgb = image::RgbImage::from_fn(8, 8, |_, _| image::Rgb([255, 0, 51]));
        let p = decode(&encode(
            DynamicImage::ImageRgb8(rgb),
            image::ImageFormat::Jpeg,
        ))
        .unwrap();
        assert_eq!(p.channels, 3);
        assert!(p.data[0] > 0.9 && p.data[1] < 0.1);
    }

    #[test]
    fn rejects_non_images_truncated_files_and_bombs() {
        assert!(decode(b"hello, I am a text file").is_err());
        assert!(decode(&[]).is_err());
        let g = image::GrayImage::from_fn(64, 64, |x, y| image::Luma([(x ^ y) as u8]));
        let png = encode(DynamicImage::ImageLuma8(g), image::ImageFormat::Png);
        let e = decode(&png[..png.len() / 2]).unwrap_err();
        assert!(matches!(e, Error::Image(_)), "{e}");
        // A PNG header claiming 100000 x 100000 pixels.
        let mut bomb = png.clone();
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(decode(&bomb).is_err());
    }

    /// `round_nonneg` and `to_byte` give what `round` does, at the halves and around them, for
    /// every value a film or a byte conversion meets.
    #[test]
    fn round_nonneg_is_round() {
        let mut values: Vec<f32> = (0..2_000_000).map(|i| i as f32 / 7919.0).collect();
        for k in 0..70_000u32 {
            let half = k as f32 + 0.5;
            values.extend([
                half,
                half.next_down(),
                half.next_up(),
                k as f32,
                (k as f32).next_up(),
            ]);
        }
        for v in values {
            assert_eq!(round_nonneg(v), v.round(), "{v}");
        }
        for v in [
            f32::NAN,
            -3.0,
            -0.001,
            0.0,
            0.001,
            0.5 / 255.0,
            0.7,
            1.0,
            1.5,
            f32::INFINITY,
        ] {
            assert_eq!(to_byte(v), (v.clamp(0.0, 1.0) * 255.0).round() as u8, "{v}");
        }
        for b in 0..=255u8 {
            let v = b as f32 / 255.0;
            for v in [
                v,
                v.next_up(),
                v.next_down(),
                v + 0.5 / 255.0,
                (v + 0.5 / 255.0).next_down(),
            ] {
                assert_eq!(to_byte(v), (v.clamp(0.0, 1.0) * 255.0).round() as u8, "{v}");
            }
        }
    }
}
