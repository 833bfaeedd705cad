//! Training: the paper's two stages with LoRA, natively (CPU, wgpu, CUDA).

pub mod base;
pub mod batch;
pub mod cache;
pub mod checkpoint;
pub mod config;
pub mod dense;
pub mod loss;
pub mod plot;
pub mod probe;
pub mod run;
pub mod step;

pub use config::TrainConfig;
