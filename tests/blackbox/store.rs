//! The store from outside: damaged files refuse to start with advice (and `aperture store repair`),
//! the lock message only for a lock, private files, secrets encrypted at rest (migration, wrong key,
//! rotation), backup while serving and offline restore, and a full disk survived without a restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aperture_emulator::QuotaWindow;
use serde_json::json;

use crate::harness::{emulator, Gateway, Launch, Setup, ADMIN_KEY, API_KEY, BIN};

const KEY_1: &str = "5f1e0c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
const KEY_2: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SECRET: &str = "bb-gemini-key-1";

/// What a finished `aperture …` run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Run `aperture ARGS` with only `env` (no inherited APERTURE_*), `stdin` piped in; waits up to 120 s.
async fn aperture(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(BIN);
        cmd.args(&args);
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if ["APERTURE_", "CACHE_", "GEMINI_"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                cmd.env_remove(&k);
            }
        }
        cmd.envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning aperture");
        {
            use std::io::Write;
            let mut pipe = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                pipe.write_all(s.as_bytes()).unwrap();
            }
        }
        // A gateway that wrongly starts would run forever: bound the wait.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// `aperture serve` on `dir` against `upstream`, expected to refuse to start.
async fn serve_refused(dir: &Path, upstream: &str, env: &[(&str, &str)]) -> Run {
    let dir = dir.display().to_string();
    let mut all = vec![
        ("APERTURE_API_KEY", API_KEY),
        ("APERTURE_ADMIN_KEY", ADMIN_KEY),
        ("APERTURE_UPSTREAM_URL", upstream),
    ];
    all.extend_from_slice(env);
    let run = aperture(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", &dir],
        &all,
        None,
    )
    .await;
    assert!(
        !run.stdout.contains("Proxy server started"),
        "it started: {}",
        run.all()
    );
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(run.code.is_some(), "killed after hanging: {}", run.all());
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("backtrace"),
        "no panic: {}",
        run.stderr
    );
    run
}

/// A data dir holding a store with one account and a cached image, the gateway stopped.
async fn stopped_store(emu_url: &str, dir: &Path, env: &[(&str, &str)]) {
    let mut launch = Launch {
        upstream: Some(emu_url.to_string()),
        ..Launch::default()
    };
    for (k, v) in env {
        launch = launch.env(k, v);
    }
    let gw = Gateway::start(dir, launch).await;
    gw.add_account("a1", "a1@test.example", SECRET).await;
    gw.generate(json!({"prompt": "a lighthouse at dusk"}))
        .await
        .ok();
    gw.stop().await;
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("aperture.redb")
}

fn damage(path: &Path, how: &str) {
    let len = std::fs::metadata(path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    match how {
        "empty" => f.set_len(0).unwrap(),
        "4k" => f.set_len(4096).unwrap(),
        "half" => f.set_len(len / 2).unwrap(),
        "zeroed-middle" => {
            use std::os::unix::fs::FileExt;
            f.write_all_at(&vec![0; (len / 2) as usize], len / 4)
                .unwrap();
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn damaged_store_refuses_to_start_with_what_to_do() {
    let emu = emulator(&[SECRET]).await;
    let base = tempfile::tempdir().unwrap();
    let good = base.path().join("good");
    stopped_store(&emu.base_url(), &good, &[]).await;
    for how in ["empty", "4k", "half", "zeroed-middle"] {
        let dir = base.path().join(how);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(store_path(&good), store_path(&dir)).unwrap();
        damage(&store_path(&dir), how);
        let before = std::fs::read(store_path(&dir)).unwrap();
        let run = serve_refused(&dir, &emu.base_url(), &[]).await;
        let err = run.stderr;
        let file = store_path(&dir).display().to_string();
        assert!(
            err.contains(&format!("the store {file} is damaged")),
            "{how}: {err}"
        );
        assert!(err.contains("aperture store restore"), "{how}: {err}");
        assert!(err.contains("aperture store repair"), "{how}: {err}");
        assert!(
            !err.contains("another aperture"),
            "{how}: not a lock: {err}"
        );
        assert_eq!(
            std::fs::read(store_path(&dir)).unwrap(),
            before,
            "{how}: the file is left as found"
        );
    }
}

#[tokio::test]
async fn repair_moves_an_unrecoverable_store_aside_and_the_gateway_starts() {
    let emu = emulator(&[SECRET]).await;
    let dir = tempfile::tempdir().unwrap();
    stopped_store(&emu.base_url(), dir.path(), &[]).await;
    let d = dir.path().display().to_string();
    let run = aperture(&["store", "repair", "--data-dir", &d], &[], None).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout.contains("is intact: 1 account(s)"),
        "{}",
        run.all()
    );

    damage(&store_path(dir.path()), "half");
    let run = aperture(&["store", "repair", "--data-dir", &d], &[], None).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout.contains("could not be repaired"),
        "{}",
        run.all()
    );
    let aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("aperture.redb.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        run.stdout.contains(&aside[0]),
        "names where it went: {}",
        run.stdout
    );
    let gw = Gateway::start(dir.path(), Launch::to(&emu)).await;
    assert!(gw.list_accounts().await.0.is_empty());
}

#[tokio::test]
async fn the_lock_message_is_given_only_for_a_lock() {
    let s = Setup::simple().await;
    let run = serve_refused(&s.gw.data_dir, &s.emu.base_url(), &[]).await;
    assert!(run.stderr.contains("another aperture"), "{}", run.stderr);
    assert!(!run.stderr.contains("damaged"), "{}", run.stderr);
}

#[cfg(unix)]
#[tokio::test]
async fn data_dir_and_store_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let emu = emulator(&[SECRET]).await;
    let base = tempfile::tempdir().unwrap();
    let fresh = base.path().join("fresh");
    let gw = Gateway::start(&fresh, Launch::to(&emu)).await;
    assert_eq!(mode(&store_path(&fresh)), 0o600);
    gw.stop().await;
    // Existing lax permissions are tightened at start.
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(store_path(&fresh), std::fs::Permissions::from_mode(0o644)).unwrap();
    let gw = Gateway::start(&fresh, Launch::to(&emu)).await;
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&store_path(&fresh)), 0o600);
    assert!(gw.log().contains("permissions tightened"), "{}", gw.log());
}

fn file_holds(path: &Path, needle: &str) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_are_encrypted_at_rest_migrated_checked_and_rotated() {
    let emu = emulator(&[SECRET]).await;
    let dir = tempfile::tempdir().unwrap();
    // Without a key: plain, with a warning.
    let gw = Gateway::start(dir.path(), Launch::to(&emu)).await;
    gw.add_account("a1", "a1@test.example", SECRET).await;
    assert!(gw.log().contains("stored unencrypted"), "{}", gw.log());
    gw.stop().await;
    assert!(file_holds(&store_path(dir.path()), SECRET));

    // With a key: the plain secret is encrypted at start, and still works upstream.
    let gw = Gateway::start(
        dir.path(),
        Launch::to(&emu).env("APERTURE_SECRET_KEY", KEY_1),
    )
    .await;
    assert!(
        gw.log().contains("Encrypted 1 plain-text account secret"),
        "{}",
        gw.log()
    );
    gw.generate(json!({"prompt": "encrypted at rest"}))
        .await
        .ok();
    gw.stop().await;
    assert!(!file_holds(&store_path(dir.path()), SECRET));

    // A wrong key or none: a clear refusal, never garbage sent upstream.
    let calls = emu.calls();
    let run = serve_refused(
        dir.path(),
        &emu.base_url(),
        &[("APERTURE_SECRET_KEY", KEY_2)],
    )
    .await;
    assert!(
        run.stderr.contains("does not decrypt with this key"),
        "{}",
        run.stderr
    );
    let run = serve_refused(dir.path(), &emu.base_url(), &[]).await;
    assert!(
        run.stderr.contains("no secret key is set"),
        "{}",
        run.stderr
    );
    let run = serve_refused(
        dir.path(),
        &emu.base_url(),
        &[("APERTURE_SECRET_KEY", "0123")],
    )
    .await;
    assert!(
        run.stderr.contains("openssl rand -hex 32"),
        "{}",
        run.stderr
    );
    assert_eq!(emu.calls(), calls);

    // Rotation, offline: the new key from stdin.
    let d = dir.path().display().to_string();
    let run = aperture(
        &["store", "rotate-key", "--data-dir", &d],
        &[("APERTURE_SECRET_KEY", KEY_1)],
        Some(KEY_2),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout.contains("re-encrypted 1 account secret"),
        "{}",
        run.all()
    );
    serve_refused(
        dir.path(),
        &emu.base_url(),
        &[("APERTURE_SECRET_KEY", KEY_1)],
    )
    .await;
    // The key can also come from a file.
    let key_file = dir.path().join("secret.key");
    std::fs::write(&key_file, format!("{KEY_2}\n")).unwrap();
    let gw = Gateway::start(
        dir.path(),
        Launch::to(&emu).env("APERTURE_SECRET_KEY_FILE", &key_file.display().to_string()),
    )
    .await;
    gw.generate(json!({"prompt": "after rotation"})).await.ok();
}

#[tokio::test]
async fn backup_while_serving_and_restore_offline() {
    let s = Setup::simple().await;
    let first = s.gw.generate(json!({"prompt": "a cached harbour"})).await;
    first.ok();
    let base = tempfile::tempdir().unwrap();
    let full = base.path().join("full.redb");
    let lean = base.path().join("lean.redb");
    let full_s = full.display().to_string();
    let lean_s = lean.display().to_string();
    let out = s.gw.cli(&["store", "backup", &full_s]).await;
    assert!(out.ok, "{out:?}");
    assert!(out.stdout.contains("1 account(s)"), "{out:?}");
    assert!(out.stdout.contains("1 cache entries"), "{out:?}");
    let out = s.gw.cli(&["store", "backup", &lean_s, "--no-cache"]).await;
    assert!(out.ok && out.stdout.contains("0 cache entries"), "{out:?}");
    // An existing file is never overwritten.
    let out = s.gw.cli(&["store", "backup", &lean_s]).await;
    assert!(!out.ok && out.stderr.contains("already exists"), "{out:?}");

    // Restore refuses while the gateway runs.
    let d = s.gw.data_dir.display().to_string();
    let run = aperture(&["store", "restore", &full_s, "--data-dir", &d], &[], None).await;
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("stop it first"), "{}", run.all());

    // Lose the account, stop, restore the full backup.
    assert!(s.gw.accounts(&["remove", "a1"], None).await.ok);
    let dir = s.gw.data_dir.clone();
    let emu = s.emu;
    s.gw.stop().await;
    let run = aperture(&["store", "restore", &full_s, "--data-dir", &d], &[], None).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("kept as"), "{}", run.all());
    let gw = Gateway::start(&dir, Launch::to(&emu)).await;
    assert_eq!(gw.list_accounts().await.0.len(), 1);
    let again = gw.generate(json!({"prompt": "a cached harbour"})).await;
    again.ok();
    assert_eq!(again.cache(), "HIT", "the cache came back with the backup");
    gw.stop().await;

    // The lean backup restores accounts without the cache.
    let run = aperture(&["store", "restore", &lean_s, "--data-dir", &d], &[], None).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let gw = Gateway::start(&dir, Launch::to(&emu)).await;
    assert_eq!(gw.list_accounts().await.0.len(), 1);
    let again = gw.generate(json!({"prompt": "a cached harbour"})).await;
    again.ok();
    assert_eq!(again.cache(), "MISS");
}

/// Mounts a tmpfs of `mb` MB at `dir`; `None` (with the reason printed) where mounting is not allowed.
fn small_disk(dir: &Path, mb: u32) -> Option<Mounted> {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={mb}m,mode=0700"),
            "tmpfs",
        ])
        .arg(dir)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(Mounted(dir.to_path_buf())),
        Ok(o) => {
            eprintln!(
                "SKIPPED full-disk test: cannot mount a tmpfs ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("SKIPPED full-disk test: cannot run mount ({e})");
            None
        }
    }
}

struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `dir` with a file until ENOSPC.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test]
async fn a_full_disk_is_survived_without_a_restart() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("small");
    let Some(_mounted) = small_disk(&dir, 24) else {
        return;
    };
    let keys = ["bb-gemini-key-1", "bb-gemini-key-2", "bb-gemini-key-3"];
    let emu = emulator(&keys).await;
    let gw = Gateway::start(&dir, Launch::to(&emu)).await;
    for (i, k) in keys.iter().enumerate() {
        gw.add_account(
            &format!("a{}", i + 1),
            &format!("a{}@test.example", i + 1),
            k,
        )
        .await;
    }
    // Two of the three accounts are rate-limited upstream.
    emu.exhaust_key(keys[0], QuotaWindow::Minute);
    emu.exhaust_key(keys[1], QuotaWindow::Minute);

    let filler = dir.join("filler");
    fill(&filler);
    let calls = emu.calls();
    for i in 0..12 {
        gw.generate(json!({"prompt": format!("full disk {i}")}))
            .await
            .ok();
    }
    let made = emu.calls() - calls;
    // The cool-downs are remembered in memory: the two limited accounts are tried once each.
    assert!(made <= 14, "12 requests made {made} upstream calls");
    // Reads and the operator's read commands still work on the full disk. (A clear needs a few free pages:
    // on a disk with none left it fails until space is freed.)
    let out = gw.cli(&["cache", "stats"]).await;
    assert!(out.ok, "{out:?}");
    let (accounts, _) = gw.list_accounts().await;
    assert_eq!(accounts.len(), 3);
    let failures = gw.stderr().matches("Storage write failed").count();
    assert_eq!(failures, 1, "one clear line, not a flood:\n{}", gw.stderr());

    // Space again: writes work without a restart; the cache stores and serves again.
    std::fs::remove_file(&filler).unwrap();
    let out = gw.cli(&["cache", "clear"]).await;
    assert!(out.ok, "{out:?}");
    let r = gw
        .generate(json!({"prompt": "after the disk was freed"}))
        .await;
    r.ok();
    let mut hit = false;
    for _ in 0..50 {
        let again = gw
            .generate(json!({"prompt": "after the disk was freed"}))
            .await;
        again.ok();
        if again.cache() == "HIT" {
            hit = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(hit, "the cache works again; stderr:\n{}", gw.stderr());
    gw.stop().await;
}
