//! The coding state of a scan: its parameters (T.87 C.2.4.1), the regular and run-interruption
//! contexts, Golomb decoding, prediction and reconstruction (A.3-A.7).

use super::bits::Bits;
use super::broken;
use crate::error::Result;

/// The golomb code length of each run index (T.87 A.2.1).
pub(super) const J: [u32; 32] = [
    0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13,
    14, 15,
];

/// Coding parameters of a scan (T.87 C.2.4.1).
#[derive(Debug, Clone, Copy)]
pub(super) struct Params {
    pub(super) maxval: i32,
    t1: i32,
    t2: i32,
    t3: i32,
    reset: i32,
    pub(super) near: i32,
}

impl Params {
    /// Defaults for `maxval` and `near` (C.2.4.1.1), then what an LSE segment set (0 = default).
    pub(super) fn new(maxval: i32, near: i32, preset: [i32; 5]) -> Self {
        let clamp = |i: i32, j: i32| if i > maxval || i < j { j } else { i };
        let (t1, t2, t3) = if maxval >= 128 {
            let f = (maxval.min(4095) + 128) / 256;
            // FACTOR * (BASIC_T - k) + k for BASIC_T1..3 = 3, 7, 21 and k = 2, 3, 4.
            let t1 = clamp(f + 2 + 3 * near, near + 1);
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
pub(super) struct Coder {
    pub(super) p: Params,
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
    pub(super) fn new(p: Params) -> Result<Self> {
        if p.maxval < 1 || p.near < 0 || p.near > (p.maxval / 2).min(255) || p.reset < 3 {
            return Err(broken("coding parameters out of range"));
        }
        if !(p.near < p.t1 && p.t1 <= p.t2 && p.t2 <= p.t3 && p.t3 <= p.maxval) {
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

    pub(super) fn quantize(&self, d: i32) -> i32 {
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
    pub(super) fn reconstruct(&self, px: i32, err: i32) -> i32 {
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
    pub(super) fn regular(
        &mut self,
        bits: &mut Bits,
        qs: i32,
        a: i32,
        b: i32,
        c: i32,
    ) -> Result<i32> {
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
    pub(super) fn interruption(
        &mut self,
        bits: &mut Bits,
        ri: usize,
        run_index: usize,
    ) -> Result<i32> {
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
