//! medground: find what a clinical phrase points at in a medical image, with a multimodal
//! language model fine-tuned by LoRA (after PFMVG, arXiv 2410.23822).
//!
//! An image travels `image` -> `model` -> `protocol` -> box; a phrase travels `protocol` (prompt)
//! -> `tokens` -> `model`. Native CLI and the browser are two callers of the same pieces.
//!
//! Load a bundle, read a film once, ask it several phrases (`examples/ground.rs` is the same as
//! a program):
//!
//! ```
//! use medground::{Grounder, weights::Bundle};
//!
//! # fn main() -> medground::Result<()> {
//! let bundle = Bundle::read_dir(std::path::Path::new("assets/demo"))?;
//! let grounder = Grounder::from_owned(bundle, &medground::device::parse("cpu")?)?;
//! let bytes = std::fs::read("tests/fixtures/chest_rg1.dcm").expect("the sample film");
//! let film = medground::image::decode(&bytes)?; // PNG, JPEG or DICOM
//! let encoded = grounder.encode(&film)?; // the vision tower runs here, once
//! for phrase in ["the heart", "right lung"] {
//!     let answer = grounder.ground_encoded(&encoded, phrase)?;
//!     let [x1, y1, x2, y2] = answer.box_px; // in the film's pixels
//!     assert!(x1 < x2 && y1 < y2 && x2 <= film.width as f32);
//!     assert_eq!(answer.in_distribution, Some(true)); // a chest film: a confidence is given
//!     assert!(answer.confidence.is_some_and(|c| (0.0..=1.0).contains(&c)));
//! }
//! # Ok(())
//! # }
//! ```

pub mod data;
pub mod device;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
pub mod grounder;
pub mod image;
pub mod kernels;
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
