//! The error-classifier component: it decides what a failed Gemini call means (error
//! family, `IMG_*` code, client status, retry on another account, and what to do with
//! the account: cool down, rest until the quota reset, disable), so the retry policy
//! can follow upstream changes without rebuilding the gateway.
//!
//! The logic lives in plain-Rust modules (tested natively); `bindings` only converts
//! between the WIT types of `aperture:policy/classifier@0.2.0` and these.

pub mod classify;
pub mod gemini;
pub mod redact;
pub mod types;

#[cfg(target_arch = "wasm32")]
mod bindings;
