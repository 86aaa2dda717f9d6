//! The request-translator policy component: it turns OpenAI Images API requests into
//! Gemini `generateContent` calls and Gemini responses back into OpenAI responses, so
//! the mapping can be changed or replaced without rebuilding the gateway.
//!
//! The logic lives in plain-Rust modules (tested natively); `bindings` only converts
//! between the WIT types of `aperture:policy/translator@0.2.0` and these.

pub mod aspect;
pub mod namespace;
pub mod request;
pub mod response;
pub mod types;
pub mod upstream;

/// The generated WIT types, apart from `bindings` so that a test variant in
/// tests/guests/ can generate them from its own directory and reuse `bindings`.
#[cfg(target_arch = "wasm32")]
mod generated {
    wit_bindgen::generate!({ path: "../../wit", world: "request-translator" });
}

#[cfg(target_arch = "wasm32")]
mod bindings;

pub use namespace::CACHE_NAMESPACE;
