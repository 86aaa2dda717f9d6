//! Configuration in two stages (like ripgrep's low/high-level args): [`raw`] holds
//! what was written (file, then environment, then flags); [`Config::validate`]
//! checks all of it in one place and reports every bad setting at once.

pub mod limits;
pub mod observability;
pub mod raw;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use limits::{ClientLimits, ThresholdSet};
pub use raw::RawConfig;

use crate::policy::SafetyThreshold;

/// The default listen address (the runbook's port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8045";
/// The real Gemini API.
pub const DEFAULT_UPSTREAM: &str = "https://generativelanguage.googleapis.com";

/// The validated configuration the gateway runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where the store and logs live.
    pub data_dir: PathBuf,
    /// The upstream Gemini API.
    pub upstream: Upstream,
    /// The image cache.
    pub cache: Cache,
    /// Safety defaults.
    pub safety: Safety,
    /// The policy components.
    pub components: Components,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
    /// Client keys accepted in `Authorization: Bearer`.
    pub api_keys: Vec<String>,
    /// The admin key guarding `/admin/*`; without one the admin API is off.
    pub admin_key: Option<String>,
    /// The key account secrets are encrypted with at rest; without one they are stored plain.
    pub secret_key: Option<aperture_store::SecretKey>,
    /// Where the admin API listens when not on `listen` (then `/admin/*` is 404 there).
    pub admin_listen: Option<SocketAddr>,
    /// The limits of a client key that has none of its own.
    pub limits: ClientLimits,
    /// Throttling of failed authentication per client address.
    pub auth_throttle: AuthThrottle,
    /// `[metrics]`: `GET /metrics`.
    pub metrics: observability::Metrics,
    /// `[logs]`: rotation of the log file.
    pub logs: observability::Logs,
    /// `[pricing]`: per-image upstream prices.
    pub pricing: crate::pricing::Pricing,
    /// `server.trusted_proxies`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Failed authentications allowed per client address (see `auth_throttle.rs`).
#[derive(Debug, Clone, Copy)]
pub struct AuthThrottle {
    /// Failures per minute per address (a bucket of this many, refilled at this rate); 0 = off.
    pub failures_per_minute: u32,
    /// Addresses tracked at most (memory bound).
    pub max_tracked_addresses: usize,
}

/// Where Gemini is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `https://generativelanguage.googleapis.com` or an emulator's `http://` URL, no trailing slash.
    pub base_url: String,
    /// TCP + TLS connect budget.
    pub connect_timeout: Duration,
    /// Budget of one whole upstream call.
    pub request_timeout: Duration,
    /// Most upstream calls for one image (each on another account where possible).
    pub max_attempts: u32,
    /// Budget of one whole client request's upstream work (all `n` images, every
    /// retry); past it the client gets 504 `IMG_UPSTREAM_TIMEOUT`.
    pub request_deadline: Duration,
    /// Upstream calls in flight at once, across all requests.
    pub max_concurrent_calls: u32,
    /// Calls allowed to wait for one of those slots; past it requests are shed
    /// with 503 `IMG_OVERLOADED` and `Retry-After` instead of growing memory.
    pub max_queued_calls: u32,
}

/// Which cache store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheBackend {
    /// The redb file under the data dir (also accepted as `filesystem`).
    Redb,
    /// redb's in-memory backend: lost at exit.
    Memory,
    /// No caching.
    None,
}

impl CacheBackend {
    /// The name logged as `Cache backend: …`.
    pub fn name(self) -> &'static str {
        match self {
            CacheBackend::Redb => "redb",
            CacheBackend::Memory => "memory",
            CacheBackend::None => "none",
        }
    }
}

/// The image cache settings.
#[derive(Debug, Clone)]
pub struct Cache {
    /// Backend.
    pub backend: CacheBackend,
    /// Byte cap; least recently used entries are evicted past it.
    pub max_bytes: u64,
    /// Entry lifetime.
    pub ttl: Duration,
}

/// Safety defaults.
#[derive(Debug, Clone)]
pub struct Safety {
    /// Global threshold, overridden per request by `safety_threshold`.
    pub threshold: SafetyThreshold,
    /// Local deny-list terms.
    pub deny_list: Vec<String>,
}

/// Policy component sources and per-call limits.
#[derive(Debug, Clone)]
pub struct Components {
    /// Replacement `.wasm` files (embedded ones otherwise).
    pub sources: crate::policy::Sources,
    /// Per-call limits.
    pub limits: crate::policy::CallLimits,
    /// Canary and shadow limits (`[policy]`).
    pub rollout: crate::policy::Rollout,
}

/// Parse `OFF|LOW|MEDIUM|HIGH` (any case).
pub fn parse_threshold(s: &str) -> Option<SafetyThreshold> {
    match s.trim().to_ascii_uppercase().as_str() {
        "OFF" => Some(SafetyThreshold::Off),
        "LOW" => Some(SafetyThreshold::Low),
        "MEDIUM" => Some(SafetyThreshold::Medium),
        "HIGH" => Some(SafetyThreshold::High),
        _ => None,
    }
}

/// The name of a threshold as operators write it.
pub fn threshold_name(t: SafetyThreshold) -> &'static str {
    match t {
        SafetyThreshold::Off => "OFF",
        SafetyThreshold::Low => "LOW",
        SafetyThreshold::Medium => "MEDIUM",
        SafetyThreshold::High => "HIGH",
    }
}

impl Config {
    /// Check every setting; on failure, the list of all problems.
    pub fn validate(raw: RawConfig, mut errors: Vec<String>) -> Result<Config, Vec<String>> {
        let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            errors.push(format!(
                "listen {listen_text:?} is not an address like 127.0.0.1:8045"
            ));
            SocketAddr::from(([127, 0, 0, 1], 8045))
        });
        let data_dir = raw.data_dir.unwrap_or_else(default_data_dir);

        let base_url = raw
            .upstream
            .base_url
            .unwrap_or_else(|| DEFAULT_UPSTREAM.to_string());
        let base_url = base_url.trim_end_matches('/').to_string();
        match base_url.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
            _ => errors.push(format!(
                "upstream.base_url {base_url:?} must be an http:// or https:// URL"
            )),
        }
        let ms = |v: Option<u64>, default: u64, name: &str, errors: &mut Vec<String>| {
            let v = v.unwrap_or(default);
            if v == 0 {
                errors.push(format!("{name} must be greater than 0"));
            }
            Duration::from_millis(v)
        };
        let upstream = Upstream {
            base_url,
            connect_timeout: ms(
                raw.upstream.connect_timeout_ms,
                10_000,
                "upstream.connect_timeout_ms",
                &mut errors,
            ),
            request_timeout: ms(
                raw.upstream.request_timeout_ms,
                180_000,
                "upstream.request_timeout_ms",
                &mut errors,
            ),
            max_attempts: match raw.upstream.max_attempts.unwrap_or(3) {
                0 => {
                    errors.push("upstream.max_attempts must be at least 1".into());
                    1
                }
                n => n,
            },
            request_deadline: ms(
                raw.upstream.request_deadline_ms,
                300_000,
                "upstream.request_deadline_ms",
                &mut errors,
            ),
            max_concurrent_calls: match raw.upstream.max_concurrent_calls.unwrap_or(64) {
                0 => {
                    errors.push("upstream.max_concurrent_calls must be at least 1".into());
                    1
                }
                n => n,
            },
            max_queued_calls: raw.upstream.max_queued_calls.unwrap_or(256),
        };

        let backend = match raw
            .cache
            .backend
            .as_deref()
            .map(|s| s.trim().to_ascii_lowercase())
        {
            None => CacheBackend::Redb,
            Some(s) => match s.as_str() {
                "redb" | "filesystem" | "disk" => CacheBackend::Redb,
                "memory" => CacheBackend::Memory,
                "none" | "off" | "disabled" => CacheBackend::None,
                other => {
                    errors.push(format!("CACHE_BACKEND / cache.backend {other:?} must be redb (alias filesystem), memory or none"));
                    CacheBackend::None
                }
            },
        };
        let mb = raw.cache.max_size_mb.unwrap_or(500.0);
        if !(mb.is_finite() && mb > 0.0) {
            errors.push(format!("CACHE_MAX_SIZE_MB / cache.max_size_mb must be a positive number of megabytes, not {mb}"));
        }
        let ttl_seconds = raw.cache.ttl_seconds.unwrap_or(3600);
        if ttl_seconds == 0 {
            errors.push("CACHE_TTL_SECONDS / cache.ttl_seconds must be at least 1 (use CACHE_BACKEND=none to disable caching)".into());
        }
        let cache = Cache {
            backend,
            max_bytes: (mb.max(0.0) * 1024.0 * 1024.0) as u64,
            ttl: Duration::from_secs(ttl_seconds),
        };

        let threshold = match raw.safety.threshold.as_deref() {
            None => SafetyThreshold::Medium,
            Some(s) => parse_threshold(s).unwrap_or_else(|| {
                errors.push(format!("GEMINI_IMAGE_SAFETY_THRESHOLD / safety.threshold {s:?} must be OFF, LOW, MEDIUM or HIGH"));
                SafetyThreshold::Medium
            }),
        };
        let deny_list = raw
            .safety
            .deny_list
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .collect();

        let c = raw.components;
        for (name, path) in [
            ("translator", &c.translator),
            ("safety", &c.safety),
            ("classifier", &c.classifier),
        ] {
            if let Some(p) = path {
                if !p.is_file() {
                    errors.push(format!(
                        "components.{name} {} is not a readable file",
                        p.display()
                    ));
                }
            }
        }
        let defaults = crate::policy::CallLimits::default();
        let components = Components {
            sources: crate::policy::Sources {
                translator: c.translator,
                safety: c.safety,
                classifier: c.classifier,
            },
            limits: crate::policy::CallLimits {
                timeout: ms(
                    c.timeout_ms,
                    defaults.timeout.as_millis() as u64,
                    "components.timeout_ms",
                    &mut errors,
                ),
                max_memory_bytes: match c.max_memory_mb {
                    None => defaults.max_memory_bytes,
                    Some(n) if (1..=4096).contains(&n) => (n as usize) << 20,
                    Some(n) => {
                        errors.push(format!(
                            "components.max_memory_mb {n} must be between 1 and 4096"
                        ));
                        defaults.max_memory_bytes
                    }
                },
                ..defaults
            },
            rollout: rollout(&raw.policy, &mut errors),
        };

        let max_body_bytes = match raw.server.max_body_bytes.unwrap_or(1 << 20) {
            0 => {
                errors.push("server.max_body_bytes must be greater than 0".into());
                1 << 20
            }
            n => n as usize,
        };
        let body_timeout = ms(
            raw.server.body_timeout_ms,
            30_000,
            "server.body_timeout_ms",
            &mut errors,
        );
        let api_keys: Vec<String> = raw.auth.api_keys.unwrap_or_default();
        if let Some(short) = api_keys.iter().find(|k| k.len() < 8) {
            errors.push(format!(
                "client API keys must be at least 8 characters ({} is too short)",
                short.len()
            ));
        }
        let admin_key = raw.auth.admin_key.filter(|k| !k.is_empty());
        if admin_key.as_ref().is_some_and(|k| k.len() < 8) {
            errors.push("APERTURE_ADMIN_KEY must be at least 8 characters".into());
        }

        if let Some(admin) = &admin_key {
            if api_keys.iter().any(|k| k == admin) {
                errors.push("APERTURE_ADMIN_KEY must differ from every client key in APERTURE_API_KEY / auth.api_keys: the admin key is refused as a client key".into());
            }
        }
        let admin_listen = raw.admin_listen.as_deref().and_then(|text| {
            match text.parse::<SocketAddr>() {
                Ok(addr) if addr == listen && addr.port() != 0 => {
                    errors.push(format!("admin_listen {text:?} is the same address as listen; pick another port, or leave admin_listen unset to serve /admin/* on listen"));
                    None
                }
                Ok(addr) => Some(addr),
                Err(_) => {
                    errors.push(format!(
                        "APERTURE_ADMIN_LISTEN / admin_listen {text:?} is not an address like 127.0.0.1:8046"
                    ));
                    None
                }
            }
        });
        let d = ClientLimits::DEFAULT;
        let allowed_thresholds = match &raw.limits.allowed_thresholds {
            None => d.allowed_thresholds,
            Some(names) => ThresholdSet::parse(names).unwrap_or_else(|e| {
                errors.push(format!(
                    "APERTURE_LIMIT_ALLOWED_THRESHOLDS / limits.allowed_thresholds: {e}"
                ));
                d.allowed_thresholds
            }),
        };
        let limits = ClientLimits {
            rpm: raw.limits.rpm.unwrap_or(d.rpm),
            images_per_day: raw.limits.images_per_day.unwrap_or(d.images_per_day),
            max_concurrent: raw.limits.max_concurrent.unwrap_or(d.max_concurrent),
            allowed_thresholds,
        };
        let auth_throttle = AuthThrottle {
            failures_per_minute: raw.auth.failures_per_minute.unwrap_or(10),
            max_tracked_addresses: match raw.auth.max_tracked_addresses.unwrap_or(10_000) {
                0 => {
                    errors.push("auth.max_tracked_addresses must be at least 1".into());
                    1
                }
                n => n as usize,
            },
        };
        let secret_key = secret_key(raw.store, &mut errors);
        let metrics = observability::metrics(
            raw.metrics,
            admin_listen.is_some(),
            admin_key.is_some(),
            &mut errors,
        );
        let logs = observability::logs(raw.logs, &mut errors);
        let pricing = observability::pricing(&raw.pricing, &mut errors);
        let trusted_proxies =
            observability::trusted_proxies(raw.server.trusted_proxies, &mut errors);

        if errors.is_empty() {
            Ok(Config {
                listen,
                data_dir,
                upstream,
                cache,
                safety: Safety {
                    threshold,
                    deny_list,
                },
                components,
                max_body_bytes,
                body_timeout,
                api_keys,
                admin_key,
                admin_listen,
                limits,
                auth_throttle,
                secret_key,
                metrics,
                logs,
                pricing,
                trusted_proxies,
            })
        } else {
            Err(errors)
        }
    }
}

/// `[policy]`: the canary and shadow limits.
fn rollout(raw: &raw::RawPolicy, errors: &mut Vec<String>) -> crate::policy::Rollout {
    let d = crate::policy::Rollout::default();
    let margin = match raw.canary_abort_margin_percent {
        None => d.abort_failure_margin,
        Some(m) if (0.0..=100.0).contains(&m) => m / 100.0,
        Some(m) => {
            errors.push(format!(
                "policy.canary_abort_margin_percent {m} must be between 0 and 100"
            ));
            d.abort_failure_margin
        }
    };
    crate::policy::Rollout {
        abort_after_failures: raw
            .canary_abort_after_failures
            .unwrap_or(d.abort_after_failures),
        abort_failure_margin: margin,
        min_calls_for_share: raw.canary_min_calls.unwrap_or(d.min_calls_for_share),
        log_disagreements: raw.shadow_log_disagreements.unwrap_or(d.log_disagreements),
    }
}

/// The secret key from `APERTURE_SECRET_KEY` or `store.secret_key_file` (not both).
fn secret_key(raw: raw::RawStore, errors: &mut Vec<String>) -> Option<aperture_store::SecretKey> {
    let text = match (raw.secret_key, raw.secret_key_file) {
        (Some(_), Some(_)) => {
            errors.push("set APERTURE_SECRET_KEY or store.secret_key_file (APERTURE_SECRET_KEY_FILE, --secret-key-file), not both".into());
            return None;
        }
        (Some(key), None) => ("APERTURE_SECRET_KEY".to_string(), key),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(text) => (format!("store.secret_key_file {}", path.display()), text),
            Err(e) => {
                errors.push(format!(
                    "store.secret_key_file {} cannot be read: {e}",
                    path.display()
                ));
                return None;
            }
        },
        (None, None) => return None,
    };
    let (source, text) = text;
    match aperture_store::SecretKey::parse(&text) {
        Ok(key) => Some(key),
        Err(e) => {
            errors.push(format!("{source}: {e}"));
            None
        }
    }
}

/// `$HOME/.aperture`, or `./aperture-data` without a home.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".aperture"))
        .unwrap_or_else(|| PathBuf::from("aperture-data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn runbook_environment_variables_are_honoured() {
        let mut raw = RawConfig::default();
        let mut errors = vec![];
        raw.apply_env(
            env(&[
                ("GEMINI_IMAGE_SAFETY_THRESHOLD", "low"),
                ("CACHE_BACKEND", "filesystem"),
                ("CACHE_MAX_SIZE_MB", "50"),
                ("CACHE_TTL_SECONDS", "1800"),
            ]),
            &mut errors,
        );
        let c = Config::validate(raw, errors).unwrap();
        assert_eq!(c.safety.threshold, SafetyThreshold::Low);
        assert_eq!(c.cache.backend, CacheBackend::Redb);
        assert_eq!(c.cache.max_bytes, 50 << 20);
        assert_eq!(c.cache.ttl, Duration::from_secs(1800));
    }

    #[test]
    fn every_bad_setting_is_reported_at_once() {
        let mut raw =
            RawConfig::from_toml("listen = \"nowhere\"\n[cache]\nbackend = \"floppy\"\n").unwrap();
        let mut errors = vec![];
        raw.apply_env(
            env(&[
                ("GEMINI_IMAGE_SAFETY_THRESHOLD", "EXTREME"),
                ("CACHE_TTL_SECONDS", "soon"),
            ]),
            &mut errors,
        );
        let errs = Config::validate(raw, errors).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs.iter().any(|e| e.contains("EXTREME")));
        assert!(errs.iter().any(|e| e.contains("floppy")));
        assert!(errs.iter().any(|e| e.contains("nowhere")));
        assert!(errs.iter().any(|e| e.contains("soon")));
    }

    /// Fuzzing (`fuzz/fuzz_targets/config.rs`) found that the file's problems stopped at
    /// the first one: an unknown key hid a second unknown key and a wrongly typed one.
    #[test]
    fn every_bad_key_of_the_file_is_reported_with_the_environment_problems() {
        let (mut raw, mut errors) = RawConfig::from_toml_all(
            "listen = 5\nmystery = true\n[cache]\nmax_size = 3\nttl_seconds = -1\nbackend = \"memory\"\n\
             [upstream]\nmax_attempts = 2\nretries = 4\n[nowhere]\nx = 1\n",
        );
        raw.apply_env(env(&[("CACHE_TTL_SECONDS", "soon")]), &mut errors);
        let errs = Config::validate(raw, errors).unwrap_err();
        for name in [
            "listen",
            "mystery",
            "cache.max_size",
            "cache.ttl_seconds",
            "upstream.retries",
            "nowhere",
            "CACHE_TTL_SECONDS",
        ] {
            assert!(errs.iter().any(|e| e.contains(name)), "{name}: {errs:#?}");
        }
        assert_eq!(errs.len(), 7, "{errs:#?}");
        // The good keys were kept.
        let (raw, errors) = RawConfig::from_toml_all("[cache]\nbackend = \"memory\"\nbogus = 1\n");
        assert_eq!(raw.cache.backend.as_deref(), Some("memory"));
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn a_file_that_is_not_toml_is_one_problem() {
        let (_, errors) = RawConfig::from_toml_all("[cache\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn client_limits_and_admin_listen_are_read_and_checked() {
        let mut raw = RawConfig::from_toml(
            "admin_listen = \"127.0.0.1:9000\"\n[limits]\nrpm = 60\nallowed_thresholds = [\"medium\", \"HIGH\"]\n[auth]\nfailures_per_minute = 3\n",
        )
        .unwrap();
        let mut errors = vec![];
        raw.apply_env(
            env(&[
                ("APERTURE_LIMIT_IMAGES_PER_DAY", "500"),
                ("APERTURE_LIMIT_MAX_CONCURRENT", "4"),
            ]),
            &mut errors,
        );
        let c = Config::validate(raw, errors).unwrap();
        assert_eq!(c.admin_listen, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(
            (
                c.limits.rpm,
                c.limits.images_per_day,
                c.limits.max_concurrent
            ),
            (60, 500, 4)
        );
        assert_eq!(c.limits.allowed_thresholds.names(), ["MEDIUM", "HIGH"]);
        assert_eq!(c.auth_throttle.failures_per_minute, 3);

        let d = Config::validate(RawConfig::default(), vec![]).unwrap();
        assert_eq!(d.limits, ClientLimits::DEFAULT);
        assert_eq!(d.admin_listen, None);

        let mut raw = RawConfig::from_toml(
            "listen = \"127.0.0.1:8045\"\nadmin_listen = \"127.0.0.1:8045\"\n[limits]\nallowed_thresholds = []\n[auth]\napi_keys = [\"same-key-123\"]\nadmin_key = \"same-key-123\"\n",
        )
        .unwrap();
        let mut errors = vec![];
        raw.apply_env(env(&[("APERTURE_LIMIT_RPM", "lots")]), &mut errors);
        let errs = Config::validate(raw, errors).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs.iter().any(|e| e.contains("APERTURE_LIMIT_RPM")));
        assert!(errs.iter().any(|e| e.contains("same address")));
        assert!(errs.iter().any(|e| e.contains("allowed_thresholds")));
        assert!(errs.iter().any(|e| e.contains("must differ")));
    }

    #[test]
    fn secret_key_from_env_or_file_checked() {
        const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let mut raw = RawConfig::default();
        raw.apply_env(env(&[("APERTURE_SECRET_KEY", HEX)]), &mut vec![]);
        let c = Config::validate(raw, vec![]).unwrap();
        assert!(c.secret_key.is_some());
        assert!(
            !format!("{c:?}").contains("00112233"),
            "the key never shows in Debug"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret.key");
        std::fs::write(&file, format!("{HEX}\n")).unwrap();
        let toml = format!(
            "[store]\nsecret_key_file = {:?}\n",
            file.display().to_string()
        );
        let c = Config::validate(RawConfig::from_toml(&toml).unwrap(), vec![]).unwrap();
        assert!(c.secret_key.is_some());

        let mut raw = RawConfig::default();
        raw.apply_env(env(&[("APERTURE_SECRET_KEY", "too-short")]), &mut vec![]);
        let errs = Config::validate(raw, vec![]).unwrap_err();
        assert!(
            errs[0].contains("APERTURE_SECRET_KEY") && errs[0].contains("openssl rand -hex 32"),
            "{errs:?}"
        );
        assert!(
            !errs[0].contains("too-short"),
            "the key is not echoed: {errs:?}"
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected() {
        let err = RawConfig::from_toml("[cache]\nmax_size = 3\n").unwrap_err();
        assert!(err.contains("max_size"), "{err}");
    }
}
