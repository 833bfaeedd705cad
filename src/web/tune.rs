//! `fineTune` in the page and the npm package: a LoRA adapter trained on the user's labelled
//! films in the tab, by the same steps as the native `train` (`train::tune::Tuner`), on the
//! model's device (WebGPU or the CPU).

use std::sync::Arc;

use burn::module::Module;
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::{WebGrounder, js_err};
use crate::data::record::{ImageSource, Record};
use crate::image::decode;
use crate::protocol::answer::PixelBox;
use crate::train::TrainConfig;
use crate::train::tune::Tuner;
use crate::weights::peft;

/// Models above this many parameters are refused: their activations and optimiser state
/// outgrow a tab's memory (the tiny preset has 8 M).
const MAX_PARAMS: usize = 40_000_000;

/// The options `fineTune` reads (besides the JS wrapper's onProgress and signal).
const OPTIONS: [&str; 7] = [
    "steps",
    "rank",
    "alpha",
    "lr",
    "batch",
    "warmupSteps",
    "seed",
];

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TuneOptions {
    steps: Option<usize>,
    rank: Option<usize>,
    alpha: Option<f64>,
    lr: Option<f64>,
    batch: Option<usize>,
    warmup_steps: Option<usize>,
    seed: Option<u64>,
}

/// `stage2`'s preset with the caller's choices, as `train --preset stage2` would run them.
fn config(o: TuneOptions) -> Result<TrainConfig, JsError> {
    let mut cfg = TrainConfig::preset("stage2").map_err(js_err)?;
    let optim = &mut cfg.optim;
    optim.steps = o.steps.unwrap_or(100);
    optim.batch = o.batch.unwrap_or(4);
    optim.lr = o.lr.unwrap_or(optim.lr);
    optim.warmup_steps = o
        .warmup_steps
        .unwrap_or(optim.warmup_steps.min(optim.steps / 5));
    cfg.lora.rank = o.rank.unwrap_or(cfg.lora.rank);
    cfg.lora.alpha = o.alpha.unwrap_or(cfg.lora.alpha);
    cfg.data.seed = o.seed.unwrap_or(cfg.data.seed);
    cfg.run.feature_cache_mb = 256;
    let o = &cfg.optim;
    if o.steps == 0 || o.batch == 0 || cfg.lora.rank == 0 || !(o.lr > 0.0 && o.lr.is_finite()) {
        return Err(JsError::new(
            "steps, batch and rank must be at least 1 and lr a positive number",
        ));
    }
    Ok(cfg)
}

fn field(o: &JsValue, key: &str) -> Result<JsValue, JsError> {
    js_sys::Reflect::get(o, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
        .ok_or_else(|| JsError::new(&format!("each example needs {key:?}")))
}

/// `{ image, phrase, box: [x1, y1, x2, y2] }` (image as encoded bytes, box in its pixels).
fn record(example: &JsValue) -> Result<Record, JsError> {
    let image = field(example, "image")?;
    if !image.is_instance_of::<js_sys::Uint8Array>() {
        return Err(JsError::new(
            "an example's image must be encoded bytes (a Uint8Array)",
        ));
    }
    let picture = decode(&js_sys::Uint8Array::new(&image).to_vec()).map_err(js_err)?;
    let phrase = field(example, "phrase")?
        .as_string()
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| JsError::new("an example's phrase must be a non-empty string"))?;
    let b: Vec<f64> = serde_wasm_bindgen::from_value(field(example, "box")?)
        .map_err(|_| JsError::new("an example's box must be [x1, y1, x2, y2] in pixels"))?;
    let (w, h) = (picture.width as f32, picture.height as f32);
    let [x1, y1, x2, y2] = <[f64; 4]>::try_from(b)
        .map_err(|_| JsError::new("an example's box must be [x1, y1, x2, y2] in pixels"))?
        .map(|v| v as f32);
    if !(0.0 <= x1 && x1 < x2 && x2 <= w && 0.0 <= y1 && y1 < y2 && y2 <= h) {
        return Err(JsError::new(&format!(
            "box [{x1}, {y1}, {x2}, {y2}] is not inside the {w}x{h} image"
        )));
    }
    Ok(Record {
        width: picture.width,
        height: picture.height,
        image: ImageSource::Memory(Arc::new(picture)),
        phrase,
        category: crate::data::phrases::ANATOMY_CATEGORY.into(),
        box_px: PixelBox { x1, y1, x2, y2 },
        split: None,
    })
}

#[wasm_bindgen]
impl WebGrounder {
    /// Trains a LoRA adapter on `examples` and answers with it from then on (the bundle's
    /// calibration no longer describes these weights: confidences become the raw answer
    /// probability). `onProgress({ step, steps, loss })` after each step; returning `false`
    /// stops early. Resolves to `{ losses, steps }`.
    #[wasm_bindgen(js_name = fineTune)]
    pub async fn fine_tune(
        &mut self,
        examples: js_sys::Array,
        options: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<JsValue, JsError> {
        let options: TuneOptions = if options.is_undefined() || options.is_null() {
            TuneOptions::default()
        } else {
            // serde_wasm_bindgen reads only the fields it knows: a misspelt one would be
            // dropped silently and train with the default.
            for key in js_sys::Object::keys(&js_sys::Object::from(options.clone())).iter() {
                let key = key.as_string().unwrap_or_default();
                if !OPTIONS.contains(&key.as_str()) {
                    return Err(JsError::new(&format!(
                        "unknown fineTune option {key:?}: use {}",
                        OPTIONS.join(", ")
                    )));
                }
            }
            serde_wasm_bindgen::from_value(options).map_err(js_err)?
        };
        let params = self.inner.model.num_params();
        if params > MAX_PARAMS {
            return Err(JsError::new(&format!(
                "this model has {} M parameters: too large to train in a browser tab (at most \
                 {} M); fine-tune it natively with `medground train`",
                params / 1_000_000,
                MAX_PARAMS / 1_000_000
            )));
        }
        let cfg = config(options)?;
        let records = examples
            .iter()
            .map(|e| record(&e))
            .collect::<Result<Vec<_>, _>>()?;
        let (steps, lora) = (cfg.optim.steps, cfg.lora.clone());
        let mut tuner =
            Tuner::new(&self.bundle, cfg, records, &self.inner.device).map_err(js_err)?;
        let mut losses = Vec::with_capacity(steps);
        while tuner.step < steps {
            let loss = tuner.step_async().await.map_err(js_err)?;
            losses.push(loss);
            if let Some(f) = &on_progress {
                let p = js_sys::Object::new();
                for (k, v) in [("step", tuner.step as f64), ("steps", steps as f64)] {
                    js_sys::Reflect::set(&p, &k.into(), &v.into())
                        .map_err(|_| js_err("progress"))?;
                }
                js_sys::Reflect::set(&p, &"loss".into(), &f64::from(loss).into())
                    .map_err(|_| js_err("progress"))?;
                let go_on = f
                    .call1(&JsValue::NULL, &p)
                    .map_err(|_| js_err("onProgress threw"))?;
                if go_on == JsValue::FALSE {
                    break;
                }
            }
            // Lets the page paint and the worker take messages between steps.
            let tick = js_sys::Promise::resolve(&JsValue::NULL);
            wasm_bindgen_futures::JsFuture::from(tick).await.ok();
        }
        self.inner.model = tuner.model().map_err(js_err)?;
        self.inner.calibration = None;
        self.inner.adapter = Some("fine-tuned".into());
        self.tuned = Some(lora);
        let out = js_sys::Object::new();
        let list: js_sys::Array = losses.iter().map(|&l| JsValue::from(l)).collect();
        js_sys::Reflect::set(&out, &"losses".into(), &list).map_err(|_| js_err("result"))?;
        js_sys::Reflect::set(&out, &"steps".into(), &(tuner.step as f64).into())
            .map_err(|_| js_err("result"))?;
        Ok(out.into())
    }

    /// The adapter `fineTune` trained, as an HF PEFT adapter folder's two files
    /// (`adapter_config.json`, `adapter_model.safetensors`: what `import-peft` and Python's PEFT
    /// load), by name.
    #[wasm_bindgen(js_name = exportAdapter)]
    pub async fn export_adapter(&self) -> Result<JsValue, JsError> {
        let lora = self
            .tuned
            .as_ref()
            .ok_or_else(|| JsError::new("no fine-tuned adapter in use: call fineTune first"))?;
        let model = &self.inner.model;
        let (config, weights) =
            peft::export_async(model, lora.rank, lora.alpha, lora.train_connector)
                .await
                .map_err(js_err)?;
        let out = js_sys::Object::new();
        for (name, bytes) in [
            (peft::CONFIG, config.into_bytes()),
            (peft::WEIGHTS_FILE, weights),
        ] {
            js_sys::Reflect::set(&out, &name.into(), &js_sys::Uint8Array::from(&bytes[..]))
                .map_err(|_| js_err("result"))?;
        }
        Ok(out.into())
    }
}
