//! medground: find what a clinical phrase points at in a medical image, with a multimodal
//! language model fine-tuned by LoRA (after PFMVG, arXiv 2410.23822).
//!
//! An image travels `image` -> `model` -> `protocol` -> box; a phrase travels `protocol` (prompt)
//! -> `tokens` -> `model`. Native CLI and the browser are two callers of the same pieces.

pub mod data;
pub mod device;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
pub mod grounder;
pub mod image;
pub mod model;

pub use error::{Error, Result};
pub mod protocol;
pub mod tokens;
#[cfg(feature = "tune")]
pub mod train;
pub mod weights;
pub use grounder::{Grounder, Grounding};
#[cfg(all(target_arch = "wasm32", feature = "web-cpu"))]
pub mod web;
