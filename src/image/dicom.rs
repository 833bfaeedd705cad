//! DICOM (Part 10) films through dicom-rs: stored values -> modality rescale (slope, intercept)
//! -> VOI window (the file's first window, else the full range) -> MONOCHROME1 inverted, so bright
//! always means dense.

use std::io::Cursor;

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use dicom_object::file::ReadPreamble;
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder, VoiLutOption};

use super::{Picture, check_size};
use crate::error::{Error, Result};

pub fn decode(bytes: &[u8]) -> Result<Picture> {
    let bad = |e: &dyn std::fmt::Display| Error::Dicom(e.to_string());
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .from_reader(Cursor::new(bytes))
        .map_err(|e| bad(&e))?;
    let number = |tag, default: f64| -> f64 {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_multi_float64().ok())
            .and_then(|v| v.first().copied())
            .unwrap_or(default)
    };
    let rows = obj
        .element(tags::ROWS)
        .ok()
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(0);
    let cols = obj
        .element(tags::COLUMNS)
        .ok()
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(0);
    check_size(cols, rows).map_err(|e| Error::Dicom(e.to_string()))?;
    let (slope, intercept) = (
        number(tags::RESCALE_SLOPE, 1.0),
        number(tags::RESCALE_INTERCEPT, 0.0),
    );
    let window = (
        number(tags::WINDOW_CENTER, f64::NAN),
        number(tags::WINDOW_WIDTH, f64::NAN),
    );

    let decoded = obj.decode_pixel_data().map_err(|e| bad(&e))?;
    let samples = decoded.samples_per_pixel() as usize;
    if !(samples == 1 || samples == 3) {
        return Err(Error::Dicom(format!(
            "{samples} samples per pixel are not supported"
        )));
    }
    let raw: Vec<f64> = decoded
        .to_vec_frame_with_options(
            0,
            &ConvertOptions::new()
                .with_modality_lut(ModalityLutOption::None)
                .with_voi_lut(VoiLutOption::Identity),
        )
        .map_err(|e| bad(&e))?;
    let expected = decoded.rows() as usize * decoded.columns() as usize * samples;
    if raw.len() != expected {
        return Err(Error::Dicom(format!(
            "pixel data holds {} values, expected {expected}",
            raw.len()
        )));
    }
    let photometric = decoded.photometric_interpretation().to_string();
    let (width, height) = (decoded.columns(), decoded.rows());
    if samples == 3 {
        let data = raw
            .iter()
            .map(|&v| (v / 255.0).clamp(0.0, 1.0) as f32)
            .collect();
        return Picture::new(width, height, 3, data);
    }
    let values: Vec<f64> = raw.iter().map(|&v| v * slope + intercept).collect();
    let (center, width_w) = if window.0.is_finite() && window.1.is_finite() && window.1 >= 1.0 {
        window
    } else {
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        ((lo + hi) / 2.0 + 0.5, (hi - lo).max(1.0) + 1.0)
    };
    let invert = photometric.trim() == "MONOCHROME1";
    let data = values
        .into_iter()
        .map(|v| {
            let y = voi_linear(v, center, width_w) as f32;
            if invert { 1.0 - y } else { y }
        })
        .collect();
    Picture::new(width, height, 1, data)
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
