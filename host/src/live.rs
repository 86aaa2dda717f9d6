//! The settings that change without a restart (`SIGHUP`, `aperture config reload`): one
//! immutable snapshot behind an `ArcSwap` in `App::live`. A request loads it once, at its
//! start, and keeps that snapshot to its end, so a reload never splits one request
//! between two configurations.
//!
//! To make another setting live (the canary limits of the policy lifecycle, say): add a
//! field to [`LiveSettings`], fill it in [`LiveSettings::from_config`], name it in
//! [`LiveSettings::changes`], read it from the request's snapshot, and take it out of
//! `reload::restart_required`.

use std::time::Duration;

use aperture_store::CacheLimits;

use crate::config::Config;
use crate::policy::{PolicyConfig, SafetyThreshold};

/// One snapshot of the live settings.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// `safety.threshold`: the threshold of a request that names none.
    pub safety_threshold: SafetyThreshold,
    /// `safety.deny_list`, as handed to the safety policy.
    pub policy_config: PolicyConfig,
    /// `cache.max_size_mb` and `cache.ttl_seconds`.
    pub cache: CacheLimits,
    /// `upstream.request_timeout_ms`: the budget of one upstream call.
    pub upstream_request_timeout: Duration,
    /// `upstream.request_deadline_ms`: the budget of one client request's upstream work.
    pub request_deadline: Duration,
    /// `server.body_timeout_ms`: how long a client may take to send a body.
    pub body_timeout: Duration,
}

impl LiveSettings {
    /// The live part of a validated configuration.
    pub fn from_config(config: &Config) -> LiveSettings {
        LiveSettings {
            safety_threshold: config.safety.threshold,
            policy_config: PolicyConfig {
                deny_list: config.safety.deny_list.clone(),
            },
            cache: CacheLimits {
                max_bytes: config.cache.max_bytes,
                ttl_ms: config.cache.ttl.as_millis() as u64,
            },
            upstream_request_timeout: config.upstream.request_timeout,
            request_deadline: config.upstream.request_deadline,
            body_timeout: config.body_timeout,
        }
    }

    /// The names (as written in the config file) of the settings that differ in `next`.
    pub fn changes(&self, next: &LiveSettings) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                changed.push(name);
            }
        };
        check(
            "safety.threshold",
            self.safety_threshold != next.safety_threshold,
        );
        check(
            "safety.deny_list",
            self.policy_config.deny_list != next.policy_config.deny_list,
        );
        check(
            "cache.max_size_mb",
            self.cache.max_bytes != next.cache.max_bytes,
        );
        check("cache.ttl_seconds", self.cache.ttl_ms != next.cache.ttl_ms);
        check(
            "upstream.request_timeout_ms",
            self.upstream_request_timeout != next.upstream_request_timeout,
        );
        check(
            "upstream.request_deadline_ms",
            self.request_deadline != next.request_deadline,
        );
        check(
            "server.body_timeout_ms",
            self.body_timeout != next.body_timeout,
        );
        changed
    }
}

/// The settings that can change live, by name (for docs, the reload answer and tests).
pub const LIVE_SETTINGS: [&str; 7] = [
    "safety.threshold",
    "safety.deny_list",
    "cache.max_size_mb",
    "cache.ttl_seconds",
    "upstream.request_timeout_ms",
    "upstream.request_deadline_ms",
    "server.body_timeout_ms",
];
