//! Weights that do not fit the model are errors naming the tensor; our bundle round-trips in f32
//! and f16 and is read back with the same outputs.

use burn::prelude::*;
use medground::model::{Idefics3, Idefics3Config};
use medground::weights::{Dtype, safetensors};

fn small() -> Idefics3Config {
    let mut c = Idefics3Config::tiny(64, 5);
    c.vision_config.hidden_size = 16;
    c.vision_config.intermediate_size = 32;
    c.vision_config.num_attention_heads = 2;
    c.vision_config.num_hidden_layers = 2;
    c.vision_config.image_size = 32;
    c.vision_config.patch_size = 8;
    c.text_config.hidden_size = 16;
    c.text_config.intermediate_size = 32;
    c.text_config.num_hidden_layers = 2;
    c
}

fn load_into(config: &Idefics3Config, bytes: Vec<u8>) -> medground::Result<Idefics3> {
    let mut model = Idefics3::new(config, &Device::flex());
    safetensors::load(&mut model, bytes).map(|_| model)
}

#[test]
fn missing_unused_and_misshapen_tensors_are_named() {
    let device = Device::flex();
    let config = small();

    let mut fewer = config.clone();
    fewer.text_config.num_hidden_layers = 1;
    let e = load_into(
        &config,
        safetensors::save(&Idefics3::new(&fewer, &device), Dtype::F32).unwrap(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("model.text_model.layers.1."), "{e}");
    assert!(e.to_string().contains("missing"), "{e}");

    let mut more = config.clone();
    more.vision_config.num_hidden_layers = 3;
    let e = load_into(
        &config,
        safetensors::save(&Idefics3::new(&more, &device), Dtype::F32).unwrap(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("model.vision_model.encoder.layers.2."),
        "{e}"
    );
    assert!(e.to_string().contains("does not belong"), "{e}");

    let mut wider = config.clone();
    wider.text_config.intermediate_size = 48;
    let e = load_into(
        &config,
        safetensors::save(&Idefics3::new(&wider, &device), Dtype::F32).unwrap(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("mlp"), "{e}");
    assert!(e.to_string().to_lowercase().contains("shape"), "{e}");

    let e = load_into(&config, b"not a safetensors file".to_vec()).unwrap_err();
    assert!(e.to_string().contains("bad weights"), "{e}");
}

#[test]
fn f32_and_f16_round_trips() {
    let device = Device::flex();
    let config = small();
    let model = Idefics3::new(&config, &device);
    let pixels = Tensor::<4>::ones([1, 3, 32, 32], &device).mul_scalar(0.3);
    let want = model
        .image_features(pixels.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for (dtype, tol) in [(Dtype::F32, 0.0), (Dtype::F16, 5e-2)] {
        let bytes = safetensors::save(&model, dtype).unwrap();
        let back = load_into(&config, bytes).unwrap();
        let got = back
            .image_features(pixels.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst <= tol, "{dtype:?}: {worst}");
    }
}
