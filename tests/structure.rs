//! Parity at SmolVLM's structure: `tools/reference/make_structure_fixture.py` built a random
//! Idefics3 shaped like SmolVLM-256M (64-px tiles here instead of 512, pixel shuffle by 4, tied
//! embeddings) and ran transformers' processor and model on a tall and a wide image, each cut
//! into tiles plus the global view. medground's processor, prompt and model must give the same
//! pixel values and input ids exactly, vision, connector and logits within 1e-4, and the same
//! greedy tokens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use medground::image::decode;
use medground::image::processor::{Settings, process};
use medground::model::generate::{Greedy, generate};
use medground::model::rope::Rope;
use medground::model::{Batch, Idefics3, Idefics3Config};
use medground::protocol::prompt::Prompt;
use medground::tokens::Tokens;
use serde::Deserialize;

mod reference;
use reference::assert_close;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/structure")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap()
}

#[derive(Deserialize)]
struct Image {
    rows: usize,
    cols: usize,
    input_ids: Vec<u32>,
    greedy_tokens: Vec<u32>,
}

#[derive(Deserialize)]
struct Expected {
    phrase: String,
    image_seq_len: usize,
    images: BTreeMap<String, Image>,
}

struct Case {
    name: String,
    want: Image,
    /// Our processor's pixels, `[tiles, 3, tile, tile]`, and our prompt's ids.
    pixels: Tensor<4>,
    ids: Vec<u32>,
}

struct Fixture {
    model: Idefics3,
    config: Idefics3Config,
    arrays: reference::Arrays,
    cases: Vec<Case>,
}

fn fixture() -> Fixture {
    let device = Device::flex();
    let config = Idefics3Config::from_json(&read("config.json")).unwrap();
    let mut model = Idefics3::new(&config, &device);
    medground::weights::safetensors::load(
        &mut model,
        std::fs::read(dir().join("model.safetensors")).unwrap(),
    )
    .unwrap();
    let expected: Expected = serde_json::from_str(&read("expected.json")).unwrap();
    let settings = Settings::from_json(&read("preprocessor_config.json")).unwrap();
    let tokens = Tokens::from_bytes(read("tokenizer.json").as_bytes()).unwrap();
    assert_eq!(config.image_seq_len(), expected.image_seq_len);
    let prompt = Prompt::new(&expected.phrase, 0).unwrap();
    let cases = expected
        .images
        .into_iter()
        .map(|(name, want)| {
            let picture =
                decode(&std::fs::read(dir().join(format!("{name}.png"))).unwrap()).unwrap();
            let tiles = process(&picture, &settings).unwrap();
            assert_eq!((tiles.rows, tiles.cols), (want.rows, want.cols), "{name}");
            let (n, t) = (tiles.count(), tiles.size);
            let pixels =
                Tensor::<1>::from_data(TensorData::new(tiles.pixels, [n * 3 * t * t]), &device)
                    .reshape([n, 3, t, t]);
            let text = prompt.render_tiled(tiles.rows, tiles.cols, config.image_seq_len());
            let ids = tokens.encode(&text).unwrap();
            Case {
                name,
                want,
                pixels,
                ids,
            }
        })
        .collect();
    Fixture {
        model,
        config,
        arrays: reference::arrays(&dir().join("expected.safetensors")),
        cases,
    }
}

#[test]
fn tiles_and_ids_equal_transformers() {
    let f = fixture();
    assert_eq!(f.cases.len(), 2);
    for c in &f.cases {
        assert!(c.want.rows * c.want.cols > 1, "{}: not tiled", c.name);
        let (shape, want) = &f.arrays[&format!("{}.pixel_values", c.name)];
        assert_eq!(&c.pixels.dims().to_vec(), shape, "{}", c.name);
        let ours = c.pixels.clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(ours == *want, "{}: pixel values differ", c.name);
        assert_eq!(c.ids, c.want.input_ids, "{}", c.name);
    }
}

#[test]
fn vision_connector_and_logits_match_to_1e4() {
    let f = fixture();
    for c in &f.cases {
        let key = |k: &str| &f.arrays[&format!("{}.{k}", c.name)];
        let vision = f.model.model.vision_model.forward(c.pixels.clone());
        assert_close(&format!("{} vision", c.name), vision.clone(), key("vision"));
        let connector = f.model.model.connector.forward(vision);
        assert_close(
            &format!("{} connector", c.name),
            connector,
            key("connector"),
        );
        let batch = Batch {
            ids: vec![c.ids.clone()],
            pixels: c.pixels.clone(),
        };
        let logits = f.model.forward(&batch, f.config.image_token_id, None);
        assert_close(&format!("{} logits", c.name), logits, key("logits"));
    }
}

#[test]
fn greedy_tokens_match_exactly() {
    let f = fixture();
    for c in &f.cases {
        let batch = Batch {
            ids: vec![c.ids.clone()],
            pixels: c.pixels.clone(),
        };
        let embeds = f.model.embed_batch(&batch, f.config.image_token_id);
        let greedy = Greedy {
            eos: None,
            max_new: c.want.greedy_tokens.len(),
        };
        let out = pollster::block_on(generate(
            &f.model,
            &Rope::for_model(&f.config.text_config, &embeds.device()),
            embeds,
            greedy,
        ))
        .unwrap();
        assert_eq!(out.tokens, c.want.greedy_tokens, "{}", c.name);
    }
}

#[test]
fn the_grounder_reads_the_checkpoint_processor_and_answers_tiled() {
    let f = fixture();
    let bundle = medground::weights::Bundle::read_dir(&dir()).unwrap();
    let g = medground::grounder::Grounder::from_bundle(&bundle, &Device::flex()).unwrap();
    assert!(g.processor.is_some());
    // Its prompt comes from its own chat template (chat_template.jinja).
    assert!(g.chat.is_some());
    let expected: Expected = serde_json::from_str(&read("expected.json")).unwrap();
    for c in &f.cases {
        let picture =
            decode(&std::fs::read(dir().join(format!("{}.png", c.name))).unwrap()).unwrap();
        let batch = g.inputs(&picture, &expected.phrase).unwrap();
        assert_eq!(batch.ids[0], c.want.input_ids, "{}", c.name);
        assert_eq!(batch.pixels.dims(), c.pixels.dims(), "{}", c.name);
        // The product path answers on the tiled input (a box parsed from the constrained text).
        let grounding = g.ground(&picture, &expected.phrase).unwrap();
        assert_eq!(grounding.text.matches('<').count(), 4, "{grounding:?}");
    }
    // A processor whose tiles do not fit the vision tower is refused by name.
    let wrong =
        read("preprocessor_config.json").replace("\"longest_edge\": 64", "\"longest_edge\": 32");
    let bundle = bundle.with_file(medground::image::processor::FILE, wrong.into_bytes());
    let err = medground::grounder::Grounder::from_bundle(&bundle, &Device::flex())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("preprocessor_config.json"),
        "{err}"
    );
}

#[derive(Deserialize)]
struct Chat {
    answer: String,
    answer_ids: Vec<u32>,
    answer_vocab: Vec<u32>,
    tall_input_ids: Vec<u32>,
    tall_text: String,
}

#[test]
fn a_chat_base_spells_the_answer_in_its_own_tokens() {
    // tokenizer_chat.json: no <0>..<100> tokens, digits one by one (as SmolLM2's tokenizer).
    let want: Chat = serde_json::from_str(&read("expected_chat.json")).unwrap();
    let chat = Tokens::from_bytes(read("tokenizer_chat.json").as_bytes()).unwrap();
    let own = Tokens::from_bytes(read("tokenizer.json").as_bytes()).unwrap();
    assert_eq!(chat.grid, None);
    assert_eq!(own.grid_token(7), Some(own.encode("<7>").unwrap()[0]));
    // The tokens an answer may use, and the answer's spelling, as transformers has them.
    assert_eq!(chat.answer_vocab.ids, want.answer_vocab);
    assert_eq!(chat.encode(&want.answer).unwrap(), want.answer_ids);

    // Training takes the loss on that spelling, one-hot: no spread over grid tokens it lacks.
    let config = Idefics3Config::from_json(&read("config.json")).unwrap();
    let picture = decode(&std::fs::read(dir().join("tall.png")).unwrap()).unwrap();
    let example = || medground::train::batch::Example {
        picture: std::sync::Arc::new(picture.clone()),
        prompt: Prompt::new("small left pleural effusion", 0).unwrap(),
        answer: want
            .answer
            .trim_end_matches("<end_of_utterance>")
            .to_string(),
        boxes: Vec::new(),
    };
    let build = |processor| {
        let examples = [example()];
        let framing = medground::train::batch::Framing {
            processor,
            chat: None,
        };
        medground::train::batch::build(
            &examples,
            &chat,
            &config,
            1.5,
            false,
            &framing,
            &Device::flex(),
        )
        .unwrap()
    };
    let built = build(None);
    let targets: Vec<u32> = built.targets.iter().map(|(_, t)| *t).collect();
    assert_eq!(targets, want.answer_ids);
    assert!(built.soft.is_none());
    // With the checkpoint's processor, training feeds its global view (splitting off).
    let (_, global) =
        medground::image::processor::without_splitting(&read("preprocessor_config.json")).unwrap();
    let fed = build(Some(global.clone()))
        .batch
        .pixels
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(fed, process(&picture, &global).unwrap().pixels);

    // Decoding constrained to the grammar over those pieces gives transformers' box.
    let bundle = medground::weights::Bundle::read_dir(&dir())
        .unwrap()
        .with_file("tokenizer.json", read("tokenizer_chat.json").into_bytes());
    let g = medground::grounder::Grounder::from_bundle(&bundle, &Device::flex()).unwrap();
    let phrase = "small left pleural effusion";
    assert_eq!(
        g.inputs(&picture, phrase).unwrap().ids[0],
        want.tall_input_ids
    );
    assert_eq!(g.ground(&picture, phrase).unwrap().text, want.tall_text);
}

#[derive(Deserialize)]
struct PeftExpected {
    peft_greedy_tokens: Vec<u32>,
    ours_greedy_tokens: Vec<u32>,
    largest_change: BTreeMap<String, f32>,
}

#[test]
fn peft_adapters_cross_both_ways() {
    // peft/: trained by Python PEFT (a regex over the text model's q/v_proj, the connector in
    // modules_to_save); ours/: medground's stage-2 adapter, loaded by PEFT. Merged here, each
    // answers as transformers + PEFT did.
    use medground::weights::peft;
    let want: PeftExpected = serde_json::from_str(&read("expected_peft.json")).unwrap();
    let arrays = reference::arrays(&dir().join("expected_peft.safetensors"));
    let base = medground::weights::Bundle::read_dir(&dir()).unwrap();
    let picture = decode(&std::fs::read(dir().join("tall.png")).unwrap()).unwrap();
    let expected: Expected = serde_json::from_str(&read("expected.json")).unwrap();
    for (name, tokens) in [
        ("peft", &want.peft_greedy_tokens),
        ("ours", &want.ours_greedy_tokens),
    ] {
        // Each adapter moved the logits well beyond the tolerance, so the comparison has teeth.
        assert!(want.largest_change[name] > 0.1, "{name}");
        let file = |f: &str| std::fs::read(dir().join(name).join(f)).unwrap();
        let merged = peft::merge(&base, &file(peft::CONFIG), &file(peft::WEIGHTS_FILE)).unwrap();
        let g = medground::grounder::Grounder::from_bundle(&merged, &Device::flex()).unwrap();
        let batch = g.inputs(&picture, &expected.phrase).unwrap();
        let logits = g.model.forward(&batch, g.config.image_token_id, None);
        assert_close(
            &format!("{name} logits"),
            logits,
            &arrays[&format!("{name}.logits")],
        );
        let embeds = g.model.embed_batch(&batch, g.config.image_token_id);
        let greedy = Greedy {
            eos: None,
            max_new: tokens.len(),
        };
        let out = pollster::block_on(generate(&g.model, &g.rope, embeds, greedy)).unwrap();
        assert_eq!(&out.tokens, tokens, "{name}");
    }
}
