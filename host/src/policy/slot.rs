//! A swappable slot: the active version of one component and its optional
//! candidate (shadow or canary), held in one `ArcSwap` so activate, promote,
//! rollback and abort are each one atomic store. A request pins the slot once
//! ([`Slot::pin`]) and finishes on those versions even if a swap lands meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::stats::VersionStats;

/// Where a component version came from and what it is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentInfo {
    /// The slot name: `translator`, `safety` or `classifier`.
    pub slot: &'static str,
    /// The version's label (`embedded`, `config`, an operator's) or `-`.
    pub source: String,
    /// Hex sha256 of the component bytes.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: usize,
}

impl ComponentInfo {
    /// The first 8 hex digits of the sha256: how logs and headers name a version.
    pub fn short(&self) -> &str {
        &self.sha256[..8.min(self.sha256.len())]
    }
}

/// One loaded, type-checked component version.
pub struct Version<P> {
    /// The bindgen `*Pre`: pre-linked and checked against the world.
    pub pre: P,
    /// Identity of this version.
    pub info: ComponentInfo,
    /// Its live counters.
    pub stats: Arc<VersionStats>,
}

/// How a candidate takes part in traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Called beside the active version, never served.
    Shadow,
    /// Serves this percent of requests.
    Canary(u8),
}

/// What a slot serves: the active version and the candidate.
pub struct SlotSet<P> {
    /// The active version.
    pub active: Arc<Version<P>>,
    /// The candidate and how it runs.
    pub candidate: Option<(Arc<Version<P>>, Mode)>,
}

/// The versions one request uses for one slot, fixed at its start.
pub struct Pin<P> {
    /// The active version at the request's start.
    pub active: Arc<Version<P>>,
    /// The canary candidate, when this request was chosen for it.
    pub canary: Option<Arc<Version<P>>>,
    /// The shadow candidate, called beside the active version.
    pub shadow: Option<Arc<Version<P>>>,
    /// The request (for the shadow log).
    pub request_id: String,
    /// Set when a canary call trapped or timed out: the rest of the request runs on `active`.
    fell_back: AtomicBool,
}

impl<P> Pin<P> {
    /// The version serving this request's calls now.
    pub fn serving(&self) -> &Arc<Version<P>> {
        match &self.canary {
            Some(c) if !self.fell_back.load(Ordering::Acquire) => c,
            _ => &self.active,
        }
    }

    /// Whether the serving version is the canary.
    pub fn on_canary(&self) -> bool {
        self.canary.is_some() && !self.fell_back.load(Ordering::Acquire)
    }

    /// Move the rest of the request to the active version.
    pub fn fall_back(&self) {
        self.fell_back.store(true, Ordering::Release);
    }
}

/// One component slot, plus the versions loaded so far (kept so a rollback
/// needs no recompilation and counters survive swaps).
pub struct Slot<P> {
    current: ArcSwap<SlotSet<P>>,
    loaded: Mutex<HashMap<String, Arc<Version<P>>>>,
}

impl<P> Slot<P> {
    /// A slot with `active` and no candidate.
    pub fn new(active: Arc<Version<P>>) -> Slot<P> {
        let loaded = HashMap::from([(active.info.sha256.clone(), active.clone())]);
        Slot {
            current: ArcSwap::from_pointee(SlotSet {
                active,
                candidate: None,
            }),
            loaded: Mutex::new(loaded),
        }
    }

    /// What the slot serves now.
    pub fn load(&self) -> Arc<SlotSet<P>> {
        self.current.load_full()
    }

    /// Replace what the slot serves (one atomic store); returns what it replaced.
    pub fn set(&self, next: SlotSet<P>) -> Arc<SlotSet<P>> {
        self.current.swap(Arc::new(next))
    }

    /// A loaded version by sha256.
    pub fn cached(&self, sha256: &str) -> Option<Arc<Version<P>>> {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sha256)
            .cloned()
    }

    /// Keep a loaded version.
    pub fn remember(&self, version: Arc<Version<P>>) {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(version.info.sha256.clone(), version);
    }

    /// Every loaded version.
    pub fn all_loaded(&self) -> Vec<Arc<Version<P>>> {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The versions a request with canary bucket `bucket` (0..100) uses.
    pub fn pin(&self, bucket: u8, request_id: &str) -> Pin<P> {
        let set = self.current.load();
        let (canary, shadow) = match &set.candidate {
            Some((v, Mode::Canary(p))) if bucket < *p => (Some(v.clone()), None),
            Some((v, Mode::Shadow)) => (None, Some(v.clone())),
            _ => (None, None),
        };
        Pin {
            active: set.active.clone(),
            canary,
            shadow,
            request_id: request_id.to_string(),
            fell_back: AtomicBool::new(false),
        }
    }
}
