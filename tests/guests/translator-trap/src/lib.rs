//! A test variant of the request translator: the real `components/request-translator`,
//! built from the very same source files, except that `parse-request` traps (panics)
//! when the prompt contains [`request::TRIGGER`] (`trap-me`). Tests use it to see that a
//! trapping candidate never reaches a client.

#[path = "../../../../components/request-translator/src/aspect.rs"]
pub mod aspect;
#[path = "../../../../components/request-translator/src/namespace.rs"]
pub mod namespace;
#[path = "../../../../components/request-translator/src/request.rs"]
mod real_request;
#[path = "../../../../components/request-translator/src/response.rs"]
pub mod response;
#[path = "../../../../components/request-translator/src/types.rs"]
pub mod types;
#[path = "../../../../components/request-translator/src/upstream.rs"]
pub mod upstream;

/// The real parsing, with `parse_request` wrapped.
pub mod request {
    pub use crate::real_request::*;
    use crate::types::{ImageRequest, UserError};

    /// The prompt text that makes this variant trap.
    pub const TRIGGER: &str = "trap-me";

    /// The real `parse_request`, but a valid request whose prompt contains
    /// [`TRIGGER`] panics (a wasm trap).
    pub fn parse_request(body: &str) -> Result<ImageRequest, UserError> {
        let request = crate::real_request::parse_request(body)?;
        if request.prompt.contains(TRIGGER) {
            panic!("translator-trap traps on purpose (the prompt contains `{TRIGGER}`)");
        }
        Ok(request)
    }
}

pub use namespace::CACHE_NAMESPACE;

/// The WIT types, generated here (the real crate's path to `wit/` differs from ours).
#[cfg(target_arch = "wasm32")]
mod generated {
    wit_bindgen::generate!({ path: "../../../wit", world: "request-translator" });
}

#[cfg(target_arch = "wasm32")]
#[path = "../../../../components/request-translator/src/bindings.rs"]
mod bindings;
