//! The one place `bindgen!` runs: Rust types and call stubs for the three
//! policy worlds of `wit/`, generated from the same WIT the guests are built from.
//!
//! The shared `types` interface is generated once (in `translator`) and reused by
//! the other two worlds through `with`, so one `ImageRequest` type flows between
//! the translator and the safety policy without conversion.

/// The `request-translator` world.
pub mod translator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "request-translator",
    });
}

/// The `safety-policy` world.
pub mod safety {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "safety-policy",
        with: {
            "aperture:policy/types": super::translator::aperture::policy::types,
        },
    });
}

/// The `error-classifier` world.
pub mod classifier {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "error-classifier",
        with: {
            "aperture:policy/types": super::translator::aperture::policy::types,
        },
    });
}

pub use classifier::exports::aperture::policy::classifier::{
    AccountAction, Classification, Failure, HttpFailure, TransportFailure, TransportKind,
};
pub use safety::exports::aperture::policy::safety::{
    Block, Denial, PolicyConfig, Refusal, ReviewOutcome, Screening,
};
pub use translator::aperture::policy::types::{
    ErrorType, Generation, Image, ImageRequest, OutputFormat, ResponseFormat, SafetyRating,
    SafetySetting, SafetyThreshold, UpstreamVerdict, Usage,
};
pub use translator::exports::aperture::policy::translator::{UpstreamOutcome, UserError};
