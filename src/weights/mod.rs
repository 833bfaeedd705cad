//! Weights in and out: HF-layout safetensors (what transformers reads and writes, so our bundles
//! and HF checkpoints are one format) and our bundle folder with its manifest of checksums.

pub mod bundle;
pub mod int8;
pub mod peft;
mod raw;
pub mod safetensors;

pub use bundle::{Bundle, Dtype};
