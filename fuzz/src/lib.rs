//! Shared pieces of the fuzz targets: structured JSON generation, JSON text in its many
//! spellings, and the value diff the blob properties are stated with.

pub mod diff;
pub mod emit;
pub mod json;

use arbitrary::{Result, Unstructured};

/// True one time in `n`, and false once the input has run out (where `u.ratio(1, n)` is
/// true: an input cut short would otherwise get every rare quirk at once).
pub fn one_in(u: &mut Unstructured, n: u32) -> Result<bool> {
    Ok(u.int_in_range(1..=n)? == n)
}
