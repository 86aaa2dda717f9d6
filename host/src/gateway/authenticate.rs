//! Phase 1, authenticate: the client key from `Authorization: Bearer` (or
//! `x-api-key`), checked against hashed keys in constant time.

use http::HeaderMap;

use crate::app::App;
use crate::errors::GatewayError;

/// The presented key, from `Authorization: Bearer <key>` or `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    bearer
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|k| !k.is_empty())
}

/// Accept the request (returning the key's label, for the log) or refuse it with 401.
pub fn run(app: &App, headers: &HeaderMap) -> Result<String, GatewayError> {
    presented_key(headers)
        .and_then(|key| app.keys.verify(key))
        .ok_or(GatewayError::Unauthorized)
}
