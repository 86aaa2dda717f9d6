//! A test translator that targets the frozen `aperture:policy@0.1.0`
//! (wit/released/0.1.0/): the real translator logic (the very same source files) behind
//! 0.1.0 bindings. A host of `aperture:policy@0.2.0` must refuse it as
//! semver-incompatible, naming both versions.

#[path = "../../../../components/request-translator/src/aspect.rs"]
pub mod aspect;
#[path = "../../../../components/request-translator/src/namespace.rs"]
pub mod namespace;
#[path = "../../../../components/request-translator/src/request.rs"]
pub mod request;
#[path = "../../../../components/request-translator/src/response.rs"]
pub mod response;
#[path = "../../../../components/request-translator/src/types.rs"]
pub mod types;
#[path = "../../../../components/request-translator/src/upstream.rs"]
pub mod upstream;

pub use namespace::CACHE_NAMESPACE;

#[cfg(target_arch = "wasm32")]
mod bindings_010;
