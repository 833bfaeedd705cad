//! Processor parity with transformers: `tools/reference/make_processor_fixtures.py` ran the
//! Idefics3 processor (PIL image path, SmolVLM's chat template) on a tall gray, a wide RGB and a
//! small gray image; medground's processor and prompt must give the same tiles, pixel values and
//! input ids, with splitting on and off, and the same tile grid at SmolVLM-256M's real settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use medground::image::decode;
use medground::image::processor::{Settings, grid, process, smolvlm_json, without_splitting};
use medground::protocol::prompt::Prompt;
use medground::tokens::Tokens;
use serde::Deserialize;

mod reference;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/processor")
}

#[derive(Deserialize)]
struct Image {
    rows: usize,
    cols: usize,
    input_ids: Vec<u32>,
    text: String,
}

#[derive(Deserialize)]
struct Grid {
    height: usize,
    width: usize,
    rows: usize,
    cols: usize,
}

#[derive(Deserialize)]
struct Expected {
    phrase: String,
    image_seq_len: usize,
    images: BTreeMap<String, Image>,
    smolvlm_256m_grids: Vec<Grid>,
}

fn expected() -> Expected {
    serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap()
}

fn settings() -> Settings {
    Settings::from_json(&std::fs::read_to_string(dir().join("preprocessor_config.json")).unwrap())
        .unwrap()
}

fn arrays() -> reference::Arrays {
    reference::arrays(&dir().join("expected.safetensors"))
}

fn picture(name: &str) -> medground::image::Picture {
    decode(&std::fs::read(dir().join(format!("{name}.png"))).unwrap()).unwrap()
}

#[test]
fn pixel_values_equal_transformers_with_and_without_splitting() {
    let (expected, arrays) = (expected(), arrays());
    let split = settings();
    let flat = Settings {
        split: false,
        ..split.clone()
    };
    assert_eq!(expected.images.len(), 3);
    for (name, want) in &expected.images {
        for (s, key) in [(&split, name.clone()), (&flat, format!("{name}_nosplit"))] {
            let tiles = process(&picture(name), s).unwrap();
            let (shape, values) = &arrays[&key];
            let n = if s.split {
                want.rows * want.cols + 1
            } else {
                1
            };
            assert_eq!(shape, &[n, 3, s.tile, s.tile], "{key} shape");
            assert_eq!(tiles.count(), n, "{key} tiles");
            if s.split {
                assert_eq!(
                    (tiles.rows, tiles.cols),
                    (want.rows, want.cols),
                    "{key} grid"
                );
            }
            // Same 8-bit pixels through the same f64/f32 arithmetic: equal, not merely close.
            let differ = tiles
                .pixels
                .iter()
                .zip(values)
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(tiles.pixels.len(), values.len(), "{key} length");
            assert_eq!(
                differ,
                0,
                "{key}: {differ} of {} values differ",
                values.len()
            );
        }
    }
}

#[test]
fn prompt_ids_equal_transformers() {
    let expected = expected();
    let tokens = Tokens::from_bytes(&std::fs::read(dir().join("tokenizer.json")).unwrap()).unwrap();
    let prompt = Prompt::new(&expected.phrase, 0).unwrap();
    for (name, want) in &expected.images {
        let text = prompt.render_tiled(want.rows, want.cols, expected.image_seq_len);
        assert_eq!(text, want.text, "{name} text");
        assert_eq!(tokens.encode(&text).unwrap(), want.input_ids, "{name} ids");
    }
}

#[test]
fn tile_grid_equals_transformers_at_smolvlm_256m_settings() {
    // What `init --preset smolvlm-*` writes: SmolVLM's settings.
    let real = Settings::from_json(&smolvlm_json()).unwrap();
    assert_eq!(
        real,
        Settings {
            longest_edge: Some(2048),
            tile: 512,
            ..settings()
        }
    );
    let expected = expected();
    assert!(expected.smolvlm_256m_grids.len() >= 10);
    for g in &expected.smolvlm_256m_grids {
        assert_eq!(
            grid(g.height, g.width, &real).unwrap(),
            (g.rows, g.cols),
            "{}x{}",
            g.width,
            g.height
        );
    }
}

#[test]
fn fine_tuning_sees_the_global_view_alone() {
    let (json, global) = without_splitting(&smolvlm_json()).unwrap();
    assert_eq!(Settings::from_json(&json).unwrap(), global);
    assert_eq!((global.split, global.tile), (false, 512));
    let tall = process(&picture("tall"), &global).unwrap();
    assert_eq!(
        (tall.count(), tall.rows, tall.cols, tall.size),
        (1, 0, 0, 512)
    );
    assert!(without_splitting("[1, 2]").is_err());
}

#[test]
fn unsupported_settings_are_named() {
    let base = std::fs::read_to_string(dir().join("preprocessor_config.json")).unwrap();
    let cases = [
        ("\"resample\": 1", "\"resample\": 0", "resample 0"),
        (
            "\"do_convert_rgb\": true",
            "\"do_convert_rgb\": false",
            "do_convert_rgb",
        ),
        (
            "\"Idefics3ImageProcessor\"",
            "\"SiglipImageProcessor\"",
            "SiglipImageProcessor",
        ),
        (
            "\"longest_edge\": 32",
            "\"longest_edge\": 0",
            "max_image_size.longest_edge",
        ),
    ];
    for (from, to, named) in cases {
        assert!(base.contains(from), "{from}");
        let err = Settings::from_json(&base.replace(from, to))
            .unwrap_err()
            .to_string();
        assert!(err.contains(named), "{err}");
    }
    assert!(Settings::from_json("{").is_err());
}
