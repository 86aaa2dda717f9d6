//! A hostile `safety-policy` component for tests: it behaves like the real
//! policy (built from its source files), except that prompts containing a trigger word make it loop forever,
//! panic, or allocate without bound. The gateway must fail only that request.

/// What a prompt asks this guest to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// `loop-forever`: spin until the host's epoch deadline interrupts.
    Loop,
    /// `panic-now`: panic (a wasm trap).
    Panic,
    /// `memory-bomb`: grow memory until the host's cap refuses.
    MemoryBomb,
}

/// The misbehaviour a prompt triggers, if any.
pub fn trigger(prompt: &str) -> Option<Misbehaviour> {
    if prompt.contains("loop-forever") {
        Some(Misbehaviour::Loop)
    } else if prompt.contains("panic-now") {
        Some(Misbehaviour::Panic)
    } else if prompt.contains("memory-bomb") {
        Some(Misbehaviour::MemoryBomb)
    } else {
        None
    }
}

/// Carry out a misbehaviour. Never returns.
pub fn misbehave(what: Misbehaviour) -> ! {
    match what {
        Misbehaviour::Loop => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Misbehaviour::Panic => panic!("hostile guest panics on purpose"),
        Misbehaviour::MemoryBomb => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 8 << 20]);
                std::hint::black_box(&hoard);
            }
        }
    }
}

#[path = "../../../../components/safety-policy/src/denylist.rs"]
pub mod denylist;
#[path = "../../../../components/safety-policy/src/policy.rs"]
mod real_policy;
#[path = "../../../../components/safety-policy/src/thresholds.rs"]
pub mod thresholds;
#[path = "../../../../components/safety-policy/src/types.rs"]
pub mod types;

/// The real decisions (so the guest passes the conformance vectors and can be
/// installed and activated like any version), with `screen` wrapped.
pub mod policy {
    pub use crate::real_policy::*;
    use crate::types::{ImageRequest, PolicyConfig, SafetyThreshold, Screening};

    /// The real screening, unless the prompt holds a trigger word.
    pub fn screen(
        request: &ImageRequest,
        threshold: SafetyThreshold,
        config: &PolicyConfig,
    ) -> Screening {
        if let Some(what) = super::trigger(&request.prompt) {
            super::misbehave(what);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_are_recognised_and_plain_prompts_are_not() {
        assert_eq!(trigger("please loop-forever"), Some(Misbehaviour::Loop));
        assert_eq!(trigger("panic-now"), Some(Misbehaviour::Panic));
        assert_eq!(trigger("a memory-bomb"), Some(Misbehaviour::MemoryBomb));
        assert_eq!(trigger("a quiet lake"), None);
    }
}
