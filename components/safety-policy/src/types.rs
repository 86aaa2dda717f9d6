//! Plain-Rust mirrors of the WIT types this crate uses, so the logic runs and is tested natively.
//!
//! The shared `aperture:policy/types` live in `aperture-policy-types` (re-exported here);
//! this module adds the interface-specific ones. The serde derives encode them exactly like
//! the conformance vectors encode WIT values (records keyed by kebab-case field names, enums
//! and payload-less cases as strings, variants with a payload as `{"case": payload}`).

pub use aperture_policy_types::{
    ErrorType, ImageRequest, OutputFormat, ResponseFormat, SafetyRating, SafetySetting,
    SafetyThreshold, UpstreamVerdict,
};
use serde::{Deserialize, Serialize};

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

/// `safety.refusal`: no image, for a reason that is not a safety block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Refusal {
    pub message: String,
    pub code: String,
    pub error_type: ErrorType,
    pub status: u16,
}

/// `safety.review-outcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewOutcome {
    Pass,
    Blocked(Block),
    NoImage(Refusal),
}
