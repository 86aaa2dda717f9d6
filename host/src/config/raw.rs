//! Stage one of configuration: the settings as written, from the TOML file, the
//! environment and the command line (later wins). Nothing is checked here except
//! that the file parses and names only known keys.

use std::path::PathBuf;

use serde::Deserialize;

/// Every setting, each optional, exactly as an operator can write it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `listen = "127.0.0.1:8045"`.
    pub listen: Option<String>,
    /// `data_dir = "/var/lib/aperture"`.
    pub data_dir: Option<PathBuf>,
    /// `admin_listen = "127.0.0.1:8046"`: serve `/admin/*` there only.
    pub admin_listen: Option<String>,
    /// `[upstream]`.
    #[serde(default)]
    pub upstream: RawUpstream,
    /// `[cache]`.
    #[serde(default)]
    pub cache: RawCache,
    /// `[safety]`.
    #[serde(default)]
    pub safety: RawSafety,
    /// `[components]`.
    #[serde(default)]
    pub components: RawComponents,
    /// `[server]`.
    #[serde(default)]
    pub server: RawServer,
    /// `[auth]`.
    #[serde(default)]
    pub auth: RawAuth,
    /// `[limits]`.
    #[serde(default)]
    pub limits: RawLimits,
    /// `[store]`.
    #[serde(default)]
    pub store: RawStore,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: super::observability::RawMetrics,
    /// `[logs]`: rotation of `aperture.log`.
    #[serde(default)]
    pub logs: super::observability::RawLogs,
    /// `[pricing."MODEL"] SIZE = USD`: per-image upstream prices (see `crate::pricing`).
    #[serde(default)]
    pub pricing: std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>,
    /// `[policy]`.
    #[serde(default)]
    pub policy: RawPolicy,
}

/// `[policy]`: limits of canary and shadow rollouts (docs/policy.md).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub canary_abort_after_failures: Option<u64>,
    pub canary_abort_margin_percent: Option<f64>,
    pub canary_min_calls: Option<u64>,
    pub shadow_log_disagreements: Option<u64>,
}

/// `[limits]`: the defaults of every client key (a key's own limits, set with `aperture keys`, win).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub rpm: Option<u32>,
    pub images_per_day: Option<u32>,
    pub max_concurrent: Option<u32>,
    pub allowed_thresholds: Option<Vec<String>>,
}

/// `[store]`: the secret key account secrets are encrypted with (prefer a key file or the environment).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// A file holding the key (64 hex digits or base64 of 32 bytes).
    pub secret_key_file: Option<PathBuf>,
    /// The key itself; only from `APERTURE_SECRET_KEY`, never from the file.
    #[serde(skip)]
    pub secret_key: Option<String>,
}

/// `[upstream]`: where Gemini is and how long to wait for it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub base_url: Option<String>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    pub request_deadline_ms: Option<u64>,
    pub max_concurrent_calls: Option<u32>,
    pub max_queued_calls: Option<u32>,
}

/// `[cache]`: the runbook's CACHE_* settings.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    pub backend: Option<String>,
    pub max_size_mb: Option<f64>,
    pub ttl_seconds: Option<u64>,
}

/// `[safety]`: the global threshold and the local deny-list.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSafety {
    pub threshold: Option<String>,
    pub deny_list: Option<Vec<String>>,
}

/// `[components]`: replacement `.wasm` files and per-call limits.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComponents {
    pub translator: Option<PathBuf>,
    pub safety: Option<PathBuf>,
    pub classifier: Option<PathBuf>,
    pub timeout_ms: Option<u64>,
    pub max_memory_mb: Option<u64>,
}

/// `[server]`: request limits.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub max_body_bytes: Option<u64>,
    pub body_timeout_ms: Option<u64>,
    /// Peers whose `X-Forwarded-For` is believed (addresses or CIDR networks).
    pub trusted_proxies: Option<Vec<String>>,
}

/// `[auth]`: client keys and the admin key (prefer the environment for secrets).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub api_keys: Option<Vec<String>>,
    pub admin_key: Option<String>,
    pub failures_per_minute: Option<u32>,
    pub max_tracked_addresses: Option<u32>,
}

/// The message of a deserialization error without toml's trailing "in `section`" line
/// (the problem already starts with the key's path).
fn first_line(e: &toml::de::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

impl RawConfig {
    /// Parse a TOML file's text; the error lists every problem (see [`Self::from_toml_all`]).
    pub fn from_toml(text: &str) -> Result<RawConfig, String> {
        match RawConfig::from_toml_all(text) {
            (raw, problems) if problems.is_empty() => Ok(raw),
            (_, problems) => Err(problems.join("; ")),
        }
    }

    /// Parse a TOML file's text, reporting every unknown or wrongly typed key (not only the
    /// first), each as `section.key: what is wrong`. The settings that are fine are kept, so
    /// the environment's and the validation's problems can be reported with these at once.
    /// A file that is not TOML at all is one problem.
    pub fn from_toml_all(text: &str) -> (RawConfig, Vec<String>) {
        let root: toml::Table = match text.parse() {
            Ok(root) => root,
            Err(e) => {
                return (
                    RawConfig::default(),
                    vec![e.to_string().trim_end().to_string()],
                )
            }
        };
        let mut problems = Vec::new();
        let mut good = toml::Table::new();
        for (key, value) in root {
            let probe = |v: toml::Value| {
                let mut t = toml::Table::new();
                t.insert(key.clone(), v);
                t
            };
            match value {
                // A section: check each of its keys on its own.
                toml::Value::Table(section)
                    if probe(toml::Table::new().into())
                        .try_into::<RawConfig>()
                        .is_ok() =>
                {
                    let mut kept = toml::Table::new();
                    for (sub, v) in section {
                        let mut one = toml::Table::new();
                        one.insert(sub.clone(), v.clone());
                        match probe(one.into()).try_into::<RawConfig>() {
                            Ok(_) => {
                                kept.insert(sub, v);
                            }
                            Err(e) => problems.push(format!("{key}.{sub}: {}", first_line(&e))),
                        }
                    }
                    good.insert(key, kept.into());
                }
                value => match probe(value.clone()).try_into::<RawConfig>() {
                    Ok(_) => {
                        good.insert(key, value);
                    }
                    Err(e) => problems.push(format!("{key}: {}", first_line(&e))),
                },
            }
        }
        match good.try_into() {
            Ok(raw) => (raw, problems),
            Err(e) => {
                problems.push(first_line(&e));
                (RawConfig::default(), problems)
            }
        }
    }

    /// Overlay the environment (`lookup` is `std::env::var` outside tests).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) {
        let list = |s: String| {
            s.split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        };
        if let Some(v) = lookup("APERTURE_LISTEN") {
            self.listen = Some(v);
        }
        if let Some(v) = lookup("APERTURE_DATA_DIR") {
            self.data_dir = Some(v.into());
        }
        if let Some(v) = lookup("APERTURE_UPSTREAM_URL") {
            self.upstream.base_url = Some(v);
        }
        if let Some(v) = lookup("GEMINI_IMAGE_SAFETY_THRESHOLD") {
            self.safety.threshold = Some(v);
        }
        if let Some(v) = lookup("APERTURE_DENY_LIST") {
            self.safety.deny_list = Some(list(v));
        }
        if let Some(v) = lookup("CACHE_BACKEND") {
            self.cache.backend = Some(v);
        }
        if let Some(v) = lookup("CACHE_MAX_SIZE_MB") {
            match v.trim().parse::<f64>() {
                Ok(n) => self.cache.max_size_mb = Some(n),
                Err(_) => errors.push(format!(
                    "CACHE_MAX_SIZE_MB={v:?} is not a number of megabytes (e.g. 500)"
                )),
            }
        }
        if let Some(v) = lookup("CACHE_TTL_SECONDS") {
            match v.trim().parse::<u64>() {
                Ok(n) => self.cache.ttl_seconds = Some(n),
                Err(_) => errors.push(format!(
                    "CACHE_TTL_SECONDS={v:?} is not a whole number of seconds (e.g. 3600)"
                )),
            }
        }
        if let Some(v) = lookup("APERTURE_API_KEY") {
            self.auth.api_keys = Some(list(v));
        }
        if let Some(v) = lookup("APERTURE_ADMIN_KEY") {
            self.auth.admin_key = Some(v);
        }
        if let Some(v) = lookup("APERTURE_ADMIN_LISTEN") {
            self.admin_listen = Some(v);
        }
        let mut number = |name: &str, slot: &mut Option<u32>| {
            if let Some(v) = lookup(name) {
                match v.trim().parse::<u32>() {
                    Ok(n) => *slot = Some(n),
                    Err(_) => errors.push(format!(
                        "{name}={v:?} is not a whole number (0 means unlimited)"
                    )),
                }
            }
        };
        number("APERTURE_LIMIT_RPM", &mut self.limits.rpm);
        number(
            "APERTURE_LIMIT_IMAGES_PER_DAY",
            &mut self.limits.images_per_day,
        );
        number(
            "APERTURE_LIMIT_MAX_CONCURRENT",
            &mut self.limits.max_concurrent,
        );
        number(
            "APERTURE_AUTH_FAILURES_PER_MINUTE",
            &mut self.auth.failures_per_minute,
        );
        if let Some(v) = lookup("APERTURE_LIMIT_ALLOWED_THRESHOLDS") {
            self.limits.allowed_thresholds = Some(list(v));
        }
        if let Some(v) = lookup("APERTURE_SECRET_KEY") {
            self.store.secret_key = Some(v);
        }
        if let Some(v) = lookup("APERTURE_METRICS_KEY") {
            self.metrics.key = Some(v);
        }
        if let Some(v) = lookup("APERTURE_SECRET_KEY_FILE") {
            self.store.secret_key_file = Some(v.into());
        }
    }
}
