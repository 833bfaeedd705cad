//! One error type for the library: every failure a user can cause maps to a clear message.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a readable image: {0}")]
    Image(String),
    /// Says itself whether the file is broken or valid but unsupported.
    #[error("{0}")]
    Dicom(String),
    #[error("bad phrase: {0}")]
    Phrase(String),
    #[error("bad weights: {0}")]
    Weights(String),
    #[error("bad config: {0}")]
    Config(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("device: {0}")]
    Device(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
