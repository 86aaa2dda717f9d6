//! Hosting of the policy components (translator, safety, classifier): loading and
//! type-checking them, and calling them with a fresh instance, a deadline and a
//! memory cap per call. A trap fails the one call, never the host.

mod bindings;
pub mod blobs;
mod engine;
pub mod lifecycle;
pub mod memo;
mod slot;
pub mod stats;
pub mod vectors;
pub mod verify;
mod wasi_io;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aperture_store::ComponentStore;
use sha2::{Digest, Sha256};
use wasmtime::component::InstancePre;
use wasmtime::Trap;

pub use bindings::*;
pub use engine::CallLimits;
pub(crate) use engine::OnWorker;
use engine::{CallState, Runtime};
pub use lifecycle::{LifecycleError, Rollout};
pub use memo::{Lookup, MemoKey};
pub use slot::{ComponentInfo, Mode};
use slot::{Pin, Slot, Version};
use stats::{fingerprint, Outcome};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// The three slots.
    pub const ALL: [Which; 3] = [Which::Translator, Which::Safety, Which::Classifier];

    /// The slot named `name`.
    pub fn parse(name: &str) -> Option<Which> {
        Which::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The component built into the binary for this slot.
    pub fn embedded(self) -> &'static [u8] {
        match self {
            Which::Translator => embedded::TRANSLATOR,
            Which::Safety => embedded::SAFETY,
            Which::Classifier => embedded::CLASSIFIER,
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

impl Sources {
    /// The configured file of a slot.
    pub fn of(&self, which: Which) -> Option<&std::path::Path> {
        match which {
            Which::Translator => self.translator.as_deref(),
            Which::Safety => self.safety.as_deref(),
            Which::Classifier => self.classifier.as_deref(),
        }
    }
}

type TranslatorPre = translator::RequestTranslatorPre<CallState>;

/// A loaded translator and its cache namespace, asked once at load so every
/// request keys the cache with the namespace of the version that parsed it.
pub struct Translator {
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
/// The safety slot's pre-linked component.
pub type SafetyPre = safety::SafetyPolicyPre<CallState>;
/// The classifier slot's pre-linked component.
pub type ClassifierPre = classifier::ErrorClassifierPre<CallState>;

/// What differs between the three slots, so lifecycle code is written once.
pub(crate) trait Kind: Sized + Send + Sync + 'static {
    /// The slot.
    const WHICH: Which;
    /// The slot in `policies`.
    fn slot(policies: &Policies) -> &Slot<Self>;
    /// Type-check a linked component against the slot's world.
    fn check(runtime: &Runtime, pre: InstancePre<CallState>) -> wasmtime::Result<Self>;
}

impl Kind for Translator {
    const WHICH: Which = Which::Translator;
    fn slot(p: &Policies) -> &Slot<Self> {
        &p.translator
    }
    fn check(runtime: &Runtime, pre: InstancePre<CallState>) -> wasmtime::Result<Self> {
        Translator::prepare(runtime, pre)
    }
}

impl Kind for SafetyPre {
    const WHICH: Which = Which::Safety;
    fn slot(p: &Policies) -> &Slot<Self> {
        &p.safety
    }
    fn check(_: &Runtime, pre: InstancePre<CallState>) -> wasmtime::Result<Self> {
        SafetyPre::new(pre)
    }
}

impl Kind for ClassifierPre {
    const WHICH: Which = Which::Classifier;
    fn slot(p: &Policies) -> &Slot<Self> {
        &p.classifier
    }
    fn check(_: &Runtime, pre: InstancePre<CallState>) -> wasmtime::Result<Self> {
        ClassifierPre::new(pre)
    }
}

/// The versions one request uses, taken once at its start ([`Policies::pin`])
/// and used by every phase, so a swap never splits a request across versions.
#[derive(Clone)]
pub struct PolicySnapshot {
    /// The translator slot.
    pub translator: Arc<Pin<Translator>>,
    /// The safety slot.
    pub safety: Arc<Pin<SafetyPre>>,
    /// The classifier slot.
    pub classifier: Arc<Pin<ClassifierPre>>,
}

impl std::fmt::Debug for PolicySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.header())
    }
}

impl PolicySnapshot {
    /// Short sha256 of the version that served each slot (the canary's, unless
    /// it failed and the request fell back to the active version).
    pub fn served(&self) -> [&str; 3] {
        [
            self.translator.serving().info.short(),
            self.safety.serving().info.short(),
            self.classifier.serving().info.short(),
        ]
    }

    /// `translator=<8hex>,safety=<8hex>,classifier=<8hex>` (the `x-aperture-policy` header).
    pub fn header(&self) -> String {
        let [t, s, c] = self.served();
        format!("translator={t},safety={s},classifier={c}")
    }

    /// The cache namespace of the translator serving this request.
    pub fn namespace(&self) -> &str {
        &self.translator.serving().pre.namespace
    }
}

/// The three policy slots, the runtime they share and the registry they persist to.
pub struct Policies {
    runtime: Runtime,
    translator: Slot<Translator>,
    safety: Slot<SafetyPre>,
    classifier: Slot<ClassifierPre>,
    registry: ComponentStore,
    rollout: arc_swap::ArcSwap<Rollout>,
    /// Serialises lifecycle changes (each is a read-modify-write of a slot).
    ops: Mutex<()>,
    /// Shadow disagreements logged so far.
    disagreements_logged: AtomicU64,
    /// Results of `parse-request` and `screen` by version and input.
    memo: memo::Memo,
}

impl Policies {
    /// Load the embedded components (or `sources`' files) on an in-memory registry:
    /// for tests, benchmarks and offline tools.
    pub fn load(sources: &Sources, limits: CallLimits) -> Result<Policies, PolicyError> {
        let store = aperture_store::Store::in_memory()
            .map_err(|e| PolicyError::Runtime(format!("the in-memory registry: {e}")))?;
        Policies::open(store.components(), sources, limits, Rollout::default()).map_err(|e| match e
        {
            LifecycleError::Policy(p) => p,
            other => PolicyError::Runtime(other.to_string()),
        })
    }

    /// The runtime's call limits.
    pub fn limits(&self) -> CallLimits {
        self.runtime.limits
    }

    /// How many component calls run at once (the rest wait their turn).
    pub fn concurrent_calls(&self) -> u32 {
        self.runtime.concurrent_calls
    }

    /// The canary and shadow limits in force.
    pub fn rollout(&self) -> Rollout {
        **self.rollout.load()
    }

    /// Change the canary and shadow limits (live).
    pub fn set_rollout(&self, rollout: Rollout) {
        self.rollout.store(Arc::new(rollout));
    }

    /// Identity of the active version of each component.
    pub fn active(&self) -> [ComponentInfo; 3] {
        [
            self.translator.load().active.info.clone(),
            self.safety.load().active.info.clone(),
            self.classifier.load().active.info.clone(),
        ]
    }

    /// Take each slot's versions for one request; canary membership is decided by
    /// a hash of the request id (the same id always lands in the same bucket).
    pub fn pin(&self, request_id: &str) -> PolicySnapshot {
        let digest = Sha256::digest(request_id.as_bytes());
        let bucket = (u64::from_le_bytes(digest[..8].try_into().unwrap_or_default()) % 100) as u8;
        PolicySnapshot {
            translator: Arc::new(self.translator.pin(bucket, request_id)),
            safety: Arc::new(self.safety.pin(bucket, request_id)),
            classifier: Arc::new(self.classifier.pin(bucket, request_id)),
        }
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

    /// One call on one version, counted in its stats.
    fn invoke<P, R: Outcome>(
        &self,
        version: &Version<P>,
        which: Which,
        function: &'static str,
        f: &dyn Fn(&P, &mut wasmtime::Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        let _permit = self.runtime.gate.admit();
        let started = Instant::now();
        let mut store = self.runtime.store();
        let mut result = f(&version.pre, &mut store);
        if store.data().overran() {
            // Too long to hold an async worker (`engine::OnWorker`): redo it where blocking
            // is allowed, with the whole budget. A pure function gives the same answer.
            drop(store);
            result = tokio::task::block_in_place(|| {
                let mut store = self.runtime.store_off_worker();
                f(&version.pre, &mut store)
            });
        }
        let result = result.map_err(|e| fail(which, function, e));
        version.stats.record(started.elapsed(), &result);
        result
    }

    /// A call on a request's pinned versions: the canary (redone on the active
    /// version if it traps or times out) or the active version, and the shadow
    /// beside it, whose result is compared and never returned.
    fn call<P: Kind, R: Outcome>(
        &self,
        pin: &Pin<P>,
        function: &'static str,
        f: &dyn Fn(&P, &mut wasmtime::Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        let which = P::WHICH;
        if pin.on_canary() {
            let canary = pin.serving().clone();
            match self.invoke(&canary, which, function, f) {
                Err(e @ (PolicyError::Timeout { .. } | PolicyError::Trap { .. })) => {
                    pin.fall_back();
                    canary.stats.fell_back();
                    tracing::warn!(slot = which.name(), version = %canary.info.short(), function, error = %e.summary(), "Canary call failed; redone on the active version");
                    self.candidate_failed::<P>(&canary, &pin.active);
                }
                other => return other,
            }
        }
        let result = self.invoke(&pin.active, which, function, f);
        if let (Some(shadow), Ok(served)) = (&pin.shadow, &result) {
            let theirs = self.invoke(shadow, which, function, f);
            let disagreed = match &theirs {
                Ok(r) => format!("{r:?}") != format!("{served:?}"),
                Err(_) => true,
            };
            shadow.stats.shadowed(disagreed);
            if disagreed {
                let limit = self.rollout.load().log_disagreements;
                if self.disagreements_logged.fetch_add(1, Ordering::Relaxed) < limit {
                    let candidate = match &theirs {
                        Ok(r) => r.summary(),
                        Err(e) => e.summary(),
                    };
                    tracing::info!(
                        request_id = %pin.request_id,
                        slot = which.name(),
                        function,
                        active = %pin.active.info.short(),
                        candidate_version = %shadow.info.short(),
                        active_result = %served.summary(),
                        candidate_result = %candidate,
                        "Shadow disagreement"
                    );
                }
            }
        }
        result
    }

    /// Parse an OpenAI request body into the canonical request: always a real
    /// call (the benchmark times this); the gateway goes through the memo
    /// ([`Policies::parse_lookup`]).
    pub fn parse_request(
        &self,
        pin: &PolicySnapshot,
        body: &str,
    ) -> Result<Result<ImageRequest, UserError>, PolicyError> {
        self.call(&pin.translator, "parse-request", &|t: &Translator, s| {
            t.pre
                .instantiate(&mut *s)?
                .aperture_policy_translator()
                .call_parse_request(s, body)
        })
    }

    /// Build the Gemini body for one image.
    pub fn build_upstream_body(
        &self,
        pin: &PolicySnapshot,
        req: &ImageRequest,
        settings: &[SafetySetting],
    ) -> Result<String, PolicyError> {
        self.call(
            &pin.translator,
            "build-upstream-body",
            &|t: &Translator, s| {
                t.pre
                    .instantiate(&mut *s)?
                    .aperture_policy_translator()
                    .call_build_upstream_body(s, req, settings)
            },
        )
    }

    /// Interpret a successful Gemini body (image data already replaced by blob tokens).
    pub fn parse_response(
        &self,
        pin: &PolicySnapshot,
        body: &str,
    ) -> Result<Result<UpstreamOutcome, String>, PolicyError> {
        self.call(&pin.translator, "parse-response", &|t: &Translator, s| {
            t.pre
                .instantiate(&mut *s)?
                .aperture_policy_translator()
                .call_parse_response(s, body)
        })
    }

    /// Render the OpenAI response JSON (with blob tokens).
    pub fn build_response(
        &self,
        pin: &PolicySnapshot,
        result: &Generation,
        format: ResponseFormat,
        created: u64,
    ) -> Result<String, PolicyError> {
        self.call(&pin.translator, "build-response", &|t: &Translator, s| {
            t.pre
                .instantiate(&mut *s)?
                .aperture_policy_translator()
                .call_build_response(s, result, format, created)
        })
    }

    /// The memoized `parse-request` result of `body` on this request's translator,
    /// if any (counted as a memo hit); otherwise the key to remember the call under.
    /// Cheap enough for an async worker: a sha256 of the body and a map lookup.
    pub fn parse_lookup(
        &self,
        pin: &PolicySnapshot,
        body: &str,
    ) -> Lookup<Result<ImageRequest, UserError>> {
        let Some(version) = memo::eligible(&pin.translator) else {
            return Lookup::Miss(None);
        };
        let Some(key) = memo::parse_key(&version.info.sha256, body) else {
            return Lookup::Miss(None);
        };
        match self.memo.parse(&key) {
            Some(hit) => {
                version.stats.memo_hit();
                Lookup::Hit(hit)
            }
            None => Lookup::Miss(Some(key)),
        }
    }

    /// [`Policies::parse_request`], remembering its result under `key` (from
    /// [`Policies::parse_lookup`] on the same pin and body) when the call succeeded.
    pub fn parse_request_remember(
        &self,
        pin: &PolicySnapshot,
        body: &str,
        key: Option<MemoKey>,
    ) -> Result<Result<ImageRequest, UserError>, PolicyError> {
        let result = self.parse_request(pin, body);
        if let (Some(key), Ok(parsed)) = (key, &result) {
            if memo::eligible(&pin.translator).is_some() {
                self.memo.remember_parse(key, parsed.clone());
            }
        }
        result
    }

    /// `parse-request` through the memo: lookup, else call and remember.
    pub fn parse_request_memoized(
        &self,
        pin: &PolicySnapshot,
        body: &str,
    ) -> Result<Result<ImageRequest, UserError>, PolicyError> {
        match self.parse_lookup(pin, body) {
            Lookup::Hit(r) => Ok(r),
            Lookup::Miss(key) => self.parse_request_remember(pin, body, key),
        }
    }

    /// The memoized screening of this exact input on this request's safety
    /// version, if any (counted as a memo hit); otherwise the key to remember it under.
    pub fn screen_lookup(
        &self,
        pin: &PolicySnapshot,
        req: &ImageRequest,
        threshold: SafetyThreshold,
        config: &PolicyConfig,
    ) -> Lookup<Screening> {
        let Some(version) = memo::eligible(&pin.safety) else {
            return Lookup::Miss(None);
        };
        let Some(key) = memo::screen_key(&version.info.sha256, req, threshold, config) else {
            return Lookup::Miss(None);
        };
        match self.memo.screen(&key) {
            Some(hit) => {
                version.stats.memo_hit();
                Lookup::Hit(hit)
            }
            None => Lookup::Miss(Some(key)),
        }
    }

    /// [`Policies::screen`], remembering its result under `key` (from
    /// [`Policies::screen_lookup`] on the same pin and input) when the call succeeded.
    pub fn screen_remember(
        &self,
        pin: &PolicySnapshot,
        req: &ImageRequest,
        threshold: SafetyThreshold,
        config: &PolicyConfig,
        key: Option<MemoKey>,
    ) -> Result<Screening, PolicyError> {
        let result = self.screen(pin, req, threshold, config);
        if let (Some(key), Ok(screening)) = (key, &result) {
            if memo::eligible(&pin.safety).is_some() {
                self.memo.remember_screen(key, screening.clone());
            }
        }
        result
    }

    /// `screen` through the memo: lookup, else call and remember.
    pub fn screen_memoized(
        &self,
        pin: &PolicySnapshot,
        req: &ImageRequest,
        threshold: SafetyThreshold,
        config: &PolicyConfig,
    ) -> Result<Screening, PolicyError> {
        match self.screen_lookup(pin, req, threshold, config) {
            Lookup::Hit(s) => Ok(s),
            Lookup::Miss(key) => self.screen_remember(pin, req, threshold, config, key),
        }
    }

    /// Screen a canonical request at the effective threshold.
    pub fn screen(
        &self,
        pin: &PolicySnapshot,
        req: &ImageRequest,
        threshold: SafetyThreshold,
        config: &PolicyConfig,
    ) -> Result<Screening, PolicyError> {
        self.call(&pin.safety, "screen", &|p: &SafetyPre, s| {
            p.instantiate(&mut *s)?
                .aperture_policy_safety()
                .call_screen(s, req, threshold, config)
        })
    }

    /// Review an upstream verdict.
    pub fn review(
        &self,
        pin: &PolicySnapshot,
        verdict: &UpstreamVerdict,
    ) -> Result<ReviewOutcome, PolicyError> {
        self.call(&pin.safety, "review", &|p: &SafetyPre, s| {
            p.instantiate(&mut *s)?
                .aperture_policy_safety()
                .call_review(s, verdict)
        })
    }

    /// Classify a failed upstream call.
    pub fn classify(
        &self,
        pin: &PolicySnapshot,
        failure: &Failure,
    ) -> Result<Classification, PolicyError> {
        self.call(&pin.classifier, "classify", &|p: &ClassifierPre, s| {
            p.instantiate(&mut *s)?
                .aperture_policy_classifier()
                .call_classify(s, failure)
        })
    }
}

impl Outcome for Result<ImageRequest, UserError> {
    fn label(&self) -> Option<&'static str> {
        Some(if self.is_ok() { "ok" } else { "user_error" })
    }
    fn summary(&self) -> String {
        match self {
            Ok(r) => format!(
                "ok model={} n={} aspect_ratio={} image_size={} style={:?} prompt={}",
                r.model,
                r.n,
                r.aspect_ratio,
                r.image_size,
                r.style,
                fingerprint(&r.prompt)
            ),
            Err(e) => format!("user_error code={} param={:?}", e.code, e.param),
        }
    }
}

impl Outcome for String {
    fn label(&self) -> Option<&'static str> {
        None
    }
    fn summary(&self) -> String {
        fingerprint(self)
    }
}

impl Outcome for Result<UpstreamOutcome, String> {
    fn label(&self) -> Option<&'static str> {
        None
    }
    fn summary(&self) -> String {
        match self {
            Ok(UpstreamOutcome::Images(g)) => format!("images {}", g.images.len()),
            Ok(UpstreamOutcome::NoImage(v)) => {
                format!("no_image finish_reason={:?}", v.finish_reason)
            }
            Err(e) => format!("error {}", fingerprint(e)),
        }
    }
}

impl Outcome for Screening {
    fn label(&self) -> Option<&'static str> {
        Some(match self {
            Screening::Allow(_) => "allow",
            Screening::Deny(_) => "deny",
        })
    }
    fn summary(&self) -> String {
        match self {
            Screening::Allow(settings) => format!(
                "allow settings=[{}]",
                settings
                    .iter()
                    .map(|s| format!("{}={}", s.category, s.threshold))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Screening::Deny(d) => format!("deny reason={}", fingerprint(&d.reason)),
        }
    }
}

impl Outcome for ReviewOutcome {
    fn label(&self) -> Option<&'static str> {
        Some(match self {
            ReviewOutcome::Pass => "pass",
            ReviewOutcome::Blocked(_) => "block",
            ReviewOutcome::NoImage(_) => "no_image",
        })
    }
    fn summary(&self) -> String {
        match self {
            ReviewOutcome::Pass => "pass".into(),
            ReviewOutcome::Blocked(b) => format!("block categories={:?}", b.categories),
            ReviewOutcome::NoImage(r) => format!("no_image code={} status={}", r.code, r.status),
        }
    }
}

impl Outcome for Classification {
    fn label(&self) -> Option<&'static str> {
        Some(match self.error_type {
            ErrorType::UserError => "USER_ERROR",
            ErrorType::ApiError => "API_ERROR",
            ErrorType::NetworkError => "NETWORK_ERROR",
            ErrorType::SystemError => "SYSTEM_ERROR",
        })
    }
    fn summary(&self) -> String {
        format!(
            "{} code={} status={} retryable={} account_action={:?}",
            self.label().unwrap_or("-"),
            self.code,
            self.client_status,
            self.retryable,
            std::mem::discriminant(&self.account_action)
        )
    }
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
                            let pin = p.pin(&format!("{i}-{j}"));
                            p.parse_request(&pin, &format!(r#"{{"prompt":"burst {i} {j}"}}"#))
                                .map(|r| r.is_ok())
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

    /// Embedded components with the test guest `translator` active, calls limited to
    /// `timeout`, and a multi-thread runtime with one worker to call them on.
    fn translator_guest_on_one_worker(
        translator: &str,
        timeout: std::time::Duration,
    ) -> (std::sync::Arc<Policies>, tokio::runtime::Runtime) {
        let store = aperture_store::Store::in_memory().unwrap();
        let limits = CallLimits {
            timeout,
            ..CallLimits::default()
        };
        let p = std::sync::Arc::new(
            Policies::open(
                store.components(),
                &Sources::default(),
                limits,
                Rollout::default(),
            )
            .expect("embedded components load"),
        );
        let bytes = crate::policy::lifecycle::tests::guest(translator);
        let installed = p.install(Which::Translator, &bytes, None).unwrap();
        p.activate(Which::Translator, &installed.version.sha256)
            .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        (p, rt)
    }

    #[test]
    fn a_long_call_on_an_async_worker_moves_off_it_and_keeps_its_whole_budget() {
        let (p, rt) = translator_guest_on_one_worker(
            "translator_loop",
            std::time::Duration::from_millis(300),
        );
        rt.block_on(async {
            // Another task on the one worker: it must keep running while the call loops.
            let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
            let counter = ticks.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let p2 = p.clone();
            let call = |prompt: &'static str| {
                let p = p2.clone();
                async move {
                    tokio::spawn(async move {
                        let _on_worker = OnWorker::enter();
                        let pin = p.pin("inline");
                        let result = p.parse_request(&pin, &format!(r#"{{"prompt":"{prompt}"}}"#));
                        (result, OnWorker::here())
                    })
                    .await
                    .unwrap()
                }
            };
            let (ok, _) = call("a fox").await;
            assert!(matches!(ok, Ok(Ok(_))), "{ok:?}");
            let before = ticks.load(Ordering::Relaxed);
            let (looped, still_marked) = call("a fox, loop-me").await;
            // Stopped by the whole 300 ms budget (redone off the worker), not the worker allowance.
            assert!(
                matches!(looped, Err(PolicyError::Timeout { .. })),
                "{looped:?}"
            );
            assert!(still_marked, "the guard is still held inside the task");
            let during = ticks.load(Ordering::Relaxed) - before;
            assert!(
                during >= 20,
                "the worker's other task ticked {during} times during a 300 ms call"
            );
            assert!(!OnWorker::here(), "the mark ends with its guard");
            ticker.abort();
        });
        let stats = &p.translator.load().active.stats;
        assert_eq!(stats.calls(), 2, "the redo counts as the one call it is");
    }

    #[test]
    fn a_component_that_prints_on_an_async_worker_is_redone_off_it_not_a_host_panic() {
        // translator_trap panics on its trigger: Rust's std prints the message to stderr
        // (a blocking WASI write) before the trap.
        let (p, rt) =
            translator_guest_on_one_worker("translator_trap", CallLimits::default().timeout);
        let inline = |prompt: &'static str| {
            let p = p.clone();
            rt.block_on(rt.spawn(async move {
                let _on_worker = OnWorker::enter();
                let pin = p.pin("inline");
                p.parse_request(&pin, &format!(r#"{{"prompt":"{prompt}"}}"#))
            }))
            .expect("no host panic")
        };
        assert!(matches!(inline("a fox"), Ok(Ok(_))));
        let trapped = inline("a fox, trap-me");
        assert!(
            matches!(trapped, Err(PolicyError::Trap { .. })),
            "{trapped:?}"
        );
        assert!(matches!(inline("a fox again"), Ok(Ok(_))));
    }

    mod memoized {
        use super::super::*;
        use crate::policy::lifecycle::tests::{guest, policies};

        fn body(prompt: &str) -> String {
            serde_json::json!({ "prompt": prompt, "size": "1792x1024" }).to_string()
        }

        fn config(terms: &[&str]) -> PolicyConfig {
            PolicyConfig {
                deny_list: terms.iter().map(|t| t.to_string()).collect(),
            }
        }

        /// (calls, memo hits) of the active version of a slot.
        fn counts<P>(slot: &Slot<P>) -> (u64, u64) {
            let stats = &slot.load().active.stats;
            (stats.calls(), stats.memo_hits())
        }

        fn parsed(p: &Policies, id: &str, body: &str) -> Result<ImageRequest, UserError> {
            p.parse_request_memoized(&p.pin(id), body).expect("no trap")
        }

        fn screened(
            p: &Policies,
            id: &str,
            req: &ImageRequest,
            t: SafetyThreshold,
            c: &PolicyConfig,
        ) -> Screening {
            p.screen_memoized(&p.pin(id), req, t, c).expect("no trap")
        }

        #[test]
        fn a_hit_returns_the_same_result_without_a_call() {
            let store = aperture_store::Store::in_memory().unwrap();
            let p = policies(&store);
            let first = parsed(&p, "r1", &body("a lake"));
            assert_eq!(counts(&p.translator), (1, 0));
            let again = parsed(&p, "r2", &body("a lake"));
            assert_eq!(format!("{first:?}"), format!("{again:?}"));
            assert_eq!(counts(&p.translator), (1, 1));
            // A user error is a pure result too.
            let bad = r#"{"prompt":"a lake","n":99}"#;
            assert!(parsed(&p, "r3", bad).is_err());
            assert!(parsed(&p, "r4", bad).is_err());
            assert_eq!(counts(&p.translator), (2, 2));
            // The async-side lookup sees the entry too, and hands out no key on a hit.
            assert!(matches!(
                p.parse_lookup(&p.pin("r5"), &body("a lake")),
                Lookup::Hit(Ok(_))
            ));
            assert!(matches!(
                p.parse_lookup(&p.pin("r6"), &body("a hill")),
                Lookup::Miss(Some(_))
            ));
            assert_eq!(counts(&p.translator), (2, 3));

            let req = first.unwrap();
            let c = config(&["forbidden"]);
            let s1 = screened(&p, "s1", &req, SafetyThreshold::Medium, &c);
            let s2 = screened(&p, "s2", &req, SafetyThreshold::Medium, &c);
            assert!(matches!(s1, Screening::Allow(_)));
            assert_eq!(format!("{s1:?}"), format!("{s2:?}"));
            assert_eq!(counts(&p.safety), (1, 1));
        }

        #[test]
        fn a_threshold_or_deny_list_change_is_a_new_call() {
            let store = aperture_store::Store::in_memory().unwrap();
            let p = policies(&store);
            let req = parsed(&p, "r", &body("a lake at dawn")).unwrap();
            let allow = screened(&p, "s1", &req, SafetyThreshold::Medium, &config(&[]));
            assert!(matches!(allow, Screening::Allow(_)));
            let high = screened(&p, "s2", &req, SafetyThreshold::High, &config(&[]));
            assert_ne!(format!("{allow:?}"), format!("{high:?}"));
            let denied = screened(&p, "s3", &req, SafetyThreshold::Medium, &config(&["lake"]));
            assert!(matches!(denied, Screening::Deny(_)), "{denied:?}");
            assert_eq!(counts(&p.safety), (3, 0));
            // Back to the first input: remembered.
            let again = screened(&p, "s4", &req, SafetyThreshold::Medium, &config(&[]));
            assert_eq!(format!("{allow:?}"), format!("{again:?}"));
            assert_eq!(counts(&p.safety), (3, 1));
        }

        #[test]
        fn another_version_does_not_reuse_an_entry() {
            let store = aperture_store::Store::in_memory().unwrap();
            let p = policies(&store);
            let old_t = p.translator.load().active.clone();
            let old_s = p.safety.load().active.clone();
            let req = parsed(&p, "r1", &body("a lighthouse, aperture-canary-term")).unwrap();
            let c = config(&[]);
            assert!(matches!(
                screened(&p, "s1", &req, SafetyThreshold::Medium, &c),
                Screening::Allow(_)
            ));
            let ns = p
                .install(Which::Translator, &guest("translator_namespace"), None)
                .unwrap();
            let extra = p
                .install(Which::Safety, &guest("safety_extra_deny"), None)
                .unwrap();
            p.activate(Which::Translator, &ns.version.sha256).unwrap();
            p.activate(Which::Safety, &extra.version.sha256).unwrap();
            assert!(parsed(&p, "r2", &body("a lighthouse, aperture-canary-term")).is_ok());
            assert_eq!(
                counts(&p.translator),
                (1, 0),
                "the new translator was called"
            );
            // The new safety version denies what the old one allowed: really called.
            assert!(matches!(
                screened(&p, "s2", &req, SafetyThreshold::Medium, &c),
                Screening::Deny(_)
            ));
            assert_eq!(counts(&p.safety), (1, 0));
            assert_eq!((old_t.stats.calls(), old_t.stats.memo_hits()), (1, 0));
            assert_eq!((old_s.stats.calls(), old_s.stats.memo_hits()), (1, 0));
        }

        #[test]
        fn a_shadow_or_canary_pin_bypasses_the_memo() {
            let store = aperture_store::Store::in_memory().unwrap();
            let p = policies(&store);
            let req = parsed(&p, "r0", &body("a lake")).unwrap();
            let c = config(&[]);
            screened(&p, "s0", &req, SafetyThreshold::Medium, &c);
            assert_eq!(counts(&p.safety), (1, 0));
            // Shadow: the active version is called every time, beside the shadow.
            let extra = p
                .install(Which::Safety, &guest("safety_extra_deny"), None)
                .unwrap()
                .version;
            p.set_candidate(Which::Safety, &extra.sha256, Mode::Shadow)
                .unwrap();
            for i in 0..2 {
                screened(
                    &p,
                    &format!("s{}", i + 1),
                    &req,
                    SafetyThreshold::Medium,
                    &c,
                );
            }
            assert_eq!(counts(&p.safety), (3, 0));
            let shadow = p.safety.cached(&extra.sha256).unwrap();
            assert_eq!(shadow.stats.snapshot().shadow_calls, 2);
            // Canary: requests it serves are real calls on it; the others still hit the memo.
            let ns = p
                .install(Which::Translator, &guest("translator_namespace"), None)
                .unwrap()
                .version;
            p.set_candidate(Which::Translator, &ns.sha256, Mode::Canary(50))
                .unwrap();
            let pins: Vec<_> = (0..100).map(|i| p.pin(&format!("c{i}"))).collect();
            let (canary, rest): (Vec<_>, Vec<_>) =
                pins.iter().partition(|pin| pin.translator.on_canary());
            assert!(
                canary.len() >= 3 && rest.len() >= 3,
                "{} {}",
                canary.len(),
                rest.len()
            );
            for pin in &canary[..3] {
                assert!(p
                    .parse_request_memoized(pin, &body("a lake"))
                    .unwrap()
                    .is_ok());
            }
            let on_canary = p.translator.cached(&ns.sha256).unwrap();
            assert_eq!(
                (on_canary.stats.calls(), on_canary.stats.memo_hits()),
                (3, 0)
            );
            for pin in &rest[..3] {
                assert!(p
                    .parse_request_memoized(pin, &body("a lake"))
                    .unwrap()
                    .is_ok());
            }
            assert_eq!(counts(&p.translator), (1, 3));
        }

        #[test]
        fn an_input_over_the_cap_is_not_memoized() {
            let store = aperture_store::Store::in_memory().unwrap();
            let p = policies(&store);
            let long = "a lake ".repeat(memo::MAX_INPUT / 7 + 1);
            let b = body(&long);
            assert!(b.len() > memo::MAX_INPUT);
            let first = parsed(&p, "r1", &b);
            let again = parsed(&p, "r2", &b);
            assert_eq!(format!("{first:?}"), format!("{again:?}"));
            assert_eq!(counts(&p.translator), (2, 0));
            assert!(matches!(
                p.parse_lookup(&p.pin("r3"), &b),
                Lookup::Miss(None)
            ));
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
