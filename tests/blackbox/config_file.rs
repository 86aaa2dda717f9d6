//! Start-up configuration as an operator meets it: a config file and environment
//! with several mistakes are refused with every mistake named at once.

use crate::harness::*;

/// Found by the `config` fuzz target: the file's problems stopped at the first one,
/// and the environment's were not reported until the file was fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_setting_of_file_and_environment_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "mystery = 1\n[cache]\nmax_size = 3\nttl_seconds = \"soon\"\n[upstream]\nretries = 4\n",
    )
    .unwrap();
    let data_dir = dir.path().join("data");
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .arg("--config")
            .arg(&config);
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if ["APERTURE_", "CACHE_", "GEMINI_"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                cmd.env_remove(&k);
            }
        }
        cmd.env("APERTURE_API_KEY", API_KEY)
            .env("GEMINI_IMAGE_SAFETY_THRESHOLD", "EXTREME")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for name in [
        "mystery",
        "cache.max_size",
        "cache.ttl_seconds",
        "upstream.retries",
        "EXTREME",
    ] {
        assert!(stderr.contains(name), "{name} not named: {stderr}");
    }
    assert!(stderr.contains("5 problem(s)"), "{stderr}");
}
