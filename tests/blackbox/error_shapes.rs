//! Every real Gemini error body (the emulator's `emu:error=` shapes) through the
//! gateway: what the client gets (status, code, error_type, a clean message),
//! how many upstream calls were made, what became of each account, and that no
//! error is cached.

use serde_json::{json, Value};

use crate::harness::*;

const K1: &str = "shape-error-key-1";
const K2: &str = "shape-error-key-2";

/// What one error shape must lead to.
struct Case {
    error: &'static str,
    status: u16,
    code: &'static str,
    error_type: &'static str,
    /// Upstream calls for one request (retryable errors try both accounts).
    calls: u64,
    /// The accounts' state kinds afterwards (a1, a2), sorted.
    states: [&'static str; 2],
}

const CASES: &[Case] = &[
    Case {
        error: "429-multi",
        status: 429,
        code: "IMG_QUOTA_EXHAUSTED",
        error_type: "API_ERROR",
        calls: 2,
        states: ["exhausted", "exhausted"],
    },
    Case {
        error: "429-paid-daily",
        status: 429,
        code: "IMG_QUOTA_EXHAUSTED",
        error_type: "API_ERROR",
        calls: 2,
        states: ["exhausted", "exhausted"],
    },
    Case {
        error: "429-bare",
        status: 429,
        code: "IMG_QUOTA_EXHAUSTED",
        error_type: "API_ERROR",
        calls: 2,
        states: ["cooling_down", "cooling_down"],
    },
    Case {
        error: "429-help-only",
        status: 429,
        code: "IMG_QUOTA_EXHAUSTED",
        error_type: "API_ERROR",
        calls: 2,
        states: ["cooling_down", "cooling_down"],
    },
    // One request disables one account; the other rests (a fault on every key is suspect).
    Case {
        error: "403-suspended",
        status: 502,
        code: "IMG_ACCOUNT_INVALID",
        error_type: "API_ERROR",
        calls: 2,
        states: ["cooling_down", "disabled"],
    },
    Case {
        error: "403-service-blocked",
        status: 502,
        code: "IMG_ACCOUNT_INVALID",
        error_type: "API_ERROR",
        calls: 2,
        states: ["cooling_down", "disabled"],
    },
    Case {
        error: "403-billing",
        status: 502,
        code: "IMG_ACCOUNT_INVALID",
        error_type: "API_ERROR",
        calls: 2,
        states: ["cooling_down", "disabled"],
    },
    Case {
        error: "403-permission",
        status: 502,
        code: "IMG_UPSTREAM_FORBIDDEN",
        error_type: "API_ERROR",
        calls: 2,
        states: ["cooling_down", "cooling_down"],
    },
    Case {
        error: "404-model",
        status: 502,
        code: "IMG_UNSUPPORTED_MODEL",
        error_type: "API_ERROR",
        calls: 1,
        states: ["active", "active"],
    },
    Case {
        error: "400-unknown-fields",
        status: 502,
        code: "IMG_UPSTREAM_REJECTED",
        error_type: "API_ERROR",
        calls: 1,
        states: ["active", "active"],
    },
    Case {
        error: "400-image-size",
        status: 502,
        code: "IMG_UPSTREAM_REJECTED",
        error_type: "API_ERROR",
        calls: 1,
        states: ["active", "active"],
    },
    Case {
        error: "400-location",
        status: 502,
        code: "IMG_UPSTREAM_REJECTED",
        error_type: "API_ERROR",
        calls: 1,
        states: ["active", "active"],
    },
    Case {
        error: "413-html",
        status: 502,
        code: "IMG_UPSTREAM_REJECTED",
        error_type: "API_ERROR",
        calls: 1,
        states: ["active", "active"],
    },
    Case {
        error: "500-internal",
        status: 503,
        code: "IMG_UPSTREAM_UNAVAILABLE",
        error_type: "API_ERROR",
        calls: 3,
        states: ["active", "active"],
    },
    Case {
        error: "503-overloaded",
        status: 503,
        code: "IMG_UPSTREAM_UNAVAILABLE",
        error_type: "API_ERROR",
        calls: 3,
        states: ["active", "active"],
    },
    Case {
        error: "503-deadline",
        status: 503,
        code: "IMG_UPSTREAM_UNAVAILABLE",
        error_type: "API_ERROR",
        calls: 3,
        states: ["active", "active"],
    },
    Case {
        error: "504",
        status: 503,
        code: "IMG_UPSTREAM_UNAVAILABLE",
        error_type: "API_ERROR",
        calls: 3,
        states: ["active", "active"],
    },
    Case {
        error: "502-html",
        status: 503,
        code: "IMG_UPSTREAM_UNAVAILABLE",
        error_type: "API_ERROR",
        calls: 3,
        states: ["active", "active"],
    },
];

async fn states(gw: &Gateway) -> Vec<String> {
    let (accounts, _) = gw.list_accounts().await;
    let mut kinds: Vec<String> = accounts
        .iter()
        .map(|a| a["state"]["kind"].as_str().unwrap_or("?").to_string())
        .collect();
    kinds.sort();
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_error_body_gets_the_right_answer_and_account_action() {
    for case in CASES {
        let s = Setup::new(&[K1, K2], |l| l).await;
        let prompt = format!("an error shape emu:error={}", case.error);
        let r = s.gw.generate(json!({"prompt": prompt})).await;
        let err = r.error(case.status, case.code);
        assert_eq!(
            err["error_type"], case.error_type,
            "{}: {err:#}",
            case.error
        );
        let message = err["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains('<') && !message.contains("](http"),
            "{}: a clean message: {message}",
            case.error
        );
        assert!(
            !message.contains(K1) && !message.contains(K2),
            "{}",
            case.error
        );
        assert_eq!(s.emu.calls(), case.calls, "{}: upstream calls", case.error);
        assert_eq!(states(&s.gw).await, case.states, "{}", case.error);
        if matches!(case.status, 429 | 503) {
            assert!(r.retry_after() >= 1, "{}: Retry-After", case.error);
        }
        // Errors are never cached: the same request goes upstream again (when an account is left).
        if case.calls == 1 {
            let again = s.gw.generate(json!({"prompt": prompt})).await;
            assert_eq!(again.status, case.status, "{}", case.error);
            assert_eq!(s.emu.calls(), 2, "{}: not cached", case.error);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_zero_stops_the_account_for_that_model_only() {
    let s = Setup::new(&[K1, K2], |l| l).await;
    // K1's project has no quota at all for 2.5 Flash.
    s.emu.fail_next_named_for_key(K1, &["429-limit0"]).unwrap();
    let mut served = 0;
    for i in 0..2 {
        let r =
            s.gw.generate(
                json!({"prompt": format!("a flash kite {i}"), "model": "gemini-2.5-flash-image"}),
            )
            .await;
        if r.status == 200 {
            served += 1;
        }
    }
    assert_eq!(served, 2, "the other account serves");
    let (accounts, raw) = s.gw.list_accounts().await;
    let a1: &Value = accounts.iter().find(|a| a["label"] == "a1").unwrap();
    assert_eq!(a1["state"]["kind"], "active", "{raw}");
    let reason = a1["disabled_models"]["gemini-2.5-flash-image"]
        .as_str()
        .unwrap_or_else(|| panic!("a1 is disabled for 2.5 Flash: {raw}"));
    assert!(
        reason.contains("limit: 0") && reason.contains("billing"),
        "{reason}"
    );
    assert!(!reason.contains(K1));

    // It is never tried for that model again, but still serves the others.
    let k1_calls = s.emu.calls_for_key(K1);
    for i in 0..3 {
        s.gw.generate(
            json!({"prompt": format!("more flash {i}"), "model": "gemini-2.5-flash-image"}),
        )
        .await
        .ok();
    }
    assert_eq!(
        s.emu.calls_for_key(K1),
        k1_calls,
        "not tried for 2.5 Flash again"
    );
    for i in 0..3 {
        s.gw.generate(json!({"prompt": format!("pro {i}")}))
            .await
            .ok();
    }
    assert!(s.emu.calls_for_key(K1) > k1_calls, "still used for 3 Pro");

    // When every account has limit: 0 for the model, the client hears why, at once.
    s.emu.fail_next_named_for_key(K2, &["429-limit0"]).unwrap();
    let r =
        s.gw.generate(json!({"prompt": "the last flash", "model": "gemini-2.5-flash-image"}))
            .await;
    let err = r.error(503, "IMG_NO_ACCOUNTS");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("gemini-2.5-flash-image"),
        "{err:#}"
    );
    let before = s.emu.calls();
    let again =
        s.gw.generate(json!({"prompt": "yet another flash", "model": "gemini-2.5-flash-image"}))
            .await;
    again.error(503, "IMG_NO_ACCOUNTS");
    assert_eq!(
        s.emu.calls(),
        before,
        "no upstream call for a model no account can use"
    );

    // `accounts enable` clears it.
    let out = s.gw.accounts(&["enable", "a1"], None).await;
    assert!(out.ok, "{out:?}");
    s.gw.generate(json!({"prompt": "flash again", "model": "gemini-2.5-flash-image"}))
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_error_on_one_call_is_retried_and_served() {
    let s = Setup::new(&[K1, K2], |l| l).await;
    for error in ["503-overloaded", "500-internal", "502-html", "429-multi"] {
        s.emu.fail_next_named(&[error]).unwrap();
        let r =
            s.gw.generate(json!({"prompt": format!("a retried lantern after {error}")}))
                .await;
        r.ok();
    }
}
