//! Decoding constrained to the answer grammar `{<x1><y1><x2><y2>}` with values 0–100 written
//! without leading zeros, `x1 <= x2` and `y1 <= y2`. At each step only tokens that keep the text
//! a prefix of some valid answer are allowed, so the model can never emit a malformed box.
//! Works on token strings, so it serves tokenizers with one token per `<N>` as well as ones that
//! spell `<12>` out in pieces.

use super::answer::{GRID, GridBox};
use crate::error::{Error, Result};
use crate::model::generate::Constraint;

/// Longest answer in tokens: a box spelled one character per token.
pub const MAX_BOX_TOKENS: usize = 24;

const ALPHABET: &str = "{}<>0123456789";

/// Whether some completion of `prefix` is a valid answer.
pub fn is_valid_prefix(prefix: &str) -> bool {
    let Some(rest) = prefix.strip_prefix('{') else {
        return prefix.is_empty();
    };
    let mut values: Vec<u32> = Vec::with_capacity(4);
    let mut chars = rest;
    loop {
        if values.len() == 4 {
            return chars.is_empty() || chars == "}";
        }
        let Some(after_open) = chars.strip_prefix('<') else {
            return chars.is_empty();
        };
        let digits: &str = &after_open[..after_open
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_open.len())];
        let tail = &after_open[digits.len()..];
        let lower = match values.len() {
            2 => values[0],
            3 => values[1],
            _ => 0,
        };
        if tail.is_empty() {
            // The number may still grow: is some value starting with these digits allowed?
            return digits.is_empty() || (lower..=GRID).any(|v| v.to_string().starts_with(digits));
        }
        if !tail.starts_with('>')
            || digits.is_empty()
            || (digits.len() > 1 && digits.starts_with('0'))
        {
            return false;
        }
        match digits.parse::<u32>() {
            Ok(v) if v <= GRID && v >= lower => values.push(v),
            _ => return false,
        }
        chars = &tail[1..];
    }
}

/// The finished box, once `text` is a complete answer.
pub fn complete(text: &str) -> Option<GridBox> {
    if text.ends_with('}') {
        GridBox::parse(text).ok()
    } else {
        None
    }
}

/// Vocabulary entries that can appear in an answer: ids and decoded strings of every token made
/// only of the answer's characters. Computed once per tokenizer.
#[derive(Debug, Clone)]
pub struct AnswerVocab {
    pub ids: Vec<u32>,
    pub texts: Vec<String>,
}

impl AnswerVocab {
    pub fn new<'a>(tokens: impl IntoIterator<Item = (u32, &'a str)>) -> Self {
        let (mut ids, mut texts) = (Vec::new(), Vec::new());
        for (id, text) in tokens {
            if !text.is_empty() && text.chars().all(|c| ALPHABET.contains(c)) {
                ids.push(id);
                texts.push(text.to_string());
            }
        }
        Self { ids, texts }
    }

    /// Index (into `ids`) of the best-scoring token that keeps `so_far` a valid prefix.
    /// `scores[i]` belongs to `ids[i]`. None only when no candidate is allowed, which cannot
    /// happen for a vocabulary holding the single characters of the alphabet.
    pub fn choose(&self, so_far: &str, scores: &[f32]) -> Option<usize> {
        let mut best: Option<(usize, f32)> = None;
        let mut candidate = String::with_capacity(so_far.len() + 8);
        for (i, text) in self.texts.iter().enumerate() {
            candidate.clear();
            candidate.push_str(so_far);
            candidate.push_str(text);
            if is_valid_prefix(&candidate) && best.is_none_or(|(_, s)| scores[i] > s) {
                best = Some((i, scores[i]));
            }
        }
        best.map(|(i, _)| i)
    }
}

/// The box grammar as a decoding constraint: the best-scoring token of `vocab` that keeps the
/// answer a prefix of a well-formed box, until the box closes.
pub struct BoxAnswer<'a> {
    vocab: &'a AnswerVocab,
    text: String,
}

impl<'a> BoxAnswer<'a> {
    pub fn new(vocab: &'a AnswerVocab) -> Self {
        Self {
            vocab,
            text: String::new(),
        }
    }
}

impl Constraint for BoxAnswer<'_> {
    fn candidates(&self) -> Option<&[u32]> {
        Some(&self.vocab.ids)
    }

    fn choose(&mut self, logits: &[f32]) -> Result<usize> {
        let i = self
            .vocab
            .choose(&self.text, logits)
            .ok_or_else(|| Error::Tokenizer("the vocabulary cannot finish a box".into()))?;
        self.text.push_str(&self.vocab.texts[i]);
        Ok(i)
    }

    fn done(&self, tokens: &[u32]) -> bool {
        complete(&self.text).is_some() || tokens.len() >= MAX_BOX_TOKENS
    }

    fn max_new(&self) -> usize {
        MAX_BOX_TOKENS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_valid_answers_are_valid() {
        let full = "{<7><13><100><99>}";
        for end in 0..=full.len() {
            assert!(is_valid_prefix(&full[..end]), "{:?}", &full[..end]);
        }
        assert_eq!(complete(full), Some(GridBox::new(7, 13, 100, 99).unwrap()));
    }

    #[test]
    fn invalid_prefixes_are_rejected() {
        for bad in [
            "<",
            "{{",
            "{<>",
            "{<0",
            "{<01",
            "{<101",
            "{<7>}",
            "{<5><5><4>",
            "{<50><60><50><5>",
            "{<1><2><3><4>}}",
            "{<1><2><3><4>>",
            "{<1><2><3><4><",
            "x",
            "{ <",
        ] {
            let ok = is_valid_prefix(bad);
            // "{<0" is valid (the value 0); the rest must be rejected.
            assert_eq!(ok, bad == "{<0", "{bad:?}");
        }
        // x2 = 5 after x1 = 50 can still grow to 50..59: a valid prefix, 4 is not.
        assert!(is_valid_prefix("{<50><1><5"));
        assert!(!is_valid_prefix("{<50><1><4>"));
        assert!(is_valid_prefix("{<60><1><6"), "6 can still become 60..69");
        assert!(!is_valid_prefix("{<70><1><6>"));
    }

    #[test]
    fn decoding_never_leaves_the_grammar_even_against_the_scores() {
        // Single-character vocabulary plus a few multi-character pieces.
        let pieces = [
            "{", "}", "<", ">", "0", "1", "2", "5", "9", "<1", "0>", "}}", "<100>", "abc",
        ];
        let vocab = AnswerVocab::new(pieces.iter().enumerate().map(|(i, s)| (i as u32, *s)));
        assert!(!vocab.texts.contains(&"abc".to_string()));
        // Adversarial scores: prefer tokens in reverse order, then random-ish orders.
        for seed in 0..50u32 {
            let mut text = String::new();
            for step in 0..40u32 {
                let scores: Vec<f32> = (0..vocab.ids.len() as u32)
                    .map(|i| {
                        ((i * 2654435761u32).wrapping_add(seed * 97 + step * 13) % 1000) as f32
                    })
                    .collect();
                let i = vocab.choose(&text, &scores).expect("always a candidate");
                text.push_str(&vocab.texts[i]);
                assert!(is_valid_prefix(&text), "{text}");
                if complete(&text).is_some() {
                    break;
                }
            }
            assert!(
                complete(&text).is_some(),
                "seed {seed}: {text} did not finish in 40 steps"
            );
        }
    }
}
