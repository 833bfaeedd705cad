//! DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header of segment offsets, then one PackBits
//! segment per byte plane (each sample's most significant byte first). Written here rather than
//! taken from dicom-rs, whose decoder indexes past the end of a damaged segment and panics;
//! every read here is checked, so a damaged frame is an error.

use crate::error::{Error, Result};

fn broken(what: impl std::fmt::Display) -> Error {
    Error::Dicom(format!("broken DICOM: RLE {what}"))
}

/// One PackBits segment, decoded to at most `len` bytes (a shorter segment is an error).
fn segment(data: &[u8], len: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut at = 0;
    while out.len() < len && at < data.len() {
        let n = data[at] as i8;
        at += 1;
        match n {
            0..=127 => {
                let count = n as usize + 1;
                let bytes = data
                    .get(at..at + count)
                    .ok_or_else(|| broken("literal run past the segment's end"))?;
                out.extend_from_slice(bytes);
                at += count;
            }
            -127..=-1 => {
                let &b = data
                    .get(at)
                    .ok_or_else(|| broken("repeat run past the segment's end"))?;
                out.extend(std::iter::repeat_n(b, (1 - isize::from(n)) as usize));
                at += 1;
            }
            -128 => {}
        }
    }
    if out.len() < len {
        return Err(broken(format!(
            "segment decodes to {} of {len} bytes",
            out.len()
        )));
    }
    out.truncate(len);
    Ok(out)
}

/// A frame of `width` x `height` pixels of `samples` samples of `bits` (8, 16 or 32) bits, as
/// little-endian bytes, samples interleaved.
pub fn decode(
    frame: &[u8],
    width: usize,
    height: usize,
    samples: usize,
    bits: u16,
) -> Result<Vec<u8>> {
    if !matches!(bits, 8 | 16 | 32) {
        return Err(Error::Dicom(format!(
            "unsupported DICOM: RLE of {bits} bits allocated"
        )));
    }
    let bytes = usize::from(bits / 8);
    let planes = samples * bytes;
    let header = frame
        .get(..64)
        .ok_or_else(|| broken("frame shorter than its header"))?;
    let word = |i: usize| u32::from_le_bytes(header[4 * i..4 * i + 4].try_into().unwrap()) as usize;
    if word(0) != planes {
        return Err(broken(format!(
            "frame of {} segments where {planes} were expected",
            word(0)
        )));
    }
    let pixels = width * height;
    let mut out = vec![0u8; pixels * planes];
    for plane in 0..planes {
        let start = word(plane + 1);
        let end = if plane + 1 < planes {
            word(plane + 2)
        } else {
            frame.len()
        };
        let data = frame
            .get(start..end)
            .filter(|_| start >= 64)
            .ok_or_else(|| broken("segment offsets out of order or outside the frame"))?;
        let values = segment(data, pixels)?;
        let (sample, byte) = (plane / bytes, bytes - 1 - plane % bytes);
        for (p, v) in values.into_iter().enumerate() {
            out[(p * samples + sample) * bytes + byte] = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(segments: &[&[u8]]) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(&(segments.len() as u32).to_le_bytes());
        let mut at = 64u32;
        let mut body = vec![];
        for (i, s) in segments.iter().enumerate() {
            header[4 + 4 * i..8 + 4 * i].copy_from_slice(&at.to_le_bytes());
            body.extend_from_slice(s);
            at += s.len() as u32;
        }
        header.extend(body);
        header
    }

    #[test]
    fn packbits_segments_become_little_endian_samples() {
        // 16 bits, 2 x 2: high bytes a literal run of 4, low bytes a repeat of 4 and a no-op.
        let f = frame(&[&[3, 1, 2, 3, 4], &[0x80, 0xFD, 9]]);
        assert_eq!(
            decode(&f, 2, 2, 1, 16).unwrap(),
            vec![9, 1, 9, 2, 9, 3, 9, 4]
        );
        // Two samples of 8 bits are interleaved.
        let f = frame(&[&[1, 5, 6], &[0xFF, 7]]);
        assert_eq!(decode(&f, 2, 1, 2, 8).unwrap(), vec![5, 7, 6, 7]);
    }

    #[test]
    fn damaged_frames_are_errors() {
        let f = frame(&[&[3, 1, 2, 3, 4], &[0xFD, 9]]);
        assert!(decode(&f, 2, 2, 1, 8).is_err()); // 2 segments for 1 plane
        assert!(decode(&f[..60], 2, 2, 1, 16).is_err()); // no header
        let cut = frame(&[&[5, 1, 2]]);
        assert!(decode(&cut, 2, 3, 1, 8).is_err()); // literal run past the end
        let short = frame(&[&[0xFE, 1]]);
        assert!(decode(&short, 2, 3, 1, 8).is_err()); // 3 of 6 bytes
        let mut bad = frame(&[&[3, 1, 2, 3, 4]]);
        bad[4..8].copy_from_slice(&1000u32.to_le_bytes());
        assert!(decode(&bad, 2, 2, 1, 8).is_err());
        assert!(decode(&bad, 2, 2, 1, 12).is_err());
    }
}
