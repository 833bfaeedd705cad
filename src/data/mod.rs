//! Data: the findings and phrases of the MS-CXR protocol, the synthetic corpus, drawing helpers.

pub mod draw;
#[cfg(not(target_arch = "wasm32"))]
pub mod load;
pub mod phrases;
pub mod preview;
pub mod record;
pub mod stats;
/// Not in the browser build: the embedded phantoms would only weigh the page down.
#[cfg(not(target_arch = "wasm32"))]
pub mod synth;

#[cfg(not(target_arch = "wasm32"))]
mod corpora;
#[cfg(not(target_arch = "wasm32"))]
pub use corpora::*;
