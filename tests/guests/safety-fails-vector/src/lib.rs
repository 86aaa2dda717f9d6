//! A test variant of the safety policy that fails exactly one conformance vector:
//! `finish SPII blocks` in tests/vectors/safety-policy.json. It is the real
//! `components/safety-policy`, built from the very same source files, except that
//! `review` treats the `SPII` finish reason as no reason at all (a 502 `no-image`
//! instead of a safety block). Lifecycle tests use it to see verification refuse a
//! component and name the failing vector.

#[path = "../../../../components/safety-policy/src/denylist.rs"]
pub mod denylist;
#[path = "../../../../components/safety-policy/src/policy.rs"]
mod real_policy;
#[path = "../../../../components/safety-policy/src/thresholds.rs"]
pub mod thresholds;
#[path = "../../../../components/safety-policy/src/types.rs"]
pub mod types;

/// The real decisions, with `review` wrapped.
pub mod policy {
    pub use crate::real_policy::*;
    use crate::types::{ReviewOutcome, UpstreamVerdict};

    /// The real review, except that a `SPII` finish reason (without a block reason)
    /// is dropped before reviewing: the deliberate defect.
    pub fn review(verdict: &UpstreamVerdict) -> ReviewOutcome {
        let spii = verdict.block_reason.is_none()
            && verdict
                .finish_reason
                .as_deref()
                .is_some_and(|r| r.trim().eq_ignore_ascii_case("SPII"));
        if spii {
            let verdict = UpstreamVerdict {
                finish_reason: None,
                ..verdict.clone()
            };
            return crate::real_policy::review(&verdict);
        }
        crate::real_policy::review(verdict)
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
