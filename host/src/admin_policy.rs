//! The admin API of the policy lifecycle (`/admin/policy/...`): install, list,
//! shadow, canary, promote, abort, activate, rollback, history and export of
//! component versions. `aperture policy ...` is its client; docs/policy.md
//! describes the lifecycle.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde::Deserialize;
use serde_json::json;

use crate::app::{blocking, App};
use crate::errors::GatewayError;
use crate::policy::{LifecycleError, Which};
use crate::server::json_response;

/// Largest component accepted by `install`.
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;

/// Whether a path takes a component as its body (a larger limit applies).
pub fn takes_component(path: &str) -> bool {
    path.starts_with("/admin/policy/") && path.ends_with("/install")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reference {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    percent: Option<u8>,
}

fn invalid(message: String) -> GatewayError {
    GatewayError::Admin {
        status: 400,
        code: "IMG_INVALID_REQUEST",
        message,
    }
}

fn lifecycle_error(e: LifecycleError) -> GatewayError {
    let (status, code) = match &e {
        LifecycleError::Refused(_) => (422, "IMG_COMPONENT_REFUSED"),
        LifecycleError::NotFound(_) => (404, "IMG_NOT_FOUND"),
        LifecycleError::Conflict(_) => (409, "IMG_CONFLICT"),
        LifecycleError::Invalid(_) => (400, "IMG_INVALID_REQUEST"),
        LifecycleError::Store(_) | LifecycleError::Policy(_) => (500, "IMG_INTERNAL_ERROR"),
    };
    GatewayError::Admin {
        status,
        code,
        message: e.to_string(),
    }
}

fn slot(name: &str) -> Result<Which, GatewayError> {
    Which::parse(name).ok_or_else(|| {
        invalid(format!(
            "unknown slot {name:?}: use translator, safety or classifier"
        ))
    })
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn reference(body: &Bytes) -> Result<Reference, GatewayError> {
    serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "the body must be {{\"ref\": \"SHA256-PREFIX-OR-LABEL\"}} (with \"percent\" for a canary): {e}"
        ))
    })
}

/// Route one `/admin/policy...` request; `None` when the path is not one of ours.
pub async fn handle(
    app: &Arc<App>,
    method: &Method,
    segments: &[&str],
    query: Option<&str>,
    body: Bytes,
    id: &str,
) -> Option<Result<Response<Full<Bytes>>, GatewayError>> {
    let ["policy", rest @ ..] = segments else {
        return None;
    };
    let ok = |v: serde_json::Value| Ok(json_response(StatusCode::OK, &v, id));
    let app = app.clone();
    let result = match (method, rest) {
        (&Method::GET, []) => blocking(move || app.policies.list())
            .await
            .and_then(|r| r.map_err(lifecycle_error))
            .and_then(ok),
        (&Method::GET, ["history"]) => {
            let which = match query_param(query, "slot") {
                Some(s) => match slot(&s) {
                    Ok(w) => Some(w),
                    Err(e) => return Some(Err(e)),
                },
                None => None,
            };
            let limit = query_param(query, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(100);
            blocking(move || app.policies.history(which, limit))
                .await
                .and_then(|r| r.map_err(lifecycle_error))
                .and_then(|events| ok(json!({ "events": events })))
        }
        (&Method::POST, [name, "install"]) => {
            let which = match slot(name) {
                Ok(w) => w,
                Err(e) => return Some(Err(e)),
            };
            let label = query_param(query, "label").filter(|l| !l.is_empty());
            if body.is_empty() {
                return Some(Err(invalid(
                    "send the component's .wasm bytes as the request body".into(),
                )));
            }
            let answer =
                blocking(move || app.policies.install(which, &body, label.as_deref())).await;
            match answer {
                Err(e) => Err(e),
                Ok(Ok(installed)) => {
                    let status = if installed.new {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    };
                    let report = installed.version.report.clone();
                    Ok(json_response(
                        status,
                        &json!({"version": installed.version, "new": installed.new, "report": report}),
                        id,
                    ))
                }
                Ok(Err(LifecycleError::Refused(report))) => Err(GatewayError::ComponentRefused {
                    reason: report
                        .refused
                        .clone()
                        .unwrap_or_else(|| "verification failed".into()),
                    report: serde_json::to_value(&report).unwrap_or_default(),
                }),
                Ok(Err(e)) => Err(lifecycle_error(e)),
            }
        }
        (&Method::POST, [name, action @ ("shadow" | "canary" | "activate")]) => {
            let which = match slot(name) {
                Ok(w) => w,
                Err(e) => return Some(Err(e)),
            };
            let r = match reference(&body) {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            let action = action.to_string();
            let run = move || match action.as_str() {
                "shadow" => {
                    app.policies
                        .set_candidate(which, &r.reference, crate::policy::Mode::Shadow)
                }
                "canary" => match r.percent {
                    None => Err(LifecycleError::Invalid(
                        "a canary needs \"percent\" (1-99)".into(),
                    )),
                    Some(p) => app.policies.set_candidate(
                        which,
                        &r.reference,
                        crate::policy::Mode::Canary(p),
                    ),
                },
                _ => app.policies.activate(which, &r.reference),
            };
            blocking(run)
                .await
                .and_then(|r| r.map_err(lifecycle_error))
                .and_then(ok)
        }
        (&Method::POST, [name, action @ ("promote" | "abort" | "rollback")]) => {
            let which = match slot(name) {
                Ok(w) => w,
                Err(e) => return Some(Err(e)),
            };
            let action = action.to_string();
            blocking(move || match action.as_str() {
                "promote" => app.policies.promote(which),
                "abort" => app.policies.abort(which),
                _ => app.policies.rollback(which),
            })
            .await
            .and_then(|r| r.map_err(lifecycle_error))
            .and_then(ok)
        }
        (&Method::GET, [name, "export"]) => {
            let which = match slot(name) {
                Ok(w) => w,
                Err(e) => return Some(Err(e)),
            };
            let r = query_param(query, "ref").filter(|r| !r.is_empty());
            match blocking(move || app.policies.export(which, r.as_deref()))
                .await
                .and_then(|r| r.map_err(lifecycle_error))
            {
                Err(e) => Err(e),
                Ok((version, bytes)) => {
                    let mut response = Response::new(Full::new(Bytes::from(bytes)));
                    let h = response.headers_mut();
                    h.insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/wasm"),
                    );
                    if let Ok(v) = http::HeaderValue::from_str(&version.sha256) {
                        h.insert("x-aperture-sha256", v);
                    }
                    if let Ok(v) = http::HeaderValue::from_str(id) {
                        h.insert("x-request-id", v);
                    }
                    Ok(response)
                }
            }
        }
        _ => return None,
    };
    Some(result)
}

/// The methods a policy path answers to (for 405 and `Allow`).
pub fn allowed_methods(segments: &[&str]) -> Option<&'static str> {
    match segments {
        ["policy"] | ["policy", "history"] | ["policy", _, "export"] => Some("GET"),
        ["policy", _, "install" | "shadow" | "canary" | "activate" | "promote" | "abort" | "rollback"] => {
            Some("POST")
        }
        _ => None,
    }
}
