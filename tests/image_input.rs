//! Image input on real files: a DICOM chest film (MONOCHROME1, rescale, VOI window) against what
//! pydicom shows for it, and malformed files as errors rather than panics.

use std::path::{Path, PathBuf};

use medground::Error;
use medground::image::decode;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn dicom_film_matches_the_reference_rendering() {
    let film = decode(&std::fs::read(fixture("chest_rg1.dcm")).unwrap()).unwrap();
    let want = decode(&std::fs::read(fixture("chest_rg1_expected.png")).unwrap()).unwrap();
    assert_eq!(
        (film.width, film.height, film.channels),
        (want.width, want.height, 1)
    );
    let mut worst = 0.0f32;
    for (a, b) in film.data.iter().zip(&want.data) {
        worst = worst.max((a - b).abs());
    }
    assert!(worst <= 2.0 / 255.0, "largest difference {worst}");
    // MONOCHROME1 inverted: the spine (centre column) is brighter than the lung fields.
    let at = |x: u32, y: u32| film.data[(y * film.width + x) as usize];
    assert!(at(film.width / 2, film.height / 2) > at(film.width / 4, film.height / 3));
}

#[test]
fn truncated_dicom_is_an_error() {
    let bytes = std::fs::read(fixture("chest_rg1.dcm")).unwrap();
    for cut in [140, 600, bytes.len() / 2, bytes.len() - 1] {
        let e = decode(&bytes[..cut]).expect_err("truncated DICOM decoded");
        assert!(matches!(e, Error::Dicom(_)), "cut at {cut}: {e}");
    }
}
