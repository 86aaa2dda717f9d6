//! The translator's cache namespace, in a file of its own so the test variants under
//! tests/guests/ can share it (or replace it) without copying the rest of `lib.rs`.

/// The namespace mixed into every cache key; change it whenever the upstream body or
/// the rendered response changes for the same canonical request.
pub const CACHE_NAMESPACE: &str = "request-translator/0.2.0";
