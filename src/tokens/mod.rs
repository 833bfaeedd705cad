//! Text <-> token ids through the `tokenizers` crate: an HF `tokenizer.json` for real
//! checkpoints, or the tiny preset's own (trained by [`train`]), plus what decoding needs to know
//! about the vocabulary (the answer tokens, the end of turn).

pub mod train;

use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::protocol::answer::GRID;
use crate::protocol::constrain::AnswerVocab;
use crate::protocol::prompt::{END_OF_UTTERANCE, IMAGE_TOKEN};

#[derive(Clone)]
pub struct Tokens {
    tokenizer: Tokenizer,
    pub end_of_utterance: u32,
    pub image_token: u32,
    pub answer_vocab: AnswerVocab,
    /// The id of `<0>` when the vocabulary holds the grid values `<0>`..`<100>` as single tokens
    /// with consecutive ids (medground's own tokenizers); None for a chat base's tokenizer, which
    /// spells an answer in pieces (`{`, `<`, `1`, `3`, `>`, ...). Training spreads coordinate
    /// targets over neighbouring values and the dense probe names cells only with grid tokens.
    pub grid: Option<u32>,
}

impl Tokens {
    pub fn from_bytes(json: &[u8]) -> Result<Self> {
        let tokenizer = Tokenizer::from_bytes(json)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json: {e}")))?;
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| Error::Tokenizer(format!("the tokenizer has no {t} token")))
        };
        let end_of_utterance = id(END_OF_UTTERANCE)?;
        let image_token = id(IMAGE_TOKEN)?;
        let size = tokenizer.get_vocab_size(true) as u32;
        let texts: Vec<(u32, String)> = (0..size)
            .filter_map(|i| tokenizer.decode(&[i], false).ok().map(|s| (i, s)))
            .collect();
        let answer_vocab = AnswerVocab::new(texts.iter().map(|(i, s)| (*i, s.as_str())));
        if answer_vocab.ids.len() < 4 {
            return Err(Error::Tokenizer(
                "the tokenizer cannot spell a box answer".into(),
            ));
        }
        let grid = grid_tokens(&tokenizer);
        Ok(Self {
            tokenizer,
            end_of_utterance,
            image_token,
            answer_vocab,
            grid,
        })
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?
            .get_ids()
            .to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// The grid token of value `v` (`<v>`), when the vocabulary has grid tokens.
    pub fn grid_token(&self, v: u32) -> Option<u32> {
        self.grid.filter(|_| v <= GRID).map(|first| first + v)
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }
}

/// Largest tile row and column with its own token (`<row_6_col_6>`), as SmolVLM's tokenizer.
pub const TILE_TOKENS: usize = 6;

/// `tokenizer.json` with the tile position tokens `<row_R_col_C>` (R, C up to [`TILE_TOKENS`])
/// added as special tokens where missing, so a tiled prompt names each tile in one token.
pub fn with_tile_tokens(json: &[u8]) -> Result<Vec<u8>> {
    let mut tokenizer = Tokenizer::from_bytes(json)
        .map_err(|e| Error::Tokenizer(format!("tokenizer.json: {e}")))?;
    let tokens: Vec<tokenizers::AddedToken> = (1..=TILE_TOKENS)
        .flat_map(|r| (1..=TILE_TOKENS).map(move |c| format!("<row_{r}_col_{c}>")))
        .filter(|t| tokenizer.token_to_id(t).is_none())
        .map(|t| tokenizers::AddedToken::from(t, true))
        .collect();
    tokenizer
        .add_special_tokens(tokens)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    tokenizer
        .to_string(true)
        .map(String::into_bytes)
        .map_err(|e| Error::Tokenizer(e.to_string()))
}

/// The id of `<0>` when every `<v>`, v in 0..=GRID, is one token and the ids run consecutively.
fn grid_tokens(tokenizer: &Tokenizer) -> Option<u32> {
    let first = tokenizer.token_to_id("<0>")?;
    (0..=GRID)
        .all(|v| {
            tokenizer
                .encode(format!("<{v}>"), false)
                .is_ok_and(|e| e.get_ids() == [first + v])
        })
        .then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_tokens_are_added_once_each_a_single_token() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/tokenizer.json");
        let json = std::fs::read(path).unwrap();
        let plain = Tokens::from_bytes(&json).unwrap();
        assert!(plain.encode("<row_2_col_3>").unwrap().len() > 1);
        let once = with_tile_tokens(&json).unwrap();
        let tokens = Tokens::from_bytes(&once).unwrap();
        assert_eq!(
            tokens.vocab_size(),
            plain.vocab_size() + TILE_TOKENS * TILE_TOKENS
        );
        assert_eq!(tokens.encode("<row_2_col_3>").unwrap().len(), 1);
        // Existing ids keep their meaning; adding again changes nothing.
        assert_eq!(tokens.image_token, plain.image_token);
        assert_eq!(with_tile_tokens(&once).unwrap(), once);
    }
}
