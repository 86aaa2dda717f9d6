//! A test variant of the safety policy: the real `components/safety-policy`, built from
//! the very same source files, except that `screen` also denies every prompt containing
//! [`policy::EXTRA_TERM`] (`aperture-canary-term`, any case). Lifecycle tests install it
//! to see a policy change take effect (and revert) on live traffic.

#[path = "../../../../components/safety-policy/src/denylist.rs"]
pub mod denylist;
#[path = "../../../../components/safety-policy/src/policy.rs"]
mod real_policy;
#[path = "../../../../components/safety-policy/src/thresholds.rs"]
pub mod thresholds;
#[path = "../../../../components/safety-policy/src/types.rs"]
pub mod types;

/// The real decisions, with `screen` wrapped.
pub mod policy {
    pub use crate::real_policy::*;
    use crate::types::{Denial, ImageRequest, PolicyConfig, SafetyThreshold, Screening};

    /// The term this variant denies on top of the operator's deny-list.
    pub const EXTRA_TERM: &str = "aperture-canary-term";

    /// The real screening, but a prompt containing [`EXTRA_TERM`] is denied like a
    /// deny-list hit (same reason and code).
    pub fn screen(
        request: &ImageRequest,
        threshold: SafetyThreshold,
        config: &PolicyConfig,
    ) -> Screening {
        if request.prompt.to_lowercase().contains(EXTRA_TERM) {
            return Screening::Deny(Denial {
                reason: DENY_REASON.to_string(),
                code: CODE_SAFETY_BLOCKED.to_string(),
            });
        }
        crate::real_policy::screen(request, threshold, config)
    }
}

/// The WIT types, generated here (the real crate's path to `wit/` differs from ours).
#[cfg(target_arch = "wasm32")]
mod generated {
    wit_bindgen::generate!({ path: "../../../wit", world: "safety-policy" });
}

#[cfg(target_arch = "wasm32")]
#[path = "../../../../components/safety-policy/src/bindings.rs"]
mod bindings;
