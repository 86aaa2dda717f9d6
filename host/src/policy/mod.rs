//! Hosting of the policy components (translator, safety, classifier): loading and
//! type-checking them, and calling them with a fresh instance, a deadline and a
//! memory cap per call. A trap fails the one call, never the host.

mod bindings;
pub mod blobs;
mod engine;
mod slot;
pub mod vectors;

use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre};
use wasmtime::Trap;

pub use bindings::*;
pub use engine::CallLimits;
use engine::{CallState, Runtime};
pub use slot::ComponentInfo;
use slot::{Loaded, Slot};

/// The components built from this checkout and embedded in the binary.
pub mod embedded {
    /// The default request-translator component.
    pub const TRANSLATOR: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/request_translator.wasm"));
    /// The default safety-policy component.
    pub const SAFETY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/safety_policy.wasm"));
    /// The default error-classifier component.
    pub const CLASSIFIER: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/error_classifier.wasm"));
}

/// Which component a failure concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The request translator.
    Translator,
    /// The safety policy.
    Safety,
    /// The error classifier.
    Classifier,
}

impl Which {
    /// The slot name used in logs, config and errors.
    pub fn name(self) -> &'static str {
        match self {
            Which::Translator => "translator",
            Which::Safety => "safety",
            Which::Classifier => "classifier",
        }
    }
}

/// A failure of the component layer.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The bytes are not a valid component, or do not implement the expected world.
    #[error("the {which} component is not usable: {detail}", which = which.name())]
    Invalid {
        /// The slot.
        which: Which,
        /// What is wrong.
        detail: String,
    },
    /// A call ran past its deadline and was interrupted.
    #[error("the {which} component's `{function}` ran past its deadline and was stopped", which = which.name())]
    Timeout {
        /// The slot.
        which: Which,
        /// The exported function.
        function: &'static str,
    },
    /// A call trapped (panic, out of memory, unreachable...).
    #[error("the {which} component's `{function}` failed: {detail}", which = which.name())]
    Trap {
        /// The slot.
        which: Which,
        /// The exported function.
        function: &'static str,
        /// The trap.
        detail: String,
    },
    /// The engine could not be set up.
    #[error("the component runtime could not start: {0}")]
    Runtime(String),
}

impl PolicyError {
    /// A one-line description safe to show a client (no guest backtrace).
    pub fn summary(&self) -> String {
        match self {
            PolicyError::Invalid { which, .. } => {
                format!("the {} component is not usable", which.name())
            }
            PolicyError::Timeout { which, function } => {
                format!(
                    "the {} component's `{function}` ran past its deadline",
                    which.name()
                )
            }
            PolicyError::Trap {
                which, function, ..
            } => format!("the {} component's `{function}` trapped", which.name()),
            PolicyError::Runtime(_) => "the component runtime is not available".to_string(),
        }
    }
}

/// Where each component comes from: embedded bytes or a file.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Replacement translator `.wasm`, if configured.
    pub translator: Option<std::path::PathBuf>,
    /// Replacement safety `.wasm`, if configured.
    pub safety: Option<std::path::PathBuf>,
    /// Replacement classifier `.wasm`, if configured.
    pub classifier: Option<std::path::PathBuf>,
}

type TranslatorPre = translator::RequestTranslatorPre<CallState>;

/// A loaded translator and its cache namespace, asked once at load so every
/// request keys the cache with the namespace of the version that parsed it.
struct Translator {
    pre: TranslatorPre,
    namespace: String,
}

impl Translator {
    /// Type-check `pre` and ask the component for its cache namespace.
    fn prepare(runtime: &Runtime, pre: InstancePre<CallState>) -> wasmtime::Result<Translator> {
        let pre = TranslatorPre::new(pre)?;
        let mut store = runtime.store();
        let namespace = pre
            .instantiate(&mut store)?
            .aperture_policy_translator()
            .call_cache_namespace(&mut store)?;
        Ok(Translator { pre, namespace })
    }
}
type SafetyPre = safety::SafetyPolicyPre<CallState>;
type ClassifierPre = classifier::ErrorClassifierPre<CallState>;

/// The three policy slots and the runtime they share.
pub struct Policies {
    runtime: Runtime,
    translator: Slot<Translator>,
    safety: Slot<SafetyPre>,
    classifier: Slot<ClassifierPre>,
}

impl Policies {
    /// Load, compile and type-check all three components.
    pub fn load(sources: &Sources, limits: CallLimits) -> Result<Policies, PolicyError> {
        let runtime = Runtime::new(limits).map_err(|e| PolicyError::Runtime(format!("{e:#}")))?;
        let (t, s, c) = (
            read_source(
                Which::Translator,
                sources.translator.as_deref(),
                embedded::TRANSLATOR,
            )?,
            read_source(Which::Safety, sources.safety.as_deref(), embedded::SAFETY)?,
            read_source(
                Which::Classifier,
                sources.classifier.as_deref(),
                embedded::CLASSIFIER,
            )?,
        );
        let translator = Slot::new(prepare(&runtime, Which::Translator, t, |p| {
            Translator::prepare(&runtime, p)
        })?);
        let safety = Slot::new(prepare(&runtime, Which::Safety, s, SafetyPre::new)?);
        let classifier = Slot::new(prepare(&runtime, Which::Classifier, c, ClassifierPre::new)?);
        Ok(Policies {
            runtime,
            translator,
            safety,
            classifier,
        })
    }

    /// Identity of the active version of each component.
    pub fn active(&self) -> [ComponentInfo; 3] {
        [
            self.translator.load().info.clone(),
            self.safety.load().info.clone(),
            self.classifier.load().info.clone(),
        ]
    }

    /// Replace the active version of one component with `bytes` (validated first:
    /// a component that does not compile or implement the world is refused and the
    /// active version stays). Returns the replaced version's identity.
    pub fn swap(
        &self,
        which: Which,
        bytes: Vec<u8>,
        source: String,
    ) -> Result<ComponentInfo, PolicyError> {
        let src = (bytes, source);
        Ok(match which {
            Which::Translator => self
                .translator
                .swap(prepare(&self.runtime, which, src, |p| {
                    Translator::prepare(&self.runtime, p)
                })?)
                .info
                .clone(),
            Which::Safety => self
                .safety
                .swap(prepare(&self.runtime, which, src, SafetyPre::new)?)
                .info
                .clone(),
            Which::Classifier => self
                .classifier
                .swap(prepare(&self.runtime, which, src, ClassifierPre::new)?)
                .info
                .clone(),
        })
    }

    /// Run conformance vectors against candidate component bytes for a slot, on
    /// this host's runtime (same linker, same limits). Returns the mismatches.
    pub fn conformance(
        &self,
        which: Which,
        bytes: &[u8],
        file: &vectors::VectorFile,
    ) -> Result<Vec<vectors::Mismatch>, PolicyError> {
        vectors::run(&self.runtime, which, bytes, file)
    }

    /// Run one call on a fresh instance of the active version of a slot.
    fn run<P, I, R>(
        &self,
        slot: &Slot<P>,
        which: Which,
        function: &'static str,
        instantiate: impl FnOnce(&P, &mut wasmtime::Store<CallState>) -> wasmtime::Result<I>,
        call: impl FnOnce(&P, &I, &mut wasmtime::Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        let _permit = self.runtime.gate.enter();
        let loaded = slot.load();
        let mut store = self.runtime.store();
        let instance =
            instantiate(&loaded.pre, &mut store).map_err(|e| fail(which, function, e))?;
        call(&loaded.pre, &instance, &mut store).map_err(|e| fail(which, function, e))
    }

    fn translate<R>(
        &self,
        function: &'static str,
        call: impl FnOnce(
            &translator::exports::aperture::policy::translator::Guest,
            &mut wasmtime::Store<CallState>,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        self.run(
            &self.translator,
            Which::Translator,
            function,
            |p, s| p.pre.instantiate(s),
            |_, i, s| call(i.aperture_policy_translator(), s),
        )
    }

    /// Parse an OpenAI request body into the canonical request; also returns the
    /// cache namespace of the translator version that parsed it.
    pub fn parse_request(
        &self,
        body: &str,
    ) -> Result<(Result<ImageRequest, UserError>, String), PolicyError> {
        self.run(
            &self.translator,
            Which::Translator,
            "parse-request",
            |p, s| p.pre.instantiate(s),
            |p, i, s| {
                Ok((
                    i.aperture_policy_translator().call_parse_request(s, body)?,
                    p.namespace.clone(),
                ))
            },
        )
    }

    /// Build the Gemini body for one image.
    pub fn build_upstream_body(
        &self,
        req: &ImageRequest,
        settings: &[SafetySetting],
    ) -> Result<String, PolicyError> {
        self.translate("build-upstream-body", |t, s| {
            t.call_build_upstream_body(s, req, settings)
        })
    }

    /// Interpret a successful Gemini body (image data already replaced by blob tokens).
    pub fn parse_response(
        &self,
        body: &str,
    ) -> Result<Result<UpstreamOutcome, String>, PolicyError> {
        self.translate("parse-response", |t, s| t.call_parse_response(s, body))
    }

    /// Render the OpenAI response JSON (with blob tokens).
    pub fn build_response(
        &self,
        result: &Generation,
        format: ResponseFormat,
        created: u64,
    ) -> Result<String, PolicyError> {
        self.translate("build-response", |t, s| {
            t.call_build_response(s, result, format, created)
        })
    }

    /// Screen a canonical request at the effective threshold.
    pub fn screen(
        &self,
        req: &ImageRequest,
        threshold: SafetyThreshold,
        config: &PolicyConfig,
    ) -> Result<Screening, PolicyError> {
        self.run(
            &self.safety,
            Which::Safety,
            "screen",
            |p, s| p.instantiate(s),
            |_, i, s| {
                i.aperture_policy_safety()
                    .call_screen(s, req, threshold, config)
            },
        )
    }

    /// Review an upstream verdict.
    pub fn review(&self, verdict: &UpstreamVerdict) -> Result<ReviewOutcome, PolicyError> {
        self.run(
            &self.safety,
            Which::Safety,
            "review",
            |p, s| p.instantiate(s),
            |_, i, s| i.aperture_policy_safety().call_review(s, verdict),
        )
    }

    /// Classify a failed upstream call.
    pub fn classify(&self, failure: &Failure) -> Result<Classification, PolicyError> {
        self.run(
            &self.classifier,
            Which::Classifier,
            "classify",
            |p, s| p.instantiate(s),
            |_, i, s| i.aperture_policy_classifier().call_classify(s, failure),
        )
    }
}

fn read_source(
    which: Which,
    path: Option<&Path>,
    embedded: &[u8],
) -> Result<(Vec<u8>, String), PolicyError> {
    match path {
        None => Ok((embedded.to_vec(), "embedded".to_string())),
        Some(p) => std::fs::read(p)
            .map(|b| (b, p.display().to_string()))
            .map_err(|e| PolicyError::Invalid {
                which,
                detail: format!("cannot read {}: {e}", p.display()),
            }),
    }
}

/// Compile `bytes`, link them against the authority-free WASI linker and check
/// them against the world (the bindgen `*Pre::new`).
fn prepare<P>(
    runtime: &Runtime,
    which: Which,
    (bytes, source): (Vec<u8>, String),
    check: impl FnOnce(InstancePre<CallState>) -> wasmtime::Result<P>,
) -> Result<Loaded<P>, PolicyError> {
    let invalid = |e: wasmtime::Error| PolicyError::Invalid {
        which,
        detail: format!("{e:#}"),
    };
    let sha256 = hex(&Sha256::digest(&bytes));
    let component = Component::new(&runtime.engine, &bytes).map_err(invalid)?;
    let pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(invalid)?;
    let pre = check(pre).map_err(invalid)?;
    Ok(Loaded {
        pre,
        info: ComponentInfo {
            slot: which.name(),
            source,
            sha256,
            size: bytes.len(),
        },
    })
}

/// Turn a wasmtime error from instantiation or a call into a policy error.
pub(crate) fn fail(which: Which, function: &'static str, e: wasmtime::Error) -> PolicyError {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PolicyError::Timeout { which, function },
        _ => PolicyError::Trap {
            which,
            function,
            detail: format!("{e:#}"),
        },
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_larger_than_the_instance_pool_waits_instead_of_failing() {
        let limits = CallLimits {
            max_instances: 1,
            ..CallLimits::default()
        };
        let policies = std::sync::Arc::new(
            Policies::load(&Sources::default(), limits).expect("embedded components load"),
        );
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let p = policies.clone();
                std::thread::spawn(move || {
                    (0..20)
                        .map(|j| {
                            p.parse_request(&format!(r#"{{"prompt":"burst {i} {j}"}}"#))
                                .map(|(r, _)| r.is_ok())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for t in threads {
            for result in t.join().expect("thread") {
                assert!(matches!(result, Ok(true)), "{result:?}");
            }
        }
    }

    #[test]
    fn a_trap_summary_never_carries_the_guest_backtrace() {
        let e = PolicyError::Trap {
            which: Which::Safety,
            function: "screen",
            detail: "wasm backtrace:\n 0: 0x1234 - <unknown>".into(),
        };
        assert_eq!(e.summary(), "the safety component's `screen` trapped");
    }
}
