//! Training examples (an image, a prompt, the answer text) from the synthetic stream or a
//! dataset, in a data order fixed by (seed, index) so a resumed run sees what an uninterrupted
//! one would; and their assembly into padded batches with answer-only targets.

use std::sync::Arc;
#[cfg(not(target_arch = "wasm32"))]
use std::sync::mpsc::{Receiver, sync_channel};

use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cache::pixel_key;
use super::dense;
use crate::data::record::Record;
#[cfg(not(target_arch = "wasm32"))]
use crate::data::synth::Synth;
use crate::error::Result;
use crate::image::processor::{Settings, process};
use crate::image::{Picture, preprocess::model_input};
use crate::model::{Batch, Idefics3Config};
use crate::protocol::GridBox;
use crate::protocol::answer::GRID;
use crate::protocol::answer::PixelBox;
use crate::protocol::chat::ChatTemplate;
use crate::protocol::prompt::{Prompt, TEMPLATES, target};
use crate::tokens::Tokens;

pub struct Example {
    pub picture: Arc<Picture>,
    pub prompt: Prompt,
    pub answer: String,
    /// Stage 1 on synthetic films: every box of the film with its probe channel
    /// (`dense::boxes`), the targets of the dense probe. Empty otherwise.
    pub boxes: Vec<(usize, PixelBox)>,
}

/// Where training examples come from.
pub enum Source {
    /// Synthetic films, generated on the fly. Stage 1 asks for anatomy and object boxes and descriptions,
    /// stage 2 for the findings' boxes. (Not in the browser build, which has no corpus.)
    #[cfg(not(target_arch = "wasm32"))]
    Synth {
        synth: Synth,
        stage: u8,
        /// Stage 2: the share of examples that ask an anatomy phrase instead of a finding.
        anatomy: f64,
    },
    Records(Vec<Record>),
}

fn refer(picture: Arc<Picture>, phrase: &str, b: &PixelBox, template: usize) -> Result<Example> {
    let answer = GridBox::from_pixels(b, picture.width, picture.height).to_text();
    Ok(Example {
        prompt: Prompt::new(phrase, template)?,
        picture,
        answer,
        boxes: Vec::new(),
    })
}

impl Source {
    /// Example number `index` of the run seeded `seed`.
    pub fn example(&self, index: u64, seed: u64) -> Result<Example> {
        let mut r = ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E3779B97F4A7C15));
        let template = r.random_range(0..TEMPLATES.len());
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Synth {
                synth,
                stage,
                anatomy,
            } => {
                let s = synth.sample(index);
                // Stage 1's dense probe targets; stage 2 asks for one finding's box only.
                let boxes = if *stage >= 2 {
                    Vec::new()
                } else {
                    dense::boxes(&s)
                };
                let picture = Arc::new(s.picture);
                let findings = &s.findings;
                // (No draw when the share is 0: the stream of runs before it.)
                let ask_anatomy =
                    *anatomy > 0.0 && !s.anatomy.is_empty() && r.random_bool(*anatomy);
                if *stage >= 2 && ask_anatomy {
                    let (name, b) = s.anatomy[r.random_range(0..s.anatomy.len())];
                    return refer(picture, name, &b, template);
                }
                if *stage >= 2 && !findings.is_empty() {
                    let f = &findings[r.random_range(0..findings.len())];
                    return refer(picture, &f.phrase, &f.box_px, template);
                }
                if r.random_bool(0.35) || s.anatomy.is_empty() {
                    let mut phrases: Vec<&str> =
                        findings.iter().map(|f| f.phrase.as_str()).collect();
                    phrases.sort();
                    let answer = if phrases.is_empty() {
                        "no finding".to_string()
                    } else {
                        phrases.join("; ")
                    };
                    return Ok(Example {
                        picture,
                        prompt: Prompt::caption(),
                        answer,
                        boxes,
                    });
                }
                // Small objects (electrodes, markers) teach finding any small thing anywhere.
                let pool = if !s.objects.is_empty() && r.random_bool(0.35) {
                    &s.objects
                } else {
                    &s.anatomy
                };
                let (name, b) = pool[r.random_range(0..pool.len())];
                Ok(Example {
                    boxes,
                    ..refer(picture, name, &b, template)?
                })
            }
            Source::Records(records) => {
                // A fresh permutation each epoch, fixed by the seed.
                let n = records.len() as u64;
                let (epoch, k) = (index / n, index % n);
                let mut order: Vec<usize> = (0..records.len()).collect();
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(
                    seed ^ epoch.wrapping_mul(0xA24BAED4963EE407),
                ));
                let rec = &records[order[k as usize]];
                refer(rec.picture()?, &rec.phrase, &rec.box_px, template)
            }
        }
    }
}

/// Micro-batch number `micro` of `batch` examples of the run seeded `seed`.
pub fn micro_batch(source: &Source, seed: u64, batch: usize, micro: usize) -> Result<Vec<Example>> {
    let start = (micro * batch) as u64;
    (start..start + batch as u64)
        .map(|i| source.example(i, seed))
        .collect()
}

/// The run's micro-batches of `batch` examples from number `first` on ([`micro_batch`]), made
/// on a helper thread while the step before trains (a synthetic film costs a few milliseconds
/// of one core). The thread ends when the receiver is dropped.
#[cfg(not(target_arch = "wasm32"))]
pub fn prefetch(
    source: Arc<Source>,
    seed: u64,
    batch: usize,
    first: usize,
) -> Receiver<Result<Vec<Example>>> {
    let (tx, rx) = sync_channel(2);
    std::thread::spawn(move || {
        for micro in first.. {
            if tx.send(micro_batch(&source, seed, batch, micro)).is_err() {
                break;
            }
        }
    });
    rx
}

/// Padded token rows, pixels, and the (flat position, token) pairs the loss is taken on.
pub struct TrainBatch {
    pub batch: Batch,
    pub targets: Vec<(usize, u32)>,
    /// Sequence length after padding.
    pub seq: usize,
    /// Each film's model input, hashed (`cache::pixel_key`): the feature cache's keys.
    pub keys: Vec<u64>,
    /// The dense probe's targets `[batch, patches, dense::width(offsets)]`, when every example
    /// has boxes (stage 1 on synthetic films).
    pub dense: Option<Tensor<3>>,
    /// Stage 1: at each image token, the grid token of its cell's centre (x in a checkerboard's
    /// white cells, y in its black), the (flat position, token) pairs of `dense::cell_targets`.
    pub cells: Vec<(usize, u32)>,
    /// With `coord_sigma > 0`: the answer targets as distributions `[targets, vocab]`, each grid
    /// token spread over its neighbours (`soft_targets`).
    pub soft: Option<Tensor<2>>,
}

pub const PAD: u32 = 0;

/// How the base checkpoint frames its input, where it says: its image processor (without
/// splitting: `processor::without_splitting`) and its chat template. The default is medground's
/// own: one image squashed to the vision tower's size, SmolVLM's layout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Framing {
    pub processor: Option<Settings>,
    pub chat: Option<ChatTemplate>,
}

pub fn build(
    examples: &[Example],
    tokens: &Tokens,
    config: &Idefics3Config,
    coord_sigma: f32,
    offsets: bool,
    framing: &Framing,
    device: &Device,
) -> Result<TrainBatch> {
    let n_img = config.image_seq_len();
    let size = config.vision_config.image_size;
    let mut rows = Vec::with_capacity(examples.len());
    let mut answers = Vec::with_capacity(examples.len());
    for e in examples {
        let prompt = tokens.encode(&e.prompt.render_in(framing.chat.as_ref(), 0, 0, n_img)?)?;
        let answer = tokens.encode(&target(&e.answer))?;
        answers.push((prompt.len(), answer.len()));
        rows.push([prompt, answer].concat());
    }
    let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut targets = Vec::new();
    for (k, row) in rows.iter_mut().enumerate() {
        let (p, a) = answers[k];
        for j in 0..a {
            targets.push((k * seq + p - 1 + j, row[p + j]));
        }
        row.resize(seq, PAD);
    }
    let mut pixels = Vec::with_capacity(examples.len() * 3 * size * size);
    let mut keys = Vec::with_capacity(examples.len());
    for e in examples {
        let start = pixels.len();
        match &framing.processor {
            // Splitting off (`processor::without_splitting`): one tile, the vision tower's size.
            Some(s) => pixels.extend(process(&e.picture, s)?.pixels),
            None => pixels.extend(model_input(&e.picture, size as u32)),
        }
        keys.push(pixel_key(&pixels[start..]));
    }
    let b = examples.len();
    let pixels = Tensor::<1>::from_data(TensorData::new(pixels, [b * 3 * size * size]), device)
        .reshape([b, 3, size, size]);
    let side = config.vision_config.patches_per_side();
    let dense = (b > 0 && examples.iter().all(|e| !e.boxes.is_empty())).then(|| {
        let t: Vec<f32> = examples
            .iter()
            .flat_map(|e| dense::targets(&e.boxes, side, size, offsets))
            .collect();
        let w = dense::width(offsets);
        Tensor::<1>::from_data(TensorData::new(t, [b * side * side * w]), device).reshape([
            b,
            side * side,
            w,
        ])
    });
    let cells = if dense.is_some() && tokens.grid.is_some() {
        dense::cell_targets(&rows, tokens, config)?
    } else {
        Vec::new()
    };
    // A chat base spells values in pieces: its targets stay one-hot.
    let soft = if let Some(first) = tokens.grid.filter(|_| coord_sigma > 0.0) {
        let t = soft_targets(&targets, first, coord_sigma, config.text_config.vocab_size);
        let n = targets.len();
        Some(
            Tensor::<1>::from_data(
                TensorData::new(t, [n * config.text_config.vocab_size]),
                device,
            )
            .reshape([n, config.text_config.vocab_size]),
        )
    } else {
        None
    };
    Ok(TrainBatch {
        batch: Batch { ids: rows, pixels },
        targets,
        seq,
        keys,
        dense,
        cells,
        soft,
    })
}

/// Target distributions `[targets.len() * vocab]`: one-hot, except that a grid token `<N>`
/// (ids `first..=first + GRID`) becomes a Gaussian of spread `sigma` over the grid tokens.
pub fn soft_targets(targets: &[(usize, u32)], first: u32, sigma: f32, vocab: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; targets.len() * vocab];
    for (k, &(_, token)) in targets.iter().enumerate() {
        let row = &mut out[k * vocab..(k + 1) * vocab];
        let Some(n) = token.checked_sub(first).filter(|n| *n <= GRID) else {
            row[token as usize] = 1.0;
            continue;
        };
        let w: Vec<f32> = (0..=GRID)
            .map(|v| (-((v as f32 - n as f32) / sigma).powi(2) / 2.0).exp())
            .collect();
        let total: f32 = w.iter().sum();
        for (v, w) in w.iter().enumerate() {
            row[first as usize + v] = w / total;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_targets_spread_grid_tokens_and_keep_others_one_hot() {
        let (first, vocab) = (10u32, 10 + 101 + 5);
        let t = soft_targets(&[(0, 3), (1, first + 50), (2, first)], first, 1.5, vocab);
        let row = |k: usize| &t[k * vocab..(k + 1) * vocab];
        assert_eq!(row(0)[3], 1.0);
        assert_eq!(row(0).iter().sum::<f32>(), 1.0);
        for k in 1..3 {
            assert!((row(k).iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(row(k)[..first as usize].iter().all(|&v| v == 0.0));
        }
        let mid = row(1);
        let at = |v: usize| mid[first as usize + v];
        assert!(at(50) > at(51) && at(51) > at(52) && at(52) > at(55));
        assert!((at(49) - at(51)).abs() < 1e-6, "symmetric");
        // At the grid's edge the mass stays on the grid: <0> gets more than <50> did.
        assert!(row(2)[first as usize] > at(50));
    }

    /// Stage 2's anatomy share: the share of examples that ask an anatomy phrase, with the
    /// anatomy's exact box as the answer; at 0 the stream is the findings-only one.
    #[test]
    fn anatomy_share_mixes_stage_one_questions_into_stage_two() {
        let synth = Synth::new(2, crate::data::synth::Split::Train, 96);
        let source = |anatomy| Source::Synth {
            synth,
            stage: 2,
            anatomy,
        };
        let asked = |src: &Source| {
            (0..60u64)
                .filter(|&i| {
                    let e = src.example(i, 3).unwrap();
                    synth.sample(i).anatomy.iter().any(|(name, b)| {
                        let asks = e.prompt.instruction();
                        (asks.ends_with(name) || asks.contains(&format!("{name} ")))
                            && e.answer == GridBox::from_pixels(b, 96, 96).to_text()
                    })
                })
                .count()
        };
        assert_eq!(asked(&source(0.0)), 0);
        let n = asked(&source(0.4));
        assert!((12..=36).contains(&n), "{n} of 60 anatomy questions at 0.4");
    }
}
