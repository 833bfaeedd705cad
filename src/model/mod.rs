//! The Idefics3 / SmolVLM model family, one file per block of the checkpoint's module tree.

pub mod config;
pub mod connector;
pub mod fused;
pub mod generate;
pub mod lora;
pub mod rope;
pub mod text;
pub mod vision;
pub mod vlm;

pub use config::Idefics3Config;
pub use text::KvCache;
pub use vlm::{Batch, Idefics3};
