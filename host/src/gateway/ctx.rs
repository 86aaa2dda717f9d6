//! The request context: what the phases learn about one request, carried from
//! phase to phase and written out by the `log` phase.

use std::time::Instant;

/// How the cache took part in a request (`x-aperture-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache.
    Hit,
    /// Looked up, not found: generated (and stored).
    Miss,
    /// Not read: `Cache-Control: no-cache`, or the cache is off.
    Bypass,
}

impl CacheStatus {
    /// The header / log value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

/// State of one request across the phases.
#[derive(Debug)]
pub struct Ctx {
    /// `x-request-id`.
    pub request_id: String,
    /// When the request arrived.
    pub started: Instant,
    /// Label of the client key that authenticated the request.
    pub client: Option<String>,
    /// The canonical model, once parsed.
    pub model: Option<String>,
    /// First 16 hex chars of sha256(prompt), once parsed.
    pub prompt_hash: Option<String>,
    /// Images asked for.
    pub n: Option<u8>,
    /// Gemini aspect ratio.
    pub aspect_ratio: Option<String>,
    /// Gemini image size.
    pub image_size: Option<String>,
    /// Effective safety threshold name.
    pub safety_threshold: Option<&'static str>,
    /// Cache participation.
    pub cache: Option<CacheStatus>,
    /// Short cache key prefix, for the log.
    pub cache_key: Option<String>,
    /// Accounts (email or label) that made upstream calls.
    pub accounts: Vec<String>,
    /// Upstream calls made.
    pub upstream_calls: u32,
    /// True when this request waited on an identical in-flight one.
    pub coalesced: bool,
    /// The statistics the log phase counts this request in (set by `Stats::begin`).
    pub stats: Option<std::sync::Arc<crate::stats::Stats>>,
    /// The client's address (`X-Forwarded-For` from a trusted proxy, else the peer).
    pub client_ip: Option<std::net::IpAddr>,
    /// The policy component versions this request uses, taken once at its start.
    pub policy: Option<crate::policy::PolicySnapshot>,
}

impl Ctx {
    /// A context for a request that just arrived.
    pub fn new(request_id: String) -> Ctx {
        Ctx {
            request_id,
            started: Instant::now(),
            client: None,
            model: None,
            prompt_hash: None,
            n: None,
            aspect_ratio: None,
            image_size: None,
            safety_threshold: None,
            cache: None,
            cache_key: None,
            accounts: Vec::new(),
            upstream_calls: 0,
            coalesced: false,
            stats: None,
            client_ip: None,
            policy: None,
        }
    }

    /// The request's policy versions, pinned on first use (every phase after uses the same ones).
    pub fn policy(&mut self, app: &crate::app::App) -> crate::policy::PolicySnapshot {
        self.policy
            .get_or_insert_with(|| app.policies.pin(&self.request_id))
            .clone()
    }

    /// Note an account that made an upstream call.
    pub fn used_account(&mut self, who: &str) {
        if !self.accounts.iter().any(|a| a == who) {
            self.accounts.push(who.to_string());
        }
    }
}
