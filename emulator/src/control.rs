//! Fault controls over HTTP (`/_emulator/...`) for operators driving a standalone emulator, mirroring the
//! `Emulator` handle: inject failures, set latency, exhaust or add keys, read call counts.

use std::time::Duration;

use http::Method;
use serde_json::{json, Value};

use crate::config::{KeySpec, Quota, QuotaWindow};
use crate::errors::ApiError;
use crate::generate::Reply;
use crate::state::Shared;

/// Answers `/_emulator/{path}`.
pub(crate) fn handle(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> Reply {
    match (method, path) {
        (&Method::GET, "stats") => Reply::json(200, &shared.stats_json()),
        (&Method::POST, "fail-next") => with_body(body, |v| {
            let statuses = v
                .get("statuses")
                .and_then(Value::as_array)
                .ok_or("expected {\"statuses\": [503, ...]}")?;
            let statuses = statuses
                .iter()
                .map(|s| {
                    s.as_u64()
                        .filter(|s| (100..=599).contains(s))
                        .map(|s| s as u16)
                })
                .collect::<Option<Vec<u16>>>()
                .ok_or("statuses must be HTTP status codes (100-599)")?;
            shared.fail_next(&statuses);
            Ok(json!({"queued": statuses}))
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
        (_, "stats" | "fail-next" | "latency" | "exhaust-key" | "keys") => {
            ApiError::method_not_allowed(method.as_str(), &format!("/_emulator/{path}")).into()
        }
        _ => ApiError::path_not_found(&format!("/_emulator/{path}")).into(),
    }
}

fn window(value: Option<&Value>) -> Result<QuotaWindow, &'static str> {
    value
        .and_then(Value::as_str)
        .and_then(QuotaWindow::parse)
        .ok_or("per must be \"minute\" or \"day\"")
}

fn with_body(body: &[u8], f: impl FnOnce(&Value) -> Result<Value, &'static str>) -> Reply {
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
