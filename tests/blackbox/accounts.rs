//! The account pool, driven through the real `aperture accounts …` CLI while the
//! gateway runs: quota exhaustion moves requests to another account, all
//! exhausted is 429 + Retry-After, an invalid key is disabled, operators can
//! disable/enable/remove, and secrets never show.

use aperture_emulator::QuotaWindow;
use serde_json::json;

use crate::harness::*;

const K1: &str = "AIzaSy-bb-secret-key-one-0001";
const K2: &str = "AIzaSy-bb-secret-key-two-0002";

/// Distinct prompts so that nothing is served from the cache.
fn prompt(i: usize) -> serde_json::Value {
    json!({ "prompt": format!("account probe number {i}") })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhaustion_moves_on_then_429_with_retry_after() {
    let s = Setup::new(&[K1, K2], |l| l).await;
    let (gw, emu) = (&s.gw, &s.emu);
    emu.exhaust_key(K1, QuotaWindow::Minute);

    // Round-robin reaches the exhausted account within two requests; every
    // request is still served, by the other account.
    let mut i = 0;
    while emu.calls_for_key(K1) == 0 {
        i += 1;
        assert!(i <= 3, "the first account was never tried");
        let r = gw.generate(prompt(i)).await;
        r.ok();
    }
    let a1 = gw.account("a1").await;
    assert_eq!(a1["state"]["kind"], "cooling_down", "{a1:#}");
    assert_eq!(gw.account("a2").await["state"]["kind"], "active");
    let line = gw.request_line(&gw.generate(prompt(100)).await.request_id());
    assert_eq!(
        field(&line, "account_email"),
        Some("a2@test.example"),
        "{line}"
    );

    // Now the second one too: nothing is left.
    emu.exhaust_key(K2, QuotaWindow::Minute);
    let r = gw.generate(prompt(200)).await;
    let e = r.error(429, "IMG_QUOTA_EXHAUSTED");
    assert_eq!(e["error_type"], "API_ERROR");
    let secs = r.retry_after();
    assert!(
        secs <= 120,
        "a per-minute quota resets within the minute: {secs}"
    );
    for label in ["a1", "a2"] {
        let a = gw.account(label).await;
        assert_eq!(a["state"]["kind"], "cooling_down", "{a:#}");
    }
    // While everything rests, requests are refused without calling upstream.
    let calls = emu.calls();
    gw.generate(prompt(201))
        .await
        .error(429, "IMG_QUOTA_EXHAUSTED");
    assert_eq!(emu.calls(), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_quota_marks_the_account_exhausted() {
    let s = Setup::new(&[K1], |l| l).await;
    s.emu.exhaust_key(K1, QuotaWindow::Day);
    let r = s.gw.generate(prompt(1)).await;
    let e = r.error(429, "IMG_QUOTA_EXHAUSTED");
    assert_eq!(e["error_type"], "API_ERROR");
    let secs = r.retry_after();
    assert!(secs <= 25 * 3600, "until the next Pacific midnight: {secs}");
    let a1 = s.gw.account("a1").await;
    assert_eq!(a1["state"]["kind"], "exhausted", "{a1:#}");
    let until = a1["state"]["until_ms"].as_u64().expect("until_ms");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(until > now && until <= now + 25 * 3_600_000, "{a1:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_key_is_disabled_and_another_account_serves() {
    let emu = emulator(&[K1]).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), Launch::to(&emu)).await;
    let bad = "AIzaSy-bb-unknown-to-upstream-9999";
    gw.add_account("bad", "bad@test.example", bad).await;
    gw.add_account("good", "good@test.example", K1).await;

    let mut i = 0;
    while emu.calls_for_key(bad) == 0 {
        i += 1;
        assert!(i <= 3, "the bad account was never tried");
        gw.generate(prompt(i)).await.ok();
    }
    let a = gw.account("bad").await;
    assert_eq!(a["state"]["kind"], "disabled", "{a:#}");
    assert!(
        a["state"]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "a disabled account says why: {a:#}"
    );
    assert_eq!(gw.account("good").await["state"]["kind"], "active");

    // It is not tried again.
    let bad_calls = emu.calls_for_key(bad);
    for j in 10..13 {
        gw.generate(prompt(j)).await.ok();
    }
    assert_eq!(emu.calls_for_key(bad), bad_calls);

    let (_, raw) = gw.list_accounts().await;
    assert!(
        !raw.contains(bad) && !raw.contains(K1),
        "secret in list: {raw}"
    );
    assert!(!gw.log().contains(bad), "secret in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_disable_enable_remove_and_secrets_stay_hidden() {
    let emu = emulator(&[K1, K2]).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), Launch::to(&emu)).await;

    // add: the secret on stdin, never echoed.
    for (label, email, key) in [("a1", "a1@test.example", K1), ("a2", "a2@test.example", K2)] {
        let out = gw
            .accounts(&["add", "--label", label, "--email", email], Some(key))
            .await;
        assert!(out.ok, "{out:?}");
        assert!(
            !out.stdout.contains(key) && !out.stderr.contains(key),
            "{out:?}"
        );
    }
    // A duplicate label is refused.
    let out = gw.accounts(&["add", "--label", "a1"], Some(K2)).await;
    assert!(!out.ok, "duplicate label accepted: {out:?}");

    let (list, raw) = gw.list_accounts().await;
    assert_eq!(list.len(), 2, "{raw}");
    for a in &list {
        assert_eq!(a["state"]["kind"], "active", "{a:#}");
        assert!(a["secret_masked"].is_string(), "{a:#}");
    }
    let table = gw.accounts(&["list"], None).await;
    assert!(table.ok, "{table:?}");
    for text in [&raw, &table.stdout] {
        assert!(
            !text.contains(K1) && !text.contains(K2),
            "secret shown: {text}"
        );
    }
    assert!(table.stdout.contains("a1") && table.stdout.contains("a2"));

    // disable: out of rotation, with the reason shown.
    let out = gw
        .accounts(&["disable", "a1", "--reason", "maintenance window"], None)
        .await;
    assert!(out.ok, "{out:?}");
    let a1 = gw.account("a1").await;
    assert_eq!(a1["state"]["kind"], "disabled");
    assert_eq!(a1["state"]["reason"], "maintenance window");
    for i in 0..3 {
        gw.generate(prompt(i)).await.ok();
    }
    assert_eq!(emu.calls_for_key(K1), 0, "a disabled account is not used");
    assert_eq!(emu.calls_for_key(K2), 3);

    // enable: back in rotation.
    let out = gw.accounts(&["enable", "a1"], None).await;
    assert!(out.ok, "{out:?}");
    assert_eq!(gw.account("a1").await["state"]["kind"], "active");
    let mut i = 10;
    while emu.calls_for_key(K1) == 0 {
        assert!(i < 13, "the enabled account was never used");
        gw.generate(prompt(i)).await.ok();
        i += 1;
    }

    // remove: gone; with no account left, requests fail clearly.
    for label in ["a2", "a1"] {
        let out = gw.accounts(&["remove", label], None).await;
        assert!(out.ok, "{out:?}");
    }
    let (list, raw) = gw.list_accounts().await;
    assert!(list.is_empty(), "{raw}");
    let r = gw.generate(prompt(50)).await;
    assert_ne!(r.status, 200, "{}", r.brief());
    let e = r.json()["error"].clone();
    assert!(
        e["code"].as_str().is_some_and(|c| c.starts_with("IMG_")),
        "{}",
        r.brief()
    );

    // Unknown account and a wrong admin key are refused.
    let out = gw.accounts(&["disable", "nope"], None).await;
    assert!(!out.ok, "{out:?}");
    let r = request(
        "GET",
        &format!("{}/admin/accounts", gw.url),
        &[("authorization", "Bearer not-the-admin-key")],
        Vec::new(),
    )
    .await;
    r.error(401, "IMG_UNAUTHORIZED");
    let r = get(&format!("{}/admin/accounts", gw.url), Some(API_KEY)).await;
    r.error(401, "IMG_UNAUTHORIZED");

    let log = gw.log();
    let stderr = gw.stderr();
    for k in [K1, K2] {
        assert!(!log.contains(k), "secret in the log file");
        assert!(!stderr.contains(k), "secret on stderr");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_with_spaces_and_slashes_work_end_to_end() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    for label in ["team a", "ops/blue", "café"] {
        gw.add_account(
            label,
            "x@test.example",
            &format!("AIzaSy-{label}-secret-123"),
        )
        .await;
        let out = gw.accounts(&["disable", label], None).await;
        assert!(out.ok, "disable {label:?}: {out:?}");
        assert_eq!(
            gw.account(label).await["state"]["kind"],
            "disabled",
            "{label}"
        );
        let out = gw.accounts(&["enable", label], None).await;
        assert!(out.ok, "enable {label:?}: {out:?}");
        let out = gw.accounts(&["remove", label], None).await;
        assert!(out.ok, "remove {label:?}: {out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_messages_point_to_the_right_command_and_say_things_once() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    let out = gw.cli(&["keys", "remove", "no-such-key"]).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("aperture keys list"), "{out:?}");
    assert!(!out.stderr.contains("accounts list"), "{out:?}");

    let out = gw.cli(&["accounts", "disable", "no-such-account"]).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("aperture accounts list"), "{out:?}");

    let add = |label: &'static str| async move {
        let mut args: Vec<String> = ["keys", "add", "--label", label]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--server".to_string(), gw.url.clone()]);
        run_cli(args, Some("bb-duplicate-client-key-77".to_string())).await
    };
    assert!(add("first").await.ok);
    let dup = add("second").await;
    assert!(!dup.ok);
    assert_eq!(
        dup.stderr.matches("already").count(),
        1,
        "the duplicate-key message says it once: {dup:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_pipe_ends_the_cli_quietly() {
    let s = Setup::simple().await;
    let url = s.gw.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(BIN)
            .args(["accounts", "list", "--server", &url])
            .env("APERTURE_ADMIN_KEY", ADMIN_KEY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Like `| head` that has read enough: the reader is gone before the CLI writes.
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
