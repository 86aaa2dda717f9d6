//! The policy lifecycle: install (verify, then store), shadow, canary, promote,
//! abort, activate and rollback, each one atomic slot swap persisted in the
//! registry with a lifecycle event and one log line; start-up from the stored
//! state; automatic canary aborts; and the compiled-artifact cache.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use aperture_store::{
    Candidate, CandidateMode, ComponentStore, ComponentVersion, LifecycleEvent, SlotState,
    StoreError, VersionState,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::engine::Runtime;
use super::slot::{ComponentInfo, Mode, Slot, SlotSet, Version};
use super::verify::{self, Report};
use super::{
    hex, CallLimits, ClassifierPre, Kind, Policies, PolicyError, SafetyPre, Sources, Translator,
    Which,
};

/// Limits of canary and shadow rollouts (`[policy]` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollout {
    /// A candidate is aborted when its traps plus timeouts reach this count (0: never by count).
    pub abort_after_failures: u64,
    /// ... or when its failure share exceeds the active version's by more than this (0..1),
    /// once it has made [`Rollout::min_calls_for_share`] calls.
    pub abort_failure_margin: f64,
    /// Calls a candidate makes before the share rule applies.
    pub min_calls_for_share: u64,
    /// How many shadow disagreements are logged (all are counted).
    pub log_disagreements: u64,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            abort_after_failures: 1,
            abort_failure_margin: 0.05,
            min_calls_for_share: 20,
            log_disagreements: 20,
        }
    }
}

/// Why a lifecycle operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The component failed verification; the report says why.
    #[error("the component was refused: {}", .0.refused.as_deref().unwrap_or("verification failed"))]
    Refused(Box<Report>),
    /// No such version, candidate or previous version.
    #[error("{0}")]
    NotFound(String),
    /// The operation does not apply (e.g. a candidate that is already active).
    #[error("{0}")]
    Conflict(String),
    /// Bad input (percent out of range, ambiguous reference).
    #[error("{0}")]
    Invalid(String),
    /// The registry failed.
    #[error("the component registry: {0}")]
    Store(#[from] StoreError),
    /// The component runtime failed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

fn store_error(e: StoreError) -> LifecycleError {
    match e {
        StoreError::NotFound(what) => LifecycleError::NotFound(format!(
            "no {what}; list the installed versions with `aperture policy list`"
        )),
        StoreError::Invalid(what) => LifecycleError::Invalid(what),
        StoreError::Duplicate(what) => {
            LifecycleError::Conflict(format!("{what} is already installed for another slot"))
        }
        other => LifecycleError::Store(other),
    }
}

/// The result of an install.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Installed {
    /// The stored version.
    pub version: ComponentVersion,
    /// False when the same bytes were already installed.
    pub new: bool,
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    crate::app::now_ms()
}

/// Hex of the engine's precompile compatibility hash: part of an artifact's key.
fn engine_hash(runtime: &Runtime) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    runtime.engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    format!("{:016x}", h.finish())
}

impl Policies {
    /// Open the slots from the registry: install the embedded defaults (label
    /// `embedded`) and any configured file (label `config`, activated when it differs
    /// from the active version), then load each slot's active version and candidate.
    pub fn open(
        registry: ComponentStore,
        sources: &Sources,
        limits: CallLimits,
        rollout: Rollout,
    ) -> Result<Policies, LifecycleError> {
        let runtime = Runtime::new(limits).map_err(|e| PolicyError::Runtime(format!("{e:#}")))?;
        let translator = start_slot::<Translator>(&runtime, &registry, sources)?;
        let safety = start_slot::<SafetyPre>(&runtime, &registry, sources)?;
        let classifier = start_slot::<ClassifierPre>(&runtime, &registry, sources)?;
        Ok(Policies {
            runtime,
            translator,
            safety,
            classifier,
            registry,
            rollout: arc_swap::ArcSwap::from_pointee(rollout),
            ops: std::sync::Mutex::new(()),
            disagreements_logged: Default::default(),
            memo: Default::default(),
        })
    }

    /// Verify `bytes` for `which` without storing anything (the offline command's core).
    pub fn verify(&self, which: Which, bytes: &[u8]) -> Report {
        verify_bytes(&self.runtime, &self.registry, which, bytes).0
    }

    /// Verify and store a version. Refused versions are not stored (the refusal is
    /// recorded in the history and logged).
    pub fn install(
        &self,
        which: Which,
        bytes: &[u8],
        label: Option<&str>,
    ) -> Result<Installed, LifecycleError> {
        install(
            &self.runtime,
            &self.registry,
            which,
            bytes,
            label,
            "installed by operator",
        )
    }

    /// Make `reference` the candidate of `which` in shadow or canary mode.
    pub fn set_candidate(
        &self,
        which: Which,
        reference: &str,
        mode: Mode,
    ) -> Result<Value, LifecycleError> {
        if let Mode::Canary(p) = mode {
            if !(1..=99).contains(&p) {
                return Err(LifecycleError::Invalid(format!(
                    "canary percent {p} must be between 1 and 99 (use `activate` or `promote` for 100)"
                )));
            }
        }
        match which {
            Which::Translator => self.candidate_op::<Translator>(reference, mode),
            Which::Safety => self.candidate_op::<SafetyPre>(reference, mode),
            Which::Classifier => self.candidate_op::<ClassifierPre>(reference, mode),
        }
    }

    /// Make `reference` active at once (it must have passed verification).
    pub fn activate(&self, which: Which, reference: &str) -> Result<Value, LifecycleError> {
        let version = self
            .registry
            .resolve(which.name(), reference)
            .map_err(store_error)?;
        self.make_active_in(which, &version.sha256, "activated", "operator")
    }

    /// The candidate becomes active; the old active becomes previous.
    pub fn promote(&self, which: Which) -> Result<Value, LifecycleError> {
        let state = self.registry.slot(which.name())?.unwrap_or_default();
        let Some(candidate) = state.candidate else {
            return Err(LifecycleError::NotFound(format!(
                "the {} slot has no candidate to promote; start one with `aperture policy shadow|canary {} REF`",
                which.name(),
                which.name()
            )));
        };
        self.make_active_in(which, &candidate.sha256, "promoted", "operator")
    }

    /// The previous version becomes active again.
    pub fn rollback(&self, which: Which) -> Result<Value, LifecycleError> {
        let state = self.registry.slot(which.name())?.unwrap_or_default();
        let Some(previous) = state.previous else {
            return Err(LifecycleError::NotFound(format!(
                "the {} slot has no previous version to roll back to; activate one by REF with `aperture policy activate {} REF`",
                which.name(),
                which.name()
            )));
        };
        self.make_active_in(which, &previous, "rolled_back", "operator")
    }

    /// Drop the candidate (back to 0%).
    pub fn abort(&self, which: Which) -> Result<Value, LifecycleError> {
        let reason = "aborted by operator";
        let done = match which {
            Which::Translator => self.abort_op::<Translator>(None, reason, false)?,
            Which::Safety => self.abort_op::<SafetyPre>(None, reason, false)?,
            Which::Classifier => self.abort_op::<ClassifierPre>(None, reason, false)?,
        };
        if !done {
            return Err(LifecycleError::NotFound(format!(
                "the {} slot has no candidate to abort",
                which.name()
            )));
        }
        self.slot_json(which)
    }

    /// The bytes of `reference` (the active version when `None`).
    pub fn export(
        &self,
        which: Which,
        reference: Option<&str>,
    ) -> Result<(ComponentVersion, Vec<u8>), LifecycleError> {
        let version = match reference {
            Some(r) => self
                .registry
                .resolve(which.name(), r)
                .map_err(store_error)?,
            None => {
                let state = self.registry.slot(which.name())?.unwrap_or_default();
                self.registry
                    .version(&state.active)?
                    .ok_or_else(|| LifecycleError::NotFound("no active version".into()))?
            }
        };
        let bytes = self
            .registry
            .bytes(&version.sha256)?
            .ok_or_else(|| LifecycleError::NotFound(format!("the bytes of {}", version.sha256)))?;
        Ok((version, bytes))
    }

    /// The lifecycle history, oldest first.
    pub fn history(
        &self,
        which: Option<Which>,
        limit: usize,
    ) -> Result<Vec<LifecycleEvent>, LifecycleError> {
        Ok(self.registry.history(which.map(Which::name), limit)?)
    }

    /// Every loaded version with its live counters and the part it plays now
    /// (`active`, `canary`, `shadow`, or `None` when it serves no traffic), for the
    /// metrics exporter.
    pub fn versions_for_metrics(&self) -> Vec<VersionMetrics> {
        let mut out = versions_of(Which::Translator, &self.translator);
        out.extend(versions_of(Which::Safety, &self.safety));
        out.extend(versions_of(Which::Classifier, &self.classifier));
        out
    }

    /// Every slot: its state, versions (with their roles and live counters).
    pub fn list(&self) -> Result<Value, LifecycleError> {
        let mut slots = serde_json::Map::new();
        for which in Which::ALL {
            slots.insert(which.name().into(), self.slot_json(which)?);
        }
        Ok(json!({"slots": slots}))
    }

    fn slot_json(&self, which: Which) -> Result<Value, LifecycleError> {
        let state = self.registry.slot(which.name())?.unwrap_or_default();
        let stats = match which {
            Which::Translator => stats_of(&self.translator),
            Which::Safety => stats_of(&self.safety),
            Which::Classifier => stats_of(&self.classifier),
        };
        let versions: Vec<Value> = self
            .registry
            .versions(Some(which.name()))?
            .into_iter()
            .map(|v| {
                let role = if v.sha256 == state.active {
                    "active"
                } else if state
                    .candidate
                    .as_ref()
                    .is_some_and(|c| c.sha256 == v.sha256)
                {
                    "candidate"
                } else if state.previous.as_deref() == Some(v.sha256.as_str()) {
                    "previous"
                } else {
                    "installed"
                };
                json!({
                    "sha256": v.sha256,
                    "short": &v.sha256[..8],
                    "label": v.label,
                    "size": v.size,
                    "wit_version": v.wit_version,
                    "installed_at_ms": v.installed_at_ms,
                    "state": v.state,
                    "role": role,
                    "report": {
                        "passed": v.report.get("passed"),
                        "vectors": v.report.get("vectors"),
                        "median_call_us": v.report.get("median_call_us"),
                        "max_call_us": v.report.get("max_call_us"),
                    },
                    "stats": stats.iter().find(|(sha, _)| *sha == v.sha256).map(|(_, s)| s),
                })
            })
            .collect();
        Ok(json!({
            "active": state.active,
            "candidate": state.candidate,
            "previous": state.previous,
            "versions": versions,
        }))
    }

    fn candidate_op<K: Kind>(&self, reference: &str, mode: Mode) -> Result<Value, LifecycleError> {
        let which = K::WHICH;
        let version = self
            .registry
            .resolve(which.name(), reference)
            .map_err(store_error)?;
        if version.state == VersionState::Failed {
            return Err(LifecycleError::Conflict(format!(
                "{} failed a rollout before; install a fixed version (or activate it by hand if you are sure)",
                &version.sha256[..8]
            )));
        }
        let loaded = self.load_version::<K>(&version.sha256)?;
        let _guard = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let slot = K::slot(self);
        let current = slot.load();
        if current.active.info.sha256 == version.sha256 {
            return Err(LifecycleError::Conflict(format!(
                "{} is already the active {} version",
                &version.sha256[..8],
                which.name()
            )));
        }
        let mut state = self.registry.slot(which.name())?.unwrap_or_default();
        let replaced = state.candidate.as_ref().map(|c| c.sha256.clone());
        state.candidate = Some(Candidate {
            sha256: version.sha256.clone(),
            mode: match mode {
                Mode::Shadow => CandidateMode::Shadow,
                Mode::Canary(percent) => CandidateMode::Canary { percent },
            },
        });
        let (event, reason) = match mode {
            Mode::Shadow => ("shadow_started", "operator".to_string()),
            Mode::Canary(p) => ("canary_started", format!("operator: {p}% of requests")),
        };
        let e = self.event(which, event, &version.sha256, replaced.clone(), &reason);
        self.registry.set_slot(which.name(), &state, Some(&e))?;
        slot.set(SlotSet {
            active: current.active.clone(),
            candidate: Some((loaded, mode)),
        });
        log_event(&e);
        self.slot_json(which)
    }

    /// [`Policies::make_active`] for the slot `which`.
    fn make_active_in(
        &self,
        which: Which,
        sha256: &str,
        event: &str,
        reason: &str,
    ) -> Result<Value, LifecycleError> {
        match which {
            Which::Translator => self.make_active::<Translator>(sha256, event, reason),
            Which::Safety => self.make_active::<SafetyPre>(sha256, event, reason),
            Which::Classifier => self.make_active::<ClassifierPre>(sha256, event, reason),
        }
    }

    /// Make `sha256` active (`event`: activated, promoted, rolled_back).
    pub(crate) fn make_active<K: Kind>(
        &self,
        sha256: &str,
        event: &str,
        reason: &str,
    ) -> Result<Value, LifecycleError> {
        let which = K::WHICH;
        let loaded = self.load_version::<K>(sha256)?;
        {
            let _guard = self.ops.lock().unwrap_or_else(|p| p.into_inner());
            let slot = K::slot(self);
            let current = slot.load();
            let old = current.active.info.sha256.clone();
            if old == sha256 {
                return Err(LifecycleError::Conflict(format!(
                    "{} is already the active {} version",
                    &sha256[..8],
                    which.name()
                )));
            }
            let mut state = self.registry.slot(which.name())?.unwrap_or_default();
            state.active = sha256.to_string();
            state.previous = Some(old.clone());
            let keep_candidate = current
                .candidate
                .as_ref()
                .filter(|(c, _)| c.info.sha256 != sha256)
                .cloned();
            if keep_candidate.is_none() {
                state.candidate = None;
            }
            let e = self.event(which, event, sha256, Some(old), reason);
            self.registry.set_slot(which.name(), &state, Some(&e))?;
            slot.set(SlotSet {
                active: loaded,
                candidate: keep_candidate,
            });
            log_event(&e);
        }
        self.slot_json(which)
    }

    /// Drop the candidate (only if it is `only`, when given). Returns whether one was dropped.
    fn abort_op<K: Kind>(
        &self,
        only: Option<&str>,
        reason: &str,
        failed: bool,
    ) -> Result<bool, LifecycleError> {
        let which = K::WHICH;
        let _guard = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let slot = K::slot(self);
        let current = slot.load();
        let Some((candidate, _)) = &current.candidate else {
            return Ok(false);
        };
        if only.is_some_and(|sha| sha != candidate.info.sha256) {
            return Ok(false);
        }
        let sha = candidate.info.sha256.clone();
        slot.set(SlotSet {
            active: current.active.clone(),
            candidate: None,
        });
        let mut state = self.registry.slot(which.name())?.unwrap_or_default();
        state.candidate = None;
        let e = self.event(
            which,
            "aborted",
            &sha,
            Some(current.active.info.sha256.clone()),
            reason,
        );
        self.registry.set_slot(which.name(), &state, Some(&e))?;
        if failed {
            self.registry
                .set_version_state(&sha, VersionState::Failed)?;
        }
        log_event(&e);
        Ok(true)
    }

    /// A candidate's call trapped or timed out: abort it if the rollout limits say so.
    pub(crate) fn candidate_failed<K: Kind>(&self, candidate: &Version<K>, active: &Version<K>) {
        let limits = self.rollout();
        let failures = candidate.stats.failures();
        let calls = candidate.stats.calls();
        let (mine, theirs) = (
            candidate.stats.failure_share(),
            active.stats.failure_share(),
        );
        let reason = if limits.abort_after_failures > 0 && failures >= limits.abort_after_failures {
            format!(
                "automatic: {failures} traps/timeouts reached the limit of {}",
                limits.abort_after_failures
            )
        } else if calls >= limits.min_calls_for_share && mine > theirs + limits.abort_failure_margin
        {
            format!(
                "automatic: failure share {:.1}% exceeds the active version's {:.1}% by more than {:.1} points",
                mine * 100.0,
                theirs * 100.0,
                limits.abort_failure_margin * 100.0
            )
        } else {
            return;
        };
        if let Err(e) = self.abort_op::<K>(Some(&candidate.info.sha256), &reason, true) {
            tracing::error!(slot = K::WHICH.name(), version = %candidate.info.short(), error = %e, "the automatic abort could not be recorded");
        }
    }

    fn event(
        &self,
        which: Which,
        event: &str,
        version: &str,
        previous: Option<String>,
        reason: &str,
    ) -> LifecycleEvent {
        LifecycleEvent {
            at_ms: now_ms(),
            slot: which.name().into(),
            event: event.into(),
            version: version.into(),
            previous,
            reason: reason.into(),
        }
    }

    /// The loaded version `sha256` of slot `K`, compiling it (or reading its cached
    /// artifact) on first use.
    fn load_version<K: Kind>(&self, sha256: &str) -> Result<Arc<Version<K>>, LifecycleError> {
        let slot = K::slot(self);
        if let Some(v) = slot.cached(sha256) {
            return Ok(v);
        }
        let v = Arc::new(load_stored::<K>(&self.runtime, &self.registry, sha256)?);
        slot.remember(v.clone());
        Ok(v)
    }
}

/// One loaded version as the metrics exporter sees it.
#[derive(Debug, Clone)]
pub struct VersionMetrics {
    /// The slot name.
    pub slot: &'static str,
    /// The first 8 hex digits of its sha256.
    pub version: String,
    /// Its label (`embedded`, `config`, an operator's) or `-`.
    pub label: String,
    /// `active`, `canary` or `shadow`; `None` when it serves no traffic.
    pub role: Option<&'static str>,
    /// Its live counters.
    pub stats: super::stats::StatsSnapshot,
}

fn versions_of<P>(which: Which, slot: &Slot<P>) -> Vec<VersionMetrics> {
    let set = slot.load();
    slot.all_loaded()
        .into_iter()
        .map(|v| {
            let role = if Arc::ptr_eq(&v, &set.active) {
                Some("active")
            } else {
                match &set.candidate {
                    Some((c, mode)) if Arc::ptr_eq(c, &v) => Some(match mode {
                        super::slot::Mode::Canary(_) => "canary",
                        super::slot::Mode::Shadow => "shadow",
                    }),
                    _ => None,
                }
            };
            VersionMetrics {
                slot: which.name(),
                version: v.info.short().to_string(),
                label: v.info.source.clone(),
                role,
                stats: v.stats.snapshot(),
            }
        })
        .collect()
}

fn stats_of<P>(slot: &Slot<P>) -> Vec<(String, super::stats::StatsSnapshot)> {
    slot.all_loaded()
        .into_iter()
        .map(|v| (v.info.sha256.clone(), v.stats.snapshot()))
        .collect()
}

/// One line per lifecycle event.
fn log_event(e: &LifecycleEvent) {
    let short = |s: &str| s.get(..8).unwrap_or(s).to_string();
    tracing::info!(
        target: "aperture::policy",
        slot = %e.slot,
        event = %e.event,
        version = %short(&e.version),
        previous = %e.previous.as_deref().map(short).unwrap_or_else(|| "-".into()),
        reason = %e.reason,
        "Policy lifecycle event"
    );
}

/// Compile `bytes`, reusing a cached artifact for this sha256 and engine.
fn compile(
    runtime: &Runtime,
    registry: &ComponentStore,
    sha256: &str,
    bytes: &[u8],
) -> wasmtime::Result<Component> {
    let key = format!("{sha256}:{}", engine_hash(runtime));
    if let Ok(Some(artifact)) = registry.artifact(&key) {
        // SAFETY: the artifact was produced by `Component::serialize` of an engine with
        // the same compatibility hash and read back from our own store, which no
        // other party writes; wasmtime still checks its header and engine settings.
        match unsafe { Component::deserialize(&runtime.engine, &artifact) } {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::warn!(version = %&sha256[..8], error = %e, "cached compiled component unusable; recompiling")
            }
        }
    }
    let component = Component::new(&runtime.engine, bytes)?;
    match component.serialize() {
        Ok(artifact) => {
            if let Err(e) = registry.put_artifact(sha256, &key, &artifact) {
                tracing::warn!(version = %&sha256[..8], error = %e, "cannot cache the compiled component");
            }
        }
        Err(e) => {
            tracing::warn!(version = %&sha256[..8], error = %e, "cannot serialize the compiled component")
        }
    }
    Ok(component)
}

fn verify_bytes(
    runtime: &Runtime,
    registry: &ComponentStore,
    which: Which,
    bytes: &[u8],
) -> (Report, Option<Component>) {
    let sha = hex(&Sha256::digest(bytes));
    let compile = |b: &[u8]| compile(runtime, registry, &sha, b);
    match which {
        Which::Translator => verify::verify(runtime, which, bytes, compile, |p| {
            Translator::check(runtime, p).map(drop)
        }),
        Which::Safety => verify::verify(runtime, which, bytes, compile, |p| {
            SafetyPre::check(runtime, p).map(drop)
        }),
        Which::Classifier => verify::verify(runtime, which, bytes, compile, |p| {
            ClassifierPre::check(runtime, p).map(drop)
        }),
    }
}

fn install(
    runtime: &Runtime,
    registry: &ComponentStore,
    which: Which,
    bytes: &[u8],
    label: Option<&str>,
    reason: &str,
) -> Result<Installed, LifecycleError> {
    let sha = hex(&Sha256::digest(bytes));
    if let Some(existing) = registry.version(&sha)? {
        if existing.slot == which.name() {
            // Same bytes: a no-op that returns the stored version (a first label is kept).
            let (version, _) = registry
                .install(
                    &ComponentVersion {
                        label: label.map(str::to_string),
                        ..existing
                    },
                    bytes,
                )
                .map_err(store_error)?;
            return Ok(Installed {
                version,
                new: false,
            });
        }
    }
    let (report, component) = verify_bytes(runtime, registry, which, bytes);
    if component.is_none() {
        let e = LifecycleEvent {
            at_ms: now_ms(),
            slot: which.name().into(),
            event: "refused".into(),
            version: sha,
            previous: None,
            reason: report.refused.clone().unwrap_or_default(),
        };
        let _ = registry.record(&e);
        log_event(&e);
        return Err(LifecycleError::Refused(Box::new(report)));
    }
    let version = ComponentVersion {
        slot: which.name().into(),
        sha256: sha.clone(),
        size: bytes.len() as u64,
        label: label.map(str::to_string),
        wit_version: report.wit_version.clone().unwrap_or_default(),
        installed_at_ms: now_ms(),
        report: serde_json::to_value(&report).unwrap_or(Value::Null),
        state: VersionState::Verified,
    };
    let (version, new) = registry.install(&version, bytes).map_err(store_error)?;
    if new {
        let e = LifecycleEvent {
            at_ms: now_ms(),
            slot: which.name().into(),
            event: "installed".into(),
            version: sha,
            previous: None,
            reason: format!(
                "{reason}; {} of {} vectors pass",
                report.vectors_passed, report.vectors
            ),
        };
        let _ = registry.record(&e);
        log_event(&e);
    }
    Ok(Installed { version, new })
}

/// Load a stored version of slot `K` (compiled or from the artifact cache).
fn load_stored<K: Kind>(
    runtime: &Runtime,
    registry: &ComponentStore,
    sha256: &str,
) -> Result<Version<K>, LifecycleError> {
    let which = K::WHICH;
    let meta = registry
        .version(sha256)?
        .ok_or_else(|| LifecycleError::NotFound(format!("no {} version {sha256}", which.name())))?;
    if meta.slot != which.name() {
        return Err(LifecycleError::Conflict(format!(
            "{} is a {} component, not a {} one",
            &sha256[..8],
            meta.slot,
            which.name()
        )));
    }
    let bytes = registry
        .bytes(sha256)?
        .ok_or_else(|| LifecycleError::NotFound(format!("the bytes of {sha256}")))?;
    let invalid = |e: wasmtime::Error| PolicyError::Invalid {
        which,
        detail: format!("{e:#}"),
    };
    let component = compile(runtime, registry, sha256, &bytes).map_err(invalid)?;
    let pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(invalid)?;
    let pre = K::check(runtime, pre).map_err(invalid)?;
    Ok(Version {
        pre,
        info: ComponentInfo {
            slot: which.name(),
            source: meta.label.unwrap_or_else(|| "-".into()),
            sha256: sha256.to_string(),
            size: bytes.len(),
        },
        stats: Default::default(),
    })
}

/// Start one slot: embedded default and configured file installed, stored state loaded.
fn start_slot<K: Kind>(
    runtime: &Runtime,
    registry: &ComponentStore,
    sources: &Sources,
) -> Result<Slot<K>, LifecycleError> {
    let which = K::WHICH;
    let embedded = install(
        runtime,
        registry,
        which,
        which.embedded(),
        Some("embedded"),
        "embedded in this binary",
    )?
    .version;
    let configured = match sources.of(which) {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| PolicyError::Invalid {
                which,
                detail: format!("cannot read {}: {e}", path.display()),
            })?;
            let installed = install(
                runtime,
                registry,
                which,
                &bytes,
                None,
                &format!("[components] {} = {}", which.name(), path.display()),
            )
            .map_err(|e| match e {
                LifecycleError::Refused(report) => LifecycleError::Policy(PolicyError::Invalid {
                    which,
                    detail: format!(
                        "{} was refused: {}",
                        path.display(),
                        report.refused.as_deref().unwrap_or("verification failed")
                    ),
                }),
                other => other,
            })?;
            Some((installed.version, path.display().to_string()))
        }
    };
    let stored = registry.slot(which.name())?;
    let mut state = stored.clone().unwrap_or_else(|| SlotState {
        active: embedded.sha256.clone(),
        candidate: None,
        previous: None,
    });
    let mut event = None;
    if stored.is_none() {
        event = Some((
            "activated",
            embedded.sha256.clone(),
            None,
            "first start: the embedded default".to_string(),
        ));
    }
    if let Some((version, path)) = &configured {
        if version.sha256 != state.active {
            let previous = Some(state.active.clone()).filter(|_| stored.is_some());
            state.previous = previous.clone();
            state.active = version.sha256.clone();
            if state
                .candidate
                .as_ref()
                .is_some_and(|c| c.sha256 == version.sha256)
            {
                state.candidate = None;
            }
            event = Some((
                "activated",
                version.sha256.clone(),
                previous,
                format!("configuration: [components] {} = {path}", which.name()),
            ));
        }
    }
    let mut active = match load_stored::<K>(runtime, registry, &state.active) {
        Ok(v) => v,
        Err(e) => {
            // A stored version this host cannot run (e.g. after an upgrade of the WIT):
            // serve the embedded default rather than not start.
            tracing::error!(slot = which.name(), version = %state.active.get(..8).unwrap_or("-"), error = %e, "the stored active version cannot be loaded; serving the embedded default");
            let previous = Some(state.active.clone());
            state.active = embedded.sha256.clone();
            state.previous = previous.clone();
            event = Some((
                "activated",
                embedded.sha256.clone(),
                previous,
                format!("start-up: the stored active version could not be loaded: {e}"),
            ));
            load_stored::<K>(runtime, registry, &embedded.sha256)?
        }
    };
    if let Some((version, path)) = &configured {
        if version.sha256 == active.info.sha256 {
            active.info.source = path.clone();
        }
    }
    let slot = Slot::new(Arc::new(active));
    if let Some(candidate) = state.candidate.clone() {
        match load_stored::<K>(runtime, registry, &candidate.sha256) {
            Ok(v) => {
                let v = Arc::new(v);
                slot.remember(v.clone());
                let mode = match candidate.mode {
                    CandidateMode::Shadow => Mode::Shadow,
                    CandidateMode::Canary { percent } => Mode::Canary(percent),
                };
                let current = slot.load();
                slot.set(SlotSet {
                    active: current.active.clone(),
                    candidate: Some((v, mode)),
                });
            }
            Err(e) => {
                tracing::error!(slot = which.name(), version = %&candidate.sha256[..8], error = %e, "the stored candidate cannot be loaded; dropping it");
                state.candidate = None;
                event = Some((
                    "aborted",
                    candidate.sha256.clone(),
                    Some(state.active.clone()),
                    format!("start-up: the candidate could not be loaded: {e}"),
                ));
            }
        }
    }
    if stored.as_ref() != Some(&state) || event.is_some() {
        let e = event.map(|(name, version, previous, reason)| LifecycleEvent {
            at_ms: now_ms(),
            slot: which.name().into(),
            event: name.into(),
            version,
            previous,
            reason,
        });
        registry.set_slot(which.name(), &state, e.as_ref())?;
        if let Some(e) = &e {
            log_event(e);
        }
    }
    Ok(slot)
}

/// Verify a file offline (no gateway, no store): `aperture policy verify`.
pub fn verify_offline(
    which: Which,
    bytes: &[u8],
    limits: CallLimits,
) -> Result<Report, PolicyError> {
    let runtime = Runtime::new(limits).map_err(|e| PolicyError::Runtime(format!("{e:#}")))?;
    let store = aperture_store::Store::in_memory()
        .map_err(|e| PolicyError::Runtime(format!("the in-memory registry: {e}")))?;
    Ok(verify_bytes(&runtime, &store.components(), which, bytes).0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::policy::{PolicyConfig, SafetyThreshold, Screening};

    /// The bytes of a test guest built by build.rs.
    pub(crate) fn guest(stem: &str) -> Vec<u8> {
        let path = format!("{}/{stem}.wasm", env!("APERTURE_GUEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("guest {path}: {e}"))
    }

    /// The embedded components, over `store`'s component registry.
    pub(crate) fn policies(store: &aperture_store::Store) -> Policies {
        Policies::open(
            store.components(),
            &Sources::default(),
            CallLimits::default(),
            Rollout::default(),
        )
        .expect("embedded components load")
    }

    fn body(prompt: &str) -> String {
        json!({ "prompt": prompt }).to_string()
    }

    fn request(prompt: &str) -> crate::policy::ImageRequest {
        crate::policy::ImageRequest {
            model: "gemini-3-pro-image".into(),
            upstream_model: "gemini-3-pro-image-preview".into(),
            prompt: prompt.into(),
            n: 1,
            aspect_ratio: "1:1".into(),
            image_size: "1K".into(),
            style: None,
            safety_threshold: None,
            response_format: crate::policy::ResponseFormat::B64Json,
            output_format: None,
        }
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let store = aperture_store::Store::in_memory().unwrap();
        let p = policies(&store);
        let refused = |which, bytes: &[u8]| match p.install(which, bytes, None) {
            Err(LifecycleError::Refused(r)) => *r,
            other => panic!("not refused: {other:?}"),
        };
        let garbage = refused(Which::Safety, b"not wasm at all");
        assert!(garbage.refused.unwrap().contains("not WebAssembly"));
        let core = wat::parse_str("(module)").unwrap();
        let core = refused(Which::Safety, &core);
        assert!(core
            .refused
            .unwrap()
            .contains("core WebAssembly module, not a component"));
        let wrong = refused(Which::Translator, crate::policy::embedded::CLASSIFIER);
        assert!(wrong
            .refused
            .unwrap()
            .contains("exports aperture:policy/classifier@0.2.0"));
        let failing = refused(Which::Safety, &guest("safety_fails_vector"));
        assert_eq!(failing.failures.len(), 1, "{failing:?}");
        let f = &failing.failures[0];
        assert_eq!(f.name, "finish SPII blocks");
        assert_eq!(f.function, "review");
        assert_ne!(f.expected, f.actual);
        assert!(f.input.is_array());
        assert_eq!(failing.vectors, failing.vectors_passed + 1);
        // Nothing refused was stored; each refusal is in the history.
        assert_eq!(store.components().versions(None).unwrap().len(), 3);
        let refusals = p
            .history(None, 100)
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "refused")
            .count();
        assert_eq!(refusals, 4);
    }

    #[test]
    fn a_request_keeps_its_versions_across_activate_and_rollback() {
        let store = aperture_store::Store::in_memory().unwrap();
        let p = policies(&store);
        let embedded = p.active()[1].sha256.clone();
        let extra = p
            .install(Which::Safety, &guest("safety_extra_deny"), Some("extra"))
            .unwrap();
        assert!(extra.new);
        assert!(
            !p.install(Which::Safety, &guest("safety_extra_deny"), None)
                .unwrap()
                .new
        );
        let config = PolicyConfig { deny_list: vec![] };
        let term = request("a lighthouse, aperture-canary-term");
        let before = p.pin("r1");
        p.activate(Which::Safety, "extra").unwrap();
        let after = p.pin("r2");
        let screen = |pin| {
            p.screen(pin, &term, SafetyThreshold::Medium, &config)
                .unwrap()
        };
        assert!(matches!(screen(&before), Screening::Allow(_)));
        assert!(matches!(screen(&after), Screening::Deny(_)));
        assert_eq!(before.served()[1], &embedded[..8]);
        assert_eq!(after.served()[1], &extra.version.sha256[..8]);
        p.rollback(Which::Safety).unwrap();
        assert!(matches!(screen(&p.pin("r3")), Screening::Allow(_)));
        assert_eq!(p.active()[1].sha256, embedded);
        let state = store.components().slot("safety").unwrap().unwrap();
        assert_eq!(
            state.previous.as_deref(),
            Some(extra.version.sha256.as_str())
        );
        let events: Vec<String> = p
            .history(Some(Which::Safety), 10)
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(
            events,
            // The embedded default installed and activated at the first start, then ours.
            [
                "installed",
                "activated",
                "installed",
                "activated",
                "rolled_back"
            ]
        );
    }

    #[test]
    fn a_canary_failing_more_often_than_the_active_version_aborts_by_share() {
        let store = aperture_store::Store::in_memory().unwrap();
        // The count rule off: only the failure share can abort the canary.
        let rollout = Rollout {
            abort_after_failures: 0,
            abort_failure_margin: 0.05,
            min_calls_for_share: 20,
            ..Rollout::default()
        };
        let p = Policies::open(
            store.components(),
            &Sources::default(),
            CallLimits::default(),
            rollout,
        )
        .unwrap();
        let trap = p
            .install(Which::Translator, &guest("translator_trap"), None)
            .unwrap()
            .version;
        p.set_candidate(Which::Translator, &trap.sha256[..8], Mode::Canary(99))
            .unwrap();
        let pins: Vec<_> = (0..200)
            .map(|i| p.pin(&format!("share-{i}")))
            .filter(|pin| pin.translator.on_canary())
            .take(20)
            .collect();
        assert_eq!(pins.len(), 20);
        let candidate = || {
            store
                .components()
                .slot("translator")
                .unwrap()
                .unwrap()
                .candidate
        };
        for pin in &pins[..18] {
            assert!(p.parse_request(pin, &body("a fox")).unwrap().is_ok());
        }
        // A trap at the 19th call: under the minimum calls, the share does not count yet.
        assert!(p
            .parse_request(&pins[18], &body("a fox, trap-me"))
            .unwrap()
            .is_ok());
        assert!(candidate().is_some(), "aborted before the minimum calls");
        // A second one at the 20th: 10% against the active version's 0%, more than 5 points.
        assert!(p
            .parse_request(&pins[19], &body("a fox, trap-me"))
            .unwrap()
            .is_ok());
        assert_eq!(candidate(), None);
        let last = p.history(Some(Which::Translator), 1).unwrap().remove(0);
        assert_eq!(last.event, "aborted");
        assert!(
            last.reason.contains("failure share 10.0%"),
            "{}",
            last.reason
        );
        let stored = store.components().version(&trap.sha256).unwrap().unwrap();
        assert_eq!(stored.state, VersionState::Failed);
    }

    #[test]
    fn a_trapping_canary_falls_back_and_aborts_itself() {
        let store = aperture_store::Store::in_memory().unwrap();
        let p = policies(&store);
        let trap = p
            .install(Which::Translator, &guest("translator_trap"), None)
            .unwrap()
            .version;
        p.set_candidate(Which::Translator, &trap.sha256[..8], Mode::Canary(99))
            .unwrap();
        // Requests in the canary share are served by it (no trap without the trigger).
        let on_canary: Vec<_> = (0..50)
            .map(|i| p.pin(&format!("req-{i}")))
            .filter(|pin| pin.translator.on_canary())
            .collect();
        assert!(on_canary.len() > 40, "{}", on_canary.len());
        assert!(p
            .parse_request(&on_canary[0], &body("a fox"))
            .unwrap()
            .is_ok());
        // A trap is redone on the active version: the caller sees a success.
        let pin = &on_canary[1];
        let parsed = p.parse_request(pin, &body("a fox, trap-me")).unwrap();
        assert!(parsed.is_ok());
        assert!(
            !pin.translator.on_canary(),
            "the rest of the request runs on the active version"
        );
        // One failure reaches the default limit: the candidate is gone, marked failed.
        assert!(p.pin("req-next").translator.canary.is_none());
        let state = store.components().slot("translator").unwrap().unwrap();
        assert_eq!(state.candidate, None);
        let stored = store.components().version(&trap.sha256).unwrap().unwrap();
        assert_eq!(stored.state, VersionState::Failed);
        let last = p.history(Some(Which::Translator), 1).unwrap().remove(0);
        assert_eq!(last.event, "aborted");
        assert!(last.reason.starts_with("automatic"), "{}", last.reason);
        // A failed version is not offered again as a candidate.
        assert!(matches!(
            p.set_candidate(Which::Translator, &trap.sha256, Mode::Shadow),
            Err(LifecycleError::Conflict(_))
        ));
    }

    #[test]
    fn shadow_counts_disagreements_and_serves_the_active_result() {
        let store = aperture_store::Store::in_memory().unwrap();
        let p = policies(&store);
        let extra = p
            .install(Which::Safety, &guest("safety_extra_deny"), None)
            .unwrap()
            .version;
        p.set_candidate(Which::Safety, &extra.sha256, Mode::Shadow)
            .unwrap();
        let config = PolicyConfig { deny_list: vec![] };
        for (i, prompt) in ["a lake", "a lake, aperture-canary-term", "a hill"]
            .iter()
            .enumerate()
        {
            let pin = p.pin(&format!("s{i}"));
            let r = p
                .screen(&pin, &request(prompt), SafetyThreshold::Medium, &config)
                .unwrap();
            assert!(matches!(r, Screening::Allow(_)), "{prompt}: {r:?}");
        }
        let list = p.list().unwrap();
        let versions = list["slots"]["safety"]["versions"].as_array().unwrap();
        let shadow = versions
            .iter()
            .find(|v| v["role"] == "candidate")
            .expect("the candidate is listed");
        assert_eq!(shadow["stats"]["shadow_calls"], 3, "{shadow:#}");
        assert_eq!(shadow["stats"]["disagreements"], 1, "{shadow:#}");
        assert_eq!(shadow["stats"]["outcomes"]["deny"], 1, "{shadow:#}");
        p.promote(Which::Safety).unwrap();
        assert_eq!(p.active()[1].sha256, extra.sha256);
    }

    #[test]
    fn a_restart_serves_the_same_active_and_candidate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let (active, candidate) = {
            let store = aperture_store::Store::open(&path).unwrap();
            let p = policies(&store);
            let ns = p
                .install(Which::Translator, &guest("translator_namespace"), None)
                .unwrap()
                .version;
            let extra = p
                .install(Which::Safety, &guest("safety_extra_deny"), None)
                .unwrap()
                .version;
            p.activate(Which::Translator, &ns.sha256).unwrap();
            p.set_candidate(Which::Safety, &extra.sha256, Mode::Canary(25))
                .unwrap();
            (ns.sha256, extra.sha256)
        };
        let store = aperture_store::Store::open(&path).unwrap();
        let p = policies(&store);
        assert_eq!(p.active()[0].sha256, active);
        let set = p.safety.load();
        let (c, mode) = set.candidate.as_ref().expect("candidate kept");
        assert_eq!(c.info.sha256, candidate);
        assert_eq!(*mode, Mode::Canary(25));
    }
}
