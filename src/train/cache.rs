//! The frozen vision tower, outside the autodiff graph and remembered.
//!
//! In stage 2 the tower is frozen: its patch features depend on the pixels alone, so nothing is
//! gained by recording its forward pass for autodiff, and a film seen again (a dataset's next
//! epoch, or another phrase on the same film) needs no second pass. [`FeatureCache`] runs the
//! tower without autodiff on the films it has not seen and keeps their features, keyed by a hash
//! of the model input's pixel values, up to a budget in bytes; past the budget it computes and
//! forgets. The features are the tower's exact output for those pixels (no augmentation happens
//! after the pixels are made), so a cached step is the uncached step's arithmetic.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::sync::Mutex;

use burn::prelude::*;

use crate::model::vision::VisionTransformer;

/// A key for one model input's pixels: a hash of the values' bytes.
pub fn pixel_key(pixels: &[f32]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write_usize(pixels.len());
    h.write(bytemuck::cast_slice(pixels));
    h.finish()
}

/// Features of films already seen, `[patches, hidden]` each, without autodiff.
pub struct FeatureCache {
    entries: Mutex<Entries>,
    budget: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<u64, Tensor<2>>,
    bytes: usize,
    hits: u64,
    misses: u64,
}

impl FeatureCache {
    /// A cache holding at most `budget` bytes of features; 0 keeps nothing (the tower still
    /// runs outside autodiff).
    pub fn new(budget: usize) -> Self {
        Self {
            entries: Mutex::default(),
            budget,
        }
    }

    /// (hits, misses) so far: films served from the cache, films the tower ran on.
    pub fn counts(&self) -> (u64, u64) {
        let e = self.lock();
        (e.hits, e.misses)
    }

    /// Bytes of features held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic elsewhere cannot leave the map half-written: inserts are single calls.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tower's patch features `[films, patches, hidden]` for `pixels` (`[films, C, H, W]`,
    /// one key per film), on `pixels`' device and untracked: the films not cached go through the
    /// tower in one batch without autodiff, the others come from the cache.
    pub fn patches(&self, tower: &VisionTransformer, pixels: Tensor<4>, keys: &[u64]) -> Tensor<3> {
        let autodiff = pixels.is_autodiff();
        let pixels = pixels.inner();
        let mut rows: Vec<Option<Tensor<2>>> = {
            let e = self.lock();
            keys.iter().map(|k| e.map.get(k).cloned()).collect()
        };
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| rows[i].is_none()).collect();
        if !missing.is_empty() {
            let device = pixels.device();
            let index: Vec<i64> = missing.iter().map(|&i| i as i64).collect();
            let index =
                Tensor::<1, Int>::from_data(TensorData::new(index, [missing.len()]), &device);
            let input = if missing.len() == keys.len() {
                pixels
            } else {
                pixels.select(0, index)
            };
            let features = tower.valid().forward(input);
            let [_, n, d] = features.dims();
            let mut e = self.lock();
            for (j, &i) in missing.iter().enumerate() {
                let row = features
                    .clone()
                    .slice([j..j + 1, 0..n, 0..d])
                    .reshape([n, d]);
                let size = n * d * 4;
                if e.bytes + size <= self.budget && !e.map.contains_key(&keys[i]) {
                    e.map.insert(keys[i], row.clone());
                    e.bytes += size;
                }
                rows[i] = Some(row);
            }
        }
        {
            let mut e = self.lock();
            e.misses += missing.len() as u64;
            e.hits += (keys.len() - missing.len()) as u64;
        }
        let rows: Vec<Tensor<2>> = rows.into_iter().flatten().collect();
        let out = Tensor::stack(rows, 0);
        if autodiff { out.autodiff() } else { out }
    }
}

/// Whether `tower` has no parameter that takes gradients (its features then depend on the
/// pixels alone).
pub fn frozen(tower: &VisionTransformer) -> bool {
    crate::train::base::trainable_params(tower) == 0
}
