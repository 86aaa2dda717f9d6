//! The admin API (`/admin/*`, guarded by APERTURE_ADMIN_KEY): manage accounts,
//! client keys and the cache while the gateway runs. The `aperture accounts …`
//! and `aperture cache …` commands are its client.

use std::sync::Arc;

use aperture_store::StoreError;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use crate::app::{blocking, now_ms, App};
use crate::errors::GatewayError;
use crate::server::{json_response, read_body};

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 64 << 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    label: String,
    #[serde(default)]
    email: Option<String>,
    secret: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Reason {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    label: String,
    key: String,
}

fn store_error(e: StoreError) -> GatewayError {
    store_error_listed_by(e, "aperture accounts list")
}

/// `store_error` for client keys: an unknown one points to `aperture keys list`.
fn key_error(e: StoreError) -> GatewayError {
    match e {
        StoreError::Duplicate(what) => GatewayError::Admin {
            status: 409,
            code: "IMG_CONFLICT",
            message: format!(
                "{what} is already in use; pick another label, or remove the old key first (`aperture keys remove LABEL`)"
            ),
        },
        other => store_error_listed_by(other, "aperture keys list"),
    }
}

fn store_error_listed_by(e: StoreError, listing: &str) -> GatewayError {
    match e {
        StoreError::NotFound(what) => GatewayError::Admin {
            status: 404,
            code: "IMG_NOT_FOUND",
            message: format!("{what} not found; list them with `{listing}`"),
        },
        StoreError::Duplicate(what) => GatewayError::Admin {
            status: 409,
            code: "IMG_CONFLICT",
            message: format!(
                "{what} already exists; pick another label or remove the old one first"
            ),
        },
        StoreError::Invalid(msg) => GatewayError::Admin {
            status: 400,
            code: "IMG_INVALID_REQUEST",
            message: msg,
        },
        other => GatewayError::from(other),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, GatewayError> {
    serde_json::from_slice(body).map_err(|e| GatewayError::Admin {
        status: 400,
        code: "IMG_INVALID_REQUEST",
        message: format!("the admin request body is not valid: {e}"),
    })
}

/// Route and run one admin request.
pub async fn handle(
    app: &Arc<App>,
    req: Request<Incoming>,
    id: &str,
) -> Result<Response<Full<Bytes>>, GatewayError> {
    if app.admin_key.is_none() {
        return Err(GatewayError::AdminUnauthorized(
            "the admin API is off: start the gateway with APERTURE_ADMIN_KEY set",
        ));
    }
    let key = crate::gateway::authenticate::presented_key(req.headers()).unwrap_or("");
    if !app.is_admin(key) {
        return Err(GatewayError::AdminUnauthorized(
            "missing or invalid admin key: send `Authorization: Bearer $APERTURE_ADMIN_KEY`",
        ));
    }
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let (parts, body) = req.into_parts();
    let body = read_body(
        body,
        &parts.headers,
        MAX_ADMIN_BODY,
        app.config.body_timeout,
    )
    .await?;
    // Segments are percent-decoded: a label `team a` arrives as `team%20a`.
    let decoded: Vec<String> = path
        .trim_start_matches("/admin/")
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let ok = |v: serde_json::Value| Ok(json_response(StatusCode::OK, &v, id));
    let app = app.clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["accounts"]) => ok(json!({"accounts": app.accounts.list(now_ms())})),
        (&Method::POST, ["accounts"]) => {
            let new: NewAccount = parse(&body)?;
            sendable_secret(&new.secret)?;
            let view = blocking(move || {
                app.accounts
                    .add(&new.label, new.email.as_deref(), &new.secret, now_ms())
            })
            .await?
            .map_err(store_error)?;
            tracing::info!(account = %view.label, "account added");
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"account": view}),
                id,
            ))
        }
        (&Method::POST, ["accounts", sel, "disable"]) => {
            let reason: Reason = if body.is_empty() {
                Reason::default()
            } else {
                parse(&body)?
            };
            let (sel, reason) = (
                sel.to_string(),
                reason
                    .reason
                    .unwrap_or_else(|| "disabled by operator".into()),
            );
            let view = blocking(move || app.accounts.disable(sel.as_str(), &reason))
                .await?
                .map_err(store_error)?;
            tracing::info!(account = %view.label, "account disabled by operator");
            ok(json!({"account": view}))
        }
        (&Method::POST, ["accounts", sel, "enable"]) => {
            let sel = sel.to_string();
            let view = blocking(move || app.accounts.enable(sel.as_str()))
                .await?
                .map_err(store_error)?;
            tracing::info!(account = %view.label, "account enabled by operator");
            ok(json!({"account": view}))
        }
        (&Method::DELETE, ["accounts", sel]) => {
            let sel = sel.to_string();
            let view = blocking(move || app.accounts.remove(sel.as_str()))
                .await?
                .map_err(store_error)?;
            tracing::info!(account = %view.label, "account removed");
            ok(json!({"account": view}))
        }
        (&Method::GET, ["keys"]) => {
            let keys = blocking(move || app.store.keys().list())
                .await?
                .map_err(store_error)?;
            let keys: Vec<_> = keys
                .into_iter()
                .map(|(label, hash)| json!({"label": label, "sha256_prefix": hash}))
                .collect();
            ok(json!({"keys": keys}))
        }
        (&Method::POST, ["keys"]) => {
            let new: NewKey = parse(&body)?;
            if new.key.len() < 8 {
                return Err(store_error(StoreError::Invalid(
                    "client keys must be at least 8 characters".into(),
                )));
            }
            let label = new.label.clone();
            blocking(move || app.store.keys().add(&new.label, &new.key))
                .await?
                .map_err(key_error)?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"key": {"label": label}}),
                id,
            ))
        }
        (&Method::DELETE, ["keys", label]) => {
            let label = label.to_string();
            let l2 = label.clone();
            blocking(move || app.store.keys().remove(&l2))
                .await?
                .map_err(key_error)?;
            ok(json!({"removed": label}))
        }
        (&Method::GET, ["cache"]) => {
            let Some(cache) = app.cache.clone() else {
                return ok(json!({"backend": "none"}));
            };
            let stats = blocking(move || cache.stats(now_ms()))
                .await?
                .map_err(store_error)?;
            ok(json!({
                "backend": app.config.cache.backend.name(),
                "entries": stats.entries,
                "bytes": stats.bytes,
                "max_bytes": stats.max_bytes,
                "ttl_seconds": app.config.cache.ttl.as_secs(),
            }))
        }
        (&Method::DELETE, ["cache"]) => {
            let Some(cache) = app.cache.clone() else {
                return ok(json!({"removed": 0}));
            };
            let removed = blocking(move || cache.clear())
                .await?
                .map_err(store_error)?;
            tracing::info!(removed, "Cache cleared by operator");
            ok(json!({"removed": removed}))
        }
        (&Method::GET, ["components"]) => ok(json!({"components": app.policies.active()})),
        (_, segments) => match allowed_methods(segments) {
            Some(allowed) => Err(GatewayError::MethodNotAllowed {
                method: method.to_string(),
                path,
                allowed,
            }),
            None => Err(GatewayError::NotFound(path)),
        },
    }
}

/// An account secret goes upstream as the `x-goog-api-key` header: refuse one that
/// cannot be (control characters other than tab). Surrounding whitespace is trimmed
/// by the store.
fn sendable_secret(secret: &str) -> Result<(), GatewayError> {
    if http::HeaderValue::from_str(secret.trim()).is_ok() {
        return Ok(());
    }
    Err(GatewayError::Admin {
        status: 400,
        code: "IMG_INVALID_REQUEST",
        message: "the account secret must not contain control characters: it is sent \
                  upstream as an HTTP header (a Gemini API key looks like AIza…)"
            .into(),
    })
}

/// The methods an admin path answers to (for 405 and `Allow`), or `None` for no such path.
fn allowed_methods(segments: &[&str]) -> Option<&'static str> {
    match segments {
        ["accounts"] | ["keys"] => Some("GET, POST"),
        ["accounts", _, "disable" | "enable"] => Some("POST"),
        ["accounts", _] | ["keys", _] => Some("DELETE"),
        ["cache"] => Some("GET, DELETE"),
        ["components"] => Some("GET"),
        _ => None,
    }
}
