//! A test variant of the request translator: the real `components/request-translator`,
//! built from the very same source files, except that `parse-request` loops forever
//! when the prompt contains [`request::TRIGGER`] (`loop-me`), until the host's deadline
//! interrupts it. Tests use it to see that a hanging candidate never reaches a client.

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

    /// The prompt text that makes this variant loop.
    pub const TRIGGER: &str = "loop-me";

    /// The real `parse_request`, but a valid request whose prompt contains
    /// [`TRIGGER`] never returns.
    pub fn parse_request(body: &str) -> Result<ImageRequest, UserError> {
        let request = crate::real_request::parse_request(body)?;
        if request.prompt.contains(TRIGGER) {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
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
