//! A test variant of the request translator: the real `components/request-translator`,
//! built from the very same source files, with another [`CACHE_NAMESPACE`]. Tests use it
//! to see that the cache key follows the translator's namespace (a policy change never
//! serves an entry made under another translator; a rollback finds the old ones again).

#[path = "../../../../components/request-translator/src/aspect.rs"]
pub mod aspect;
#[path = "../../../../components/request-translator/src/request.rs"]
pub mod request;
#[path = "../../../../components/request-translator/src/response.rs"]
pub mod response;
#[path = "../../../../components/request-translator/src/types.rs"]
pub mod types;
#[path = "../../../../components/request-translator/src/upstream.rs"]
pub mod upstream;

/// This variant's namespace: not the real translator's.
pub const CACHE_NAMESPACE: &str = "translator-namespace-variant/0.2.0";

/// The WIT types, generated here (the real crate's path to `wit/` differs from ours).
#[cfg(target_arch = "wasm32")]
mod generated {
    wit_bindgen::generate!({ path: "../../../wit", world: "request-translator" });
}

#[cfg(target_arch = "wasm32")]
#[path = "../../../../components/request-translator/src/bindings.rs"]
mod bindings;
