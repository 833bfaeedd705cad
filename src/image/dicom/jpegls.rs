//! A JPEG-LS decoder (ITU-T T.87 / ISO 14495-1, the LOCO-I coder DICOM's syntaxes
//! 1.2.840.10008.1.2.4.80 and .81 carry): lossless and near-lossless, 2 to 16 bits, one or more
//! components, none, line or sample interleaved, preset parameters from an LSE segment. Mapping
//! tables and point transforms are refused by name. Every read is bounds-checked: a damaged
//! stream is an error, never a panic. Held to pydicom (CharLS) by `tests/dicom_conformance.rs`.

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

fn broken(what: impl std::fmt::Display) -> Error {
    Error::Dicom(format!("broken DICOM: JPEG-LS {what}"))
}

fn unsupported(what: impl std::fmt::Display) -> Error {
    Error::Dicom(format!("unsupported DICOM: JPEG-LS {what}"))
}

/// The golomb code length of each run index (T.87 A.2.1).
const J: [u32; 32] = [
    0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13,
    14, 15,
];

/// Coding parameters of a scan (T.87 C.2.4.1).
#[derive(Debug, Clone, Copy)]
struct Params {
    maxval: i32,
    t1: i32,
    t2: i32,
    t3: i32,
    reset: i32,
    near: i32,
}

impl Params {
    /// Defaults for `maxval` and `near` (C.2.4.1.1), then what an LSE segment set (0 = default).
    fn new(maxval: i32, near: i32, preset: [i32; 5]) -> Self {
        let clamp = |i: i32, j: i32| if i > maxval || i < j { j } else { i };
        let (t1, t2, t3) = if maxval >= 128 {
            let f = (maxval.min(4095) + 128) / 256;
            let t1 = clamp(f * (3 - 2) + 2 + 3 * near, near + 1);
            let t2 = clamp(f * (7 - 3) + 3 + 5 * near, t1);
            (t1, t2, clamp(f * (21 - 4) + 4 + 7 * near, t2))
        } else {
            let f = 256 / (maxval + 1);
            let t1 = clamp((3 / f + 3 * near).max(2), near + 1);
            let t2 = clamp((7 / f + 5 * near).max(3), t1);
            (t1, t2, clamp((21 / f + 7 * near).max(4), t2))
        };
        let pick = |set: i32, default: i32| if set == 0 { default } else { set };
        Self {
            maxval: pick(preset[0], maxval),
            t1: pick(preset[1], t1),
            t2: pick(preset[2], t2),
            t3: pick(preset[3], t3),
            reset: pick(preset[4], 64),
            near,
        }
    }
}

/// Scan data with the marker stuffing undone: after a 0xFF byte only 7 bits follow.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    word: u64,
    held: u32,
    /// Zero bits supplied past the end of the data (a cut stream reads as zeros, then fails).
    past: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            at: 0,
            word: 0,
            held: 0,
            past: 0,
        }
    }

    fn fill(&mut self) -> Result<()> {
        while self.held <= 56 {
            let Some(&b) = self.data.get(self.at) else {
                self.past += 8;
                if self.past > 64 * 8 {
                    return Err(broken("scan data ends early"));
                }
                self.held += 8;
                continue;
            };
            // A marker (0xFF then a byte with its top bit set) ends the scan.
            if b == 0xFF && self.data.get(self.at + 1).is_some_and(|&n| n & 0x80 != 0) {
                self.data = &self.data[..self.at];
                continue;
            }
            let stuffed = self.at > 0 && self.data[self.at - 1] == 0xFF;
            self.at += 1;
            if stuffed {
                self.word |= u64::from(b & 0x7F) << (57 - self.held);
                self.held += 7;
            } else {
                self.word |= u64::from(b) << (56 - self.held);
                self.held += 8;
            }
        }
        Ok(())
    }

    fn read(&mut self, n: u32) -> Result<i32> {
        if n == 0 {
            return Ok(0);
        }
        if self.held < n {
            self.fill()?;
        }
        let v = (self.word >> (64 - n)) as i32;
        self.word <<= n;
        self.held -= n;
        Ok(v)
    }

    fn bit(&mut self) -> Result<bool> {
        Ok(self.read(1)? == 1)
    }

    /// Zero bits before the next one bit (the unary part of a Golomb code), at most `limit`.
    fn zeros(&mut self, limit: i32) -> Result<i32> {
        let mut n = 0;
        while !self.bit()? {
            n += 1;
            if n > limit {
                return Err(broken("code longer than its limit"));
            }
        }
        Ok(n)
    }
}

/// The statistics of a regular context (A.2.1).
#[derive(Clone, Copy)]
struct Context {
    a: i32,
    b: i32,
    c: i32,
    n: i32,
}

/// The statistics of the two run-interruption contexts (A.7.2).
#[derive(Clone, Copy)]
struct RunContext {
    a: i32,
    n: i32,
    nn: i32,
}

/// The state of one scan: parameters, derived lengths and the contexts.
struct Coder {
    p: Params,
    range: i32,
    qbpp: i32,
    limit: i32,
    regular: Vec<Context>,
    runs: [RunContext; 2],
}

fn ceil_log2(v: i32) -> i32 {
    let mut n = 0;
    while (1i64 << n) < i64::from(v) {
        n += 1;
    }
    n
}

impl Coder {
    fn new(p: Params) -> Result<Self> {
        if p.maxval < 1 || p.near < 0 || p.near > (p.maxval / 2).min(255) || p.reset < 3 {
            return Err(broken("coding parameters out of range"));
        }
        if !(p.near + 1 <= p.t1 && p.t1 <= p.t2 && p.t2 <= p.t3 && p.t3 <= p.maxval) {
            return Err(broken("thresholds out of order"));
        }
        let range = (p.maxval + 2 * p.near) / (2 * p.near + 1) + 1;
        let qbpp = ceil_log2(range);
        let bpp = ceil_log2(p.maxval + 1).max(2);
        let a = ((range + 32) >> 6).max(2);
        Ok(Self {
            p,
            range,
            qbpp,
            limit: 2 * (bpp + bpp.max(8)),
            regular: vec![
                Context {
                    a,
                    b: 0,
                    c: 0,
                    n: 1
                };
                365
            ],
            runs: [RunContext { a, n: 1, nn: 0 }; 2],
        })
    }

    fn quantize(&self, d: i32) -> i32 {
        let Params {
            t1, t2, t3, near, ..
        } = self.p;
        match d {
            d if d <= -t3 => -4,
            d if d <= -t2 => -3,
            d if d <= -t1 => -2,
            d if d < -near => -1,
            d if d <= near => 0,
            d if d < t1 => 1,
            d if d < t2 => 2,
            d if d < t3 => 3,
            _ => 4,
        }
    }

    /// A mapped error value: a limited-length Golomb code of parameter `k` (A.5.3).
    fn golomb(&self, bits: &mut Bits, k: i32, limit: i32) -> Result<i32> {
        let high = bits.zeros(limit)?;
        if high >= limit - (self.qbpp + 1) {
            return Ok(bits.read(self.qbpp as u32)? + 1);
        }
        if k > 24 {
            return Err(broken("Golomb parameter out of range"));
        }
        Ok((high << k) + bits.read(k as u32)?)
    }

    /// The reconstructed sample: the prediction plus the dequantised error, brought back into
    /// the range modulo (A.4.2) and clamped.
    fn reconstruct(&self, px: i32, err: i32) -> i32 {
        let step = 2 * self.p.near + 1;
        let mut x = px + err * step;
        if x < -self.p.near {
            x += self.range * step;
        } else if x > self.p.maxval + self.p.near {
            x -= self.range * step;
        }
        x.clamp(0, self.p.maxval)
    }

    /// A sample in regular mode with context `qs` (signed) and neighbours a, b, c (A.3-A.6).
    fn regular(&mut self, bits: &mut Bits, qs: i32, a: i32, b: i32, c: i32) -> Result<i32> {
        let sign = if qs < 0 { -1 } else { 1 };
        let q = (qs * sign) as usize;
        let ctx = self.regular[q];
        let predicted = if c >= a.max(b) {
            a.min(b)
        } else if c <= a.min(b) {
            a.max(b)
        } else {
            a + b - c
        };
        let px = (predicted + sign * ctx.c).clamp(0, self.p.maxval);
        let mut k = 0;
        while (ctx.n << k) < ctx.a {
            k += 1;
            if k > 30 {
                return Err(broken("context statistics out of range"));
            }
        }
        let m = self.golomb(bits, k, self.limit)?;
        let mut err = (m >> 1) ^ -(m & 1);
        if k == 0 && self.p.near == 0 && 2 * ctx.b + ctx.n - 1 < 0 {
            err = !err;
        }
        self.update(q, err);
        Ok(self.reconstruct(px, err * sign))
    }

    /// Context update and bias correction (A.6).
    fn update(&mut self, q: usize, err: i32) {
        let (near, reset) = (self.p.near, self.p.reset);
        let ctx = &mut self.regular[q];
        ctx.b += err * (2 * near + 1);
        ctx.a += err.abs();
        if ctx.n == reset {
            ctx.a >>= 1;
            ctx.b = if ctx.b >= 0 {
                ctx.b >> 1
            } else {
                -((1 - ctx.b) >> 1)
            };
            ctx.n >>= 1;
        }
        ctx.n += 1;
        if ctx.b <= -ctx.n {
            ctx.b += ctx.n;
            ctx.c = (ctx.c - 1).max(-128);
            ctx.b = ctx.b.max(-ctx.n + 1);
        } else if ctx.b > 0 {
            ctx.b -= ctx.n;
            ctx.c = (ctx.c + 1).min(127);
            ctx.b = ctx.b.min(0);
        }
    }

    /// The error of a run-interruption sample in context `ri` (0 or 1) (A.7.2).
    fn interruption(&mut self, bits: &mut Bits, ri: usize, run_index: usize) -> Result<i32> {
        let ctx = self.runs[ri];
        let temp = ctx.a + (ctx.n >> 1) * ri as i32;
        let mut k = 0;
        while (ctx.n << k) < temp {
            k += 1;
            if k > 30 {
                return Err(broken("run statistics out of range"));
            }
        }
        let limit = self.limit - J[run_index] as i32 - 1;
        let em = self.golomb(bits, k, limit)?;
        let t = em + ri as i32;
        let map = t & 1;
        let magnitude = (t + map) / 2;
        let err = if (k != 0 || 2 * ctx.nn >= ctx.n) == (map != 0) {
            -magnitude
        } else {
            magnitude
        };
        let ctx = &mut self.runs[ri];
        if err < 0 {
            ctx.nn += 1;
        }
        ctx.a += (em + 1 - ri as i32) >> 1;
        if ctx.n == self.p.reset {
            ctx.a >>= 1;
            ctx.n >>= 1;
            ctx.nn >>= 1;
        }
        ctx.n += 1;
        Ok(err)
    }
}

/// One scan's lines: `n` samples a pixel (1, or every component when sample interleaved),
/// each line padded by one pixel on both sides.
struct Lines {
    n: usize,
    width: usize,
    prev: Vec<i32>,
    cur: Vec<i32>,
    run_index: usize,
}

impl Lines {
    fn new(n: usize, width: usize) -> Self {
        Self {
            n,
            width,
            prev: vec![0; (width + 2) * n],
            cur: vec![0; (width + 2) * n],
            run_index: 0,
        }
    }

    /// Decodes the next line into `self.cur` (pixels 1..=width).
    fn decode(&mut self, coder: &mut Coder, bits: &mut Bits) -> Result<()> {
        let (n, w) = (self.n, self.width);
        std::mem::swap(&mut self.prev, &mut self.cur);
        // Edges (A.2.1): the line above continues past its end; left of the line is the pixel
        // above, and above-left is what was left of the line above.
        for s in 0..n {
            self.prev[(w + 1) * n + s] = self.prev[w * n + s];
            self.cur[s] = self.prev[n + s];
        }
        let mut x = 1;
        while x <= w {
            let mut qs = [0i32; 4];
            let mut all_zero = true;
            for (s, q) in qs.iter_mut().enumerate().take(n) {
                let (a, b) = (self.cur[(x - 1) * n + s], self.prev[x * n + s]);
                let (c, d) = (self.prev[(x - 1) * n + s], self.prev[(x + 1) * n + s]);
                *q =
                    (coder.quantize(d - b) * 9 + coder.quantize(b - c)) * 9 + coder.quantize(c - a);
                all_zero &= *q == 0;
            }
            if all_zero {
                x = self.run(coder, bits, x)?;
                continue;
            }
            for (s, &q) in qs.iter().enumerate().take(n) {
                let (a, b) = (self.cur[(x - 1) * n + s], self.prev[x * n + s]);
                let c = self.prev[(x - 1) * n + s];
                self.cur[x * n + s] = coder.regular(bits, q, a, b, c)?;
            }
            x += 1;
        }
        Ok(())
    }

    /// Run mode from pixel `x`: the run's length, then the interrupting pixel (A.7); returns the
    /// next pixel to decode.
    fn run(&mut self, coder: &mut Coder, bits: &mut Bits, x: usize) -> Result<usize> {
        let (n, w) = (self.n, self.width);
        let left = x - 1;
        let remaining = w + 1 - x;
        let mut count = 0;
        while bits.bit()? {
            let step = (1usize << J[self.run_index]).min(remaining - count);
            count += step;
            if step == 1 << J[self.run_index] && self.run_index < 31 {
                self.run_index += 1;
            }
            if count == remaining {
                break;
            }
        }
        if count != remaining {
            count += bits.read(J[self.run_index])? as usize;
        }
        if count > remaining {
            return Err(broken("run longer than its line"));
        }
        for i in x..x + count {
            for s in 0..n {
                self.cur[i * n + s] = self.cur[left * n + s];
            }
        }
        let end = x + count;
        if end > w {
            return Ok(end);
        }
        // The interrupting pixel: one component compares its neighbours; sample-interleaved
        // pixels code every component against the pixel above in context 0.
        for s in 0..n {
            let (a, b) = (self.cur[left * n + s], self.prev[end * n + s]);
            self.cur[end * n + s] = if n == 1 && (a - b).abs() <= coder.p.near {
                let err = coder.interruption(bits, 1, self.run_index)?;
                coder.reconstruct(a, err)
            } else {
                let err = coder.interruption(bits, 0, self.run_index)?;
                coder.reconstruct(b, if b >= a { err } else { -err })
            };
        }
        self.run_index = self.run_index.saturating_sub(1);
        Ok(end + 1)
    }
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
