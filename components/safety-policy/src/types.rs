//! Plain-Rust mirrors of the WIT types this crate uses, so the logic runs and is tested natively.
//!
//! The serde derives encode them exactly like the conformance vectors encode WIT values
//! (records keyed by kebab-case field names, enums and payload-less cases as strings,
//! variants with a payload as `{"case": payload}`).

use serde::{Deserialize, Serialize};

/// `types.safety-threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SafetyThreshold {
    Off,
    Low,
    Medium,
    High,
}

/// `types.response-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseFormat {
    B64Json,
    Url,
}

/// `types.image-request`: the canonical, validated request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageRequest {
    pub model: String,
    pub upstream_model: String,
    pub prompt: String,
    pub n: u8,
    pub aspect_ratio: String,
    pub image_size: String,
    pub style: Option<String>,
    pub safety_threshold: Option<SafetyThreshold>,
    pub response_format: ResponseFormat,
}

/// `types.safety-setting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SafetySetting {
    pub category: String,
    pub threshold: String,
}

/// `types.safety-rating`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SafetyRating {
    pub category: String,
    pub probability: String,
    pub blocked: bool,
}

/// `types.upstream-verdict`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpstreamVerdict {
    pub block_reason: Option<String>,
    pub finish_reason: Option<String>,
    pub ratings: Vec<SafetyRating>,
}

/// `safety.policy-config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyConfig {
    pub deny_list: Vec<String>,
}

/// `safety.denial`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Denial {
    pub reason: String,
    pub code: String,
}

/// `safety.screening`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Screening {
    Allow(Vec<SafetySetting>),
    Deny(Denial),
}

/// `safety.block`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Block {
    pub reason: String,
    pub code: String,
    pub categories: Vec<String>,
}

/// `safety.review-outcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewOutcome {
    Pass,
    Blocked(Block),
}
