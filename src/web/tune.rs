//! `fineTune` in the page and the npm package: a LoRA adapter trained on the user's labelled
//! films in the tab, by the same steps as the native `train` (`train::tune::Tuner`), on the
//! model's device (WebGPU or the CPU).

use std::sync::Arc;

use burn::module::Module;
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use super::{Tuned, WebGrounder, js_err};
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
const OPTIONS: [&str; 12] = [
    "name",
    "steps",
    "rank",
    "alpha",
    "lr",
    "batch",
    "warmupSteps",
    "seed",
    "validation",
    "validateEvery",
    "saveEvery",
    "resume",
];

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TuneOptions {
    name: Option<String>,
    steps: Option<usize>,
    rank: Option<usize>,
    alpha: Option<f64>,
    lr: Option<f64>,
    batch: Option<usize>,
    warmup_steps: Option<usize>,
    seed: Option<u64>,
    validate_every: Option<usize>,
    save_every: Option<usize>,
    /// Read by hand (examples and bytes): `validation`, `resume`.
    #[serde(skip)]
    validation: Vec<Record>,
    #[serde(skip)]
    resume: Option<(Vec<u8>, Vec<u8>, usize)>,
}

/// `stage2`'s preset with the caller's choices, as `train --preset stage2` would run them.
fn config(o: &TuneOptions) -> Result<TrainConfig, JsError> {
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

fn get(o: &JsValue, key: &str) -> Option<JsValue> {
    js_sys::Reflect::get(o, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn field(o: &JsValue, key: &str) -> Result<JsValue, JsError> {
    get(o, key).ok_or_else(|| JsError::new(&format!("each example needs {key:?}")))
}

/// A plain JS object of `pairs`.
fn object(pairs: &[(&str, JsValue)]) -> Result<JsValue, JsError> {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        js_sys::Reflect::set(&o, &JsValue::from_str(k), v).map_err(|_| js_err("object"))?;
    }
    Ok(o.into())
}

/// The options object: checked names, the plain fields through serde, the validation examples
/// and the adapter to resume from by hand.
fn parse_options(o: JsValue) -> Result<TuneOptions, JsError> {
    if o.is_undefined() || o.is_null() {
        return Ok(TuneOptions::default());
    }
    // serde_wasm_bindgen reads only the fields it knows: a misspelt one would be dropped
    // silently and train with the default.
    for key in js_sys::Object::keys(&js_sys::Object::from(o.clone())).iter() {
        let key = key.as_string().unwrap_or_default();
        if !OPTIONS.contains(&key.as_str()) {
            return Err(JsError::new(&format!(
                "unknown fineTune option {key:?}: use {}",
                OPTIONS.join(", ")
            )));
        }
    }
    let mut parsed: TuneOptions = serde_wasm_bindgen::from_value(o.clone()).map_err(js_err)?;
    if let Some(v) = get(&o, "validation") {
        if !js_sys::Array::is_array(&v) {
            return Err(JsError::new("validation must be an array of examples"));
        }
        parsed.validation = js_sys::Array::from(&v)
            .iter()
            .map(|e| record(&e))
            .collect::<Result<_, _>>()?;
    }
    if let Some(r) = get(&o, "resume") {
        let bad = || JsError::new("resume must be { adapter: the zip a save gave, step }");
        let zip = get(&r, "adapter").ok_or_else(bad)?;
        if !zip.is_instance_of::<js_sys::Uint8Array>() {
            return Err(bad());
        }
        let step = get(&r, "step").and_then(|s| s.as_f64()).ok_or_else(bad)?;
        if !(step >= 0.0 && step.fract() == 0.0) {
            return Err(bad());
        }
        let (config, weights) =
            peft::unzip(&js_sys::Uint8Array::new(&zip).to_vec()).map_err(js_err)?;
        parsed.resume = Some((config, weights, step as usize));
    }
    Ok(parsed)
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

/// A validation example ready to ask: the film, the phrase and its true box.
type Check = (Arc<crate::image::Picture>, String, PixelBox);

#[wasm_bindgen]
impl WebGrounder {
    /// Trains a LoRA adapter on `examples` and answers with it from then on (the bundle's
    /// calibration no longer describes these weights: confidences become the raw answer
    /// probability). `onProgress({ step, steps, loss, valIoU, adapter })` after each step (and
    /// at step 0 with the validation IoU before training): `valIoU` every `validateEvery`
    /// steps and at the last, `adapter` (the zip `resume` takes) every `saveEvery` steps;
    /// returning `false` stops. Resolves to `{ losses, steps, valIoU: [[step, iou], ...] }`.
    #[wasm_bindgen(js_name = fineTune)]
    pub async fn fine_tune(
        &mut self,
        examples: js_sys::Array,
        options: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<JsValue, JsError> {
        let mut options = parse_options(options)?;
        let params = self.inner.model.num_params();
        if params > MAX_PARAMS {
            return Err(JsError::new(&format!(
                "this model has {} M parameters: too large to train in a browser tab (at most \
                 {} M); fine-tune it natively with `medground train`",
                params / 1_000_000,
                MAX_PARAMS / 1_000_000
            )));
        }
        let name = options.name.clone().unwrap_or_else(|| "fine-tuned".into());
        if self.inner.adapters().contains(&name) {
            return Err(JsError::new(&format!(
                "the bundle has an adapter named {name:?}: choose another name"
            )));
        }
        let cfg = config(&options)?;
        let records = examples
            .iter()
            .map(|e| record(&e))
            .collect::<Result<Vec<_>, _>>()?;
        let checks: Vec<Check> = std::mem::take(&mut options.validation)
            .into_iter()
            .map(|r| Ok((r.picture()?, r.phrase, r.box_px)))
            .collect::<crate::error::Result<_>>()
            .map_err(js_err)?;
        let (steps, lora) = (cfg.optim.steps, cfg.lora.clone());
        let validate_every = options.validate_every.unwrap_or(steps.div_ceil(10)).max(1);
        let save_every = options.save_every.unwrap_or(0);
        let mut tuner =
            Tuner::new(&self.bundle, cfg, records, &self.inner.device).map_err(js_err)?;
        if let Some((config, weights, step)) = &options.resume {
            if *step >= steps {
                return Err(JsError::new(&format!(
                    "resume at step {step}: the run has only {steps} steps"
                )));
            }
            tuner.resume(config, weights, *step).map_err(js_err)?;
        }
        // From here on the grounder answers with the adapter being trained.
        self.forget_film();
        self.inner.calibration = None;
        self.inner.adapter = Some(name.clone());
        self.tuned = None;
        let mut losses = Vec::with_capacity(steps);
        let mut curve: Vec<(usize, f32)> = Vec::new();
        let report = |p: JsValue| -> Result<bool, JsError> {
            let Some(f) = &on_progress else {
                return Ok(true);
            };
            let go_on = f
                .call1(&JsValue::NULL, &p)
                .map_err(|_| js_err("onProgress threw"))?;
            Ok(go_on != JsValue::FALSE)
        };
        let mut go_on = true;
        if !checks.is_empty() {
            let iou = self.validate(&tuner, &checks).await?;
            curve.push((tuner.step, iou));
            go_on = report(object(&[
                ("step", (tuner.step as f64).into()),
                ("steps", (steps as f64).into()),
                ("valIoU", f64::from(iou).into()),
            ])?)?;
        }
        while go_on && tuner.step < steps {
            let loss = tuner.step_async().await.map_err(js_err)?;
            losses.push(loss);
            let step = tuner.step;
            let mut fields = vec![
                ("step", (step as f64).into()),
                ("steps", (steps as f64).into()),
                ("loss", f64::from(loss).into()),
            ];
            if !checks.is_empty() && (step % validate_every == 0 || step == steps) {
                let iou = self.validate(&tuner, &checks).await?;
                curve.push((step, iou));
                fields.push(("valIoU", f64::from(iou).into()));
            }
            if save_every > 0 && step % save_every == 0 {
                let (config, weights) = Self::adapter_of(&tuner, &lora).await?;
                let zip = peft::zip(&config, &weights).map_err(js_err)?;
                fields.push(("adapter", js_sys::Uint8Array::from(&zip[..]).into()));
            }
            go_on = report(object(&fields)?)?;
            yield_to_events().await;
        }
        self.inner.model = tuner.model().map_err(js_err)?;
        let (config, weights) = Self::adapter_of(&tuner, &lora).await?;
        let tuned = Tuned { config, weights };
        self.trained.insert(name, tuned.clone());
        self.tuned = Some(tuned);
        let list: js_sys::Array = losses.iter().map(|&l| JsValue::from(l)).collect();
        let points: js_sys::Array = curve
            .iter()
            .map(|&(s, iou)| -> JsValue {
                [JsValue::from(s as f64), JsValue::from(iou)]
                    .into_iter()
                    .collect::<js_sys::Array>()
                    .into()
            })
            .collect();
        object(&[
            ("losses", list.into()),
            ("steps", (tuner.step as f64).into()),
            ("valIoU", points.into()),
        ])
    }
}

impl WebGrounder {
    /// The mean IoU of the model as trained so far over the validation examples.
    async fn validate(&mut self, tuner: &Tuner, checks: &[Check]) -> Result<f32, JsError> {
        self.inner.model = tuner.model().map_err(js_err)?;
        let mut sum = 0.0;
        for (picture, phrase, truth) in checks {
            let g = self
                .inner
                .ground_async(picture, phrase)
                .await
                .map_err(js_err)?;
            let [x1, y1, x2, y2] = g.box_px;
            sum += PixelBox { x1, y1, x2, y2 }.iou(truth);
        }
        Ok(sum / checks.len() as f32)
    }

    /// The tuner's adapter as PEFT files (config, weights).
    async fn adapter_of(
        tuner: &Tuner,
        lora: &crate::train::config::LoraConfig,
    ) -> Result<(Vec<u8>, Vec<u8>), JsError> {
        let model = tuner.model().map_err(js_err)?;
        let (config, weights) =
            peft::export_async(&model, lora.rank, lora.alpha, lora.train_connector)
                .await
                .map_err(js_err)?;
        Ok((config.into_bytes(), weights))
    }
}

/// A macrotask's wait (`setTimeout(0)`): lets the page paint and the worker take messages (a
/// stop) between steps; a resolved promise would not, as the CPU backend never yields.
async fn yield_to_events() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let set_timeout = js_sys::Reflect::get(&global, &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        match set_timeout {
            Some(f) => {
                let _ = f.call2(&global, &resolve, &JsValue::from(0));
            }
            None => {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.ok();
}
