//! Limits per client key (requests per minute, images per day, requests in flight, allowed safety
//! thresholds) set with `aperture keys`, the failed-authentication throttle, the admin API on its own
//! address, a store failure while checking a key, and the admin key used as a client key.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;

/// `POST /v1/images/generations` with `key`.
async fn generate_as(gw: &Gateway, key: &str, body: Value) -> Resp {
    let auth = format!("Bearer {key}");
    request(
        "POST",
        &format!("{}/v1/images/generations", gw.url),
        &[("authorization", &auth)],
        body.to_string().into_bytes(),
    )
    .await
}

/// `aperture keys add --label LABEL FLAGS…` with `key` on stdin; panics on failure.
async fn add_key(gw: &Gateway, label: &str, key: &str, flags: &[&str]) -> CliOutput {
    let mut args: Vec<String> = ["keys", "add", "--label", label]
        .iter()
        .chain(flags)
        .map(|s| s.to_string())
        .collect();
    args.extend(["--server".to_string(), gw.url.clone()]);
    let out = run_cli(args, Some(key.to_string())).await;
    assert!(out.ok, "keys add {label}: {out:?}");
    out
}

/// The key with `label` from `keys list --json`.
async fn listed_key(gw: &Gateway, label: &str) -> Value {
    let out = gw.cli(&["keys", "list", "--json"]).await;
    assert!(out.ok, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == label)
        .cloned()
        .unwrap_or_else(|| panic!("no key {label} in {}", out.stdout))
}

/// Restart the gateway of `s` on the same data dir (graceful stop first).
async fn restart(s: Setup, launch: impl FnOnce(Launch) -> Launch) -> Setup {
    let Setup { emu, gw, dir } = s;
    gw.stop().await;
    let gw = Gateway::start(dir.path(), launch(Launch::to(&emu))).await;
    Setup { emu, gw, dir }
}

const TEAM_KEY: &str = "bb-team-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_are_limited_per_key_and_the_count_survives_a_restart() {
    let s = Setup::simple().await;
    add_key(&s.gw, "team", TEAM_KEY, &["--rpm", "1"]).await;

    generate_as(&s.gw, TEAM_KEY, json!({"prompt": "first of the minute"}))
        .await
        .ok();
    let r = generate_as(&s.gw, TEAM_KEY, json!({"prompt": "second of the minute"})).await;
    let e = r.error(429, "IMG_RATE_LIMITED");
    assert_eq!(e["type"], "rate_limit_error");
    assert!((1..=60).contains(&r.retry_after()), "{:?}", r.headers);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("1 requests per minute"));
    assert_eq!(
        s.emu.calls(),
        1,
        "the refused request made no upstream call"
    );
    // Other keys are not affected (the configured key has the defaults: no rate limit).
    s.gw.generate(json!({"prompt": "another key"})).await.ok();

    let s = restart(s, |l| l).await;
    let r = generate_as(&s.gw, TEAM_KEY, json!({"prompt": "after the restart"})).await;
    r.error(429, "IMG_RATE_LIMITED");
    let line = s.gw.request_line(&r.request_id());
    assert_eq!(field(&line, "error_code"), Some("IMG_RATE_LIMITED"));
    assert_eq!(field(&line, "client"), Some("team"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_per_day_count_generated_images_not_cache_hits_and_survive_a_restart() {
    let s = Setup::simple().await;
    add_key(&s.gw, "team", TEAM_KEY, &["--images-per-day", "3"]).await;

    let first = json!({"prompt": "a daily lighthouse", "n": 2});
    generate_as(&s.gw, TEAM_KEY, first.clone()).await.ok();
    // A cache hit returns images without generating any: not counted.
    let hit = generate_as(&s.gw, TEAM_KEY, first.clone()).await;
    hit.ok();
    assert_eq!(hit.cache(), "HIT");
    assert_eq!(listed_key(&s.gw, "team").await["usage"]["images_today"], 2);

    let r = generate_as(&s.gw, TEAM_KEY, json!({"prompt": "two more", "n": 2})).await;
    let e = r.error(429, "IMG_DAILY_LIMIT");
    assert_eq!(e["param"], "n");
    assert!(
        e["message"].as_str().unwrap().contains("ask for at most 1"),
        "{}",
        r.brief()
    );
    // Until the next midnight in Los Angeles: at most a day (plus an hour around DST changes).
    assert!(r.retry_after() <= 25 * 3600, "{:?}", r.headers);
    generate_as(&s.gw, TEAM_KEY, json!({"prompt": "the last one", "n": 1}))
        .await
        .ok();
    assert_eq!(
        s.emu.calls(),
        3,
        "the refused request made no upstream call"
    );

    let s = restart(s, |l| l).await;
    let r = generate_as(&s.gw, TEAM_KEY, json!({"prompt": "after the restart"})).await;
    r.error(429, "IMG_DAILY_LIMIT");
    // The day's images already made are still served from the cache.
    let hit = generate_as(&s.gw, TEAM_KEY, first).await;
    hit.ok();
    assert_eq!(hit.cache(), "HIT");

    // The operator raises the limit while the gateway runs.
    let out =
        s.gw.cli(&["keys", "set", "team", "--images-per-day", "4"])
            .await;
    assert!(out.ok, "{out:?}");
    generate_as(&s.gw, TEAM_KEY, json!({"prompt": "after the raise"}))
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_past_the_key_limit_are_refused() {
    let s = Setup::simple().await;
    add_key(&s.gw, "team", TEAM_KEY, &["--max-concurrent", "1"]).await;
    s.emu.set_latency(Duration::from_secs(3));

    let gw_url = s.gw.url.clone();
    let slow = tokio::spawn(async move {
        request(
            "POST",
            &format!("{gw_url}/v1/images/generations"),
            &[("authorization", &format!("Bearer {TEAM_KEY}"))],
            json!({"prompt": "a slow one"}).to_string().into_bytes(),
        )
        .await
    });
    // Wait until the first request is at the upstream (it holds the key's only slot).
    for _ in 0..3000 {
        if s.emu.calls() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.emu.calls(), 1, "the first request reached the upstream");

    let r = generate_as(&s.gw, TEAM_KEY, json!({"prompt": "a second at once"})).await;
    let e = r.error(429, "IMG_CONCURRENCY_LIMIT");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("1 requests in flight"));
    r.retry_after();
    // Another key is not affected.
    s.emu.set_latency(Duration::ZERO);
    s.gw.generate(json!({"prompt": "someone else"})).await.ok();

    slow.await.unwrap().ok();
    generate_as(&s.gw, TEAM_KEY, json!({"prompt": "after the first ended"}))
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_may_only_use_the_safety_thresholds_it_is_allowed() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.env("GEMINI_IMAGE_SAFETY_THRESHOLD", "OFF")
            .env("APERTURE_LIMIT_ALLOWED_THRESHOLDS", "OFF,LOW,MEDIUM,HIGH")
    })
    .await;
    add_key(
        &s.gw,
        "strict",
        TEAM_KEY,
        &["--allow-thresholds", "MEDIUM,HIGH"],
    )
    .await;

    for asked in ["OFF", "low"] {
        let r = generate_as(
            &s.gw,
            TEAM_KEY,
            json!({"prompt": "a harbour", "safety_threshold": asked}),
        )
        .await;
        let e = r.error(403, "IMG_THRESHOLD_FORBIDDEN");
        assert_eq!(e["param"], "safety_threshold");
        assert_eq!(e["error_type"], "USER_ERROR");
        assert!(
            e["message"].as_str().unwrap().contains("MEDIUM, HIGH"),
            "{}",
            r.brief()
        );
    }
    assert_eq!(s.emu.calls(), 0, "refused before any upstream call");

    // Without one, the global default (OFF) is not allowed for this key: its strictest allowed one.
    let r = generate_as(&s.gw, TEAM_KEY, json!({"prompt": "a harbour"})).await;
    r.ok();
    let line = s.gw.request_line(&r.request_id());
    assert_eq!(field(&line, "safety_threshold"), Some("HIGH"), "{line}");
    // ... which the emulator enforces: a MEDIUM-probability term is blocked at HIGH.
    let r = generate_as(&s.gw, TEAM_KEY, json!({"prompt": "a violent storm"})).await;
    r.error(400, "IMG_SAFETY_BLOCKED");

    let r = generate_as(
        &s.gw,
        TEAM_KEY,
        json!({"prompt": "a harbour", "safety_threshold": "medium"}),
    )
    .await;
    r.ok();
    // The configured key keeps the global default.
    let r = s.gw.generate(json!({"prompt": "a harbour"})).await;
    r.ok();
    let line = s.gw.request_line(&r.request_id());
    assert_eq!(field(&line, "safety_threshold"), Some("OFF"), "{line}");

    // Back to the default set: OFF is allowed again.
    let out =
        s.gw.cli(&["keys", "set", "strict", "--allow-thresholds", "default"])
            .await;
    assert!(out.ok, "{out:?}");
    generate_as(
        &s.gw,
        TEAM_KEY,
        json!({"prompt": "a harbour", "safety_threshold": "OFF"}),
    )
    .await
    .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_defaults_apply_to_configured_keys() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.config("[limits]\nallowed_thresholds = [\"MEDIUM\", \"HIGH\"]\nrpm = 2\n")
    })
    .await;
    let r =
        s.gw.generate(json!({"prompt": "x", "safety_threshold": "OFF"}))
            .await;
    r.error(403, "IMG_THRESHOLD_FORBIDDEN");
    // That refusal used one of the two requests of the minute (admission comes first).
    s.gw.generate(json!({"prompt": "y"})).await.ok();
    let r = s.gw.generate(json!({"prompt": "z"})).await;
    r.error(429, "IMG_RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_add_set_and_list_show_the_limits() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    let out = add_key(
        gw,
        "team",
        TEAM_KEY,
        &[
            "--rpm",
            "60",
            "--images-per-day",
            "500",
            "--max-concurrent",
            "4",
            "--allow-thresholds",
            "MEDIUM,HIGH",
        ],
    )
    .await;
    assert!(out.stdout.contains("added client key team"), "{out:?}");
    let k = listed_key(gw, "team").await;
    assert_eq!(
        k["effective"],
        json!({"rpm": 60, "images_per_day": 500, "max_concurrent": 4, "allowed_thresholds": ["MEDIUM", "HIGH"]})
    );
    assert_eq!(k["limits"]["rpm"], 60);

    let out = gw
        .cli(&[
            "keys",
            "set",
            "team",
            "--rpm",
            "default",
            "--max-concurrent",
            "unlimited",
        ])
        .await;
    assert!(out.ok, "{out:?}");
    let k = listed_key(gw, "team").await;
    assert_eq!(k["effective"]["rpm"], 0, "the default: unlimited");
    assert!(k["limits"]["rpm"].is_null());
    assert_eq!(k["effective"]["max_concurrent"], 0);
    assert_eq!(k["limits"]["max_concurrent"], 0);
    assert_eq!(k["effective"]["images_per_day"], 500);

    let table = gw.cli(&["keys", "list"]).await;
    assert!(table.ok, "{table:?}");
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("team "))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(
        row.contains("500*") && row.contains("MEDIUM,HIGH*"),
        "{row}"
    );
    assert!(table.stdout.contains("defaults"), "{}", table.stdout);

    // Bad values are refused, naming the problem; nothing changes.
    for (args, needle) in [
        (vec!["keys", "set", "team", "--rpm", "lots"], "--rpm"),
        (
            vec!["keys", "set", "team", "--allow-thresholds", "EXTREME"],
            "EXTREME",
        ),
        (vec!["keys", "set", "team"], "at least one limit"),
        (
            vec!["keys", "set", "nobody", "--rpm", "5"],
            "aperture keys list",
        ),
    ] {
        let out = gw.cli(&args).await;
        assert!(!out.ok, "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {out:?}");
    }
    assert_eq!(
        listed_key(gw, "team").await["effective"]["images_per_day"],
        500
    );

    // Removing the key removes its limits: a new key under the label starts from the defaults.
    assert!(gw.cli(&["keys", "remove", "team"]).await.ok);
    add_key(gw, "team", "bb-team-key-second-key", &[]).await;
    let k = listed_key(gw, "team").await;
    assert_eq!(k["effective"]["images_per_day"], 0);
    assert_eq!(k["limits"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_throttled_per_address() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.config("[auth]\nfailures_per_minute = 3\n")
    })
    .await;
    let gw = &s.gw;
    let models = format!("{}/v1/models", gw.url);
    get(&models, Some("wrong-key-1234567"))
        .await
        .error(401, "IMG_UNAUTHORIZED");
    get(&models, None).await.error(401, "IMG_UNAUTHORIZED");
    // A wrong admin key counts too.
    get(
        &format!("{}/admin/keys", gw.url),
        Some("wrong-admin-key-123"),
    )
    .await
    .error(401, "IMG_UNAUTHORIZED");
    // The address has used its failures: refused before any key is checked, even a valid one.
    for r in [
        get(&models, Some("wrong-key-1234567")).await,
        get(&models, Some(API_KEY)).await,
        gw.generate(json!({"prompt": "a locked door"})).await,
        get(&format!("{}/admin/keys", gw.url), Some(ADMIN_KEY)).await,
    ] {
        let e = r.error(429, "IMG_AUTH_THROTTLED");
        assert_eq!(e["type"], "rate_limit_error");
        assert!((1..=60).contains(&r.retry_after()), "{:?}", r.headers);
    }
    assert_eq!(s.emu.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_authentication_is_not_throttled() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.config("[auth]\nfailures_per_minute = 2\n")
    })
    .await;
    let models = format!("{}/v1/models", s.gw.url);
    for _ in 0..10 {
        get(&models, Some(API_KEY)).await.ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_can_listen_on_its_own_address() {
    let emu = emulator(&["bb-gemini-key-1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        Launch::to(&emu).env("APERTURE_ADMIN_LISTEN", "127.0.0.1:0"),
    )
    .await;
    let admin_url = gw
        .stdout_lines
        .iter()
        .find_map(|l| l.strip_prefix("Admin API listening on "))
        .unwrap_or_else(|| panic!("no admin address in {:?}", gw.stdout_lines))
        .trim()
        .to_string();
    assert_ne!(admin_url, gw.url);

    // Not on the public listener, not even with the admin key.
    get(&format!("{}/admin/keys", gw.url), Some(ADMIN_KEY))
        .await
        .error(404, "IMG_NOT_FOUND");
    // On its own address: the admin API only.
    get(&format!("{admin_url}/admin/keys"), Some(ADMIN_KEY))
        .await
        .ok();
    get(&format!("{admin_url}/v1/models"), Some(API_KEY))
        .await
        .error(404, "IMG_NOT_FOUND");
    get(&format!("{admin_url}/healthz"), None).await.ok();
    get(&format!("{}/v1/models", gw.url), Some(API_KEY))
        .await
        .ok();

    // The CLI talks to it with --server.
    let out = run_cli(
        [
            "accounts",
            "add",
            "--label",
            "a1",
            "--server",
            admin_url.as_str(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        Some("bb-gemini-key-1".to_string()),
    )
    .await;
    assert!(out.ok, "{out:?}");
    let r = gw
        .generate(json!({"prompt": "through the public side"}))
        .await;
    r.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_while_checking_a_key_is_503_not_401() {
    let dir = tempfile::tempdir().unwrap();
    // A store whose client-key row cannot be decoded (the stored hash is not hex).
    {
        let db = redb::Database::create(dir.path().join("aperture.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("client_keys");
            let mut t = txn.open_table(def).unwrap();
            t.insert("not-a-sha256-hash", "broken").unwrap();
        }
        txn.commit().unwrap();
    }
    let emu = emulator(&["bb-gemini-key-1"]).await;
    let gw = Gateway::start(dir.path(), Launch::to(&emu)).await;
    let models = format!("{}/v1/models", gw.url);
    // A key that may be stored cannot be checked: 503 with Retry-After, not "invalid key".
    let r = get(&models, Some("bb-maybe-stored-key-1")).await;
    let e = r.error(503, "IMG_STORAGE_FAILURE");
    assert_eq!(e["error_type"], "SYSTEM_ERROR");
    r.retry_after();
    // The configured key needs no store read.
    get(&models, Some(API_KEY)).await.ok();
    assert!(
        gw.log().contains("cannot check a client key"),
        "{}",
        gw.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_key_is_refused_as_a_client_key() {
    let s = Setup::simple().await;
    let r = generate_as(&s.gw, ADMIN_KEY, json!({"prompt": "with the admin key"})).await;
    let e = r.error(401, "IMG_UNAUTHORIZED");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("admin key") && msg.contains("client key"),
        "{msg}"
    );
    get(&format!("{}/v1/models", s.gw.url), Some(ADMIN_KEY))
        .await
        .error(401, "IMG_UNAUTHORIZED");
    assert_eq!(s.emu.calls(), 0);

    // It cannot be stored as a client key either.
    let mut args: Vec<String> = ["keys", "add", "--label", "sneaky"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--server".to_string(), s.gw.url.clone()]);
    let out = run_cli(args, Some(ADMIN_KEY.to_string())).await;
    assert!(!out.ok, "{out:?}");
    assert!(out.stderr.contains("admin key"), "{out:?}");

    // Nor configured as one.
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let data = dir.path().to_path_buf();
        move || {
            std::process::Command::new(BIN)
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(data)
                .env("APERTURE_API_KEY", ADMIN_KEY)
                .env("APERTURE_ADMIN_KEY", ADMIN_KEY)
                .env("APERTURE_UPSTREAM_URL", "http://127.0.0.1:9")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("must differ"), "{stderr}");
}
