//! Observability: `/metrics` counts a scripted load exactly and leaks nothing,
//! negotiates OpenMetrics, needs a key when configured and moves to the admin
//! listener; `/readyz` says why it is not ready; request lines carry `client_ip`
//! (X-Forwarded-For only from trusted proxies); the log rotates by size with its
//! retention, reopens on SIGUSR1, and account state changes get their own lines.

use std::collections::HashMap;
use std::time::Duration;

use aperture_emulator::QuotaWindow;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::harness::*;

const K1: &str = "AIzaSy-bb-metrics-secret-0001";
const METRICS_KEY: &str = "bb-metrics-key-0123456789";

/// `name{labels}` -> value, labels sorted, from the Prometheus text format.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut parts = labels_of(labels.trim_end_matches('}'));
                parts.sort();
                format!("{name}{{{}}}", parts.join(","))
            }
            None => series.to_string(),
        };
        out.insert(key, value.parse().expect("sample value"));
    }
    out
}

/// `a="x",b="y\"z"` -> [`a="x"`, `b="y\"z"`].
fn labels_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim_start_matches(',');
        let body = &rest[eq + 2..];
        let mut end = 0;
        let bytes = body.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let end = end.min(body.len());
        out.push(format!("{name}=\"{}\"", &body[..end]));
        rest = &body[(end + 1).min(body.len())..];
    }
    out
}

/// The value of `name` with exactly these labels (any order), 0 when absent.
fn value(m: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    parts.sort();
    let key = if parts.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", parts.join(","))
    };
    m.get(&key).copied().unwrap_or(0.0)
}

async fn scrape(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("GET", &format!("{url}/metrics"), headers, vec![]).await
}

fn sha_prefix(prompt: &str) -> String {
    Sha256::digest(prompt.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..16]
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_scripted_load_and_leak_nothing() {
    let s = Setup::new(&[K1], |l| l.env("APERTURE_DENY_LIST", "forbidden-widget")).await;
    let gw = &s.gw;
    let prompts = [
        "a lighthouse of amber glass",
        "a quiet fox in fresh snow",
        "a copper kettle on a stove",
    ];
    let mut ids = Vec::new();
    for p in prompts {
        let r = gw.generate(json!({ "prompt": p })).await;
        r.ok();
        assert_eq!(r.cache(), "MISS");
        ids.push(r.request_id());
    }
    // Wait for the cache writes (they land after the answers), then two hits.
    for _ in 0..200 {
        if parse(&String::from_utf8_lossy(&scrape(&gw.url, &[]).await.body))
            .get("aperture_cache_entries")
            == Some(&3.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for _ in 0..2 {
        let r = gw.generate(json!({ "prompt": prompts[0] })).await;
        r.ok();
        assert_eq!(r.cache(), "HIT");
    }
    let blocked_local = "a forbidden-widget on a table";
    gw.generate(json!({ "prompt": blocked_local }))
        .await
        .error(400, "IMG_SAFETY_BLOCKED");
    let blocked_upstream = "a prohibited-test scene";
    gw.generate(json!({ "prompt": blocked_upstream }))
        .await
        .error(400, "IMG_SAFETY_BLOCKED");
    gw.generate(json!({ "prompt": "x", "n": 0 }))
        .await
        .error(400, "IMG_INVALID_REQUEST");

    let r = scrape(&gw.url, &[]).await;
    assert_eq!(r.status, 200, "{}", r.brief());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let m = parse(&text);
    let req = |outcome, error_type, code| {
        value(
            &m,
            "aperture_requests_total",
            &[
                ("outcome", outcome),
                ("error_type", error_type),
                ("code", code),
            ],
        )
    };
    assert_eq!(req("success", "", ""), 5.0, "{text}");
    assert_eq!(
        req("error", "USER_ERROR", "IMG_SAFETY_BLOCKED"),
        2.0,
        "{text}"
    );
    assert_eq!(
        req("error", "USER_ERROR", "IMG_INVALID_REQUEST"),
        1.0,
        "{text}"
    );
    assert_eq!(value(&m, "aperture_cache_hits_total", &[]), 2.0, "{text}");
    // Three fresh prompts and the one the upstream blocked were looked up and missed.
    assert_eq!(value(&m, "aperture_cache_misses_total", &[]), 4.0, "{text}");
    assert_eq!(value(&m, "aperture_cache_entries", &[]), 3.0, "{text}");
    assert!(value(&m, "aperture_cache_bytes", &[]) > 0.0, "{text}");
    assert_eq!(
        value(&m, "aperture_cache_max_bytes", &[]),
        500.0 * 1024.0 * 1024.0
    );
    let model = [("model", "gemini-3-pro-image")];
    assert_eq!(value(&m, "aperture_cache_served_images_total", &model), 2.0);
    // Two 1K images of Gemini 3 Pro Image at the default $0.134.
    let saved = value(&m, "aperture_cache_saved_usd_total", &model);
    assert!((saved - 0.268).abs() < 1e-9, "{saved}");
    for (source, n) in [("deny_list", 1.0), ("upstream_prompt", 1.0)] {
        assert_eq!(
            value(
                &m,
                "aperture_safety_blocks_total",
                &[("source", source), ("threshold", "MEDIUM")]
            ),
            n,
            "{source}: {text}"
        );
    }
    let calls = |outcome| {
        value(
            &m,
            "aperture_upstream_calls_total",
            &[("account", "a1"), ("outcome", outcome)],
        )
    };
    assert_eq!(calls("success"), 3.0, "{text}");
    assert_eq!(calls("safety_block"), 1.0, "{text}");
    assert_eq!(
        value(
            &m,
            "gen_ai_client_operation_duration_seconds_count",
            &[("account", "a1"), ("outcome", "success")]
        ),
        3.0
    );
    let hits = [("model", "gemini-3-pro-image"), ("cache", "hit")];
    assert_eq!(
        value(&m, "gen_ai_server_request_duration_seconds_count", &hits),
        2.0
    );
    // Buckets from 1 ms, so a hit has a bucket of its own.
    assert!(text.contains("gen_ai_server_request_duration_seconds_bucket{"));
    assert!(text.contains("le=\"0.001\""), "{text}");
    assert!(text.contains("le=\"60.0\""), "{text}");
    assert_eq!(
        value(&m, "aperture_account_images_today", &[("account", "a1")]),
        3.0
    );
    assert_eq!(value(&m, "aperture_accounts", &[("state", "active")]), 1.0);
    assert_eq!(
        value(&m, "aperture_accounts", &[("state", "disabled")]),
        0.0
    );
    assert_eq!(value(&m, "aperture_requests_in_flight", &[]), 0.0);
    assert_eq!(value(&m, "aperture_coalesced_requests_total", &[]), 0.0);
    assert!(value(&m, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&m, "process_open_fds", &[]) >= 3.0);
    assert!(value(&m, "process_start_time_seconds", &[]) > 1.7e9);
    assert!(
        text.contains(&format!(
            "aperture_build_info{{version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    // The policy components: one active version per slot, and its calls counted.
    for slot in ["translator", "safety", "classifier"] {
        let active: Vec<&String> = m
            .keys()
            .filter(|k| {
                k.starts_with("aperture_policy_version_info{")
                    && k.contains(&format!("slot=\"{slot}\""))
                    && k.contains("role=\"active\"")
            })
            .collect();
        assert_eq!(active.len(), 1, "{slot}: {text}");
        let version = active[0]
            .split("version=\"")
            .nth(1)
            .and_then(|v| v.split('"').next())
            .expect("a version label")
            .to_string();
        assert_eq!(version.len(), 8, "{version}");
        let labels = [("slot", slot), ("version", version.as_str())];
        if slot != "classifier" {
            assert!(
                value(&m, "aperture_component_calls_total", &labels) >= 5.0,
                "{slot}: {text}"
            );
            assert!(
                value(&m, "aperture_component_call_time_seconds_total", &labels) > 0.0,
                "{slot}: {text}"
            );
        }
        assert_eq!(
            value(&m, "aperture_component_traps_total", &labels),
            0.0,
            "{slot}"
        );
    }
    // Nothing secret, nothing unbounded.
    for p in prompts.iter().chain([&blocked_local, &blocked_upstream]) {
        assert!(!text.contains(p), "prompt text in /metrics: {p}");
        assert!(!text.contains(&sha_prefix(p)), "prompt hash in /metrics");
    }
    for secret in [K1, API_KEY, ADMIN_KEY, "forbidden-widget"] {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }
    for id in &ids {
        assert!(!text.contains(id.as_str()), "request id in /metrics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_when_the_scraper_asks() {
    let s = Setup::simple().await;
    s.gw.generate(json!({"prompt": "a pebble"})).await.ok();
    let r = scrape(
        &s.gw.url,
        &[(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE aperture_requests counter"), "{text}");
    assert!(text.contains("# TYPE aperture_build info"), "{text}");
    // The classic format by default: counters named with _total, no EOF.
    let plain = scrape(&s.gw.url, &[]).await;
    let plain = String::from_utf8_lossy(&plain.body);
    assert!(plain.contains("# TYPE aperture_requests_total counter"));
    assert!(plain.contains("# TYPE aperture_build_info gauge"));
    assert!(!plain.contains("# EOF"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_required_when_configured() {
    let s = Setup::new(&[K1], |l| {
        l.config("[metrics]\nrequire_key = true\n")
            .env("APERTURE_METRICS_KEY", METRICS_KEY)
    })
    .await;
    let url = &s.gw.url;
    assert_eq!(scrape(url, &[]).await.status, 401);
    let wrong = scrape(url, &[("authorization", "Bearer not-the-key-at-all")]).await;
    wrong.error(401, "IMG_UNAUTHORIZED");
    let client = format!("Bearer {API_KEY}");
    assert_eq!(
        scrape(url, &[("authorization", client.as_str())])
            .await
            .status,
        401,
        "a client key does not open /metrics"
    );
    for key in [METRICS_KEY, ADMIN_KEY] {
        let auth = format!("Bearer {key}");
        let r = scrape(url, &[("authorization", auth.as_str())]).await;
        assert_eq!(r.status, 200, "{}", r.brief());
        assert!(String::from_utf8_lossy(&r.body).contains("aperture_requests"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_to_the_admin_listener_or_go_away() {
    let emu = emulator(&[K1]).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        Launch::to(&emu).env("APERTURE_ADMIN_LISTEN", "127.0.0.1:0"),
    )
    .await;
    let admin = gw
        .stdout_lines
        .iter()
        .find_map(|l| l.strip_prefix("Admin API listening on "))
        .expect("admin listener announced")
        .trim()
        .to_string();
    assert_eq!(scrape(&gw.url, &[]).await.status, 404);
    let r = scrape(&admin, &[]).await;
    assert_eq!(r.status, 200, "{}", r.brief());
    assert!(String::from_utf8_lossy(&r.body).contains("aperture_accounts{"));

    let off = Setup::new(&[K1], |l| l.config("[metrics]\nenabled = false\n")).await;
    assert_eq!(scrape(&off.gw.url, &[]).await.status, 404);
    // Requests are still served (and logged) without metrics.
    let id = off
        .gw
        .generate(json!({"prompt": "no metrics here"}))
        .await
        .request_id();
    assert_eq!(field(&off.gw.request_line(&id), "status"), Some("200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_why_it_is_not_ready() {
    let emu = emulator(&[K1]).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), Launch::to(&emu)).await;
    let url = format!("{}/readyz", gw.url);
    let readyz = || request("GET", &url, &[], vec![]);
    let r = readyz().await;
    assert_eq!(r.status, 503, "{}", r.brief());
    assert_eq!(r.json()["status"], "not_ready");
    assert!(
        r.json()["reasons"][0]
            .as_str()
            .unwrap()
            .contains("no upstream account"),
        "{}",
        r.brief()
    );
    // Liveness is not readiness.
    assert_eq!(
        request("GET", &format!("{}/healthz", gw.url), &[], vec![])
            .await
            .status,
        200
    );

    gw.add_account("a1", "a1@test.example", K1).await;
    let r = readyz().await;
    assert_eq!(r.status, 200, "{}", r.brief());
    assert_eq!(r.json()["status"], "ready");

    assert!(gw.accounts(&["disable", "a1"], None).await.ok);
    let r = readyz().await;
    assert_eq!(r.status, 503, "{}", r.brief());
    let reason = r.json()["reasons"][0].as_str().unwrap().to_string();
    assert!(
        reason.contains("no usable upstream account") && reason.contains("1 disabled"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ip_believes_forwarded_for_only_from_trusted_proxies() {
    let xff = [("x-forwarded-for", "198.51.100.7")];
    let plain = Setup::simple().await;
    let id = plain
        .gw
        .generate_with(json!({"prompt": "a lantern"}), &xff)
        .await
        .request_id();
    let line = plain.gw.request_line(&id);
    assert_eq!(field(&line, "client_ip"), Some("127.0.0.1"), "{line}");

    let proxied = Setup::new(&[K1], |l| {
        l.config("[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n")
    })
    .await;
    let id = proxied
        .gw
        .generate_with(json!({"prompt": "a lantern"}), &xff)
        .await
        .request_id();
    let line = proxied.gw.request_line(&id);
    assert_eq!(field(&line, "client_ip"), Some("198.51.100.7"), "{line}");
    // No header from the proxy: the proxy itself.
    let id = proxied
        .gw
        .generate(json!({"prompt": "a lantern"}))
        .await
        .request_id();
    assert_eq!(
        field(&proxied.gw.request_line(&id), "client_ip"),
        Some("127.0.0.1")
    );
}

fn rotated(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("aperture.log."))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_rotates_by_size_keeps_its_retention_and_reopens_on_sigusr1() {
    // 2 KiB per file, two rotated files kept.
    let s = Setup::new(&[K1], |l| {
        l.config("[logs]\nmax_size_mb = 0.002\nkeep = 2\n")
    })
    .await;
    let gw = &s.gw;
    let mut last = String::new();
    for i in 0..20 {
        last = gw
            .generate(json!({ "prompt": format!("rotation probe {i}") }))
            .await
            .request_id();
    }
    let line = gw.request_line(&last);
    assert_eq!(field(&line, "status"), Some("200"));
    let names = rotated(s.dir.path());
    assert_eq!(names.len(), 2, "retention of 2: {names:?}");
    let current = std::fs::metadata(s.dir.path().join("logs/aperture.log")).unwrap();
    assert!(current.len() < 8 * 1024, "the current file was rotated");

    // logrotate moves the file away, then signals: the next lines go to a new aperture.log.
    let logs = s.dir.path().join("logs");
    std::fs::rename(logs.join("aperture.log"), logs.join("moved-away.log")).unwrap();
    let pid = gw.pid();
    assert!(std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let mut found = false;
    for i in 0..50 {
        let id = gw
            .generate(json!({ "prompt": format!("after reopen {i}") }))
            .await
            .request_id();
        let text = gw.log();
        if text.contains(&format!("request_id={id}")) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(found, "request lines reach the reopened aperture.log");
    let moved = std::fs::read_to_string(logs.join("moved-away.log")).unwrap();
    assert!(
        !moved.contains("after reopen"),
        "nothing after the reopen goes to the moved file"
    );
    // The process is still the same one (a reopen, not a restart).
    assert_eq!(gw.pid(), pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_state_changes_get_their_own_lines() {
    let s = Setup::new(&[K1], |l| l).await;
    let gw = &s.gw;
    s.emu.exhaust_key(K1, QuotaWindow::Minute);
    gw.generate(json!({"prompt": "a state probe"}))
        .await
        .error(429, "IMG_QUOTA_EXHAUSTED");
    let cooling = account_line(gw, "Account cooling down").await;
    assert_eq!(field(&cooling, "account"), Some("a1"), "{cooling}");
    assert_eq!(field(&cooling, "account_state"), Some("cooling_down"));
    assert_eq!(field(&cooling, "previous_state"), Some("active"));

    assert!(
        gw.accounts(&["disable", "a1", "--reason", "rotating keys"], None)
            .await
            .ok
    );
    let disabled = account_line(gw, "Account disabled").await;
    assert_eq!(
        field(&disabled, "reason"),
        Some("rotating keys"),
        "{disabled}"
    );

    assert!(gw.accounts(&["enable", "a1"], None).await.ok);
    let recovered = account_line(gw, "Account recovered").await;
    assert_eq!(
        field(&recovered, "previous_state"),
        Some("disabled"),
        "{recovered}"
    );
    // One line per change.
    assert_eq!(gw.log().matches("msg=\"Account cooling down\"").count(), 1);

    // Metrics see the states too.
    let m = parse(&String::from_utf8_lossy(&scrape(&gw.url, &[]).await.body));
    assert_eq!(
        value(&m, "aperture_accounts", &[("state", "active")])
            + value(&m, "aperture_accounts", &[("state", "cooling_down")]),
        1.0
    );
}

/// The log line with `msg="<msg>"`, waiting for the watcher (it looks every second).
async fn account_line(gw: &Gateway, msg: &str) -> String {
    let needle = format!("msg=\"{msg}\"");
    for _ in 0..100 {
        if let Some(l) = gw.log().lines().find(|l| l.contains(&needle)) {
            return l.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {needle} line; log:\n{}", gw.log());
}
