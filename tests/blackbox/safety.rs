//! Safety: the local deny-list blocks before any upstream call; upstream blocks
//! (prompt feedback, IMAGE_SAFETY) become IMG_SAFETY_BLOCKED; the threshold,
//! global or per request, decides what a MEDIUM-probability prompt gets.

use serde_json::json;

use crate::harness::*;

fn assert_blocked(r: &Resp) {
    let e = r.error(400, "IMG_SAFETY_BLOCKED");
    assert_eq!(e["error_type"], "USER_ERROR", "{}", r.brief());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_list_blocks_locally_without_an_upstream_call() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.env("APERTURE_DENY_LIST", "forbidden-widget, other-term")
    })
    .await;
    for prompt in ["a forbidden-widget on a table", "an OTHER-TERM in the sky"] {
        let r = s.gw.generate(json!({ "prompt": prompt })).await;
        assert_blocked(&r);
    }
    assert_eq!(
        s.emu.calls(),
        0,
        "the deny-list blocks before any upstream call"
    );
    // An innocent prompt still works.
    s.gw.generate(json!({"prompt": "a widget on a table"}))
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blocks_become_safety_blocked() {
    let s = Setup::simple().await;
    // promptFeedback.blockReason
    let r =
        s.gw.generate(json!({"prompt": "a prohibited-test scene"}))
            .await;
    assert_blocked(&r);
    // finishReason IMAGE_SAFETY
    let r =
        s.gw.generate(json!({"prompt": "an unsafe-image-test scene"}))
            .await;
    assert_blocked(&r);
    assert!(s.emu.calls() >= 2, "these were judged upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_decides_a_medium_probability_prompt() {
    // Global default (MEDIUM): blocked; per-request HIGH: blocked; per-request LOW: served.
    let s = Setup::simple().await;
    let r = s.gw.generate(json!({"prompt": "a violent storm"})).await;
    assert_blocked(&r);
    let r =
        s.gw.generate(json!({"prompt": "a violent storm", "safety_threshold": "HIGH"}))
            .await;
    assert_blocked(&r);
    let r =
        s.gw.generate(json!({"prompt": "a violent storm", "safety_threshold": "LOW"}))
            .await;
    assert_eq!(image_sizes(&r.ok()), vec![(1024, 1024)]);
    // A HIGH-probability prompt is blocked even at LOW.
    let r =
        s.gw.generate(json!({"prompt": "gore everywhere", "safety_threshold": "LOW"}))
            .await;
    assert_blocked(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_low_threshold_serves_a_medium_probability_prompt() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.env("GEMINI_IMAGE_SAFETY_THRESHOLD", "LOW")
    })
    .await;
    let r = s.gw.generate(json!({"prompt": "a violent storm"})).await;
    r.ok();
    // The per-request threshold still overrides the global one.
    let r =
        s.gw.generate(json!({"prompt": "a violent storm", "safety_threshold": "MEDIUM"}))
            .await;
    assert_blocked(&r);
}
