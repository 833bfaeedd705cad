//! Data: the findings and phrases of the MS-CXR protocol (and later the corpora and loaders).

pub mod phrases;
