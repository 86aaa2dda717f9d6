//! Shared pieces of the fuzz targets: structured JSON generation and the value diff
//! the blob properties are stated with.

pub mod diff;
pub mod json;
