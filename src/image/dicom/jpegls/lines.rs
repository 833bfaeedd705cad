//! A scan's lines: regular mode sample by sample, run mode over runs of equal pixels (A.7).

use super::bits::Bits;
use super::broken;
use super::coder::{Coder, J};
use crate::error::Result;

/// One scan's lines: `n` samples a pixel (1, or every component when sample interleaved),
/// each line padded by one pixel on both sides.
pub(super) struct Lines {
    pub(super) n: usize,
    width: usize,
    prev: Vec<i32>,
    pub(super) cur: Vec<i32>,
    run_index: usize,
}

impl Lines {
    pub(super) fn new(n: usize, width: usize) -> Self {
        Self {
            n,
            width,
            prev: vec![0; (width + 2) * n],
            cur: vec![0; (width + 2) * n],
            run_index: 0,
        }
    }

    /// Decodes the next line into `self.cur` (pixels 1..=width).
    pub(super) fn decode(&mut self, coder: &mut Coder, bits: &mut Bits) -> Result<()> {
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
