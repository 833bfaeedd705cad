//! Training: the paper's two stages with LoRA, natively (CPU, wgpu, CUDA); the steps themselves
//! (batches, loss, gradients, AdamW: `tune.rs`) also in the browser.

pub mod base;
pub mod batch;
pub mod cache;
#[cfg(feature = "cli")]
pub mod checkpoint;
pub mod config;
pub mod dense;
pub mod loss;
#[cfg(feature = "cli")]
pub mod plot;
#[cfg(feature = "cli")]
pub mod probe;
#[cfg(not(target_arch = "wasm32"))]
pub mod progress;
#[cfg(feature = "cli")]
pub mod run;
pub mod step;
pub mod tune;

pub use config::TrainConfig;
