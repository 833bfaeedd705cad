//! The Idefics3 / SmolVLM model family, one file per block of the checkpoint's module tree.

pub mod config;
pub mod connector;
pub mod generate;
pub mod lora;
pub mod rope;
pub mod text;
pub mod vision;
pub mod vlm;

pub use config::Idefics3Config;
pub use text::KvCache;
pub use vlm::{Batch, Idefics3};

/// A tensor's values read back from its device as `f32`, awaited (a browser's GPU cannot be
/// waited on by blocking).
pub async fn read_back<const D: usize>(
    t: burn::prelude::Tensor<D>,
) -> crate::error::Result<Vec<f32>> {
    fn device(e: impl std::fmt::Debug) -> crate::error::Error {
        crate::error::Error::Device(format!("{e:?}"))
    }
    t.into_data_async()
        .await
        .map_err(device)?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(device)
}
