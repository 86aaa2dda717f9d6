//! Every redb table this crate uses, in one place, so the file's schema can be read at a glance.
//!
//! Schema (version [`SCHEMA_VERSION`], recorded in [`META`] under [`META_SCHEMA_VERSION`]):
//!
//! | table | key | value | purpose |
//! |---|---|---|---|
//! | `meta` | `&str` | `u64` | schema version, cache totals, next account id |
//! | `cache_payloads_by_created` | `(created_ms, key)` | `&[u8]` | the cached payload, opaque bytes, in creation order (see [`CACHE_PAYLOADS`]) |
//! | `cache_entries` | `&[u8; 32]` | `(created_ms, last_access_ms, size)` | per-entry metadata (kept apart from the payload so an access-time update never rewrites a large value) |
//! | `cache_by_access` | `(last_access_ms, key)` | `()` | LRU order: the first row is the least recently accessed entry |
//! | `cache_by_created` | `(created_ms, key)` | `()` | TTL order: expired entries are a prefix of this table |
//! | `accounts` | `u64` (id) | `&str` (JSON of [`crate::Account`]) | upstream accounts, state and counters |
//! | `client_keys` | `&str` (sha256 hex of the key) | `&str` (label) | client API keys |
//! | `client_key_limits` | `&str` (label) | `&str` (JSON of [`crate::KeyLimits`]) | per-key limits set by the operator; no row = the configured defaults |
//! | `client_key_usage` | `&str` (label) | `(rate_tat_ms, day_reset_ms, images_today)` | per-key counters, written in batches (see `limits.rs`) |
//! | `rollup_minutes` | `u64` (minute start, unix ms) | `&[u8]` (JSON of [`crate::Bucket`]) | traffic per minute, kept one day (see `rollups.rs`) |
//! | `rollup_hours` | `u64` (hour start, unix ms) | `&[u8]` (JSON of [`crate::Bucket`]) | traffic per hour, kept 30 days |
//! | `component_versions` | `&str` (sha256 hex) | `&str` (JSON of [`crate::ComponentVersion`]) | installed policy component versions |
//! | `component_bytes` | `&str` (sha256 hex) | `&[u8]` | their bytes |
//! | `component_slots` | `&str` (slot) | `&str` (JSON of [`crate::SlotState`]) | active / candidate / previous per slot |
//! | `component_events` | `u64` (sequence) | `&str` (JSON of [`crate::LifecycleEvent`]) | bounded lifecycle history |
//! | `component_artifacts` | `&str` (`sha256:engine hash`) | `&[u8]` | compiled components (a cache: not backed up) |

use redb::TableDefinition;

/// Bumped when a table's layout changes incompatibly; a file with a newer version is refused.
/// Version 1 kept payloads by key alone ([`LEGACY_CACHE_PAYLOADS`]); opening such a file moves them
/// into [`CACHE_PAYLOADS`] once (`store::create_tables`).
pub(crate) const SCHEMA_VERSION: u64 = 2;

/// Small counters and settings.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `META` key: schema version of the file.
pub(crate) const META_SCHEMA_VERSION: &str = "schema_version";
/// `META` key: sum of the sizes of all cache entries.
pub(crate) const META_CACHE_BYTES: &str = "cache_bytes";
/// `META` key: number of cache entries.
pub(crate) const META_CACHE_ENTRIES: &str = "cache_entries";
/// `META` key: the id the next added account gets (ids are never reused).
pub(crate) const META_NEXT_ACCOUNT_ID: &str = "next_account_id";

/// Cache payloads by `(created_ms, key)`, `created_ms` being the entry's creation time in
/// [`CACHE_ENTRIES`]. A payload is larger than a page, so redb gives each one a leaf of its own, and an
/// insert reads the leaf next to where the new key goes. Keyed by the hash alone, that neighbour was a
/// random old image, read back from disk (a whole power-of-two run of pages) for every cache write; in
/// creation order it is the image written just before, still in redb's cache.
pub(crate) const CACHE_PAYLOADS: TableDefinition<(u64, &[u8; 32]), &[u8]> =
    TableDefinition::new("cache_payloads_by_created");
/// Schema 1's payload table, by key alone; only read to migrate a file.
pub(crate) const LEGACY_CACHE_PAYLOADS: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("cache_payloads");
/// Cache entry metadata by key: `(created_ms, last_access_ms, size)`.
pub(crate) const CACHE_ENTRIES: TableDefinition<&[u8; 32], (u64, u64, u64)> =
    TableDefinition::new("cache_entries");
/// LRU index ordered by `(last_access_ms, key)`.
pub(crate) const CACHE_BY_ACCESS: TableDefinition<(u64, &[u8; 32]), ()> =
    TableDefinition::new("cache_by_access");
/// TTL index ordered by `(created_ms, key)`.
pub(crate) const CACHE_BY_CREATED: TableDefinition<(u64, &[u8; 32]), ()> =
    TableDefinition::new("cache_by_created");

/// Upstream accounts by id, each row the JSON of an [`crate::Account`].
pub(crate) const ACCOUNTS: TableDefinition<u64, &str> = TableDefinition::new("accounts");

/// Client keys: sha256 hex of the raw key -> label.
pub(crate) const CLIENT_KEYS: TableDefinition<&str, &str> = TableDefinition::new("client_keys");

/// Per-client-key limits by label, each row the JSON of a [`crate::KeyLimits`]. A table of its own (not a
/// wider `client_keys` value) so stores written before limits existed open unchanged.
pub(crate) const CLIENT_KEY_LIMITS: TableDefinition<&str, &str> =
    TableDefinition::new("client_key_limits");

/// Per-client-key usage by label: `(rate_tat_ms, day_reset_ms, images_today)`, see [`crate::KeyUsage`].
pub(crate) const CLIENT_KEY_USAGE: TableDefinition<&str, (u64, u64, u64)> =
    TableDefinition::new("client_key_usage");

/// Traffic rollups per minute (kept one day): minute start (unix ms) -> JSON of a [`crate::Bucket`].
pub(crate) const ROLLUP_MINUTES: TableDefinition<u64, &[u8]> =
    TableDefinition::new("rollup_minutes");

/// Traffic rollups per hour (kept 30 days): hour start (unix ms) -> JSON of a [`crate::Bucket`].
pub(crate) const ROLLUP_HOURS: TableDefinition<u64, &[u8]> = TableDefinition::new("rollup_hours");
/// Installed component versions by sha256 hex, each row the JSON of a [`crate::ComponentVersion`].
pub(crate) const COMPONENT_VERSIONS: TableDefinition<&str, &str> =
    TableDefinition::new("component_versions");

/// Component bytes by sha256 hex.
pub(crate) const COMPONENT_BYTES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("component_bytes");

/// Per-slot lifecycle state, each row the JSON of a [`crate::SlotState`].
pub(crate) const COMPONENT_SLOTS: TableDefinition<&str, &str> =
    TableDefinition::new("component_slots");

/// Lifecycle events by sequence number, each row the JSON of a [`crate::LifecycleEvent`].
pub(crate) const COMPONENT_EVENTS: TableDefinition<u64, &str> =
    TableDefinition::new("component_events");

/// Compiled components by `sha256:engine hash` (a cache; left out of backups).
pub(crate) const COMPONENT_ARTIFACTS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("component_artifacts");
