//! Does the model know this kind of image? A Gaussian over the frozen vision tower's pooled
//! features of the films a model was trained on (the mean of each quadrant of the patch grid,
//! so that a film upside down or on its side moves too), fitted by `calibrate` and kept in the
//! bundle as `ood.safetensors`. The score is the squared Mahalanobis distance in the top
//! principal directions plus the residual outside them, divided by its median on the fitting
//! films: about 1 for a typical film of the training kind, far larger for a photo, another
//! modality or a blank. The threshold is set on held-out films of the training kind only
//! (`MARGIN` times their 99th percentile): images from outside never choose it.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};

/// The file a bundle keeps its out-of-distribution model in (optional; in the manifest).
pub const FILE: &str = "ood.safetensors";
/// Principal directions kept (fewer where the features or the films are fewer).
pub const COMPONENTS: usize = 64;
/// The threshold over the 99th percentile of held-out in-distribution scores: real films of
/// the same kind differ from synthetic ones more than two synthetic films differ.
pub const MARGIN: f32 = 3.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Ood {
    pub mean: Vec<f32>,
    /// `k` unit directions of `dim` values each, row-major.
    pub components: Vec<f32>,
    /// The features' variance along each direction.
    pub variances: Vec<f32>,
    /// Mean variance per dimension outside the kept directions.
    pub residual: f32,
    /// Median raw distance on the fitting films (scores are divided by it).
    pub scale: f32,
    /// Scores above it are outside what the model knows.
    pub threshold: f32,
    /// The 99th percentile of the held-out films' scores: above it a film is unusual for the
    /// model (a real film of a model trained on synthetic ones) though not outside.
    pub typical: f32,
    pub fitted_on: String,
    pub n: usize,
}

/// 2x2 quadrant means of a square grid of `tokens` patch features of `dim` values each.
pub fn pool(patches: &[f32], tokens: usize, dim: usize) -> Vec<f32> {
    let side = (tokens as f64).sqrt().round() as usize;
    let mut out = vec![0.0f32; 4 * dim];
    let mut counts = [0usize; 4];
    for t in 0..tokens.min(patches.len() / dim.max(1)) {
        let (r, c) = if side * side == tokens {
            (t / side, t % side)
        } else {
            (t * 2 / tokens.max(1), 0) // not a grid: halves in order
        };
        let q = usize::from(r * 2 >= side.max(1)) * 2 + usize::from(c * 2 >= side.max(1));
        counts[q] += 1;
        for (o, &v) in out[q * dim..(q + 1) * dim]
            .iter_mut()
            .zip(&patches[t * dim..(t + 1) * dim])
        {
            *o += v;
        }
    }
    for (q, &n) in counts.iter().enumerate() {
        for v in &mut out[q * dim..(q + 1) * dim] {
            *v /= n.max(1) as f32;
        }
    }
    out
}

impl Ood {
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Raw squared distance: inside the kept directions scaled by their variances, the rest
    /// by the residual variance.
    fn distance(&self, f: &[f32]) -> f32 {
        let d = self.dim();
        let centred: Vec<f32> = f.iter().zip(&self.mean).map(|(a, b)| a - b).collect();
        let total: f32 = centred.iter().map(|v| v * v).sum();
        let mut inside = 0.0f32;
        let mut kept = 0.0f32;
        for (row, &var) in self.components.chunks_exact(d).zip(&self.variances) {
            let z: f32 = row.iter().zip(&centred).map(|(a, b)| a * b).sum();
            kept += z * z;
            inside += z * z / var.max(1e-12);
        }
        inside + (total - kept).max(0.0) / self.residual.max(1e-12)
    }

    /// The score of pooled features (1 is a typical fitting film).
    pub fn score(&self, features: &[f32]) -> Result<f32> {
        if features.len() != self.dim() {
            return Err(Error::Weights(format!(
                "{FILE} expects {} features, the model gives {}",
                self.dim(),
                features.len()
            )));
        }
        Ok(self.distance(features) / self.scale.max(1e-12))
    }

    pub fn inside(&self, score: f32) -> bool {
        score <= self.threshold
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let d = self.dim();
        let k = self.variances.len();
        let tensors = [
            ("mean", vec![d], &self.mean),
            ("components", vec![k, d], &self.components),
            ("variances", vec![k], &self.variances),
        ];
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(name, shape, data)| {
                let bytes: &[u8] = bytemuck::cast_slice(data.as_slice());
                (
                    name.to_string(),
                    TensorView::new(Dtype::F32, shape.clone(), bytes).expect("consistent shape"),
                )
            })
            .collect();
        let meta: HashMap<String, String> = [
            ("residual", self.residual.to_string()),
            ("scale", self.scale.to_string()),
            ("threshold", self.threshold.to_string()),
            ("typical", self.typical.to_string()),
            ("fitted_on", self.fitted_on.clone()),
            ("n", self.n.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        safetensors::serialize(views, Some(meta)).expect("serialises")
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let bad = |what: &str| Error::Weights(format!("{FILE}: {what}"));
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(&e.to_string()))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(&e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let number = |k: &str| -> Result<f32> {
            meta.get(k)
                .and_then(|v| v.parse::<f32>().ok())
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| bad(&format!("no valid {k}")))
        };
        let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
            let t = st.tensor(name).map_err(|_| bad(&format!("no {name}")))?;
            if t.dtype() != Dtype::F32 {
                return Err(bad(&format!("{name} is not f32")));
            }
            let data = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>();
            if data.iter().any(|v| !v.is_finite()) {
                return Err(bad(&format!("{name} holds a non-finite value")));
            }
            Ok((t.shape().to_vec(), data))
        };
        let (ms, mean) = tensor("mean")?;
        let (cs, components) = tensor("components")?;
        let (vs, variances) = tensor("variances")?;
        let d = mean.len();
        if ms.len() != 1 || d == 0 || cs != [vs.first().copied().unwrap_or(0), d] || vs.len() != 1 {
            return Err(bad("shapes of mean, components and variances disagree"));
        }
        Ok(Self {
            mean,
            components,
            variances,
            residual: number("residual")?,
            scale: number("scale")?,
            threshold: number("threshold")?,
            typical: number("typical")?,
            fitted_on: meta.get("fitted_on").cloned().unwrap_or_default(),
            n: meta.get("n").and_then(|v| v.parse().ok()).unwrap_or(0),
        })
    }
}

/// Value at quantile `q` (0..=1) of `values` (nearest rank).
pub fn quantile(values: &[f32], q: f64) -> f32 {
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    if v.is_empty() {
        return f32::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Area under the ROC curve of telling `outside` from `inside` by a score that should be
/// higher outside: the chance that a random outside image scores above a random inside one
/// (ties count half).
pub fn auroc(inside: &[f32], outside: &[f32]) -> f64 {
    let mut wins = 0.0f64;
    for &o in outside {
        for &i in inside {
            wins += if o > i {
                1.0
            } else if o == i {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (inside.len() * outside.len()).max(1) as f64
}

/// Fits the Gaussian on `fit` films' pooled features and sets the threshold on `held_out`
/// films of the same kind.
#[cfg(not(target_arch = "wasm32"))]
pub fn fit(fit: &[Vec<f32>], held_out: &[Vec<f32>], fitted_on: &str) -> Result<Ood> {
    use nalgebra::{DMatrix, SymmetricEigen};
    let n = fit.len();
    let d = fit.first().map_or(0, Vec::len);
    if n < 20 || d == 0 || fit.iter().any(|f| f.len() != d) || held_out.len() < 10 {
        return Err(Error::Other(format!(
            "the out-of-distribution fit needs at least 20 films and 10 held out of one \
             feature size, got {n} and {}",
            held_out.len()
        )));
    }
    let mut mean = vec![0.0f64; d];
    for f in fit {
        for (m, &v) in mean.iter_mut().zip(f) {
            *m += v as f64 / n as f64;
        }
    }
    let x = DMatrix::from_fn(n, d, |i, j| fit[i][j] as f64 - mean[j]);
    let total_var = x.iter().map(|v| v * v).sum::<f64>() / (n - 1) as f64;
    let k = COMPONENTS.min(d - 1).min(n - 2);
    // The principal directions through whichever Gram matrix is smaller.
    let (vectors, values): (Vec<Vec<f64>>, Vec<f64>) = if d <= n {
        let eig = SymmetricEigen::new(x.transpose() * &x / (n - 1) as f64);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        order[..k]
            .iter()
            .map(|&i| {
                (
                    eig.eigenvectors.column(i).iter().copied().collect(),
                    eig.eigenvalues[i],
                )
            })
            .unzip()
    } else {
        let eig = SymmetricEigen::new(&x * x.transpose() / (n - 1) as f64);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        order[..k]
            .iter()
            .map(|&i| {
                let u = x.transpose() * eig.eigenvectors.column(i);
                let norm = u.norm().max(1e-12);
                (u.iter().map(|v| v / norm).collect(), eig.eigenvalues[i])
            })
            .unzip()
    };
    let kept: f64 = values.iter().sum();
    let residual = ((total_var - kept) / (d - k) as f64).max(total_var * 1e-6 / d as f64);
    let mut ood = Ood {
        mean: mean.iter().map(|&v| v as f32).collect(),
        components: vectors.iter().flatten().map(|&v| v as f32).collect(),
        variances: values.iter().map(|&v| v.max(1e-9) as f32).collect(),
        residual: residual as f32,
        scale: 1.0,
        threshold: 1.0,
        typical: 1.0,
        fitted_on: fitted_on.into(),
        n,
    };
    let raw: Vec<f32> = fit.iter().map(|f| ood.distance(f)).collect();
    ood.scale = quantile(&raw, 0.5).max(1e-12);
    let held: Vec<f32> = held_out
        .iter()
        .map(|f| ood.score(f))
        .collect::<Result<_>>()?;
    ood.typical = quantile(&held, 0.99);
    ood.threshold = MARGIN * ood.typical;
    Ok(ood)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }

    #[test]
    fn auroc_counts_ordered_pairs() {
        assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), 0.0);
        assert_eq!(auroc(&[1.0, 3.0], &[2.0, 3.0]), 0.625);
    }

    #[test]
    fn pool_takes_quadrant_means() {
        // A 2x2 grid of one-value features: each quadrant is one token.
        assert_eq!(pool(&[1.0, 2.0, 3.0, 4.0], 4, 1), vec![1.0, 2.0, 3.0, 4.0]);
        // 4x4 grid, value = row: top quadrants 0.5, bottom 2.5.
        let f: Vec<f32> = (0..16).map(|t| (t / 4) as f32).collect();
        assert_eq!(pool(&f, 16, 1), vec![0.5, 0.5, 2.5, 2.5]);
    }

    #[test]
    fn scores_films_of_the_fitted_kind_low_and_others_high() {
        let mut seed = 7;
        // Correlated 12-dim features: 3 latent factors plus a little noise.
        let mut film = |shift: f32| -> Vec<f32> {
            let z = [lcg(&mut seed), lcg(&mut seed), lcg(&mut seed)];
            (0..12)
                .map(|j| z[j % 3] * (1.0 + j as f32) + 0.01 * lcg(&mut seed) + shift)
                .collect()
        };
        let fit_set: Vec<Vec<f32>> = (0..300).map(|_| film(0.0)).collect();
        let held: Vec<Vec<f32>> = (0..100).map(|_| film(0.0)).collect();
        let ood = fit(&fit_set, &held, "test").unwrap();
        let inside = film(0.0);
        let s_in = ood.score(&inside).unwrap();
        assert!(ood.inside(s_in), "{s_in} > {}", ood.threshold);
        // Off the factors' plane: tiny in distance, huge in Mahalanobis distance.
        let mut off = film(0.0);
        off[0] += 0.5;
        off[1] -= 0.5;
        let s_off = ood.score(&off).unwrap();
        assert!(
            !ood.inside(s_off) && s_off > 100.0 * s_in.max(0.1),
            "{s_off}"
        );
        assert!(ood.score(&[0.0; 3]).is_err());
        let back = Ood::parse(&ood.to_bytes()).unwrap();
        assert_eq!(back, ood);
        assert!(Ood::parse(b"not a safetensors file").is_err());
    }
}
