//! A DICOM frame's stored values as numbers a viewer starts from: samples unpacked (1, 8, 16 or
//! 32 bits, signed or not, little or big endian, as the decoder leaves them), planes interleaved
//! (planar configuration 1), YBR_FULL / YBR_FULL_422 turned into RGB and palette colour looked up,
//! as pydicom's `pixel_array` with `apply_color_lut` gives them (`tests/dicom_conformance.rs`).

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, Tag};
use dicom_pixeldata::{DecodedPixelData, PixelRepresentation, PlanarConfiguration};

use crate::error::{Error, Result};

/// One frame's values, interleaved when colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub width: u32,
    pub height: u32,
    /// 1 (monochrome) or 3 (RGB).
    pub samples: usize,
    /// What the values mean: "MONOCHROME1", "MONOCHROME2" or "RGB" (after conversion).
    pub photometric: String,
    /// The largest value the encoding can hold (colour: what white is).
    pub max: f64,
    pub values: Vec<f64>,
}

fn unsupported(what: impl std::fmt::Display) -> Error {
    Error::Dicom(format!("unsupported DICOM: {what}"))
}

/// How a frame's values are laid out, from the decoder or, for the codecs decoded here
/// (`super::rle`, `super::jpegls`), from the file's own attributes.
#[derive(Debug, Clone)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub samples: usize,
    pub bits: u16,
    pub stored_bits: u16,
    pub signed: bool,
    /// Colour stored plane by plane (planar configuration 1).
    pub planar: bool,
    pub photometric: String,
}

impl Layout {
    /// What dicom-rs's decoder says of the frames it decoded.
    pub fn of_decoded(decoded: &DecodedPixelData) -> Self {
        Self {
            width: decoded.columns(),
            height: decoded.rows(),
            samples: decoded.samples_per_pixel() as usize,
            bits: decoded.bits_allocated(),
            stored_bits: decoded.bits_stored(),
            signed: decoded.pixel_representation() == PixelRepresentation::Signed,
            planar: decoded.planar_configuration() == PlanarConfiguration::PixelFirst,
            photometric: decoded.photometric_interpretation().to_string(),
        }
    }

    /// What the file's attributes say (missing ones as their defaults: 1 sample, 8 bits).
    pub fn of_object(obj: &DefaultDicomObject) -> Self {
        let int = |tag, default: u32| -> u32 {
            obj.element(tag)
                .ok()
                .and_then(|e| e.to_int::<u32>().ok())
                .unwrap_or(default)
        };
        let bits = int(tags::BITS_ALLOCATED, 8).min(64) as u16;
        Self {
            width: int(tags::COLUMNS, 0),
            height: int(tags::ROWS, 0),
            samples: int(tags::SAMPLES_PER_PIXEL, 1).min(16) as usize,
            bits,
            stored_bits: int(tags::BITS_STORED, u32::from(bits)).min(64) as u16,
            signed: int(tags::PIXEL_REPRESENTATION, 0) == 1,
            planar: int(tags::PLANAR_CONFIGURATION, 0) == 1,
            photometric: obj
                .element(tags::PHOTOMETRIC_INTERPRETATION)
                .ok()
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches('\0').trim().to_string())
                .unwrap_or_else(|| "MONOCHROME2".into()),
        }
    }
}

/// The first frame of `decoded` (decoded from `obj`) as [`Stored`] values.
pub fn stored(obj: &DefaultDicomObject, decoded: &DecodedPixelData) -> Result<Stored> {
    let frame = decoded
        .frame_data(0)
        .map_err(|e| Error::Dicom(format!("broken DICOM: the pixel data is too short ({e})")))?;
    from_frame(obj, &Layout::of_decoded(decoded), frame)
}

/// One frame's bytes (samples little endian, laid out as `layout` says) as [`Stored`] values.
pub fn from_frame(obj: &DefaultDicomObject, layout: &Layout, frame: &[u8]) -> Result<Stored> {
    let (width, height, samples) = (layout.width, layout.height, layout.samples);
    if !(samples == 1 || samples == 3) {
        return Err(unsupported(format!("{samples} samples per pixel")));
    }
    let bits = layout.bits;
    let stored_bits = layout.stored_bits.clamp(1, bits.max(1));
    let n = width as usize * height as usize * samples;
    let mut values = unpack(frame, bits, stored_bits, layout.signed, n)?;
    if samples == 3 && layout.planar {
        values = interleave(&values);
    }
    let photometric_trim = layout.photometric.trim().to_string();
    let mut max = if bits == 1 {
        1.0
    } else {
        ((1u64 << stored_bits) - 1) as f64
    };
    match (samples, photometric_trim.as_str()) {
        (1, "MONOCHROME1" | "MONOCHROME2") | (3, "RGB") => {}
        (3, "YBR_FULL" | "YBR_FULL_422") => ybr_full_to_rgb(&mut values, max),
        (1, "PALETTE COLOR") => (values, max) = palette(obj, &values)?,
        (s, p) => {
            return Err(unsupported(format!(
                "photometric interpretation {p} with {s} samples per pixel"
            )));
        }
    }
    let photometric: String = match (samples, photometric_trim.as_str()) {
        (1, "PALETTE COLOR") | (3, _) => "RGB".into(),
        (_, p) => p.into(),
    };
    Ok(Stored {
        width,
        height,
        samples: if photometric == "RGB" { 3 } else { 1 },
        photometric,
        max,
        values,
    })
}

/// `n` samples of `bits` bits each (native little endian as dicom-rs leaves them; 1-bit samples
/// come expanded to 0 / 255 bytes), masked to `stored_bits` and sign-extended when signed.
fn unpack(data: &[u8], bits: u16, stored_bits: u16, signed: bool, n: usize) -> Result<Vec<f64>> {
    let width = match bits {
        1 | 8 => 1,
        16 => 2,
        32 => 4,
        b => return Err(unsupported(format!("{b} bits allocated per sample"))),
    };
    if data.len() < n * width {
        return Err(Error::Dicom(format!(
            "broken DICOM: {} bytes of pixel data for {n} samples of {bits} bits",
            data.len()
        )));
    }
    let mask = if stored_bits >= 32 {
        u32::MAX
    } else {
        (1u32 << stored_bits) - 1
    };
    let sign = 1u32 << (stored_bits.min(32) - 1);
    let value = |raw: u32| -> f64 {
        if bits == 1 {
            return f64::from(u8::from(raw != 0));
        }
        let v = raw & mask;
        if signed && v & sign != 0 {
            v as f64 - mask as f64 - 1.0
        } else {
            v as f64
        }
    };
    Ok(data[..n * width]
        .chunks_exact(width)
        .map(|c| {
            let raw = match width {
                1 => u32::from(c[0]),
                2 => u32::from(u16::from_le_bytes([c[0], c[1]])),
                _ => u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            };
            value(raw)
        })
        .collect())
}

/// Planes `RRR..GGG..BBB..` to pixels `RGBRGB..`.
fn interleave(planes: &[f64]) -> Vec<f64> {
    let plane = planes.len() / 3;
    (0..plane)
        .flat_map(|i| [planes[i], planes[plane + i], planes[2 * plane + i]])
        .collect()
}

/// YBR_FULL to RGB (PS3.3 C.7.6.3.1.2, full range), rounded and clipped to `[0, max]`.
fn ybr_full_to_rgb(values: &mut [f64], max: f64) {
    let half = (max + 1.0) / 2.0;
    for p in values.chunks_exact_mut(3) {
        let (y, cb, cr) = (p[0], p[1] - half, p[2] - half);
        let rgb = [
            y + 1.402 * cr,
            y - 0.114 * 1.772 / 0.587 * cb - 0.299 * 1.402 / 0.587 * cr,
            y + 1.772 * cb,
        ];
        for (o, v) in p.iter_mut().zip(rgb) {
            *o = (v + 0.5).floor().clamp(0.0, max);
        }
    }
}

/// One palette colour lookup table: its first mapped value, bits per entry and entries.
struct Lut {
    first: f64,
    bits: u16,
    data: Vec<f64>,
}

/// An OW element's 16-bit words. dicom-rs gives them as numbers when it knows the element's VR
/// and as raw bytes otherwise; raw bytes pair in the file's byte order.
fn words(obj: &DefaultDicomObject, tag: Tag, big_endian: bool) -> Option<Vec<u16>> {
    let e = obj.element(tag).ok()?;
    let bytes = e.to_bytes().ok()?;
    let ints = e.to_multi_int::<u16>().ok();
    match ints {
        Some(w) if w.len() * 2 == bytes.len() => Some(w),
        _ => Some(
            bytes
                .chunks_exact(2)
                .map(|c| {
                    if big_endian {
                        u16::from_be_bytes([c[0], c[1]])
                    } else {
                        u16::from_le_bytes([c[0], c[1]])
                    }
                })
                .collect(),
        ),
    }
}

/// Expands a segmented lookup table (PS3.3 C.7.9.2: discrete, linear and indirect segments),
/// rounding linear segments as pydicom does (half to even); at most `segments` when given.
fn expand_segments(data: &[u16], segments: Option<usize>, last: Option<f64>) -> Result<Vec<f64>> {
    let bad = |why: &str| {
        Error::Dicom(format!(
            "broken DICOM: segmented palette lookup table: {why}"
        ))
    };
    let mut lut: Vec<f64> = vec![];
    let (mut at, mut read) = (0usize, 0usize);
    while at + 1 < data.len() {
        let (op, n) = (data[at], data[at + 1] as usize);
        at += 2;
        match op {
            0 => {
                let end = (at + n).min(data.len());
                lut.extend(data[at..end].iter().map(|&v| f64::from(v)));
                at = end;
            }
            1 => {
                let y0 = lut
                    .last()
                    .copied()
                    .or(last)
                    .ok_or_else(|| bad("begins with a line"))?;
                let y1 = f64::from(*data.get(at).ok_or_else(|| bad("cut short"))?);
                at += 1;
                if y0 == y1 || n <= 1 {
                    lut.extend(std::iter::repeat_n(y1, n));
                } else {
                    let start = y0 + (y1 - y0) / n as f64;
                    let step = (y1 - start) / (n - 1) as f64;
                    lut.extend((0..n).map(|i| {
                        let v = if i + 1 == n {
                            y1
                        } else {
                            start + i as f64 * step
                        };
                        v.round_ties_even()
                    }));
                }
            }
            2 => {
                let y = *lut
                    .last()
                    .ok_or_else(|| bad("begins with an indirect segment"))?;
                let (lo, hi) = (
                    *data.get(at).ok_or_else(|| bad("cut short"))? as usize,
                    *data.get(at + 1).ok_or_else(|| bad("cut short"))? as usize,
                );
                at += 2;
                let offset = hi << 16 | lo;
                if offset >= data.len() || offset + 2 > at {
                    return Err(bad("an indirect segment points forward or outside"));
                }
                lut.extend(expand_segments(&data[offset..], Some(n), Some(y))?);
            }
            op => return Err(bad(&format!("unknown segment type {op}"))),
        }
        read += 1;
        if lut.len() > 1 << 17 {
            return Err(bad("longer than any lookup table"));
        }
        if Some(read) == segments {
            break;
        }
    }
    Ok(lut)
}

fn lut(obj: &DefaultDicomObject, colour: usize, big_endian: bool) -> Result<Lut> {
    const NAMES: [&str; 3] = ["red", "green", "blue"];
    const DESCRIPTORS: [Tag; 3] = [
        tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
    ];
    const DATA: [Tag; 3] = [
        tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    ];
    const SEGMENTED: [Tag; 3] = [
        tags::SEGMENTED_RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        tags::SEGMENTED_GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        tags::SEGMENTED_BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    ];
    let name = NAMES[colour];
    let missing = || {
        unsupported(format!(
            "palette colour without a usable {name} lookup table"
        ))
    };
    let d: Vec<i64> = obj
        .element(DESCRIPTORS[colour])
        .ok()
        .and_then(|e| e.to_multi_int::<i64>().ok())
        .filter(|d| d.len() == 3)
        .ok_or_else(missing)?;
    let entries = match d[0] {
        0 => 65536,
        n => n.rem_euclid(65536) as usize,
    };
    let bits = d[2] as u16;
    let data: Vec<f64> = if let Some(w) = words(obj, DATA[colour], big_endian) {
        // 8-bit entries may come packed two to a 16-bit word.
        if w.len() * 2 == entries {
            w.iter()
                .flat_map(|w| {
                    if big_endian {
                        w.to_be_bytes()
                    } else {
                        w.to_le_bytes()
                    }
                })
                .map(f64::from)
                .collect()
        } else {
            w.iter().map(|&v| f64::from(v)).collect()
        }
    } else if let Some(w) = words(obj, SEGMENTED[colour], big_endian) {
        if bits != 16 {
            return Err(unsupported("segmented lookup tables of 8-bit entries"));
        }
        expand_segments(&w, None, None)?
    } else {
        return Err(missing());
    };
    if data.len() < entries || entries == 0 || !(bits == 8 || bits == 16) {
        return Err(missing());
    }
    Ok(Lut {
        first: d[1] as f64,
        bits,
        data: data[..entries].to_vec(),
    })
}

/// Palette colour indices to RGB through the file's three lookup tables (values beyond the
/// table take its first or last entry); the largest value is white at the tables' depth.
fn palette(obj: &DefaultDicomObject, indices: &[f64]) -> Result<(Vec<f64>, f64)> {
    let big_endian = obj.meta().transfer_syntax().trim_end_matches('\0') == BIG_ENDIAN;
    let tables = [
        lut(obj, 0, big_endian)?,
        lut(obj, 1, big_endian)?,
        lut(obj, 2, big_endian)?,
    ];
    let bits = tables.iter().map(|t| t.bits).max().unwrap_or(8);
    let max = ((1u32 << bits) - 1) as f64;
    let out = indices
        .iter()
        .flat_map(|&i| {
            tables.iter().map(move |t| {
                let k = (i - t.first).clamp(0.0, (t.data.len() - 1) as f64) as usize;
                t.data[k]
            })
        })
        .collect();
    Ok((out, max))
}

/// Explicit VR Big Endian (retired, still in archives).
const BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_signed_masked_and_one_bit_samples() {
        // 12 of 16 bits stored, signed: 0x0FFF is -1, garbage above bit 11 is dropped.
        let data = [0xFF, 0x0F, 0x01, 0xF0, 0xFF, 0x07];
        let v = unpack(&data, 16, 12, true, 3).unwrap();
        assert_eq!(v, vec![-1.0, 1.0, 2047.0]);
        assert_eq!(unpack(&data, 16, 16, false, 3).unwrap()[0], 4095.0);
        assert_eq!(
            unpack(&[0, 255, 255], 1, 1, false, 3).unwrap(),
            vec![0.0, 1.0, 1.0]
        );
        assert!(unpack(&data, 16, 16, false, 4).is_err());
        assert!(unpack(&data, 12, 12, false, 1).is_err());
    }

    #[test]
    fn segmented_tables_expand_as_pydicom_does() {
        // Discrete 0, 10; a line to 20 over 4 entries; an indirect copy of the first segment.
        let data = [0, 2, 0, 10, 1, 4, 20, 2, 1, 0, 0];
        let lut = expand_segments(&data, None, None).unwrap();
        assert_eq!(lut, vec![0.0, 10.0, 12.0, 15.0, 18.0, 20.0, 0.0, 10.0]);
        assert!(expand_segments(&[1, 3, 5], None, None).is_err());
        assert!(expand_segments(&[0, 1, 5, 7, 1, 0], None, None).is_err());
        assert!(expand_segments(&[0, 1, 5, 2, 1, 9, 0], None, None).is_err());
    }

    #[test]
    fn planes_interleave_and_ybr_grey_stays_grey() {
        assert_eq!(
            interleave(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]
        );
        let mut v = vec![100.0, 128.0, 128.0, 0.0, 0.0, 255.0];
        ybr_full_to_rgb(&mut v, 255.0);
        assert_eq!(&v[..3], &[100.0, 100.0, 100.0]);
        assert!(v[3..].iter().all(|x| (0.0..=255.0).contains(x)));
        assert_eq!(v[3], 178.0); // 1.402 * (255 - 128), rounded
    }
}
