//! The wasm-bindgen surface, compiled only for wasm32 with the `web` feature: the page's worker
//! and the npm package both call it. Fetching, caching and image-bitmap conversion stay in
//! JavaScript; checksums, decoding, preprocessing and the model are the same Rust as natively.

use std::cell::RefCell;
use std::collections::BTreeMap;

use burn::prelude::Device;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::grounder::{Encoded, Grounder, Grounding};
use crate::image::{Picture, decode};
use crate::weights::Bundle;
use crate::weights::bundle::MANIFEST;

mod adapter;
mod tune;

/// The PEFT files of an adapter from `fineTune` or `loadAdapter`.
#[derive(Clone)]
struct Tuned {
    config: Vec<u8>,
    weights: Vec<u8>,
}

thread_local! {
    /// The WebGPU device: `init_async` may run once per page.
    static WEBGPU: RefCell<Option<Result<Device, String>>> = const { RefCell::new(None) };
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LoadOptions {
    /// "auto" (WebGPU when an adapter is granted, else CPU), "webgpu" or "cpu".
    #[serde(default)]
    backend: Option<String>,
    /// Skip the warm-up query.
    #[serde(default)]
    no_warmup: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    #[serde(flatten)]
    grounding: Grounding,
    backend: String,
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Whether `navigator.gpu` exists and grants an adapter (Node and browsers without WebGPU have
/// none; asking burn to start there would abort rather than fail).
#[cfg(feature = "web")]
async fn adapter_available() -> bool {
    use wasm_bindgen::JsCast;
    let get = |o: &JsValue, k: &str| {
        js_sys::Reflect::get(o, &JsValue::from_str(k))
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    };
    let Some(gpu) = get(&js_sys::global().into(), "navigator").and_then(|n| get(&n, "gpu")) else {
        return false;
    };
    let Some(request) =
        get(&gpu, "requestAdapter").and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return false;
    };
    let Ok(promise) = request
        .call0(&gpu)
        .and_then(|p| p.dyn_into::<js_sys::Promise>())
    else {
        return false;
    };
    matches!(wasm_bindgen_futures::JsFuture::from(promise).await, Ok(a) if !a.is_null() && !a.is_undefined())
}

async fn webgpu() -> Result<Device, String> {
    if let Some(found) = WEBGPU.with(|w| w.borrow().clone()) {
        return found;
    }
    #[cfg(not(feature = "web"))]
    let result = Err("WebGPU unavailable: this is the CPU-only build".to_string());
    #[cfg(feature = "web")]
    let result = if adapter_available().await {
        Device::wgpu_options()
            .init_async()
            .await
            .map_err(|e| format!("WebGPU unavailable: {e:?}"))
    } else {
        Err("WebGPU unavailable: no adapter".to_string())
    };
    WEBGPU.with(|w| *w.borrow_mut() = Some(result.clone()));
    result
}

/// A loaded model in the page.
#[wasm_bindgen]
pub struct WebGrounder {
    inner: Grounder,
    backend: String,
    /// The bundle it was loaded from: `fineTune` starts from its weights.
    bundle: Bundle,
    /// The adapter `fineTune` trained or `loadAdapter` loaded, while it is in use.
    tuned: Option<Tuned>,
    /// Every adapter `fineTune` trained or `loadAdapter` loaded in this session, by name:
    /// `useAdapter` switches to them as to the bundle's own.
    trained: BTreeMap<String, Tuned>,
    /// The last film asked about, encoded, keyed by a hash of its bytes: the next phrase on the
    /// same film skips the vision tower. Forgotten when the weights change.
    film: RefCell<Option<(u64, Encoded)>>,
}

/// A hash of an image's bytes and how they are to be read (the film cache's key).
fn film_key(kind: &str, parts: &[&[u8]]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    kind.hash(&mut h);
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

#[wasm_bindgen]
impl WebGrounder {
    /// `files` maps file names (`config.json`, `tokenizer.json`, `model.safetensors`,
    /// `manifest.json`) to `Uint8Array`s; the manifest's sizes and sha256 are checked.
    pub async fn load(files: js_sys::Object, options: JsValue) -> Result<WebGrounder, JsError> {
        let options: LoadOptions = if options.is_undefined() || options.is_null() {
            LoadOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options).map_err(js_err)?
        };
        let mut map = BTreeMap::new();
        let mut manifest = None;
        for entry in js_sys::Object::entries(&files).iter() {
            let pair = js_sys::Array::from(&entry);
            let name = pair
                .get(0)
                .as_string()
                .ok_or_else(|| JsError::new("file names must be strings"))?;
            let bytes = js_sys::Uint8Array::new(&pair.get(1)).to_vec();
            if name == MANIFEST {
                manifest = Some(bytes);
            } else {
                map.insert(name, bytes);
            }
        }
        let bundle = Bundle::from_files(map, manifest.as_deref()).map_err(js_err)?;
        let wanted = options.backend.as_deref().unwrap_or("auto");
        let (device, backend) = match wanted {
            "cpu" => (Device::flex(), "cpu".to_string()),
            "webgpu" => (
                webgpu().await.map_err(|e| JsError::new(&e))?,
                "webgpu".to_string(),
            ),
            "auto" => match webgpu().await {
                Ok(d) => (d, "webgpu".to_string()),
                Err(_) => (Device::flex(), "cpu".to_string()),
            },
            other => {
                return Err(JsError::new(&format!(
                    "unknown backend {other:?}: use auto, webgpu or cpu"
                )));
            }
        };
        let inner = Grounder::from_bundle(&bundle, &device).map_err(js_err)?;
        let grounder = WebGrounder {
            inner,
            backend,
            bundle,
            tuned: None,
            trained: BTreeMap::new(),
            film: RefCell::new(None),
        };
        if !options.no_warmup {
            // Compiles the shaders now, so the first real query does not pay for it.
            let blank = Picture::new(8, 8, 1, vec![0.5; 64]).map_err(js_err)?;
            grounder
                .inner
                .ground_async(&blank, "the heart")
                .await
                .map_err(js_err)?;
        }
        Ok(grounder)
    }

    /// Grounds `phrase` in an encoded image (PNG, JPEG or DICOM bytes).
    pub async fn ground(
        &self,
        image: js_sys::Uint8Array,
        phrase: String,
    ) -> Result<JsValue, JsError> {
        let bytes = image.to_vec();
        let key = film_key("encoded", &[&bytes]);
        self.answer(key, || decode(&bytes), &phrase).await
    }

    /// Grounds `phrase` in raw RGBA pixels (an `ImageData`'s width, height and data).
    #[wasm_bindgen(js_name = groundPixels)]
    pub async fn ground_pixels(
        &self,
        width: u32,
        height: u32,
        rgba: js_sys::Uint8Array,
        phrase: String,
    ) -> Result<JsValue, JsError> {
        let rgba = rgba.to_vec();
        if rgba.len() != width as usize * height as usize * 4 {
            return Err(JsError::new("pixel data does not match width x height x 4"));
        }
        let size = [width.to_le_bytes(), height.to_le_bytes()].concat();
        let key = film_key("rgba", &[&size, &rgba]);
        let picture = || {
            let data = rgba
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .map(|v| v as f32 / 255.0)
                .collect();
            Picture::new(width, height, 3, data)
        };
        self.answer(key, picture, &phrase).await
    }

    /// "webgpu" or "cpu".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// The adapters the bundle holds beside its base weights (`adapters/NAME/`).
    #[wasm_bindgen(getter)]
    pub fn adapters(&self) -> Vec<String> {
        let mut names = self.inner.adapters();
        names.extend(self.trained.keys().cloned());
        names
    }

    /// The adapter in use (undefined: the base weights).
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> Option<String> {
        self.inner.adapter.clone()
    }

    /// Switches to the adapter `name`, or back to the base weights with null or undefined; the
    /// bundle is not fetched again.
    #[wasm_bindgen(js_name = useAdapter)]
    pub fn use_adapter(&mut self, name: Option<String>) -> Result<(), JsError> {
        self.forget_film();
        if let Some(t) = name.as_ref().and_then(|n| self.trained.get(n)).cloned() {
            return self.use_tuned(name.unwrap_or_default(), t);
        }
        let own = |a: &String| self.inner.adapters().contains(a);
        let foreign = self.inner.adapter.as_ref().is_some_and(|a| !own(a));
        if self.tuned.take().is_some() || foreign {
            // A fine-tune's weights (LoRA factors or a merged adapter): the bundle's again.
            self.rebuild().map_err(js_err)?;
        }
        if name.is_some() || self.inner.adapter.is_some() {
            self.inner.use_adapter(name.as_deref()).map_err(js_err)?;
        }
        // The bundle's calibration describes its own weights and adapters again.
        self.inner.calibration = self.bundle.calibration().map_err(js_err)?;
        Ok(())
    }

    /// The model as the bundle loads it (its base weights, its calibration).
    fn rebuild(&mut self) -> crate::error::Result<()> {
        let device = self.inner.device.clone();
        self.inner = Grounder::from_bundle(&self.bundle, &device)?;
        Ok(())
    }

    /// The film cache is emptied: the weights that encoded it are changing.
    fn forget_film(&mut self) {
        self.film.get_mut().take();
    }

    /// Grounds `phrase` in the film keyed `key`, encoding it (from `picture`) unless it is
    /// the film asked about last. `ms` counts the encoding only when it was done.
    async fn answer(
        &self,
        key: u64,
        picture: impl FnOnce() -> crate::error::Result<Picture>,
        phrase: &str,
    ) -> Result<JsValue, JsError> {
        let cached = self.film.borrow_mut().take().filter(|(k, _)| *k == key);
        let (film, encode_ms) = match cached {
            Some((_, film)) => (film, 0.0),
            None => {
                let film = self
                    .inner
                    .encode_async(&picture().map_err(js_err)?)
                    .await
                    .map_err(js_err)?;
                let ms = film.ms;
                (film, ms)
            }
        };
        let result = self.inner.ground_encoded_async(&film, phrase).await;
        *self.film.borrow_mut() = Some((key, film));
        let mut grounding = result.map_err(js_err)?;
        grounding.ms += encode_ms;
        let answer = Answer {
            grounding,
            backend: self.backend.clone(),
        };
        answer
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(js_err)
    }
}

#[derive(Serialize)]
struct Preview {
    width: u32,
    height: u32,
    #[serde(with = "serde_bytes_compat")]
    rgba: Vec<u8>,
}

mod serde_bytes_compat {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

/// Decodes an image (PNG, JPEG or DICOM, through the same code as the model's input) into RGBA
/// for display: `{ width, height, rgba: Uint8Array }`.
#[wasm_bindgen]
pub fn preview(bytes: js_sys::Uint8Array) -> Result<JsValue, JsError> {
    let p = decode(&bytes.to_vec()).map_err(js_err)?;
    let rgba: Vec<u8> = if p.channels == 1 {
        p.data
            .iter()
            .flat_map(|&v| {
                let g = crate::image::to_byte(v);
                [g, g, g, 255]
            })
            .collect()
    } else {
        p.data
            .chunks_exact(3)
            .flat_map(|c| {
                let q = crate::image::to_byte;
                [q(c[0]), q(c[1]), q(c[2]), 255]
            })
            .collect()
    };
    Preview {
        width: p.width,
        height: p.height,
        rgba,
    }
    .serialize(&serde_wasm_bindgen::Serializer::new())
    .map_err(js_err)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Frame {
    width: u32,
    height: u32,
    samples: usize,
    photometric: String,
    frames: u32,
    transfer_syntax: String,
    window: Option<(f64, f64)>,
}

/// A DICOM file's first frame as stored (samples unpacked, colour as RGB, palette looked up),
/// with what the file says of itself: `{ width, height, samples, photometric, frames,
/// transferSyntax, window, values: Float64Array }`. The same code the model's input starts from.
#[wasm_bindgen(js_name = dicomFrame)]
pub fn dicom_frame(bytes: js_sys::Uint8Array) -> Result<JsValue, JsError> {
    let bytes = bytes.to_vec();
    if !crate::image::is_dicom(&bytes) {
        return Err(JsError::new(
            "not a DICOM file (no DICM after the preamble)",
        ));
    }
    let film = crate::image::dicom::read(&bytes).map_err(js_err)?;
    let meta = Frame {
        width: film.stored.width,
        height: film.stored.height,
        samples: film.stored.samples,
        photometric: film.stored.photometric.clone(),
        frames: film.info.frames,
        transfer_syntax: film.info.transfer_syntax.clone(),
        window: film.info.window,
    }
    .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
    .map_err(js_err)?;
    let values = js_sys::Float64Array::from(film.stored.values.as_slice());
    js_sys::Reflect::set(&meta, &JsValue::from_str("values"), &values)
        .map_err(|_| JsError::new("cannot set values"))?;
    Ok(meta)
}
