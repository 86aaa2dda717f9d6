//! The policy lifecycle against the real binary: `aperture policy` verify, install,
//! list, export; activate and rollback with no restart; swaps under load; shadow;
//! a self-aborting canary; a restart that keeps the active and candidate versions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::*;

/// The term `safety_extra_deny` denies.
const TERM: &str = "aperture-canary-term";

fn guest(stem: &str) -> String {
    let p = PathBuf::from(concat!(env!("APERTURE_GUEST_DIR"))).join(format!("{stem}.wasm"));
    assert!(p.is_file(), "guest not built at {}", p.display());
    p.display().to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `aperture policy list --json`, parsed.
async fn list(gw: &Gateway) -> Value {
    let out = gw.cli(&["policy", "list", "--json"]).await;
    assert!(out.ok, "policy list: {out:?}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// `aperture policy install FILE --slot SLOT [--label L]`: the sha256 it prints first.
async fn install(gw: &Gateway, file: &str, slot: &str, label: Option<&str>) -> String {
    let mut args = vec!["policy", "install", file, "--slot", slot];
    if let Some(l) = label {
        args.extend(["--label", l]);
    }
    let out = gw.cli(&args).await;
    assert!(out.ok, "policy install {file}: {out:?}");
    let sha = out.stdout.lines().next().unwrap_or("").trim().to_string();
    assert_eq!(sha.len(), 64, "{out:?}");
    sha
}

/// One admin API call (faster than spawning the CLI, for the swap loop).
async fn admin(gw: &Gateway, path: &str, body: Value) -> Resp {
    let auth = format!("Bearer {ADMIN_KEY}");
    request(
        "POST",
        &format!("{}{path}", gw.url),
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        body.to_string().into_bytes(),
    )
    .await
}

/// `aperture policy export SLOT [REF]` with stdout to `file`.
fn export(gw: &Gateway, slot: &str, reference: Option<&str>, file: &Path) -> bool {
    let mut cmd = Command::new(BIN);
    cmd.args(["policy", "export", slot]);
    if let Some(r) = reference {
        cmd.arg(r);
    }
    cmd.args(["--server", &gw.url])
        .env("APERTURE_ADMIN_KEY", ADMIN_KEY)
        .stdout(Stdio::from(std::fs::File::create(file).unwrap()))
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The `translator=… safety=… classifier=…` versions of an `x-aperture-policy` header.
fn header_versions(r: &Resp) -> HashMap<String, String> {
    let h = r
        .header("x-aperture-policy")
        .unwrap_or_else(|| panic!("no x-aperture-policy: {}", r.brief()));
    h.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_install_list_and_export_round_trip() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    let listed = list(gw).await;
    for slot in ["translator", "safety", "classifier"] {
        // Export the active (embedded) version: the bytes hash to its sha256 and verify offline.
        let file = s.dir.path().join(format!("{slot}.wasm"));
        assert!(export(gw, slot, None, &file), "export {slot}");
        let bytes = std::fs::read(&file).unwrap();
        let active = listed["slots"][slot]["active"].as_str().unwrap();
        assert_eq!(hex(&Sha256::digest(&bytes)), active, "{slot}");
        let label = listed["slots"][slot]["versions"][0]["label"].clone();
        assert_eq!(label, "embedded", "{listed:#}");
        let out = run_cli(
            vec![
                "policy".into(),
                "verify".into(),
                file.display().to_string(),
                "--slot".into(),
                slot.into(),
            ],
            None,
        )
        .await;
        assert!(out.ok, "verify {slot}: {out:?}");
        assert!(out.stdout.starts_with("PASSED"), "{}", out.stdout);
        // By label too.
        let again = s.dir.path().join(format!("{slot}-by-label.wasm"));
        assert!(export(gw, slot, Some("embedded"), &again));
        assert_eq!(std::fs::read(&again).unwrap(), bytes);
    }

    // Each kind of refusal, with its reason, and exit status 1.
    let core = s.dir.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").unwrap()).unwrap();
    let classifier = s.dir.path().join("classifier.wasm");
    for (file, slot, reason) in [
        (
            core.display().to_string(),
            "safety",
            "core WebAssembly module, not a component",
        ),
        (
            classifier.display().to_string(),
            "translator",
            "exports aperture:policy/classifier@0.2.0",
        ),
        (
            guest("translator_wit_010"),
            "translator",
            "targets aperture:policy@0.1.0, but this host implements aperture:policy@0.2.0",
        ),
        (
            guest("safety_fails_vector"),
            "safety",
            "vector \"finish SPII blocks\" (review)",
        ),
    ] {
        let out = run_cli(
            vec![
                "policy".into(),
                "verify".into(),
                file.clone(),
                "--slot".into(),
                slot.into(),
            ],
            None,
        )
        .await;
        assert!(!out.ok, "{file} passed: {out:?}");
        assert!(
            out.stdout.contains(reason),
            "{file}: want {reason:?}: {out:?}"
        );
        // The gateway refuses the same way, and stores nothing.
        let out = gw.cli(&["policy", "install", &file, "--slot", slot]).await;
        assert!(!out.ok, "{file} installed: {out:?}");
        assert!(out.stdout.contains(reason), "{file}: {out:?}");
    }
    let out = run_cli(
        vec!["policy".into(), "verify".into(), "--help".into()],
        None,
    )
    .await;
    assert!(out.ok && out.stdout.contains("--slot"), "{out:?}");

    // Install, then install the same bytes again: a no-op naming the same version.
    let sha = install(gw, &guest("safety_extra_deny"), "safety", Some("extra")).await;
    let out = gw
        .cli(&[
            "policy",
            "install",
            &guest("safety_extra_deny"),
            "--slot",
            "safety",
        ])
        .await;
    assert!(
        out.ok && out.stdout.contains("already installed"),
        "{out:?}"
    );
    assert!(out.stdout.starts_with(&sha), "{out:?}");
    let listed = list(gw).await;
    let versions = listed["slots"]["safety"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{listed:#}");
    let extra = versions
        .iter()
        .find(|v| v["sha256"] == sha.as_str())
        .unwrap();
    assert_eq!(extra["role"], "installed");
    assert_eq!(extra["label"], "extra");
    assert_eq!(extra["wit_version"], "0.2.0");
    // Unknown references and slots say what to do.
    let out = gw
        .cli(&["policy", "activate", "safety", "nosuchlabel"])
        .await;
    assert!(
        !out.ok && out.stderr.contains("aperture policy list"),
        "{out:?}"
    );
    let out = gw.cli(&["policy", "rollback", "classifier"]).await;
    assert!(
        !out.ok && out.stderr.contains("no previous version"),
        "{out:?}"
    );
    let out = gw.cli(&["policy", "promote", "sfety"]).await;
    assert!(
        !out.ok && out.stderr.contains("translator, safety or classifier"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activate_changes_behaviour_at_once_and_rollback_reverts_it() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    let embedded = list(gw).await["slots"]["safety"]["active"]
        .as_str()
        .unwrap()
        .to_string();
    let sha = install(gw, &guest("safety_extra_deny"), "safety", Some("extra")).await;
    let prompt = |i: u32| json!({ "prompt": format!("a lighthouse {i}, {TERM}") });

    let r = gw.generate(prompt(1)).await;
    r.ok();
    assert_eq!(header_versions(&r)["safety"], &embedded[..8]);

    let out = gw.cli(&["policy", "activate", "safety", "extra"]).await;
    assert!(out.ok, "{out:?}");
    let r = gw.generate(prompt(2)).await;
    r.error(400, "IMG_SAFETY_BLOCKED");
    assert_eq!(header_versions(&r)["safety"], &sha[..8]);
    let line = gw.request_line(&r.request_id());
    assert_eq!(field(&line, "safety"), Some(&sha[..8]), "{line}");

    let out = gw.cli(&["policy", "rollback", "safety"]).await;
    assert!(out.ok, "{out:?}");
    let r = gw.generate(prompt(3)).await;
    r.ok();
    assert_eq!(header_versions(&r)["safety"], &embedded[..8]);
    // A rollback finds the entries cached under the old policy again.
    let again = gw.generate(prompt(1)).await;
    again.ok();
    assert_eq!(again.cache(), "HIT");

    let out = gw.cli(&["policy", "history", "safety"]).await;
    assert!(out.ok, "{out:?}");
    for event in ["installed", "activated", "rolled_back"] {
        assert!(out.stdout.contains(event), "{event}: {}", out.stdout);
    }
    let log = gw.log();
    assert!(
        log.lines().any(|l| l.contains("Policy lifecycle event")
            && l.contains("event=rolled_back")
            && l.contains(&format!("previous={}", &sha[..8]))),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swaps_under_load_fail_no_request_and_every_line_names_one_version() {
    // 16 requests in flight from one client key: above the default per-key limit of 8.
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.config("[limits]\nmax_concurrent = 64\n")
    })
    .await;
    let gw = Arc::new(s.gw);
    let embedded = list(&gw).await["slots"]["safety"]["active"]
        .as_str()
        .unwrap()
        .to_string();
    let extra = install(&gw, &guest("safety_extra_deny"), "safety", Some("extra")).await;
    const WORKERS: u32 = 16;
    const PER_WORKER: u32 = 125;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0..PER_WORKER {
                // Half the prompts carry the term: their answer depends on the safety version.
                let with_term = i % 2 == 0;
                let prompt = if with_term {
                    format!("a field {}, {TERM}", i % 10)
                } else {
                    format!("a field {}", i % 10)
                };
                let r = gw.generate(json!({ "prompt": prompt })).await;
                seen.push((w, i, with_term, r));
            }
            seen
        }));
    }
    let swapper = {
        let gw = gw.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut cycles = 0;
            while cycles < 20 || !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = admin(
                    &gw,
                    "/admin/policy/safety/activate",
                    json!({"ref": "extra"}),
                )
                .await;
                assert_eq!(r.status, 200, "{}", r.brief());
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let r = admin(&gw, "/admin/policy/safety/rollback", json!({})).await;
                assert_eq!(r.status, 200, "{}", r.brief());
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                cycles += 1;
                if cycles >= 200 {
                    break;
                }
            }
            cycles
        })
    };
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let cycles = swapper.await.unwrap();
    assert!(cycles >= 20, "{cycles} swap cycles");

    let lines: HashMap<String, String> = gw
        .request_lines()
        .into_iter()
        .filter_map(|l| field(&l, "request_id").map(|id| (id.to_string(), l.clone())))
        .collect();
    let (mut on_extra, mut on_embedded) = (0, 0);
    for (w, i, with_term, r) in &results {
        let versions = header_versions(r);
        let safety = versions["safety"].clone();
        let line = lines
            .get(&r.request_id())
            .unwrap_or_else(|| panic!("no log line for {}", r.request_id()));
        for slot in ["translator", "safety", "classifier"] {
            assert_eq!(
                line.matches(&format!(" {slot}=")).count(),
                1,
                "{slot} in {line}"
            );
            assert_eq!(field(line, slot), Some(versions[slot].as_str()), "{line}");
        }
        if safety == extra[..8] {
            on_extra += 1;
        } else {
            assert_eq!(safety, embedded[..8], "worker {w} request {i}");
            on_embedded += 1;
        }
        match (with_term, safety == extra[..8]) {
            (true, true) => {
                r.error(400, "IMG_SAFETY_BLOCKED");
            }
            _ => {
                assert_eq!(r.status, 200, "worker {w} request {i}: {}", r.brief());
            }
        }
    }
    assert_eq!(results.len(), (WORKERS * PER_WORKER) as usize);
    assert!(
        on_extra > 0 && on_embedded > 0,
        "{on_extra} / {on_embedded}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_counts_disagreements_without_changing_responses() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    let sha = install(gw, &guest("safety_extra_deny"), "safety", None).await;
    let out = gw.cli(&["policy", "shadow", "safety", &sha[..8]]).await;
    assert!(out.ok, "{out:?}");
    for i in 0..3 {
        let r = gw
            .generate(json!({ "prompt": format!("a hill {i}, {TERM}") }))
            .await;
        r.ok();
        // The active version served it.
        assert_ne!(header_versions(&r)["safety"], &sha[..8]);
    }
    gw.generate(json!({"prompt": "a hill"})).await.ok();
    let listed = list(gw).await;
    let candidate = listed["slots"]["safety"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["sha256"] == sha.as_str())
        .cloned()
        .unwrap();
    assert_eq!(candidate["role"], "candidate", "{listed:#}");
    assert_eq!(candidate["stats"]["disagreements"], 3, "{candidate:#}");
    assert_eq!(candidate["stats"]["shadow_calls"], 4, "{candidate:#}");
    let log = gw.log();
    let disagreements: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Shadow disagreement"))
        .collect();
    assert_eq!(disagreements.len(), 3, "{log}");
    for l in disagreements {
        assert!(!l.contains("a hill"), "prompt text logged: {l}");
        assert!(
            l.contains("request_id=") && l.contains("slot=safety"),
            "{l}"
        );
    }
    let out = gw.cli(&["policy", "abort", "safety"]).await;
    assert!(out.ok, "{out:?}");
    assert_eq!(list(gw).await["slots"]["safety"]["candidate"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_canary_aborts_itself_and_no_client_sees_a_failure() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    let sha = install(gw, &guest("translator_trap"), "translator", None).await;
    let out = gw
        .cli(&[
            "policy",
            "canary",
            "translator",
            &sha[..8],
            "--percent",
            "50",
        ])
        .await;
    assert!(out.ok, "{out:?}");
    for i in 0..20 {
        let r = gw
            .generate(json!({ "prompt": format!("a fox {i}, trap-me") }))
            .await;
        r.ok();
    }
    let listed = list(gw).await;
    assert_eq!(
        listed["slots"]["translator"]["candidate"],
        Value::Null,
        "{listed:#}"
    );
    let version = listed["slots"]["translator"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["sha256"] == sha.as_str())
        .cloned()
        .unwrap();
    assert_eq!(version["state"], "failed", "{version:#}");
    assert_eq!(version["stats"]["traps"], 1, "{version:#}");
    let out = gw.cli(&["policy", "history", "translator"]).await;
    let aborted = out
        .stdout
        .lines()
        .find(|l| l.contains("aborted"))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(aborted.contains("automatic"), "{aborted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_active_and_candidate_versions() {
    let s = Setup::simple().await;
    let extra = install(&s.gw, &guest("safety_extra_deny"), "safety", None).await;
    let ns = install(&s.gw, &guest("translator_namespace"), "translator", None).await;
    assert!(s.gw.cli(&["policy", "activate", "safety", &extra]).await.ok);
    let out =
        s.gw.cli(&["policy", "canary", "translator", &ns, "--percent", "30"])
            .await;
    assert!(out.ok, "{out:?}");
    let before = list(&s.gw).await;
    let Setup { emu, gw, dir } = s;
    gw.stop().await;
    let gw = Gateway::start(dir.path(), Launch::to(&emu)).await;
    let after = list(&gw).await;
    for slot in ["translator", "safety", "classifier"] {
        for key in ["active", "candidate", "previous"] {
            assert_eq!(
                after["slots"][slot][key], before["slots"][slot][key],
                "{slot} {key}"
            );
        }
    }
    assert_eq!(after["slots"]["translator"]["candidate"]["percent"], 30);
    let r = gw
        .generate(json!({ "prompt": format!("a bay, {TERM}") }))
        .await;
    r.error(400, "IMG_SAFETY_BLOCKED");
    drop(emu);
}
