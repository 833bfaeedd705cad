//! Trains the tiny preset's tokenizer: byte-level BPE over the project's phrase corpus and the
//! prompt templates, with the Idefics3 chat tokens and one token per answer grid value `<N>`.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::Lowercase;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, TokenizerBuilder};

use crate::error::{Error, Result};
use crate::protocol::answer::GRID;
use crate::protocol::prompt::{BEGIN, END_OF_UTTERANCE, FAKE_TOKEN, GLOBAL_IMG, IMAGE_TOKEN};

/// Special tokens, in id order from 0.
pub const SPECIAL: [&str; 6] = [
    "<|endoftext|>",
    BEGIN,
    END_OF_UTTERANCE,
    FAKE_TOKEN,
    GLOBAL_IMG,
    IMAGE_TOKEN,
];

/// Returns the `tokenizer.json` text of a BPE with `vocab_size` merges-plus-alphabet entries
/// trained on `corpus`, followed by the 101 grid tokens.
pub fn train(corpus: &[String], vocab_size: usize) -> Result<String> {
    let err = |e: tokenizers::Error| Error::Tokenizer(e.to_string());
    let special: Vec<AddedToken> = SPECIAL.iter().map(|t| AddedToken::from(*t, true)).collect();
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(special)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tokenizer = TokenizerBuilder::new()
        .with_model(BPE::default())
        .with_normalizer(Some(Lowercase))
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(None::<ByteLevel>)
        .with_decoder(Some(ByteLevelDecoder::default()))
        .build()
        .map_err(err)?;
    tokenizer.train(&mut trainer, corpus.iter()).map_err(err)?;
    let grid: Vec<AddedToken> = (0..=GRID)
        .map(|v| AddedToken::from(format!("<{v}>"), false))
        .collect();
    tokenizer.add_tokens(grid).map_err(err)?;
    let tokenizer: tokenizers::Tokenizer = tokenizer.into();
    tokenizer.to_string(true).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Prompt;
    use crate::tokens::Tokens;

    #[test]
    fn trained_tokenizer_round_trips_prompts_and_answers() {
        let corpus: Vec<String> = [
            "small left pleural effusion",
            "right upper lobe consolidation",
            "the heart",
        ]
        .iter()
        .cycle()
        .take(30)
        .map(|s| s.to_string())
        .collect();
        let json = train(&corpus, 300).unwrap();
        let tokens = Tokens::from_bytes(json.as_bytes()).unwrap();
        let text = Prompt::new("Small LEFT pleural effusion", 0)
            .unwrap()
            .render(3);
        let ids = tokens.encode(&text).unwrap();
        assert_eq!(ids.iter().filter(|&&i| i == tokens.image_token).count(), 3);
        assert!(
            tokens
                .decode(&ids)
                .unwrap()
                .contains("small left pleural effusion")
        );
        let answer = tokens.encode("{<7><13><100><99>}").unwrap();
        assert_eq!(answer.len(), 6, "one token per grid value and brace");
        assert_eq!(tokens.decode(&answer).unwrap(), "{<7><13><100><99>}");
        assert!(tokens.answer_vocab.ids.len() >= 103);
        // Grid tokens found, so training spreads coordinate targets over neighbouring values.
        assert_eq!(tokens.grid_token(7), Some(answer[1]));
        assert_eq!(tokens.grid_token(100), Some(answer[3]));
        assert_eq!(tokens.grid_token(101), None);
    }
}
