//! The request-translator policy component: it turns OpenAI Images API requests into
//! Gemini `generateContent` calls and Gemini responses back into OpenAI responses, so
//! the mapping can be changed or replaced without rebuilding the gateway.
//!
//! The logic lives in plain-Rust modules (tested natively); `bindings` only converts
//! between the WIT types of `aperture:policy/translator@0.2.0` and these.

pub mod aspect;
pub mod request;
pub mod response;
pub mod types;
pub mod upstream;

#[cfg(target_arch = "wasm32")]
mod bindings;

/// The namespace mixed into every cache key; change it whenever the upstream body or
/// the rendered response changes for the same canonical request.
pub const CACHE_NAMESPACE: &str = "request-translator/0.2.0";
