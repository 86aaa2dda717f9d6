//! What an emulator instance accepts and how it misbehaves: API keys with their quotas, added latency and the
//! trigger words that produce each of Gemini's safety outcomes.

use std::time::Duration;

use crate::shape::Shape;

/// Configuration for one emulator instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorConfig {
    /// Accepted API keys. Any other key gets 400 `API_KEY_INVALID`. When empty, every key is accepted except
    /// keys starting with `invalid`.
    pub keys: Vec<KeySpec>,
    /// Added before answering each `generateContent` call.
    pub latency: Duration,
    /// A prompt containing one of these (case-insensitive) is blocked: `promptFeedback.blockReason`
    /// `PROHIBITED_CONTENT`, no candidates.
    pub block_terms: Vec<String>,
    /// A prompt containing one of these gets a candidate with `finishReason` `IMAGE_SAFETY` and no image.
    pub image_safety_terms: Vec<String>,
    /// Threshold-sensitive harm triggers: blocked with `finishReason` `SAFETY` when the request's threshold for
    /// the category blocks the term's probability.
    pub harm_terms: Vec<HarmTerm>,
    /// The instance-wide answer shape (per-call `emu:` directives override it). Default: every setting at the
    /// model's default.
    pub shape: Shape,
    /// Gzip answers for clients sending `accept-encoding: gzip` (as Google does). On by default.
    pub gzip: bool,
}

/// One accepted API key, optionally with a request quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub key: String,
    pub quota: Option<Quota>,
}

impl KeySpec {
    /// A key without a quota.
    pub fn new(key: impl Into<String>) -> Self {
        KeySpec {
            key: key.into(),
            quota: None,
        }
    }

    /// A key allowed `limit` requests per window before it gets 429.
    pub fn with_quota(key: impl Into<String>, limit: u32, per: QuotaWindow) -> Self {
        KeySpec {
            key: key.into(),
            quota: Some(Quota { limit, per }),
        }
    }
}

/// Requests allowed per window before 429 `RESOURCE_EXHAUSTED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub per: QuotaWindow,
}

/// The window a quota is counted over; it also picks the `quotaId` of the 429 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaWindow {
    Minute,
    Day,
}

impl QuotaWindow {
    /// Parses `minute` / `day` (any case), as used by the HTTP control endpoints.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "minute" | "min" | "per-minute" => Some(QuotaWindow::Minute),
            "day" | "per-day" => Some(QuotaWindow::Day),
            _ => None,
        }
    }

    pub(crate) fn length(self) -> Duration {
        match self {
            QuotaWindow::Minute => Duration::from_secs(60),
            QuotaWindow::Day => Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// A prompt word that the emulated model rates at `probability` in `category`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarmTerm {
    pub term: String,
    /// A Gemini harm category, e.g. `HARM_CATEGORY_DANGEROUS_CONTENT`.
    pub category: String,
    /// `NEGLIGIBLE`, `LOW`, `MEDIUM` or `HIGH`.
    pub probability: String,
}

impl HarmTerm {
    pub fn new(
        term: impl Into<String>,
        category: impl Into<String>,
        probability: impl Into<String>,
    ) -> Self {
        HarmTerm {
            term: term.into(),
            category: category.into(),
            probability: probability.into(),
        }
    }
}

impl EmulatorConfig {
    /// The demo configuration: the given keys without quotas, no latency and the documented trigger words
    /// (`prohibited-test`, `unsafe-image-test`, `violent` at MEDIUM and `gore` at HIGH dangerous content).
    pub fn demo(keys: Vec<String>) -> Self {
        EmulatorConfig {
            keys: keys.into_iter().map(KeySpec::new).collect(),
            latency: Duration::ZERO,
            block_terms: vec!["prohibited-test".to_string()],
            image_safety_terms: vec!["unsafe-image-test".to_string()],
            harm_terms: vec![
                HarmTerm::new("violent", "HARM_CATEGORY_DANGEROUS_CONTENT", "MEDIUM"),
                HarmTerm::new("gore", "HARM_CATEGORY_DANGEROUS_CONTENT", "HIGH"),
            ],
            shape: Shape::default(),
            gzip: true,
        }
    }
}

impl Default for EmulatorConfig {
    /// The demo configuration with no key list: any key is accepted except keys starting with `invalid`.
    fn default() -> Self {
        EmulatorConfig::demo(Vec::new())
    }
}
