//! Aperture's embedded storage: one redb file holding the image cache, the upstream account pool and the
//! client keys, behind a small synchronous API (call it from `tokio::task::spawn_blocking`).
//!
//! Everything hangs off [`Store`], which is cheap to clone and `Send + Sync`. Time never comes from the
//! clock inside this crate: every time-dependent call takes `now_ms` (unix milliseconds) so callers and tests
//! control it.
//!
//! The API is deliberately narrow (cache get/put/evict, account checkout/report, key verify) so a Redis
//! implementation can stand beside this one later.

mod account_rows;
mod accounts;
mod cache;
mod components;
mod error;
#[cfg(test)]
mod faults;
mod keys;
mod limits;
mod offline;
mod open;
mod pool;
mod rollups;
mod seal;
mod snapshot;
mod store;
mod tables;

pub use accounts::{mask_secret, Account, AccountState, AccountView, Counters, Selector};
pub use cache::{
    Cache, CacheKey, CacheLimits, CacheObserver, CacheStats, EvictReason, Evicted, Payload,
    PutOutcome,
};
pub use components::{
    Candidate, CandidateMode, ComponentStore, ComponentVersion, LifecycleEvent, SlotState,
    VersionState,
};
pub use error::StoreError;
pub use keys::KeyStore;
pub use limits::{KeyLimits, KeyUsage};
pub use offline::{
    ensure_unlocked, repair, restore, rotate_key, verify, RepairOutcome, RestoreOutcome,
};
pub use pool::{AccountPool, Checkout, Lease};
pub use rollups::{
    add_named, AccountUse, Bucket, ClientUse, Histogram, Resolution, RollupSizes, Rollups,
    BOUNDS_US, BOUND_COUNT, HOUR_MS, HOUR_RETENTION_MS, HOUR_ROWS, MAX_NAMES, MINUTE_MS,
    MINUTE_RETENTION_MS, MINUTE_ROWS,
};
pub use seal::SecretKey;
pub use snapshot::Inventory;
pub use store::{Store, StoreOptions};
