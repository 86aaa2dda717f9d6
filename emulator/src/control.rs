//! Fault controls over HTTP (`/_emulator/...`) for operators driving a standalone emulator, mirroring the
//! `Emulator` handle: inject failures (by status or name, for everyone or one key), set latency and the
//! instance-wide answer shape, exhaust or add keys, read call counts.

use std::time::Duration;

use http::Method;
use serde_json::{json, Value};

use crate::catalog::NamedError;
use crate::config::{KeySpec, Quota, QuotaWindow};
use crate::errors::ApiError;
use crate::reply::Reply;
use crate::shape::Shape;
use crate::state::{Injected, Shared};

/// Answers `/_emulator/{path}`.
pub(crate) fn handle(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> Reply {
    match (method, path) {
        (&Method::GET, "stats") => Reply::json(200, &shared.stats_json()),
        (&Method::POST, "fail-next") => with_body(body, |v| {
            let usage =
                "expected {\"statuses\": [503, ...]} and/or {\"errors\": [\"429-limit0\", ...]}, \
                         optionally with \"key\": \"...\"";
            let statuses = v.get("statuses").filter(|s| !s.is_null());
            let errors = v.get("errors").filter(|e| !e.is_null());
            if statuses.is_none() && errors.is_none() {
                return Err(usage.to_string());
            }
            let mut queued = Vec::new();
            if let Some(statuses) = statuses {
                let statuses = statuses.as_array().ok_or(usage)?;
                for s in statuses {
                    let status = s
                        .as_u64()
                        .filter(|s| (100..=599).contains(s))
                        .ok_or("statuses must be HTTP status codes (100-599)")?;
                    queued.push(Injected::Status(status as u16));
                }
            }
            if let Some(errors) = errors {
                let errors = errors.as_array().ok_or(usage)?;
                for e in errors {
                    let name = e.as_str().unwrap_or("");
                    let named = NamedError::parse(name).ok_or_else(|| {
                        format!("unknown error name \"{name}\" (see docs/emulator.md)")
                    })?;
                    queued.push(Injected::Named(named));
                }
            }
            let key = match v.get("key").filter(|k| !k.is_null()) {
                None => None,
                Some(k) => Some(k.as_str().ok_or("key must be a string")?),
            };
            shared.fail_next(key, &queued);
            let shown: Vec<Value> = queued
                .iter()
                .map(|i| match i {
                    Injected::Status(s) => json!(s),
                    Injected::Named(e) => json!(e.as_str()),
                })
                .collect();
            Ok(json!({"queued": shown, "key": key}))
        }),
        (&Method::GET, "shape") => Reply::json(200, &shared.shape().to_json()),
        (&Method::POST, "shape") => with_body(body, |v| {
            let shape = Shape::from_json(v).map_err(|e| e.to_string())?;
            shared.set_shape(shape.clone());
            Ok(shape.to_json())
        }),
        (&Method::POST, "latency") => with_body(body, |v| {
            let ms = v
                .get("ms")
                .and_then(Value::as_u64)
                .ok_or("expected {\"ms\": 100}")?;
            shared.set_latency(Duration::from_millis(ms));
            Ok(json!({"latency_ms": ms}))
        }),
        (&Method::POST, "exhaust-key") => with_body(body, |v| {
            let key = v
                .get("key")
                .and_then(Value::as_str)
                .ok_or("expected {\"key\": \"...\", \"per\": \"minute\" | \"day\"}")?;
            let per = window(v.get("per"))?;
            shared.exhaust_key(key, per);
            Ok(json!({"exhausted": key}))
        }),
        (&Method::POST, "keys") => with_body(body, |v| {
            let key = v.get("key").and_then(Value::as_str).ok_or(
                "expected {\"key\": \"...\", \"quota\": {\"limit\": 10, \"per\": \"minute\"}}",
            )?;
            let quota = match v.get("quota").filter(|q| !q.is_null()) {
                None => None,
                Some(q) => Some(Quota {
                    limit: q
                        .get("limit")
                        .and_then(Value::as_u64)
                        .and_then(|l| u32::try_from(l).ok())
                        .ok_or("quota.limit must be a non-negative integer")?,
                    per: window(q.get("per"))?,
                }),
            };
            shared.add_key(KeySpec {
                key: key.to_string(),
                quota,
            });
            Ok(json!({"added": key}))
        }),
        (_, "stats" | "fail-next" | "latency" | "exhaust-key" | "keys" | "shape") => {
            ApiError::method_not_allowed(method.as_str(), &format!("/_emulator/{path}")).into()
        }
        _ => ApiError::path_not_found(&format!("/_emulator/{path}")).into(),
    }
}

fn window(value: Option<&Value>) -> Result<QuotaWindow, String> {
    value
        .and_then(Value::as_str)
        .and_then(QuotaWindow::parse)
        .ok_or_else(|| "per must be \"minute\" or \"day\"".to_string())
}

fn with_body(body: &[u8], f: impl FnOnce(&Value) -> Result<Value, String>) -> Reply {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::invalid_argument(format!("Invalid JSON payload received. {e}")).into()
        }
    };
    match f(&value) {
        Ok(answer) => Reply::json(200, &answer),
        Err(message) => ApiError::invalid_argument(message).into(),
    }
}
