//! Plain-Rust mirrors of the WIT types this crate uses, so the logic runs and is tested natively.
//!
//! The shared `aperture:policy/types` live in `aperture-policy-types` (re-exported here);
//! this module adds the interface-specific ones. The serde derives encode them exactly like
//! the conformance vectors encode WIT values (records keyed by kebab-case field names, enums
//! and payload-less cases as strings, variants with a payload as `{"case": payload}`).

pub use aperture_policy_types::{
    Generation, Image, ImageRequest, OutputFormat, ResponseFormat, SafetyRating, SafetySetting,
    SafetyThreshold, UpstreamVerdict, Usage,
};
use serde::{Deserialize, Serialize};

/// `translator.user-error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UserError {
    pub message: String,
    pub param: Option<String>,
    pub code: String,
}

/// `translator.upstream-outcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamOutcome {
    Images(Generation),
    NoImage(UpstreamVerdict),
}
