//! Autoregressive decoding with the KV cache. One async loop serves native (blocked on) and the
//! browser (where every read back from the GPU must be awaited); each step reads back only the
//! logits it needs plus one log-sum-exp, for the chosen token's probability.

use burn::prelude::*;

use super::text::KvCache;
use super::vlm::Idefics3;
use crate::error::{Error, Result};
use crate::protocol::constrain::{AnswerVocab, complete};

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

/// How the next token is chosen.
pub enum Policy<'a> {
    /// Highest-scoring token of the whole vocabulary, until `eos` or `max_new` tokens.
    Greedy { eos: Option<u32>, max_new: usize },
    /// Highest-scoring token that keeps the answer a prefix of a well-formed box.
    Box { vocab: &'a AnswerVocab },
}

/// Longest answer in tokens: a box spelled one character per token.
pub const MAX_BOX_TOKENS: usize = 24;

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

/// Decodes from prompt embeddings `[1, seq, hidden]`.
pub async fn generate(
    model: &Idefics3,
    embeds: Tensor<3>,
    policy: Policy<'_>,
) -> Result<Generation> {
    let device = embeds.device();
    let mut cache = KvCache::new();
    let mut logits = model.last_logits(embeds, &mut cache);
    let candidates = match &policy {
        Policy::Box { vocab } => {
            let ids: Vec<i64> = vocab.ids.iter().map(|&i| i as i64).collect();
            let n = ids.len();
            Some(Tensor::<1, Int>::from_data(
                TensorData::new(ids, [n]),
                &device,
            ))
        }
        Policy::Greedy { .. } => None,
    };
    let mut out = Generation {
        tokens: Vec::new(),
        logprobs: Vec::new(),
    };
    let mut answer = String::new();
    loop {
        let (values, lse) = read_step(logits, candidates.as_ref()).await?;
        let (token, score) = match &policy {
            Policy::Greedy { .. } => {
                let i = argmax(&values);
                (i as u32, values[i])
            }
            Policy::Box { vocab } => {
                let i = vocab
                    .choose(&answer, &values)
                    .ok_or_else(|| Error::Tokenizer("the vocabulary cannot finish a box".into()))?;
                answer.push_str(&vocab.texts[i]);
                (vocab.ids[i], values[i])
            }
        };
        out.tokens.push(token);
        out.logprobs.push(score - lse);
        let done = match &policy {
            Policy::Greedy { eos, max_new } => Some(token) == *eos || out.tokens.len() >= *max_new,
            Policy::Box { .. } => complete(&answer).is_some() || out.tokens.len() >= MAX_BOX_TOKENS,
        };
        if done {
            return Ok(out);
        }
        logits = model.last_logits(model.embed_tokens(&[token], &device), &mut cache);
    }
}
