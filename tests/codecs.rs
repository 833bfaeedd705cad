//! The DICOM codecs decoded by the crate itself (src/image/dicom/jpegls.rs, rle.rs): JPEG-LS
//! streams that CharLS encoded (tools/reference/jpegls_fixtures.py: lossless and near-lossless,
//! 8 to 16 bits, one and three components in every interleave mode) decode to CharLS's values,
//! and damaged streams of both codecs are errors, never panics.

use medground::image::dicom::{jpegls, rle};

const CASES: [(&str, usize, usize, usize, u8); 10] = [
    ("grey8", 37, 23, 1, 8),
    ("grey12", 41, 30, 1, 12),
    ("grey16", 29, 17, 1, 16),
    ("grey8_near2", 37, 23, 1, 8),
    ("grey16_near3", 29, 17, 1, 16),
    ("rgb8_none", 21, 19, 3, 8),
    ("rgb8_line", 21, 19, 3, 8),
    ("rgb8_sample", 21, 19, 3, 8),
    ("rgb8_sample_near1", 21, 19, 3, 8),
    ("rgb8_line_near2", 21, 19, 3, 8),
];

fn fixture(name: &str) -> (Vec<u8>, Vec<u16>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jpegls");
    let stream = std::fs::read(format!("{dir}/{name}.jls")).unwrap();
    let raw = std::fs::read(format!("{dir}/{name}.u16")).unwrap();
    let want = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    (stream, want)
}

#[test]
fn jpegls_streams_decode_to_charls_values() {
    for (name, width, height, components, precision) in CASES {
        let (stream, want) = fixture(name);
        let d = jpegls::decode(&stream).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (d.width, d.height, d.components, d.precision),
            (width, height, components, precision),
            "{name}"
        );
        let wrong = d.samples.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(wrong, 0, "{name}: {wrong} of {} samples differ", want.len());
        assert_eq!(d.samples.len(), want.len(), "{name}");
    }
}

/// A small deterministic generator (no dependency for a test's noise).
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn damaged_jpegls_streams_are_errors_not_panics() {
    let mut state = 0x9E37_79B9_7F4A_7C15;
    let mut errors = 0;
    for (name, ..) in CASES {
        let (stream, _) = fixture(name);
        for cut in [0, 1, 2, 3, 10, 20, stream.len() / 2, stream.len() - 2] {
            if jpegls::decode(&stream[..cut]).is_err() {
                errors += 1;
            }
        }
        for _ in 0..300 {
            let mut s = stream.clone();
            for _ in 0..1 + next(&mut state) % 4 {
                let i = next(&mut state) as usize % s.len();
                s[i] = next(&mut state) as u8;
            }
            if jpegls::decode(&s).is_err() {
                errors += 1;
            }
        }
    }
    // Every cut short of the end marker but the last is refused; mutations mostly decode to
    // other values, some are refused: what matters is that none panicked.
    assert!(errors >= CASES.len() * 7, "{errors} errors");
}

#[test]
fn damaged_rle_frames_are_errors_not_panics() {
    // A 16 x 16 frame of 16 bits: two segments, a literal run and repeats each.
    let mut frame = vec![0u8; 64];
    frame[..4].copy_from_slice(&2u32.to_le_bytes());
    let mut seg = vec![];
    for row in 0..16u8 {
        seg.extend([7, row, 1, 2, 3, 4, 5, 6, 7, 0xF9, row]);
    }
    frame[4..8].copy_from_slice(&64u32.to_le_bytes());
    frame[8..12].copy_from_slice(&(64 + seg.len() as u32).to_le_bytes());
    frame.extend(&seg);
    frame.extend(&seg);
    let good = rle::decode(&frame, 16, 16, 1, 16).unwrap();
    assert_eq!(&good[..4], &[0, 0, 1, 1]);
    let mut state = 0x2545_F491_4F6C_DD1D;
    for _ in 0..2000 {
        let mut f = frame.clone();
        for _ in 0..1 + next(&mut state) % 4 {
            let i = next(&mut state) as usize % f.len();
            f[i] = next(&mut state) as u8;
        }
        let cut = f.len() - next(&mut state) as usize % 40;
        let _ = rle::decode(&f[..cut], 16, 16, 1, 16);
    }
}
