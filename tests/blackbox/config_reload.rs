//! Live configuration: after the config file changes, `SIGHUP` or `aperture config reload`
//! (`POST /admin/config/reload`) puts the new deny-list, threshold and other live settings
//! in force for the next request with no restart; a file with problems is refused whole,
//! every problem named, and the running configuration stays.

use serde_json::{json, Value};

use crate::harness::*;

const START: &str = "[safety]\ndeny_list = [\"forbidden-widget\"]\n";
/// A new deny-list and the LOW threshold (a MEDIUM-probability prompt is then served).
const CHANGED: &str = "[safety]\ndeny_list = [\"tame-term\"]\nthreshold = \"LOW\"\n";

fn assert_blocked(r: &Resp) {
    let e = r.error(400, "IMG_SAFETY_BLOCKED");
    assert_eq!(e["error_type"], "USER_ERROR", "{}", r.brief());
}

/// Wait until the log has `count` lines containing `needle` (the gateway logs each
/// reload once it is applied or refused); panics with the log after 30 s.
fn wait_for_log(gw: &Gateway, needle: &str, count: usize) -> Vec<String> {
    for _ in 0..300 {
        let lines: Vec<String> = gw
            .log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect();
        if lines.len() >= count {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no {count}x {needle:?} in the log:\n{}", gw.log());
}

async fn reload_over_http(gw: &Gateway) -> Resp {
    let auth = format!("Bearer {ADMIN_KEY}");
    request(
        "POST",
        &format!("{}/admin/config/reload", gw.url),
        &[("authorization", auth.as_str())],
        Vec::new(),
    )
    .await
}

/// The old settings are in force: the old term is refused, the new one and a
/// MEDIUM-probability prompt (refused at the default MEDIUM threshold) are not served as new.
async fn assert_start_settings(s: &Setup) {
    assert_blocked(
        &s.gw
            .generate(json!({"prompt": "a forbidden-widget on a table"}))
            .await,
    );
    s.gw.generate(json!({"prompt": "a tame-term lake"}))
        .await
        .ok();
    assert_blocked(&s.gw.generate(json!({"prompt": "a violent storm"})).await);
}

/// The new settings are in force.
async fn assert_changed_settings(s: &Setup) {
    assert_blocked(&s.gw.generate(json!({"prompt": "a tame-term sea"})).await);
    s.gw.generate(json!({"prompt": "a forbidden-widget on a shelf"}))
        .await
        .ok();
    s.gw.generate(json!({"prompt": "a violent thunderstorm"}))
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_puts_the_new_deny_list_and_threshold_in_force_without_a_restart() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| l.config(START)).await;
    assert_start_settings(&s).await;
    let uptime_before = get(&format!("{}/healthz", s.gw.url), None).await.ok()["uptime_seconds"]
        .as_u64()
        .unwrap();

    std::fs::write(s.gw.config_path(), CHANGED).unwrap();
    s.gw.signal("HUP");
    let lines = wait_for_log(&s.gw, "Configuration reloaded", 1);
    assert!(lines[0].contains("SIGHUP"), "{}", lines[0]);
    for name in ["safety.deny_list", "safety.threshold"] {
        assert!(lines[0].contains(name), "{name} not applied: {}", lines[0]);
    }
    assert_changed_settings(&s).await;

    // The same process served all of it.
    let health = get(&format!("{}/healthz", s.gw.url), None).await.ok();
    assert!(health["uptime_seconds"].as_u64().unwrap() >= uptime_before);
    assert!(!s.gw.log().contains("Proxy server stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_applies_live_settings_and_names_those_that_need_a_restart() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| l.config(START)).await;
    assert_start_settings(&s).await;

    let file = format!(
        "{CHANGED}[cache]\nttl_seconds = 60\n[upstream]\nmax_attempts = 5\n[policy]\ncanary_min_calls = 7\n"
    );
    std::fs::write(s.gw.config_path(), file).unwrap();
    let out = s.gw.cli(&["config", "reload"]).await;
    assert!(out.ok, "{out:?}");
    assert!(
        out.stdout.contains("now in force: ")
            && [
                "safety.threshold",
                "safety.deny_list",
                "cache.ttl_seconds",
                "policy"
            ]
            .iter()
            .all(|n| out.stdout.contains(n)),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("Changed but needs a restart to take effect: upstream.max_attempts"),
        "{out:?}"
    );
    assert_changed_settings(&s).await;
    let cache = get(&format!("{}/admin/cache", s.gw.url), Some(ADMIN_KEY))
        .await
        .ok();
    assert_eq!(cache["ttl_seconds"], 60, "{cache}");
    let warned = wait_for_log(&s.gw, "take effect only after a restart", 1);
    assert!(warned[0].contains("upstream.max_attempts"), "{}", warned[0]);

    // Reloading the same file again changes nothing live; the restart-only change is still named.
    let v = reload_over_http(&s.gw).await.ok();
    assert_eq!(
        v,
        json!({"reloaded": true, "applied": [], "restart_required": ["upstream.max_attempts"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_is_refused_whole_with_every_problem_and_the_old_configuration_stays() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| l.config(START)).await;
    // Valid changes (deny-list, threshold) beside three problems: nothing may be applied.
    let bad = format!(
        "mystery = true\n{CHANGED}[cache]\nttl_seconds = 0\n[server]\nbody_timeout_ms = 0\n"
    );
    std::fs::write(s.gw.config_path(), bad).unwrap();

    let r = reload_over_http(&s.gw).await;
    let e = r.error(422, "IMG_CONFIG_INVALID");
    let problems: Vec<String> = e["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems: {e}"))
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    for (what, needle) in [
        ("the unknown key", "mystery"),
        ("the zero TTL", "ttl_seconds"),
        ("the zero body timeout", "body_timeout_ms"),
    ] {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{what} not named: {problems:#?}"
        );
        assert!(
            e["message"].as_str().unwrap().contains(needle),
            "{what} not in the message: {e}"
        );
    }
    assert_start_settings(&s).await;

    // The CLI fails and names them too; SIGHUP is refused the same way, and the gateway keeps serving.
    let out = s.gw.cli(&["config", "reload"]).await;
    assert!(!out.ok, "{out:?}");
    for needle in ["mystery", "ttl_seconds", "body_timeout_ms", "unchanged"] {
        assert!(out.stderr.contains(needle), "{needle}: {out:?}");
    }
    s.gw.signal("HUP");
    let refused = wait_for_log(&s.gw, "Configuration reload refused", 3);
    assert!(refused[2].contains("SIGHUP"), "{}", refused[2]);
    assert!(!s.gw.log().contains("Configuration reloaded"));
    assert_start_settings(&s).await;

    // Once the file is fixed, the next reload applies it.
    std::fs::write(s.gw.config_path(), CHANGED).unwrap();
    let v: Value = reload_over_http(&s.gw).await.ok();
    assert_eq!(
        v["applied"],
        json!(["safety.threshold", "safety.deny_list"])
    );
    assert_changed_settings(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_ttl_reaches_the_hot_copies_too() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.config("[cache]\nttl_seconds = 3600\n")
    })
    .await;
    let prompt = json!({"prompt": "a hot copy of a lighthouse"});
    let first = s.gw.generate(prompt.clone()).await;
    first.ok();
    assert_eq!(first.cache(), "MISS");
    // Repeat until a hit is served from the in-memory hot cache (after the write landed).
    let mut hot = false;
    for _ in 0..50 {
        let again = s.gw.generate(prompt.clone()).await;
        again.ok();
        assert_eq!(again.cache(), "HIT");
        if s.gw.log().contains("hot=true") {
            hot = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(hot, "no hit from the hot cache:\n{}", s.gw.log());

    std::fs::write(s.gw.config_path(), "[cache]\nttl_seconds = 1\n").unwrap();
    let v = reload_over_http(&s.gw).await.ok();
    assert_eq!(v["applied"], json!(["cache.ttl_seconds"]), "{v}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // Stored over a second ago: expired under the new TTL, in the store and in memory alike.
    let after = s.gw.generate(prompt.clone()).await;
    after.ok();
    assert_eq!(after.cache(), "MISS", "a hot copy outlived the new TTL");
}
