//! Autoregressive decoding with the KV cache. One async loop serves native (blocked on) and the
//! browser (where every read back from the GPU must be awaited); each step reads back only the
//! logits of the tokens the [`Constraint`] allows plus one log-sum-exp, for the chosen token's
//! probability. What an answer may look like is the constraint's business (the box grammar
//! lives in `protocol::constrain`), not the decoder's.

use burn::prelude::*;

use super::rope::Rope;
use super::text::KvCache;
use super::vlm::Idefics3;
use crate::error::Result;

/// Generated tokens with their log-probabilities under the model's full softmax.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub logprobs: Vec<f32>,
}

impl Generation {
    /// Geometric mean of the token probabilities.
    pub fn confidence(&self) -> f32 {
        if self.logprobs.is_empty() {
            return 0.0;
        }
        (self.logprobs.iter().sum::<f32>() / self.logprobs.len() as f32).exp()
    }
}

/// Chooses each next token: which tokens may come, which of them is taken, when to stop.
pub trait Constraint {
    /// The token ids every step chooses among (None: the whole vocabulary), fixed for a run.
    fn candidates(&self) -> Option<&[u32]>;
    /// The chosen token's index into the candidates (or the vocabulary) given their logits.
    fn choose(&mut self, logits: &[f32]) -> Result<usize>;
    /// Whether generation stops after `tokens`.
    fn done(&self, tokens: &[u32]) -> bool;
    /// The most tokens a run may generate (what the KV cache is sized for).
    fn max_new(&self) -> usize;
}

/// The highest-scoring token of the whole vocabulary, until `eos` or `max_new` tokens.
pub struct Greedy {
    pub eos: Option<u32>,
    pub max_new: usize,
}

impl Constraint for Greedy {
    fn candidates(&self) -> Option<&[u32]> {
        None
    }
    fn choose(&mut self, logits: &[f32]) -> Result<usize> {
        Ok(argmax(logits))
    }
    fn done(&self, tokens: &[u32]) -> bool {
        (self.eos.is_some() && tokens.last().copied() == self.eos) || tokens.len() >= self.max_new
    }
    fn max_new(&self) -> usize {
        self.max_new
    }
}

/// `[batch, vocab]` -> `[batch, 1]` log-sum-exp.
fn log_sum_exp(logits: Tensor<2>) -> Tensor<2> {
    let max = logits.clone().max_dim(1);
    max.clone() + (logits - max).exp().sum_dim(1).log()
}

/// Reads the logits of `ids` (all when None) of the single row, and the row's log-sum-exp.
async fn read_step(logits: Tensor<2>, ids: Option<&Tensor<1, Int>>) -> Result<(Vec<f32>, f32)> {
    let lse = log_sum_exp(logits.clone());
    let picked = match ids {
        Some(ids) => logits.select(1, ids.clone()),
        None => logits,
    };
    let mut values = super::read_back(Tensor::cat(vec![picked, lse], 1)).await?;
    let lse = values.pop().expect("log-sum-exp read back");
    Ok((values, lse))
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

/// Decodes from prompt embeddings `[1, seq, hidden]` under `constraint`, with the model's
/// rotary tables `rope` (built once per model: [`Rope::for_model`]).
pub async fn generate(
    model: &Idefics3,
    rope: &Rope,
    embeds: Tensor<3>,
    mut constraint: impl Constraint,
) -> Result<Generation> {
    let device = embeds.device();
    let [batch, seq, _] = embeds.dims();
    let text = &model.model.text_model;
    let mut cache = KvCache::new(text, batch, seq + constraint.max_new(), rope, &device);
    let mut logits = model.last_logits(embeds, &mut cache);
    let candidates = constraint.candidates().map(|ids| {
        let ids: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let n = ids.len();
        Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &device)
    });
    let mut out = Generation {
        tokens: Vec::new(),
        logprobs: Vec::new(),
    };
    loop {
        let (values, lse) = read_step(logits, candidates.as_ref()).await?;
        let i = constraint.choose(&values)?;
        let token = match constraint.candidates() {
            Some(ids) => ids[i],
            None => i as u32,
        };
        out.tokens.push(token);
        out.logprobs.push(values[i] - lse);
        if constraint.done(&out.tokens) {
            return Ok(out);
        }
        logits = model.last_logits(model.embed_tokens(&[token], &device), &mut cache);
    }
}
