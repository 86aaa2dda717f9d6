//! A hostile `safety-policy` component for tests: it behaves like a permissive
//! policy, except that prompts containing a trigger word make it loop forever,
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

#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "safety-policy" });

    use aperture::policy::types::{ImageRequest, SafetySetting, SafetyThreshold, UpstreamVerdict};
    use exports::aperture::policy::safety::{Guest, PolicyConfig, ReviewOutcome, Screening};

    struct Hostile;

    impl Guest for Hostile {
        fn screen(
            request: ImageRequest,
            _threshold: SafetyThreshold,
            _config: PolicyConfig,
        ) -> Screening {
            if let Some(what) = super::trigger(&request.prompt) {
                super::misbehave(what);
            }
            Screening::Allow(Vec::<SafetySetting>::new())
        }

        fn review(_verdict: UpstreamVerdict) -> ReviewOutcome {
            ReviewOutcome::Pass
        }
    }

    export!(Hostile);
}

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
