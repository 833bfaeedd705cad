//! Parity with transformers: a tiny random Idefics3 built by
//! `tools/reference/make_parity_fixtures.py` and its outputs, checked here to 1e-4 (f32), with
//! greedy tokens exactly equal.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use medground::image::{decode, preprocess::model_input};
use medground::model::generate::{Greedy, generate};
use medground::model::rope::Rope;
use medground::model::{Batch, Idefics3, Idefics3Config};
use medground::tokens::Tokens;
use serde::Deserialize;

mod reference;
use reference::{Arrays, assert_close};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity")
}

#[derive(Deserialize)]
struct Expected {
    prompt: String,
    input_ids: Vec<u32>,
    greedy_tokens: Vec<u32>,
}

struct Fixture {
    model: Idefics3,
    config: Idefics3Config,
    expected: Expected,
    arrays: Arrays,
    device: Device,
}

fn fixture() -> Fixture {
    let device = Device::flex();
    let config =
        Idefics3Config::from_json(&std::fs::read_to_string(dir().join("config.json")).unwrap())
            .unwrap();
    let mut model = Idefics3::new(&config, &device);
    medground::weights::safetensors::load(
        &mut model,
        std::fs::read(dir().join("model.safetensors")).unwrap(),
    )
    .unwrap();
    let expected: Expected =
        serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap())
            .unwrap();
    let arrays = reference::arrays(&dir().join("expected.safetensors"));
    Fixture {
        model,
        config,
        expected,
        arrays,
        device,
    }
}

impl Fixture {
    fn pixels(&self) -> Tensor<4> {
        reference::tensor(&self.arrays["pixel_values"], &self.device)
    }
}

#[test]
fn preprocessing_matches_the_reference_pixels() {
    let f = fixture();
    let picture = decode(&std::fs::read(dir().join("image.png")).unwrap()).unwrap();
    let ours = model_input(&picture, f.config.vision_config.image_size as u32);
    let want = &f.arrays["pixel_values"].1;
    assert_eq!(ours.len(), want.len());
    for (a, b) in ours.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn tokenizer_matches_the_reference_ids() {
    let tokens = Tokens::from_bytes(&std::fs::read(dir().join("tokenizer.json")).unwrap()).unwrap();
    let f = fixture();
    assert_eq!(
        tokens.encode(&f.expected.prompt).unwrap(),
        f.expected.input_ids
    );
    assert_eq!(tokens.image_token, f.config.image_token_id);
}

#[test]
fn vision_connector_and_logits_match_to_1e4() {
    let f = fixture();
    let vision = f.model.model.vision_model.forward(f.pixels());
    assert_close(
        "vision features",
        vision.clone(),
        &f.arrays["vision_features"],
    );
    let connector = f.model.model.connector.forward(vision);
    assert_close("connector", connector, &f.arrays["connector"]);
    let batch = Batch {
        ids: vec![f.expected.input_ids.clone()],
        pixels: f.pixels(),
    };
    let logits = f.model.forward(&batch, f.config.image_token_id, None);
    assert_close("logits", logits, &f.arrays["logits"]);
}

#[test]
fn greedy_tokens_with_the_kv_cache_match_exactly() {
    let f = fixture();
    let batch = Batch {
        ids: vec![f.expected.input_ids.clone()],
        pixels: f.pixels(),
    };
    let embeds = f.model.embed_batch(&batch, f.config.image_token_id);
    let greedy = Greedy {
        eos: None,
        max_new: f.expected.greedy_tokens.len(),
    };
    let out = pollster::block_on(generate(
        &f.model,
        &Rope::for_model(&f.config.text_config, &embeds.device()),
        embeds,
        greedy,
    ))
    .unwrap();
    assert_eq!(out.tokens, f.expected.greedy_tokens);
}
