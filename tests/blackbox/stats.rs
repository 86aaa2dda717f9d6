//! The traffic rollups, `GET /admin/stats`, `aperture stats` and the dashboard's sign-in: the numbers after a
//! scripted load, that they survive a restart, the marks against the runbook's thresholds, and the sign-in
//! rules (wrong key refused, never a key in a URL, the cookie's flags). Pruning and histogram precision are
//! tested in the store crate, where time is given.

use serde_json::{json, Value};

use crate::harness::*;

async fn stats(gw: &Gateway, since: &str) -> Value {
    let r = get(
        &format!("{}/admin/stats?since={since}", gw.url),
        Some(ADMIN_KEY),
    )
    .await;
    r.ok()
}

fn row<'a>(report: &'a Value, table: &str, key: &str) -> &'a Value {
    report[table]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key} in {table}: {report}"))
}

/// 3 generations, 3 cache hits, 1 upstream safety block, 1 invalid request.
async fn load(gw: &Gateway) {
    for p in ["a red kite", "a blue kite", "a green kite"] {
        gw.generate(json!({"prompt": p})).await.ok();
    }
    for p in ["a red kite", "a blue kite", "a green kite"] {
        let r = gw.generate(json!({"prompt": p})).await;
        r.ok();
        assert_eq!(r.cache(), "HIT");
    }
    gw.generate(json!({"prompt": "a prohibited-test kite"}))
        .await
        .error(400, "IMG_SAFETY_BLOCKED");
    let bad = gw.generate(json!({"prompt": ""})).await;
    assert_eq!(bad.status, 400, "{}", bad.brief());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_count_a_load_and_survive_a_restart() {
    let s = Setup::simple().await;
    load(&s.gw).await;
    let upstream_calls = s.emu.calls() as u64;

    let check = |v: &Value| {
        let t = &v["totals"];
        assert_eq!(t["requests"], 8, "{v}");
        assert_eq!(t["succeeded"], 6, "{v}");
        assert_eq!(t["failed"], 2, "{v}");
        assert_eq!(t["cache_hits"], 3, "{v}");
        assert_eq!(t["cache_misses"], 4, "{v}");
        assert_eq!(t["safety_blocked"], 1, "{v}");
        assert_eq!(t["errors_by_code"]["IMG_SAFETY_BLOCKED"], 1, "{v}");
        assert_eq!(t["errors_by_type"]["USER_ERROR"], 2, "{v}");
        assert_eq!(t["images"], 6, "{v}");
        assert_eq!(t["cached_images"], 3, "{v}");
        // Three 1K gemini-3-pro-image images from the cache at $0.134 each.
        assert_eq!(t["cost_saved_usd"], 0.402, "{v}");
        assert_eq!(t["upstream_calls"], upstream_calls, "{v}");
        let perf = &v["performance"];
        assert_eq!(perf["latency"]["count"], 6, "{v}");
        assert_eq!(perf["cache_hit_latency"]["summary"]["count"], 3, "{v}");
        let bars: u64 = perf["cache_hit_latency"]["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(bars, 3, "{v}");
        assert_eq!(perf["models"][0]["model"], "gemini-3-pro-image", "{v}");
        assert_eq!(perf["models"][0]["count"], 6, "{v}");
        let a1 = &perf["accounts"][0];
        assert_eq!(a1["label"], "a1");
        assert_eq!(a1["calls"], upstream_calls, "{v}");
        // The runbook's rows, with their marks: 6/8 succeeded is below the 90% critical threshold.
        let success = row(v, "business", "success_rate");
        assert_eq!(
            (&success["display"], &success["mark"]),
            (&json!("75.0%"), &json!("CRITICAL"))
        );
        assert_eq!(success["target"], "≥95%");
        assert_eq!(success["critical"], "<90%");
        let hits = row(v, "business", "cache_hit_rate");
        assert_eq!(
            (&hits["display"], &hits["mark"]),
            (&json!("42.9%"), &json!("OK"))
        );
        let safety = row(v, "business", "safety_rejection_rate");
        assert_eq!(
            (&safety["display"], &safety["mark"]),
            (&json!("12.5%"), &json!("OK"))
        );
        let errors = row(v, "technical", "error_rate");
        assert_eq!(
            (&errors["display"], &errors["mark"]),
            (&json!("25.0%"), &json!("CRITICAL"))
        );
        let accounts = row(v, "technical", "account_rotation_health");
        assert_eq!(
            (&accounts["display"], &accounts["mark"]),
            (&json!("1/1 active"), &json!("OK"))
        );
        assert_eq!(row(v, "technical", "cache_storage_usage")["mark"], "OK");
        // The series add up to the totals.
        let sum: u64 = v["series"]["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .sum();
        assert_eq!(sum, 8, "{v}");
        assert_eq!(
            v["series"]["t"].as_array().unwrap().len(),
            v["series"]["requests"].as_array().unwrap().len()
        );
    };
    let before = stats(&s.gw, "1h").await;
    check(&before);
    assert_eq!(before["live"]["in_flight"], 0);
    assert_eq!(before["live"]["status"], "up");
    assert_eq!(before["window"]["step"], "minute");
    // The hour rows hold the same counts (the 7d report reads them).
    let week = stats(&s.gw, "7d").await;
    check(&week);
    assert_eq!(week["window"]["totals_from"], "hour");

    // A restart keeps them.
    let dir = s.gw.data_dir.clone();
    let Setup {
        emu,
        gw,
        dir: _keep,
    } = s;
    gw.stop().await;
    let gw = Gateway::start(&dir, Launch::to(&emu)).await;
    let after = stats(&gw, "1h").await;
    check(&after);
    let up = row(&after, "technical", "proxy_uptime");
    assert!(up["value"].as_f64().is_some(), "{after}");

    // `aperture stats`: the tables with targets, thresholds and marks; --json is the same report.
    let out = gw.cli(&["stats", "--since", "1h"]).await;
    assert!(out.ok, "{out:?}");
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in:\n{}", out.stdout))
            .to_string()
    };
    assert!(out.stdout.contains("Business metrics:"), "{}", out.stdout);
    assert!(out.stdout.contains("Technical metrics:"), "{}", out.stdout);
    let success = line("Image generation success rate");
    assert!(
        success.contains("75.0%")
            && success.contains("≥95%")
            && success.contains("<90%")
            && success.ends_with("CRITICAL"),
        "{success}"
    );
    assert!(line("Cache hit rate").ends_with("OK"));
    assert!(line("Error rate").ends_with("CRITICAL"));
    assert!(line("Account rotation health").contains("1/1 active"));
    let json_out = gw.cli(&["stats", "--since", "24h", "--json"]).await;
    assert!(json_out.ok, "{json_out:?}");
    let v: Value = serde_json::from_str(&json_out.stdout).unwrap();
    check(&v);

    // Bad windows are refused with what to give instead.
    let bad = gw.cli(&["stats", "--since", "2w"]).await;
    assert!(!bad.ok && bad.stderr.contains("1h, 24h or 7d"), "{bad:?}");
    let r = get(
        &format!("{}/admin/stats?since=90d", gw.url),
        Some(ADMIN_KEY),
    )
    .await;
    r.error(400, "IMG_INVALID_REQUEST");
    let r = get(
        &format!("{}/admin/stats?since=7d&step=minute", gw.url),
        Some(ADMIN_KEY),
    )
    .await;
    r.error(400, "IMG_INVALID_REQUEST");
    let r = get(&format!("{}/admin/stats", gw.url), Some(API_KEY)).await;
    assert_eq!(r.status, 401, "{}", r.brief());
    let auth = format!("Bearer {ADMIN_KEY}");
    let r = request(
        "POST",
        &format!("{}/admin/stats", gw.url),
        &[("authorization", &auth)],
        vec![],
    )
    .await;
    r.error(405, "IMG_METHOD_NOT_ALLOWED");
    assert_eq!(r.header("allow").as_deref(), Some("GET"));
}

fn cookie_of(r: &Resp) -> String {
    let set = r.header("set-cookie").expect("set-cookie");
    set.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_sign_in_by_form_only() {
    let s = Setup::simple().await;
    let base = &s.gw.url;
    let form = |key: &str| format!("key={key}").into_bytes();
    let form_type = [("content-type", "application/x-www-form-urlencoded")];

    // Signed out: the sign-in page, a form that posts the key.
    let page = get(&format!("{base}/dashboard"), None).await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(
        html.contains(r#"<form method="post" action="/dashboard/login""#),
        "{html}"
    );
    assert!(!html.contains("Real-time"));
    let api = get(&format!("{base}/dashboard/api/stats?since=1h"), None).await;
    api.error(401, "IMG_UNAUTHORIZED");

    // A wrong key is refused, with no cookie.
    let wrong = request(
        "POST",
        &format!("{base}/dashboard/login"),
        &form_type,
        form("not-the-key"),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    assert!(String::from_utf8_lossy(&wrong.body).contains("not the admin key"));
    // The client key is not the admin key either.
    let client = request(
        "POST",
        &format!("{base}/dashboard/login"),
        &form_type,
        form(API_KEY),
    )
    .await;
    assert_eq!(client.status, 401);
    // The key in a URL never signs in.
    let in_url = get(&format!("{base}/dashboard/login?key={ADMIN_KEY}"), None).await;
    assert_eq!(in_url.status, 405);
    assert!(in_url.header("set-cookie").is_none());
    let put = request("PUT", &format!("{base}/dashboard"), &[], vec![]).await;
    put.error(405, "IMG_METHOD_NOT_ALLOWED");
    let in_url = get(&format!("{base}/dashboard?key={ADMIN_KEY}"), None).await;
    assert!(!String::from_utf8_lossy(&in_url.body).contains("Real-time"));

    // The admin key signs in: a redirect to the page (no key in it) and a session cookie.
    let ok = request(
        "POST",
        &format!("{base}/dashboard/login"),
        &form_type,
        form(ADMIN_KEY),
    )
    .await;
    assert_eq!(ok.status, 303, "{}", ok.brief());
    assert_eq!(ok.header("location").as_deref(), Some("/dashboard"));
    let set = ok.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age="] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains(ADMIN_KEY), "{set}");
    let cookie = cookie_of(&ok);
    let token = cookie.split_once('=').unwrap().1;
    assert_eq!(token.len(), 64, "{cookie}");

    let page = request(
        "GET",
        &format!("{base}/dashboard"),
        &[("cookie", &cookie)],
        vec![],
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("Real-time"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));

    // The page's data is the admin API's report.
    s.gw.generate(json!({"prompt": "a kite"})).await.ok();
    let mine = request(
        "GET",
        &format!("{base}/dashboard/api/stats?since=1h"),
        &[("cookie", &cookie)],
        vec![],
    )
    .await;
    let mine = mine.ok();
    let admin = stats(&s.gw, "1h").await;
    assert_eq!(mine["totals"], admin["totals"]);
    assert_eq!(mine["business"], admin["business"]);
    let config = request(
        "GET",
        &format!("{base}/dashboard/api/config"),
        &[("cookie", &cookie)],
        vec![],
    )
    .await
    .ok();
    assert_eq!(config["playground_url"], "/v1/images/generations");
    assert!(config["demo_key"].is_null(), "not in demo mode: {config}");

    // The charting library is served from the binary.
    let js = get(&format!("{base}/dashboard/assets/uPlot.iife.min.js"), None).await;
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(String::from_utf8_lossy(&js.body).contains("uPlot"));
    assert_eq!(
        get(&format!("{base}/dashboard/assets/nope.js"), None)
            .await
            .status,
        404
    );

    // Signing out ends the session.
    let out = request(
        "POST",
        &format!("{base}/dashboard/logout"),
        &[("cookie", &cookie)],
        vec![],
    )
    .await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let after = request(
        "GET",
        &format!("{base}/dashboard/api/stats"),
        &[("cookie", &cookie)],
        vec![],
    )
    .await;
    assert_eq!(after.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_offers_its_client_key_to_the_playground() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        Launch {
            demo: true,
            ..Launch::default()
        },
    )
    .await;
    let admin = gw
        .stdout_lines
        .iter()
        .find_map(|l| l.strip_prefix("Demo admin key (APERTURE_ADMIN_KEY): "))
        .unwrap()
        .to_string();
    let client = gw
        .stdout_lines
        .iter()
        .find_map(|l| l.strip_prefix("Demo client key (APERTURE_API_KEY): "))
        .unwrap()
        .to_string();
    let ok = request(
        "POST",
        &format!("{}/dashboard/login", gw.url),
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("key={admin}").into_bytes(),
    )
    .await;
    assert_eq!(ok.status, 303);
    let cookie = cookie_of(&ok);
    let config = request(
        "GET",
        &format!("{}/dashboard/api/config", gw.url),
        &[("cookie", &cookie)],
        vec![],
    )
    .await
    .ok();
    assert_eq!(config["demo_key"], client.as_str());
}
