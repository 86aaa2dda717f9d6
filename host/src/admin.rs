//! The admin API (`/admin/*`, guarded by APERTURE_ADMIN_KEY): manage accounts,
//! client keys and the cache while the gateway runs, and take store backups. The `aperture accounts …`
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
    /// Limits of the key (see `admin_limits.rs`); absent fields take the defaults.
    #[serde(default)]
    limits: Option<serde_json::Value>,
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

/// One client key as the admin API shows it: its stored limits, the limits it runs with, its usage.
fn key_json(app: &App, label: &str, sha256_prefix: Option<&str>, now: u64) -> serde_json::Value {
    let (images_today, in_flight) = app.limiter.usage_of(label, now);
    let mut v = json!({
        "label": label,
        "limits": app.limiter.overrides_of(label),
        "effective": crate::admin_limits::effective_json(&app.limiter.limits_of(label)),
        "usage": {"images_today": images_today, "in_flight": in_flight},
    });
    if let Some(prefix) = sha256_prefix {
        v["sha256_prefix"] = json!(prefix);
    }
    v
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
    peer: std::net::IpAddr,
) -> Result<Response<Full<Bytes>>, GatewayError> {
    if app.admin_key.is_none() {
        return Err(GatewayError::AdminUnauthorized(
            "the admin API is off: start the gateway with APERTURE_ADMIN_KEY set",
        ));
    }
    app.auth_throttle.check(peer, now_ms())?;
    let key = crate::gateway::authenticate::presented_key(req.headers()).unwrap_or("");
    if !app.is_admin(key) {
        app.auth_throttle.failed(peer, now_ms());
        return Err(GatewayError::AdminUnauthorized(
            "missing or invalid admin key: send `Authorization: Bearer $APERTURE_ADMIN_KEY`",
        ));
    }
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let (parts, body) = req.into_parts();
    let limit = if crate::admin_policy::takes_component(&path) {
        crate::admin_policy::MAX_COMPONENT_BYTES
    } else {
        MAX_ADMIN_BODY
    };
    let body = read_body(body, &parts.headers, limit, app.live.load().body_timeout).await?;
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
    if let Some(answer) = crate::admin_policy::handle(
        &app,
        &method,
        &segments,
        parts.uri.query(),
        body.clone(),
        id,
    )
    .await
    {
        return answer;
    }
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
            let app2 = app.clone();
            let keys = blocking(move || app2.store.keys().list())
                .await?
                .map_err(store_error)?;
            let now = now_ms();
            let keys: Vec<_> = keys
                .into_iter()
                .map(|(label, hash)| key_json(&app, &label, Some(&hash), now))
                .collect();
            ok(json!({
                "keys": keys,
                "defaults": crate::admin_limits::effective_json(&app.limiter.defaults()),
            }))
        }
        (&Method::POST, ["keys"]) => {
            let new: NewKey = parse(&body)?;
            if new.key.len() < 8 {
                return Err(store_error(StoreError::Invalid(
                    "client keys must be at least 8 characters".into(),
                )));
            }
            if app.is_admin(&new.key) {
                return Err(store_error(StoreError::Invalid(
                    "this is the admin key; a client key must be a different secret".into(),
                )));
            }
            let mut limits = aperture_store::KeyLimits::default();
            if let Some(v) = &new.limits {
                crate::admin_limits::LimitChange::from_json(v)?.apply(&mut limits);
            }
            let label = new.label.trim().to_string();
            let (app2, stored) = (app.clone(), limits.clone());
            blocking(move || {
                app2.store
                    .keys()
                    .add_with_limits(&new.label, &new.key, &stored)
            })
            .await?
            .map_err(key_error)?;
            app.limiter.set_overrides(&label, limits);
            tracing::info!(client = %label, "client key added");
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"key": key_json(&app, &label, None, now_ms())}),
                id,
            ))
        }
        (&Method::PATCH, ["keys", label]) => {
            let value: serde_json::Value = parse(&body)?;
            let change = crate::admin_limits::LimitChange::from_json(&value)?;
            if change.is_empty() {
                return Err(store_error(StoreError::Invalid(
                    "name at least one limit to change: rpm, images_per_day, max_concurrent, allowed_thresholds".into(),
                )));
            }
            let (label, app2) = (label.trim().to_string(), app.clone());
            let l2 = label.clone();
            let limits =
                blocking(move || app2.store.keys().update_limits(&l2, |l| change.apply(l)))
                    .await?
                    .map_err(key_error)?;
            app.limiter.set_overrides(&label, limits);
            tracing::info!(client = %label, "client key limits changed");
            ok(json!({"key": key_json(&app, &label, None, now_ms())}))
        }
        (&Method::DELETE, ["keys", label]) => {
            let label = label.trim().to_string();
            let (l2, app2) = (label.clone(), app.clone());
            blocking(move || app2.store.keys().remove(&l2))
                .await?
                .map_err(key_error)?;
            app.limiter.forget(&label);
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
                "ttl_seconds": app.live.load().cache.ttl_ms / 1000,
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
        (&Method::POST, ["config", "reload"]) => {
            let report = blocking(move || crate::reload::reload(&app, "admin API"))
                .await?
                .map_err(|e| match e {
                    crate::reload::ReloadError::Invalid(problems) => {
                        GatewayError::ConfigRejected { problems }
                    }
                    other => GatewayError::Internal(other.to_string()),
                })?;
            ok(json!({
                "reloaded": true,
                "applied": report.applied,
                "restart_required": report.restart_required,
            }))
        }
        (&Method::GET, ["stats"]) => {
            let query = crate::stats::report::Query::parse(parts.uri.query())?;
            ok(crate::stats::report::build(&app, &query).await?)
        }
        (&Method::GET, ["store", "backup"]) => {
            crate::backup::snapshot(&app, crate::backup::include_cache(parts.uri.query()), id).await
        }
        (_, segments) => match allowed_methods(segments)
            .or_else(|| crate::admin_policy::allowed_methods(segments))
        {
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
        ["accounts", _] => Some("DELETE"),
        ["keys", _] => Some("DELETE, PATCH"),
        ["store", "backup"] => Some("GET"),
        ["cache"] => Some("GET, DELETE"),
        ["components"] | ["stats"] => Some("GET"),
        ["config", "reload"] => Some("POST"),
        _ => None,
    }
}
