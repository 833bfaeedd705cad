//! A JPEG-LS decoder (ITU-T T.87 / ISO 14495-1, the LOCO-I coder DICOM's syntaxes
//! 1.2.840.10008.1.2.4.80 and .81 carry): lossless and near-lossless, 2 to 16 bits, one or more
//! components, none, line or sample interleaved, preset parameters from an LSE segment. Mapping
//! tables and point transforms are refused by name. Every read is bounds-checked: a damaged
//! stream is an error, never a panic. Held to pydicom (CharLS) by `tests/dicom_conformance.rs`.

mod bits;
mod coder;
mod lines;

use self::bits::Bits;
use self::coder::{Coder, Params};
use self::lines::Lines;
use crate::error::{Error, Result};

/// A decoded image: samples interleaved pixel by pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    pub components: usize,
    /// Bits per sample of the frame header (2-16).
    pub precision: u8,
    pub samples: Vec<u16>,
}

pub(super) fn broken(what: impl std::fmt::Display) -> Error {
    Error::Dicom(format!("broken DICOM: JPEG-LS {what}"))
}

pub(super) fn unsupported(what: impl std::fmt::Display) -> Error {
    Error::Dicom(format!("unsupported DICOM: JPEG-LS {what}"))
}

/// The most samples a frame may hold (a damaged header must not ask for gigabytes).
const MAX_SAMPLES: usize = 1 << 27;

/// Where scan data starting at `data` ends: the first 0xFF followed by a byte with its top
/// bit set (inside the data 0xFF is always followed by a stuffed byte below 0x80).
fn scan_end(data: &[u8]) -> usize {
    data.windows(2)
        .position(|w| w[0] == 0xFF && w[1] & 0x80 != 0)
        .unwrap_or(data.len())
}

/// A big-endian u16 at `at`.
fn u16_at(data: &[u8], at: usize) -> Result<usize> {
    data.get(at..at + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| broken("cut inside a marker segment"))
}

/// Decodes a JPEG-LS stream (one image; every scan it holds).
pub fn decode(data: &[u8]) -> Result<Decoded> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err(broken("stream without a start-of-image marker"));
    }
    let mut frame: Option<(usize, usize, u8, Vec<u8>)> = None;
    let mut preset = [0i32; 5];
    let mut out: Vec<u16> = vec![];
    let mut at = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while data.get(at) == Some(&0xFF) && data.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = match data.get(at..at + 2) {
            Some([0xFF, m]) => *m,
            _ => return Err(broken("marker expected")),
        };
        at += 2;
        if marker == 0xD9 {
            break;
        }
        let len = u16_at(data, at)?;
        let seg = data
            .get(at + 2..at + len)
            .filter(|_| len >= 2)
            .ok_or_else(|| broken("segment cut short"))?;
        at += len;
        match marker {
            0xF7 => {
                // SOF55: precision, lines, columns, components.
                if seg.len() < 6 {
                    return Err(broken("frame header cut short"));
                }
                let (precision, height) =
                    (seg[0], usize::from(u16::from_be_bytes([seg[1], seg[2]])));
                let width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
                let nf = usize::from(seg[5]);
                if !(2..=16).contains(&precision) || width == 0 || height == 0 {
                    return Err(unsupported(format!(
                        "frame of {width} x {height}, {precision} bits"
                    )));
                }
                if nf == 0 || nf > 4 || seg.len() < 6 + 3 * nf {
                    return Err(broken("frame header with a bad component count"));
                }
                if width * height * nf > MAX_SAMPLES {
                    return Err(unsupported(format!("frame of {width} x {height} x {nf}")));
                }
                let ids = (0..nf).map(|i| seg[6 + 3 * i]).collect();
                out = vec![0; width * height * nf];
                frame = Some((width, height, precision, ids));
            }
            0xF8 => {
                // LSE: only preset coding parameters (id 1).
                match seg.first() {
                    Some(1) if seg.len() >= 11 => {
                        for (i, p) in preset.iter_mut().enumerate() {
                            *p = i32::from(u16::from_be_bytes([seg[1 + 2 * i], seg[2 + 2 * i]]));
                        }
                    }
                    Some(id) => return Err(unsupported(format!("LSE segment of type {id}"))),
                    None => return Err(broken("empty LSE segment")),
                }
            }
            0xDA => {
                let (width, height, precision, ids) = frame
                    .as_ref()
                    .ok_or_else(|| broken("scan before the frame header"))?;
                let used = scan(
                    seg,
                    &data[at..],
                    (*width, *height, *precision),
                    ids,
                    preset,
                    &mut out,
                )?;
                at += used;
            }
            0xC0..=0xCF | 0xDD => {
                return Err(unsupported(format!("stream with marker 0xFF{marker:02X}")));
            }
            _ => {} // APPn, COM and the like carry nothing the pixels need.
        }
    }
    let (width, height, precision, ids) = frame.ok_or_else(|| broken("stream without a frame"))?;
    Ok(Decoded {
        width,
        height,
        components: ids.len(),
        precision,
        samples: out,
    })
}

/// One scan (header `seg`, entropy-coded data from `data`) into `out`; returns the bytes of
/// `data` it used.
fn scan(
    seg: &[u8],
    data: &[u8],
    (width, height, precision): (usize, usize, u8),
    ids: &[u8],
    preset: [i32; 5],
    out: &mut [u16],
) -> Result<usize> {
    let ns = usize::from(*seg.first().ok_or_else(|| broken("empty scan header"))?);
    if ns == 0 || ns > ids.len() || seg.len() < 1 + 2 * ns + 3 {
        return Err(broken("scan header with a bad component count"));
    }
    let mut comps = vec![];
    for i in 0..ns {
        let (id, table) = (seg[1 + 2 * i], seg[2 + 2 * i]);
        if table != 0 {
            return Err(unsupported("mapping tables"));
        }
        let c = ids
            .iter()
            .position(|&x| x == id)
            .ok_or_else(|| broken("scan names an unknown component"))?;
        comps.push(c);
    }
    let (near, ilv, pt) = (i32::from(seg[1 + 2 * ns]), seg[2 + 2 * ns], seg[3 + 2 * ns]);
    if pt & 0x0F != 0 {
        return Err(unsupported("point transform"));
    }
    if ilv > 2 {
        return Err(broken(format!("interleave mode {ilv}")));
    }
    let params = Params::new((1i32 << precision) - 1, near, preset);
    let mut coder = Coder::new(params)?;
    let mut bits = Bits::new(data);
    let nc = ids.len();
    let store = |line: &Lines, y: usize, comp: &[usize], out: &mut [u16]| {
        for x in 0..width {
            for (s, &c) in comp.iter().enumerate() {
                out[(y * width + x) * nc + c] = line.cur[(x + 1) * line.n + s] as u16;
            }
        }
    };
    match ilv {
        2 if ns > 1 => {
            let mut lines = Lines::new(ns, width);
            for y in 0..height {
                lines.decode(&mut coder, &mut bits)?;
                store(&lines, y, &comps, out);
            }
        }
        _ => {
            // One component a line in turn (line interleaved) or a scan per component.
            let mut lines: Vec<Lines> = comps.iter().map(|_| Lines::new(1, width)).collect();
            for y in 0..height {
                for (l, &c) in lines.iter_mut().zip(&comps) {
                    l.decode(&mut coder, &mut bits)?;
                    store(l, y, &[c], out);
                }
            }
        }
    }
    Ok(scan_end(data))
}
