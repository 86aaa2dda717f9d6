//! Live configuration: `SIGHUP` and `POST /admin/config/reload` (`aperture config reload`)
//! re-read the config file and the environment through the same two stages as start-up
//! ([`ConfigSource::read`], then `Config::validate`) and apply what can change live
//! ([`crate::live::LiveSettings`]). All or nothing: a configuration with any problem is
//! refused with every problem named, and the running one stays. Settings that differ
//! from the running ones but need a restart are named in the answer and the log.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use crate::app::App;
use crate::cli::ServeArgs;
use crate::config::{Config, RawConfig};
use crate::live::LiveSettings;

/// Where the configuration comes from: the file and flags of `aperture serve`, the
/// environment, and what demo mode settled at start (kept across reloads).
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config`.
    pub file: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--admin-listen`.
    pub admin_listen: Option<String>,
    /// `--secret-key-file`.
    pub secret_key_file: Option<PathBuf>,
    /// `--demo`: the emulator and the keys it was started with.
    pub demo: Option<DemoSettings>,
}

/// What demo mode fills in when the configuration leaves it out.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// The embedded emulator's URL (always used).
    pub base_url: String,
    /// The data dir when none is configured.
    pub data_dir: PathBuf,
    /// The client key when none is configured.
    pub api_key: String,
    /// The admin key when none is configured.
    pub admin_key: String,
}

impl DemoSettings {
    /// Fill in `raw`; returns whether the generated client key and admin key are used.
    pub fn apply(&self, raw: &mut RawConfig) -> (bool, bool) {
        raw.upstream.base_url = Some(self.base_url.clone());
        if raw.data_dir.is_none() {
            raw.data_dir = Some(self.data_dir.clone());
        }
        let api_key = raw.auth.api_keys.as_ref().is_none_or(|k| k.is_empty());
        if api_key {
            raw.auth.api_keys = Some(vec![self.api_key.clone()]);
        }
        let admin_key = raw.auth.admin_key.is_none();
        if admin_key {
            raw.auth.admin_key = Some(self.admin_key.clone());
        }
        (api_key, admin_key)
    }
}

impl ConfigSource {
    /// The sources named by `aperture serve`'s flags (demo mode is added once started).
    pub fn from_args(args: &ServeArgs) -> ConfigSource {
        ConfigSource {
            file: args.config.clone(),
            listen: args.listen.clone(),
            data_dir: args.data_dir.clone(),
            admin_listen: args.admin_listen.clone(),
            secret_key_file: args.secret_key_file.clone(),
            demo: None,
        }
    }

    /// Stage one: the file, then the environment, then the flags (later wins), then
    /// demo mode's settings. Every problem found so far is returned with the settings.
    pub fn read(&self) -> (RawConfig, Vec<String>) {
        self.read_with(|k| std::env::var(k).ok())
    }

    /// [`ConfigSource::read`] with `env` as the environment (tests).
    pub fn read_with(&self, env: impl Fn(&str) -> Option<String>) -> (RawConfig, Vec<String>) {
        let (mut raw, mut errors) = match &self.file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => {
                    let (raw, problems) = RawConfig::from_toml_all(&text);
                    let problems = problems
                        .into_iter()
                        .map(|p| format!("config file {}: {p}", path.display()))
                        .collect();
                    (raw, problems)
                }
                Err(e) => (
                    RawConfig::default(),
                    vec![format!("reading config file {}: {e}", path.display())],
                ),
            },
            None => (RawConfig::default(), Vec::new()),
        };
        raw.apply_env(env, &mut errors);
        if let Some(listen) = &self.listen {
            raw.listen = Some(listen.clone());
        }
        if let Some(dir) = &self.data_dir {
            raw.data_dir = Some(dir.clone());
        }
        if let Some(admin_listen) = &self.admin_listen {
            raw.admin_listen = Some(admin_listen.clone());
        }
        if let Some(file) = &self.secret_key_file {
            raw.store.secret_key_file = Some(file.clone());
            raw.store.secret_key = None;
        }
        if let Some(demo) = &self.demo {
            demo.apply(&mut raw);
        }
        (raw, errors)
    }
}

/// The reload state of a running gateway.
#[derive(Default)]
pub struct Reloader {
    source: OnceLock<ConfigSource>,
    /// One reload at a time, so each one is applied whole.
    running: Mutex<()>,
}

impl Reloader {
    /// Remember where the running configuration came from (once, at start).
    pub fn install(&self, source: ConfigSource) {
        let _ = self.source.set(source);
    }
}

/// What a successful reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// Live settings whose value changed, now in force for every new request.
    pub applied: Vec<&'static str>,
    /// Settings whose value in the file or environment differs from the running one
    /// but that take effect only after a restart.
    pub restart_required: Vec<&'static str>,
}

/// Why a reload was refused (the running configuration is unchanged).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The configuration has problems; each is named.
    #[error("the configuration has {} problem(s); the running configuration is unchanged: {}", .0.len(), .0.join("; "))]
    Invalid(Vec<String>),
    /// The gateway was not started by `aperture serve` (nothing to re-read).
    #[error("this gateway has no configuration source to re-read")]
    NoSource,
}

/// Re-read the configuration and apply its live settings. Blocking (reads files):
/// call it on a blocking thread. `trigger` is logged (`SIGHUP`, `admin API`).
pub fn reload(app: &App, trigger: &'static str) -> Result<ReloadReport, ReloadError> {
    let _one = app
        .reloader
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let result = app
        .reloader
        .source
        .get()
        .ok_or(ReloadError::NoSource)
        .and_then(|source| {
            let (raw, errors) = source.read();
            Config::validate(raw, errors).map_err(ReloadError::Invalid)
        });
    let next = match result {
        Ok(next) => next,
        Err(e) => {
            let problems = match &e {
                ReloadError::Invalid(p) => p.clone(),
                other => vec![other.to_string()],
            };
            tracing::error!(
                trigger,
                ?problems,
                "Configuration reload refused; the running configuration is unchanged"
            );
            return Err(e);
        }
    };
    let live = LiveSettings::from_config(&next);
    let mut applied = app.live.load().changes(&live);
    // The canary and shadow limits live in the policy host (a canary checks them on every call).
    if app.policies.rollout() != next.components.rollout {
        app.policies.set_rollout(next.components.rollout);
        applied.push("policy");
    }
    let restart_required = restart_required(&app.config, &next);
    if let Some(cache) = &app.cache {
        cache.set_limits(live.cache);
    }
    // Hot copies carry the expiry of the TTL they were stored under: a new TTL or cap drops them
    // (the next hits refill them from the store, under the new limits).
    if applied
        .iter()
        .any(|a| *a == "cache.ttl_seconds" || *a == "cache.max_size_mb")
    {
        if let Some(hot) = &app.hot {
            aperture_store::CacheObserver::clearing(hot.as_ref());
        }
    }
    app.gemini
        .set_request_timeout(live.upstream_request_timeout);
    app.live.store(Arc::new(live));
    tracing::info!(
        trigger,
        ?applied,
        ?restart_required,
        "Configuration reloaded"
    );
    if !restart_required.is_empty() {
        tracing::warn!(
            settings = ?restart_required,
            "Configuration reload: these settings changed but take effect only after a restart"
        );
    }
    Ok(ReloadReport {
        applied,
        restart_required,
    })
}

/// The settings (named as in the config file) that differ between the running
/// configuration and `next` and that only a restart applies.
pub fn restart_required(running: &Config, next: &Config) -> Vec<&'static str> {
    let (a, b) = (running, next);
    let (ca, cb) = (&a.components, &b.components);
    [
        ("listen", a.listen != b.listen),
        ("data_dir", a.data_dir != b.data_dir),
        ("admin_listen", a.admin_listen != b.admin_listen),
        (
            "upstream.base_url",
            a.upstream.base_url != b.upstream.base_url,
        ),
        (
            "upstream.connect_timeout_ms",
            a.upstream.connect_timeout != b.upstream.connect_timeout,
        ),
        (
            "upstream.max_attempts",
            a.upstream.max_attempts != b.upstream.max_attempts,
        ),
        (
            "upstream.max_concurrent_calls",
            a.upstream.max_concurrent_calls != b.upstream.max_concurrent_calls,
        ),
        (
            "upstream.max_queued_calls",
            a.upstream.max_queued_calls != b.upstream.max_queued_calls,
        ),
        ("cache.backend", a.cache.backend != b.cache.backend),
        (
            "components.translator",
            ca.sources.translator != cb.sources.translator,
        ),
        ("components.safety", ca.sources.safety != cb.sources.safety),
        (
            "components.classifier",
            ca.sources.classifier != cb.sources.classifier,
        ),
        (
            "components.timeout_ms",
            ca.limits.timeout != cb.limits.timeout,
        ),
        (
            "components.max_memory_mb",
            ca.limits.max_memory_bytes != cb.limits.max_memory_bytes,
        ),
        (
            "server.max_body_bytes",
            a.max_body_bytes != b.max_body_bytes,
        ),
        ("auth.api_keys", a.api_keys != b.api_keys),
        ("auth.admin_key", a.admin_key != b.admin_key),
        (
            "auth.failures_per_minute",
            a.auth_throttle.failures_per_minute != b.auth_throttle.failures_per_minute,
        ),
        (
            "auth.max_tracked_addresses",
            a.auth_throttle.max_tracked_addresses != b.auth_throttle.max_tracked_addresses,
        ),
        ("limits", a.limits != b.limits),
        ("store.secret_key", a.secret_key != b.secret_key),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

/// Reload on every `SIGHUP` for as long as the gateway runs. The handler is in place
/// when this returns (call it before announcing the start: an unhandled `SIGHUP` ends
/// the process).
pub fn spawn_sighup(app: Arc<App>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(hup) => hup,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; reload with `aperture config reload`");
                return;
            }
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let app = app.clone();
                // The outcome is logged by `reload`.
                let _ = tokio::task::spawn_blocking(move || reload(&app, "SIGHUP")).await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = app;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(source: &ConfigSource) -> Config {
        let (raw, errors) = source.read_with(|_| None);
        Config::validate(raw, errors).expect("valid configuration")
    }

    #[test]
    fn demo_settings_and_flags_are_read_again_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("aperture.toml");
        std::fs::write(&file, "[safety]\ndeny_list = [\"a\"]\n").unwrap();
        let source = ConfigSource {
            file: Some(file.clone()),
            listen: Some("127.0.0.1:0".into()),
            demo: Some(DemoSettings {
                base_url: "http://127.0.0.1:9".into(),
                data_dir: dir.path().join("demo"),
                api_key: "demo-client-key".into(),
                admin_key: "demo-admin-key".into(),
            }),
            ..ConfigSource::default()
        };
        let first = validated(&source);
        assert_eq!(first.upstream.base_url, "http://127.0.0.1:9");
        assert_eq!(first.api_keys, ["demo-client-key"]);
        std::fs::write(
            &file,
            "[safety]\ndeny_list = [\"b\"]\nthreshold = \"high\"\n[upstream]\nmax_attempts = 9\n",
        )
        .unwrap();
        let second = validated(&source);
        assert_eq!(restart_required(&first, &second), ["upstream.max_attempts"]);
        let (before, after) = (
            LiveSettings::from_config(&first),
            LiveSettings::from_config(&second),
        );
        assert_eq!(
            before.changes(&after),
            ["safety.threshold", "safety.deny_list"]
        );
        assert!(after.changes(&after).is_empty());
    }

    #[test]
    fn an_unreadable_file_is_a_problem_not_a_panic() {
        let source = ConfigSource {
            file: Some("/nonexistent/aperture.toml".into()),
            ..ConfigSource::default()
        };
        let (_, errors) = source.read_with(|_| None);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("/nonexistent/aperture.toml"),
            "{errors:?}"
        );
    }
}
