//! The entropy-coded bits of a scan, with the marker stuffing undone.

use super::broken;
use crate::error::Result;

/// Scan data with the marker stuffing undone: after a 0xFF byte only 7 bits follow.
pub(super) struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    word: u64,
    held: u32,
    /// Zero bits supplied past the end of the data (a cut stream reads as zeros, then fails).
    past: u32,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
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

    pub(super) fn read(&mut self, n: u32) -> Result<i32> {
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

    pub(super) fn bit(&mut self) -> Result<bool> {
        Ok(self.read(1)? == 1)
    }

    /// Zero bits before the next one bit (the unary part of a Golomb code), at most `limit`.
    pub(super) fn zeros(&mut self, limit: i32) -> Result<i32> {
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
