//! The host's memo of component results, against the real binary: a repeated
//! request makes fewer component calls (counted as memo hits in /metrics), and a
//! newly activated translator or safety version is really called, never served
//! the old version's remembered result.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::harness::*;

/// The term `safety_extra_deny` denies (the embedded safety policy allows it).
const TERM: &str = "aperture-canary-term";

fn guest(stem: &str) -> String {
    let p = PathBuf::from(env!("APERTURE_GUEST_DIR")).join(format!("{stem}.wasm"));
    assert!(p.is_file(), "guest not built at {}", p.display());
    p.display().to_string()
}

/// The short sha256 of the active version of each slot.
async fn active(gw: &Gateway, slot: &str) -> String {
    let out = gw.cli(&["policy", "list", "--json"]).await;
    assert!(out.ok, "policy list: {out:?}");
    let list: Value = serde_json::from_str(&out.stdout).expect("policy list --json");
    list["slots"][slot]["active"]
        .as_str()
        .expect("an active version")[..8]
        .to_string()
}

/// A counter of one version from /metrics (0 when the series is absent).
async fn counter(gw: &Gateway, name: &str, slot: &str, version: &str) -> f64 {
    let text =
        String::from_utf8_lossy(&get(&format!("{}/metrics", gw.url), None).await.body).into_owned();
    let prefix = format!("{name}{{slot=\"{slot}\",version=\"{version}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().expect("a sample value"))
        .unwrap_or(0.0)
}

async fn calls(gw: &Gateway, slot: &str, version: &str) -> (f64, f64) {
    (
        counter(gw, "aperture_component_calls_total", slot, version).await,
        counter(gw, "aperture_component_memo_hits_total", slot, version).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_requests_reuse_results_and_a_new_version_is_really_called() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    let (t0, s0) = (active(gw, "translator").await, active(gw, "safety").await);
    let body = json!({ "prompt": "a memo lake at dawn", "size": "1024x1024" });
    let first = gw.generate(body.clone()).await;
    first.ok();
    assert_eq!(first.cache(), "MISS");
    // Allowed by the embedded safety policy (its screening is now remembered).
    let term = json!({ "prompt": format!("a lighthouse, {TERM}") });
    gw.generate(term.clone()).await.ok();

    let (t_before, s_before) = (
        calls(gw, "translator", &t0).await,
        calls(gw, "safety", &s0).await,
    );
    assert!(
        t_before.0 >= 2.0 && s_before.0 >= 2.0,
        "{t_before:?} {s_before:?}"
    );
    assert_eq!((t_before.1, s_before.1), (0.0, 0.0));
    for _ in 0..3 {
        let r = gw.generate(body.clone()).await;
        r.ok();
        assert_eq!(r.cache(), "HIT");
    }
    let (t_after, s_after) = (
        calls(gw, "translator", &t0).await,
        calls(gw, "safety", &s0).await,
    );
    // Each hit used to make a parse and a screen call; now both come from the memo.
    assert_eq!(t_after.1 - t_before.1, 3.0, "translator memo hits");
    assert_eq!(s_after.1 - s_before.1, 3.0, "safety memo hits");
    assert_eq!(s_after.0, s_before.0, "a hit screens without a safety call");
    assert!(
        t_after.0 - t_before.0 < 3.0,
        "translator calls {t_before:?} -> {t_after:?}"
    );

    // Activate other versions of both slots: the next requests are served by them, really called.
    for (slot, stem) in [
        ("translator", "translator_namespace"),
        ("safety", "safety_extra_deny"),
    ] {
        let out = gw
            .cli(&["policy", "install", &guest(stem), "--slot", slot])
            .await;
        assert!(out.ok, "install {stem}: {out:?}");
        let sha = out.stdout.lines().next().unwrap_or("").trim().to_string();
        let out = gw.cli(&["policy", "activate", slot, &sha]).await;
        assert!(out.ok, "activate {stem}: {out:?}");
    }
    let (t1, s1) = (active(gw, "translator").await, active(gw, "safety").await);
    assert_ne!(t1, t0);
    assert_ne!(s1, s0);
    let r = gw.generate(body.clone()).await;
    r.ok();
    assert_eq!(
        r.cache(),
        "MISS",
        "the new translator has its own cache namespace"
    );
    let policy = r.header("x-aperture-policy").unwrap_or_default();
    assert!(policy.contains(&format!("translator={t1}")), "{policy}");
    assert!(policy.contains(&format!("safety={s1}")), "{policy}");
    // The new safety version denies what the old one allowed: its own result, not the memo's.
    gw.generate(term).await.error(400, "IMG_SAFETY_BLOCKED");
    let (t_new, s_new) = (
        calls(gw, "translator", &t1).await,
        calls(gw, "safety", &s1).await,
    );
    assert!(t_new.0 >= 2.0, "new translator calls {t_new:?}");
    assert_eq!(s_new.0, 2.0, "new safety calls {s_new:?}");
    assert_eq!((t_new.1, s_new.1), (0.0, 0.0));
    // The old versions were not called again.
    assert_eq!(calls(gw, "translator", &t0).await, t_after);
    assert_eq!(calls(gw, "safety", &s0).await, s_after);
}
