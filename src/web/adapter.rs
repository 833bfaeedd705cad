//! A fine-tuned adapter in and out of the page: `exportAdapter` gives the one `fineTune` trained
//! (or `loadAdapter` loaded) as an HF PEFT folder, its two files or zipped; `loadAdapter` answers
//! with an adapter kept from an earlier visit (the page keeps them in IndexedDB).

use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::{Tuned, WebGrounder, js_err};
use crate::Grounder;
use crate::weights::{bundle, peft};

#[derive(Deserialize, Default)]
struct ExportOptions {
    /// One zip file instead of the folder's two files.
    #[serde(default)]
    zip: bool,
}

#[wasm_bindgen]
impl WebGrounder {
    /// The adapter `fineTune` trained or `loadAdapter` loaded, as an HF PEFT adapter folder
    /// (`adapter_config.json`, `adapter_model.safetensors`: what `import-peft` and Python's PEFT
    /// load) by file name, or with `{ zip: true }` that folder zipped (one `Uint8Array`).
    #[wasm_bindgen(js_name = exportAdapter)]
    pub fn export_adapter(&self, options: JsValue) -> Result<JsValue, JsError> {
        let options: ExportOptions = if options.is_undefined() || options.is_null() {
            ExportOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options).map_err(js_err)?
        };
        let Tuned { config, weights } = self
            .tuned
            .as_ref()
            .ok_or_else(|| JsError::new("no fine-tuned adapter in use: call fineTune first"))?;
        if options.zip {
            let zip = peft::zip(config, weights).map_err(js_err)?;
            return Ok(js_sys::Uint8Array::from(&zip[..]).into());
        }
        let out = js_sys::Object::new();
        for (name, bytes) in [(peft::CONFIG, config), (peft::WEIGHTS_FILE, weights)] {
            js_sys::Reflect::set(&out, &name.into(), &js_sys::Uint8Array::from(&bytes[..]))
                .map_err(|_| js_err("result"))?;
        }
        Ok(out.into())
    }

    /// Answers with a PEFT adapter (a zip as `exportAdapter({ zip: true })` gives it) merged
    /// into the bundle's base weights, named `name` (then listed in `adapters`); uncalibrated,
    /// as after `fineTune`.
    #[wasm_bindgen(js_name = loadAdapter)]
    pub fn load_adapter(&mut self, name: String, zip: js_sys::Uint8Array) -> Result<(), JsError> {
        let (config, weights) = peft::unzip(&zip.to_vec()).map_err(js_err)?;
        self.use_tuned(name, Tuned { config, weights })
    }
}

impl WebGrounder {
    /// Answers with `tuned` merged into the base weights, kept under `name`.
    pub(super) fn use_tuned(&mut self, name: String, tuned: Tuned) -> Result<(), JsError> {
        self.forget_film();
        // Built from the bundle with the merged weights: its own are not loaded first.
        let mut merged =
            peft::merge(&self.bundle, &tuned.config, &tuned.weights).map_err(js_err)?;
        let weights = merged.files.remove(bundle::WEIGHTS).unwrap_or_default();
        let device = self.inner.device.clone();
        self.inner = Grounder::build(&self.bundle, weights, &device).map_err(js_err)?;
        // The bundle's calibration described its own weights.
        self.inner.calibration = None;
        self.inner.adapter = Some(name.clone());
        self.trained.insert(name, tuned.clone());
        self.tuned = Some(tuned);
        Ok(())
    }
}
