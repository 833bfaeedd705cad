//! DICOM (Part 10) films through dicom-rs, compressed or not (JPEG baseline, extended and
//! lossless, JPEG 2000, deflate; RLE and JPEG-LS by our own decoders): the first frame's
//! stored values ([`pixels::stored`]) -> modality rescale (slope, intercept) -> VOI window (the
//! file's first window, else the full range) -> MONOCHROME1 inverted, so bright always means
//! dense. Colour (RGB, YBR, palette) is scaled by its white.

pub mod jpegls;
#[cfg(target_arch = "wasm32")]
mod libc_wasm;
pub mod pixels;
pub mod rle;

use std::io::Cursor;

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use dicom_object::file::ReadPreamble;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::{Picture, check_size};
use crate::error::{Error, Result};

/// What a DICOM file says about itself beyond its pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// Frames in the file; only the first is read.
    pub frames: u32,
    /// The transfer syntax's name ("JPEG 2000 Image Compression", ...).
    pub transfer_syntax: String,
    pub photometric: String,
    /// The file's own first VOI window (center, width) in rescaled units, if it has one.
    pub window: Option<(f64, f64)>,
}

/// The transfer syntax's name for a UID, or the UID itself when no codec knows it.
fn syntax_name(uid: &str) -> String {
    let uid = uid.trim_end_matches('\0').trim();
    TransferSyntaxRegistry.get(uid).map_or_else(
        || format!("transfer syntax {uid}"),
        |ts| ts.name().to_string(),
    )
}

pub fn decode(bytes: &[u8]) -> Result<Picture> {
    decode_with_info(bytes).map(|(p, _)| p)
}

/// A file's first frame as stored, with what the file says of its rescale and itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Film {
    pub stored: pixels::Stored,
    pub info: Info,
    /// Modality rescale: `slope * stored + intercept`.
    pub slope: f64,
    pub intercept: f64,
}

/// Reads and decodes the first frame; a valid file this build cannot decode is refused as
/// "unsupported DICOM" naming its transfer syntax or feature, a damaged one as "broken DICOM".
pub fn read(bytes: &[u8]) -> Result<Film> {
    let broken = |e: &dyn std::fmt::Display| Error::Dicom(format!("broken DICOM: {e}"));
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .from_reader(Cursor::new(bytes))
        .map_err(|e| broken(&e))?;
    let uid = obj.meta().transfer_syntax().to_string();
    let syntax = syntax_name(&uid);
    let number = |tag, default: f64| -> f64 {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_multi_float64().ok())
            .and_then(|v| v.first().copied())
            .unwrap_or(default)
    };
    let int = |tag| -> u32 {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_int::<u32>().ok())
            .unwrap_or(0)
    };
    check_size(int(tags::COLUMNS), int(tags::ROWS)).map_err(|e| broken(&e))?;
    let window = (
        number(tags::WINDOW_CENTER, f64::NAN),
        number(tags::WINDOW_WIDTH, f64::NAN),
    );
    // A syntax this build has no pixel decoder for is named before anything is decoded (the
    // decoder's own error type is private: its text is no contract).
    let decodable = own_codec(&uid).is_some()
        || TransferSyntaxRegistry
            .get(uid.trim_end_matches('\0').trim())
            .is_some_and(|ts| !ts.is_unsupported_pixel_encapsulation() && ts.can_decode_all());
    if !decodable {
        return Err(Error::Dicom(format!(
            "unsupported DICOM: {syntax} ({uid}) cannot be decoded by this build"
        )));
    }
    let frames = int(tags::NUMBER_OF_FRAMES).max(1);
    let stored = match own_codec(&uid) {
        Some(codec) => decode_own(&obj, codec, frames)?,
        None => {
            let decoded = obj
                .decode_pixel_data_frame(0)
                .map_err(|e| Error::Dicom(format!("broken DICOM ({syntax}): {e}")))?;
            pixels::stored(&obj, &decoded)?
        }
    };
    let info = Info {
        frames,
        transfer_syntax: syntax,
        photometric: stored.photometric.clone(),
        window: (window.0.is_finite() && window.1.is_finite() && window.1 >= 1.0).then_some(window),
    };
    Ok(Film {
        stored,
        info,
        slope: number(tags::RESCALE_SLOPE, 1.0),
        intercept: number(tags::RESCALE_INTERCEPT, 0.0),
    })
}

/// The codecs decoded here rather than by dicom-rs: RLE (whose dicom-rs decoder panics on a
/// damaged segment) and JPEG-LS (whose only dicom-rs decoder is CharLS, C++ built with cmake).
#[derive(Debug, Clone, Copy)]
enum Codec {
    Rle,
    JpegLs,
}

fn own_codec(uid: &str) -> Option<Codec> {
    match uid.trim_end_matches('\0').trim() {
        "1.2.840.10008.1.2.5" => Some(Codec::Rle),
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => Some(Codec::JpegLs),
        _ => None,
    }
}

/// The first frame's encapsulated bytes: the first of one fragment a frame, the fragments the
/// offset table gives it, or (no table) the fragments up to the one that ends the codestream.
fn first_frame(obj: &dicom_object::DefaultDicomObject, frames: u32) -> Result<Vec<u8>> {
    let broken = |why: &str| Error::Dicom(format!("broken DICOM: {why}"));
    let value = obj
        .element(tags::PIXEL_DATA)
        .map_err(|_| broken("no pixel data"))?
        .value();
    let fragments = value
        .fragments()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| broken("compressed pixel data without fragments"))?;
    let offsets = value.offset_table().unwrap_or(&[]);
    if frames <= 1 {
        return Ok(fragments.concat());
    }
    if fragments.len() == frames as usize {
        return Ok(fragments[0].clone());
    }
    let mut out = vec![];
    let mut at = 0usize; // the fragment's offset from the first one (8-byte item headers)
    for f in fragments {
        if offsets.len() >= 2 && at >= offsets[1] as usize {
            break;
        }
        out.extend_from_slice(f);
        at += 8 + f.len();
        let end = f
            .iter()
            .rposition(|&b| b != 0)
            .map_or(&[][..], |i| &f[..=i]);
        if offsets.len() < 2 && end.ends_with(&[0xFF, 0xD9]) {
            break;
        }
    }
    Ok(out)
}

/// Decodes the first frame with one of our own codecs, checked against the file's attributes.
fn decode_own(
    obj: &dicom_object::DefaultDicomObject,
    codec: Codec,
    frames: u32,
) -> Result<pixels::Stored> {
    let layout = pixels::Layout::of_object(obj);
    let data = first_frame(obj, frames)?;
    let (w, h) = (layout.width as usize, layout.height as usize);
    let bytes = match codec {
        Codec::Rle => rle::decode(&data, w, h, layout.samples, layout.bits)?,
        Codec::JpegLs => {
            let d = jpegls::decode(&data)?;
            if (d.width, d.height, d.components) != (w, h, layout.samples) {
                return Err(Error::Dicom(format!(
                    "broken DICOM: a JPEG-LS frame of {} x {} x {} in a file of {w} x {h} x {}",
                    d.width, d.height, d.components, layout.samples
                )));
            }
            match layout.bits {
                8 => d.samples.iter().map(|&v| v as u8).collect(),
                16 => d.samples.iter().flat_map(|v| v.to_le_bytes()).collect(),
                b => {
                    return Err(Error::Dicom(format!(
                        "unsupported DICOM: JPEG-LS in {b} bits allocated"
                    )));
                }
            }
        }
    };
    // Both codecs hand back samples interleaved, whatever the planar configuration says.
    let layout = pixels::Layout {
        planar: false,
        ..layout
    };
    pixels::from_frame(obj, &layout, &bytes)
}

/// The picture and what the file says about itself.
pub fn decode_with_info(bytes: &[u8]) -> Result<(Picture, Info)> {
    let Film {
        stored,
        info,
        slope,
        intercept,
    } = read(bytes)?;
    let (width, height) = (stored.width, stored.height);
    if stored.samples == 3 {
        let white = stored.max.max(1.0);
        let data = stored
            .values
            .iter()
            .map(|&v| (v / white).clamp(0.0, 1.0) as f32)
            .collect();
        return Ok((Picture::new(width, height, 3, data)?, info));
    }
    let values: Vec<f64> = stored
        .values
        .iter()
        .map(|&v| v * slope + intercept)
        .collect();
    let (center, width_w) = info.window.unwrap_or_else(|| {
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        ((lo + hi) / 2.0 + 0.5, (hi - lo).max(1.0) + 1.0)
    });
    let invert = stored.photometric == "MONOCHROME1";
    let data = values
        .into_iter()
        .map(|v| {
            let y = voi_linear(v, center, width_w) as f32;
            if invert { 1.0 - y } else { y }
        })
        .collect();
    Ok((Picture::new(width, height, 1, data)?, info))
}

/// The linear VOI function of DICOM PS3.3 C.11.2.1.2, mapped to [0, 1].
pub fn voi_linear(x: f64, center: f64, width: f64) -> f64 {
    let lo = center - 0.5 - (width - 1.0) / 2.0;
    let hi = center - 0.5 + (width - 1.0) / 2.0;
    if x <= lo {
        0.0
    } else if x > hi {
        1.0
    } else {
        ((x - (center - 0.5)) / (width - 1.0) + 0.5).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voi_window_is_linear_between_its_edges() {
        assert_eq!(voi_linear(0.0, 100.0, 50.0), 0.0);
        assert_eq!(voi_linear(1000.0, 100.0, 50.0), 1.0);
        assert!((voi_linear(99.5, 100.0, 50.0) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn garbage_after_a_dicom_preamble_is_an_error_not_a_panic() {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I', 0xff, 0xff, 1, 2, 3]);
        assert!(matches!(crate::image::decode(&bytes), Err(Error::Dicom(_))));
    }
}
