//! A swappable slot holding one pre-linked component version. Swapping is one
//! atomic store; a call loads the slot once and finishes on that version even if
//! a swap lands meanwhile.

use std::sync::Arc;

use arc_swap::ArcSwap;

/// Where a component version came from and what it is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentInfo {
    /// The slot name: `translator`, `safety` or `classifier`.
    pub slot: &'static str,
    /// `embedded` or the file path it was loaded from.
    pub source: String,
    /// Hex sha256 of the component bytes.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: usize,
}

/// One loaded, type-checked component version.
pub struct Loaded<P> {
    /// The bindgen `*Pre`: pre-linked and checked against the world.
    pub pre: P,
    /// Identity of this version.
    pub info: ComponentInfo,
}

/// The active version of one component.
pub struct Slot<P> {
    current: ArcSwap<Loaded<P>>,
}

impl<P> Slot<P> {
    /// A slot holding `initial`.
    pub fn new(initial: Loaded<P>) -> Slot<P> {
        Slot {
            current: ArcSwap::from_pointee(initial),
        }
    }

    /// The active version, for the duration of one call.
    pub fn load(&self) -> Arc<Loaded<P>> {
        self.current.load_full()
    }

    /// Make `next` the active version; returns the one it replaced.
    pub fn swap(&self, next: Loaded<P>) -> Arc<Loaded<P>> {
        self.current.swap(Arc::new(next))
    }
}
