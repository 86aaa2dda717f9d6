//! Hostile policy components: a safety component that loops, panics or grows its
//! memory without bound fails that one request (IMG_POLICY_FAILURE), and the
//! gateway keeps serving.

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_or_looping_component_fails_only_that_request() {
    let guest = hostile_guest();
    assert!(
        guest.is_file(),
        "hostile guest not built at {}",
        guest.display()
    );
    let config = format!(
        "[components]\nsafety = {:?}\ntimeout_ms = 200\nmax_memory_mb = 32\n",
        guest.display().to_string()
    );
    let s = Setup::new(&["bb-gemini-key-1"], |l| l.config(&config)).await;
    let gw = &s.gw;

    // The hostile component is the one loaded.
    let health = get(&format!("{}/healthz", gw.url), None).await.ok();
    let safety = health["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["slot"] == "safety").cloned())
        .unwrap_or_else(|| panic!("no safety component in /healthz: {health:#}"));
    assert_eq!(safety["source"], guest.display().to_string(), "{health:#}");

    gw.generate(json!({"prompt": "a calm lake"})).await.ok();
    let calls = s.emu.calls();
    for (i, trigger) in ["loop-forever", "panic-now", "memory-bomb"]
        .iter()
        .enumerate()
    {
        let r = gw
            .generate(json!({ "prompt": format!("please {trigger} now") }))
            .await;
        let e = r.error(500, "IMG_POLICY_FAILURE");
        assert_eq!(e["error_type"], "SYSTEM_ERROR", "{trigger}: {}", r.brief());
        // The gateway survives and serves the next request.
        let ok = gw
            .generate(json!({ "prompt": format!("a calm lake, take {i}") }))
            .await;
        assert_eq!(image_sizes(&ok.ok()), vec![(1024, 1024)], "after {trigger}");
    }
    assert_eq!(
        s.emu.calls(),
        calls + 3,
        "the failed requests never went upstream"
    );
}
