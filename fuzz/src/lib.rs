//! Shared pieces of the fuzz targets: structured JSON generation, JSON text in its many
//! spellings, and the value diff the blob properties are stated with.

pub mod diff;
pub mod emit;
pub mod json;
