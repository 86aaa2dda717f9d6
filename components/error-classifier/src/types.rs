//! Plain-Rust mirrors of the WIT types this crate uses, so the logic runs and is tested natively.
//!
//! The shared `aperture:policy/types` live in `aperture-policy-types` (re-exported here);
//! this module adds the interface-specific ones. The serde derives encode them exactly like
//! the conformance vectors encode WIT values (records keyed by kebab-case field names, enums
//! and payload-less cases as strings, variants with a payload as `{"case": payload}`,
//! tuples as arrays).

pub use aperture_policy_types::ErrorType;
use serde::{Deserialize, Serialize};

/// `classifier.http-failure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HttpFailure {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// `classifier.transport-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    Connect,
    Timeout,
    Tls,
    Protocol,
}

/// `classifier.transport-failure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TransportFailure {
    pub kind: TransportKind,
    pub message: String,
}

/// `classifier.failure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    Http(HttpFailure),
    Transport(TransportFailure),
}

/// `classifier.account-action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountAction {
    None,
    CoolDown(u64),
    ExhaustedUntilReset,
    Disable(String),
    DisableForModel(String),
}

/// `classifier.classification`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Classification {
    pub error_type: ErrorType,
    pub code: String,
    pub client_status: u16,
    pub retryable: bool,
    pub message: String,
    pub account_action: AccountAction,
}
