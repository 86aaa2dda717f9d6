//! The safety-policy component: it decides what may be sent to the image model (local
//! deny-list, Gemini safety settings per threshold) and whether the model's verdict is
//! a safety block, so operators can swap the policy without rebuilding the gateway.
//!
//! The logic lives in plain-Rust modules (tested natively); `bindings` only converts
//! between the WIT types of `aperture:policy/safety@0.2.0` and these.

pub mod denylist;
pub mod policy;
pub mod thresholds;
pub mod types;

/// The generated WIT types, apart from `bindings` so that a test variant in
/// tests/guests/ can generate them from its own directory and reuse `bindings`.
#[cfg(target_arch = "wasm32")]
mod generated {
    wit_bindgen::generate!({ path: "../../wit", world: "safety-policy" });
}

#[cfg(target_arch = "wasm32")]
mod bindings;
