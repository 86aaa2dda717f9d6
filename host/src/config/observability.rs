//! The observability settings (`[metrics]`, `[logs]`, `[pricing]`,
//! `server.trusted_proxies`): their raw form and their validation, kept apart
//! from the rest of the configuration so they read as one unit.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::pricing::Pricing;

/// `[metrics]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `enabled = true` (default): serve `GET /metrics` and record.
    pub enabled: Option<bool>,
    /// `listener = "main" | "admin"`: where `/metrics` is served (default: `admin` when
    /// `admin_listen` is set, else `main`).
    pub listener: Option<String>,
    /// `require_key = false` (default): when true, a scrape needs `Authorization: Bearer`
    /// with the metrics key (`key`, `APERTURE_METRICS_KEY`) or the admin key.
    pub require_key: Option<bool>,
    /// A key only for scraping (prefer `APERTURE_METRICS_KEY`).
    pub key: Option<String>,
}

/// `[logs]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogs {
    /// Rotate `aperture.log` once it passes this many megabytes (default 100; 0 = never by size).
    pub max_size_mb: Option<f64>,
    /// Rotate at the first line of each new day, UTC (default true).
    pub rotate_daily: Option<bool>,
    /// Rotated files kept (default 14); older ones are deleted.
    pub keep: Option<u32>,
}

/// Which listener serves `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListener {
    /// `listen`.
    Main,
    /// `admin_listen`.
    Admin,
}

/// Validated `[metrics]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Metrics {
    /// Whether metrics are recorded and served.
    pub enabled: bool,
    /// Where `/metrics` is served.
    pub listener: MetricsListener,
    /// Whether a scrape needs a key.
    pub require_key: bool,
    /// The scrape-only key, if any.
    pub key: Option<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.enabled)
            .field("listener", &self.listener)
            .field("require_key", &self.require_key)
            .field("key", &self.key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Validated `[logs]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Logs {
    /// Size limit in bytes (0 = none).
    pub max_bytes: u64,
    /// Rotate when the UTC day changes.
    pub rotate_daily: bool,
    /// Rotated files kept.
    pub keep: usize,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            max_bytes: 100 << 20,
            rotate_daily: true,
            keep: 14,
        }
    }
}

/// Validate `[metrics]`; `admin_listen_set` and `admin_key_set` decide defaults and checks.
pub fn metrics(
    raw: RawMetrics,
    admin_listen_set: bool,
    admin_key_set: bool,
    errors: &mut Vec<String>,
) -> Metrics {
    let listener = match raw
        .listener
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase())
    {
        None => {
            if admin_listen_set {
                MetricsListener::Admin
            } else {
                MetricsListener::Main
            }
        }
        Some(s) if s == "main" => MetricsListener::Main,
        Some(s) if s == "admin" => {
            if !admin_listen_set {
                errors.push("metrics.listener = \"admin\" needs admin_listen (APERTURE_ADMIN_LISTEN) to be set; or use \"main\"".into());
            }
            MetricsListener::Admin
        }
        Some(other) => {
            errors.push(format!(
                "metrics.listener {other:?} must be \"main\" or \"admin\""
            ));
            MetricsListener::Main
        }
    };
    let key = raw.key.filter(|k| !k.is_empty());
    if key.as_ref().is_some_and(|k| k.len() < 8) {
        errors.push("metrics.key / APERTURE_METRICS_KEY must be at least 8 characters".into());
    }
    let require_key = raw.require_key.unwrap_or(false);
    if require_key && key.is_none() && !admin_key_set {
        errors.push("metrics.require_key = true needs a key: set APERTURE_METRICS_KEY (metrics.key) or APERTURE_ADMIN_KEY".into());
    }
    Metrics {
        enabled: raw.enabled.unwrap_or(true),
        listener,
        require_key,
        key,
    }
}

/// Validate `[logs]`.
pub fn logs(raw: RawLogs, errors: &mut Vec<String>) -> Logs {
    let d = Logs::default();
    let max_bytes = match raw.max_size_mb {
        None => d.max_bytes,
        Some(mb) if mb.is_finite() && mb >= 0.0 => (mb * 1024.0 * 1024.0) as u64,
        Some(mb) => {
            errors.push(format!(
                "logs.max_size_mb must be a number of megabytes, 0 or more (0: no size limit), not {mb}"
            ));
            d.max_bytes
        }
    };
    let keep = match raw.keep {
        None => d.keep,
        Some(0) => {
            errors.push("logs.keep must be at least 1 (rotated files kept)".into());
            d.keep
        }
        Some(n) => n as usize,
    };
    Logs {
        max_bytes,
        rotate_daily: raw.rotate_daily.unwrap_or(d.rotate_daily),
        keep,
    }
}

/// Validate `[pricing]`.
pub fn pricing(raw: &BTreeMap<String, BTreeMap<String, f64>>, errors: &mut Vec<String>) -> Pricing {
    Pricing::with_overrides(raw, errors)
}

/// Validate `server.trusted_proxies` (addresses or CIDR networks).
pub fn trusted_proxies(raw: Option<Vec<String>>, errors: &mut Vec<String>) -> Vec<ipnet::IpNet> {
    let mut out = Vec::new();
    for text in raw.unwrap_or_default() {
        let t = text.trim();
        match t
            .parse::<ipnet::IpNet>()
            .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Ok(net) => out.push(net),
            Err(_) => errors.push(format!(
                "server.trusted_proxies {text:?} is not an address or network like 10.0.0.0/8 or 192.168.1.10"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_every_problem() {
        let mut errors = vec![];
        let m = metrics(RawMetrics::default(), false, false, &mut errors);
        assert!(m.enabled && !m.require_key && m.listener == MetricsListener::Main);
        assert_eq!(
            metrics(RawMetrics::default(), true, false, &mut errors).listener,
            MetricsListener::Admin
        );
        assert!(errors.is_empty());
        let bad = RawMetrics {
            listener: Some("admin".into()),
            require_key: Some(true),
            key: Some("short".into()),
            ..Default::default()
        };
        metrics(bad, false, false, &mut errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
        let l = logs(
            RawLogs {
                max_size_mb: Some(-1.0),
                keep: Some(0),
                rotate_daily: None,
            },
            &mut errors,
        );
        assert_eq!(l, Logs::default());
        assert_eq!(errors.len(), 4, "{errors:?}");
        let nets = trusted_proxies(
            Some(vec!["10.0.0.0/8".into(), "::1".into(), "nope".into()]),
            &mut errors,
        );
        assert_eq!(nets.len(), 2);
        assert_eq!(errors.len(), 5, "{errors:?}");
    }
}
