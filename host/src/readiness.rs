//! `GET /readyz`: whether this gateway can serve image requests now (a usable
//! upstream account, a writable store). `/healthz` stays a liveness check; a
//! load balancer or orchestrator takes an instance out of rotation on a 503 here.

use std::path::Path;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::app::{now_ms, App};

/// Why the gateway is not ready; empty when it is.
pub fn reasons(app: &App) -> Vec<String> {
    let now = now_ms();
    let accounts = app.accounts.list(now);
    let usable = app.accounts.usable_count(now);
    let mut out = account_reasons(usable, &accounts);
    out.extend(store_reasons(
        app.store.writes_failing(),
        &app.config.data_dir,
    ));
    out
}

/// The account half of [`reasons`].
pub fn account_reasons(usable: usize, accounts: &[aperture_store::AccountView]) -> Vec<String> {
    if usable > 0 {
        return Vec::new();
    }
    if accounts.is_empty() {
        return vec![
            "no upstream account: add one with `aperture accounts add --label NAME`".into(),
        ];
    }
    let mut by_state = std::collections::BTreeMap::<&str, usize>::new();
    for a in accounts {
        *by_state
            .entry(crate::accounts_watch::state_name(&a.state))
            .or_default() += 1;
    }
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
    vec![format!(
        "no usable upstream account ({}): wait for cool-downs and quota resets, or enable or add an account (`aperture accounts list`)",
        states.join(", ")
    )]
}

/// The store half of [`reasons`]: the last store write failed, or the data dir takes no new file.
pub fn store_reasons(writes_failing: bool, data_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if writes_failing {
        out.push("the store is not writable: its last write failed (disk full? see the log's `Storage write failed` line)".into());
    }
    let probe = data_dir.join(".readyz-probe");
    let written = std::fs::write(&probe, b"ok");
    let _ = std::fs::remove_file(&probe);
    if let Err(e) = written {
        out.push(format!(
            "the data dir {} is not writable: {e}",
            data_dir.display()
        ));
    }
    out
}

/// The `/readyz` answer: 200 `{"status":"ready"}` or 503 `{"status":"not_ready","reasons":[...]}`.
pub fn response(reasons: Vec<String>, request_id: &str) -> Response<Full<Bytes>> {
    if reasons.is_empty() {
        crate::server::json_response(StatusCode::OK, &json!({"status": "ready"}), request_id)
    } else {
        let mut r = crate::server::json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not_ready", "reasons": reasons}),
            request_id,
        );
        // Readiness is polled; a prober that honours Retry-After asks again in a while.
        r.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("10"),
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwritable_data_dir_or_a_failing_store_is_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        assert!(store_reasons(false, dir.path()).is_empty());
        assert_eq!(store_reasons(true, dir.path()).len(), 1);
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, b"x").unwrap();
        let r = store_reasons(false, &not_a_dir);
        assert!(r[0].contains("not writable"), "{r:?}");
        assert!(account_reasons(0, &[])[0].contains("no upstream account"));
    }
}
