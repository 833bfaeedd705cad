//! The paper's protocol: prompts, the `{<x1><y1><x2><y2>}` answer on a 0–100 grid, decoding
//! constrained to well-formed boxes, and the IoU metrics.

pub mod answer;
pub mod calibration;
pub mod chat;
pub mod constrain;
pub mod metrics;
pub mod ood;
pub mod prompt;
pub mod structures;

pub use answer::GridBox;
pub use prompt::Prompt;
