//! Phase 1, authenticate: the client key from `Authorization: Bearer` (or
//! `x-api-key`), checked against hashed keys in constant time, behind the
//! failed-authentication throttle of the client's address.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;

use crate::app::{blocking, now_ms, App};
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

/// Accept the request (returning the key's label, for the log) or refuse it: 429 when `peer` has used
/// its failed attempts (no key is looked at), 401 for no key, a wrong key or the admin key, 503 when the
/// store cannot be read.
pub async fn run(
    app: &Arc<App>,
    headers: &HeaderMap,
    peer: IpAddr,
) -> Result<String, GatewayError> {
    app.auth_throttle.check(peer, now_ms())?;
    let result = verify(app, presented_key(headers)).await;
    if matches!(
        result,
        Err(GatewayError::Unauthorized | GatewayError::AdminKeyAsClientKey)
    ) {
        app.auth_throttle.failed(peer, now_ms());
    }
    result
}

async fn verify(app: &Arc<App>, key: Option<&str>) -> Result<String, GatewayError> {
    let key = key.ok_or(GatewayError::Unauthorized)?;
    if app.is_admin(key) {
        return Err(GatewayError::AdminKeyAsClientKey);
    }
    let found = match app.keys.verify_in_memory(key) {
        Some(found) => found,
        None => {
            let (app2, key) = (app.clone(), key.to_string());
            blocking(move || app2.keys.verify(&key))
                .await?
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot check a client key: the store failed");
                    GatewayError::AuthStorage(e.to_string())
                })?
        }
    };
    found.ok_or(GatewayError::Unauthorized)
}
