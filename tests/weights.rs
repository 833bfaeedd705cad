//! Weights that do not fit the model are errors naming the tensor; our bundle round-trips in f32
//! and f16 and is read back with the same outputs; int8 bundles answer as f16 ones.

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

/// Loaded whole, and in pieces of 1 kB (a few tensors each, as SmolVLM's gigabyte goes in 64 MB
/// pieces): both must give the same model or the same error.
fn load_into(config: &Idefics3Config, bytes: Vec<u8>) -> medground::Result<Idefics3> {
    let mut whole = Idefics3::new(config, &Device::flex());
    let mut pieces = Idefics3::new(config, &Device::flex());
    let in_pieces = safetensors::load_in_pieces(&mut pieces, bytes.clone(), 1024);
    let whole_result = safetensors::load(&mut whole, bytes);
    match (&whole_result, &in_pieces) {
        (Ok(()), Ok(())) => {
            // Every tensor the same (the files' headers carry the modules' own ids).
            let (a, b) = (
                safetensors::save(&whole, Dtype::F32).unwrap(),
                safetensors::save(&pieces, Dtype::F32).unwrap(),
            );
            let (a, b) = (
                ::safetensors::SafeTensors::deserialize(&a).unwrap(),
                ::safetensors::SafeTensors::deserialize(&b).unwrap(),
            );
            assert_eq!(a.len(), b.len());
            for (name, t) in a.tensors() {
                let u = b.tensor(&name).unwrap();
                assert!(t.data() == u.data(), "{name} differs when loaded in pieces");
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("whole: {whole_result:?}, in pieces: {in_pieces:?}"),
    }
    whole_result.map(|_| whole)
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

/// The shipped demo bundle exported as int8 (half the bytes of f16) gives the f16 bundle's boxes
/// on the DICOM fixture and on synthetic test films (IoU >= 0.7 each, >= 0.9 on average).
#[test]
fn int8_bundle_answers_as_f16() {
    use medground::Grounder;
    use medground::data::synth::{Split, Synth};
    use medground::protocol::GridBox;
    use medground::weights::Bundle;
    let device = Device::flex();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    let f16 = Bundle::read_dir(&dir).unwrap();
    let f16g = Grounder::from_bundle(&f16, &device).unwrap();
    let int8 = safetensors::save(&f16g.model, Dtype::Int8).unwrap();
    assert!(int8.len() * 10 < f16.file("model.safetensors").len() * 6);
    let bundle = Bundle::new(
        f16g.config.to_json(),
        f16.file("tokenizer.json").to_vec(),
        int8,
        Dtype::Int8,
    );
    let int8g = Grounder::from_bundle(&bundle, &device).unwrap();
    let film = medground::image::decode(
        &std::fs::read(dir.join("../../tests/fixtures/chest_rg1.dcm")).unwrap(),
    )
    .unwrap();
    let synth = Synth::new(0, Split::Test, 224);
    let mut cases = vec![(film, "small left pleural effusion".to_string())];
    for i in 0..6 {
        let s = synth.sample(i);
        let phrase = s.findings[0].phrase.clone();
        cases.push((s.picture, phrase));
    }
    let iou = |a: &GridBox, b: &GridBox| {
        let (a, b) = (
            [a.x1, a.y1, a.x2, a.y2].map(|v| v as f32),
            [b.x1, b.y1, b.x2, b.y2].map(|v| v as f32),
        );
        let inter =
            (a[2].min(b[2]) - a[0].max(b[0])).max(0.0) * (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
        let area = |q: [f32; 4]| (q[2] - q[0]) * (q[3] - q[1]);
        inter / (area(a) + area(b) - inter)
    };
    let mut sum = 0.0;
    for (picture, phrase) in &cases {
        let a = GridBox::parse(&f16g.answer(picture, phrase).unwrap().0).unwrap();
        let b = GridBox::parse(&int8g.answer(picture, phrase).unwrap().0).unwrap();
        let o = iou(&a, &b);
        assert!(o >= 0.7, "{phrase}: {a:?} vs {b:?}");
        sum += o;
    }
    assert!(
        sum / cases.len() as f32 >= 0.9,
        "mean IoU {}",
        sum / cases.len() as f32
    );
}
