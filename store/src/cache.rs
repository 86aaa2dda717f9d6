//! The image cache: opaque payloads by 32-byte key (the host uses sha256 of the canonical request), with a
//! TTL, a byte cap and least-recently-accessed eviction, persisted so it survives restarts.
//!
//! Layout (see `tables.rs`): payloads and per-entry metadata live in separate tables so that recording an
//! access never rewrites a (possibly multi-megabyte) payload; two index tables ordered by
//! `(last_access_ms, key)` and `(created_ms, key)` make LRU eviction and expiry range scans over a prefix
//! instead of scans over every entry; totals (bytes, entries) live in the `meta` table so [`Cache::stats`] is
//! O(1). Every change to entries, indexes and totals happens in one write transaction, so a crash leaves
//! them consistent.
//!
//! Size accounting: an entry's size is exactly its payload length in bytes (key and index rows, a few dozen
//! bytes per entry, are not counted). So `max_bytes` bounds the payload bytes stored, not the file size.
//!
//! Access times: a hit does not write. It records the access time in memory (shared by every `Cache` of the
//! same [`Store`]); pending access times are written inside the next cache write transaction (every `put`,
//! `remove`, `purge_expired`, `enforce` applies them before evicting, so eviction order is always exact), or
//! by a non-durable (`Durability::None`, no fsync) transaction once [`ACCESS_FLUSH_MAX_PENDING`] keys are
//! pending or the oldest pending access is [`ACCESS_FLUSH_INTERVAL_MS`] old, or by [`Cache::flush`]. A crash
//! can lose recent access times, which only perturbs LRU order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::{Durability, ReadableTable, Table, WriteTransaction};
use serde::Serialize;

use crate::error::StoreError;
use crate::store::{lock, Store};
use crate::tables;

/// A cache key: 32 bytes (sha256 of whatever the caller considers the request's identity).
pub type CacheKey = [u8; 32];

/// Hits recorded in memory before they are written without waiting for another write.
pub(crate) const ACCESS_FLUSH_MAX_PENDING: usize = 1024;
/// Age of the oldest unwritten hit after which the next hit writes them all.
pub(crate) const ACCESS_FLUSH_INTERVAL_MS: u64 = 30_000;

/// Limits of a cache view. Not stored: pass the configured values each time the store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Cap on the sum of entry sizes (payload bytes).
    pub max_bytes: u64,
    /// Time to live from creation: an entry is expired once `created_ms + ttl_ms <= now_ms`.
    /// `0` means entries never expire.
    pub ttl_ms: u64,
}

/// Why an entry was removed by the cache itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictReason {
    /// Removed to get back under the byte cap; it was the least recently accessed.
    Lru,
    /// Its TTL had run out.
    Expired,
}

/// An entry removed by the cache itself (for the host's `Cache eviction` log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    pub key: CacheKey,
    pub size: u64,
    pub reason: EvictReason,
}

/// A cache payload the store writes straight into its database page, so a large entry is not first
/// joined into one more copy in memory. `write_to` fills exactly `len()` bytes.
pub trait Payload {
    /// The payload's length in bytes.
    fn len(&self) -> usize;
    /// True when the payload is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Write the payload into `out`, which is exactly `len()` bytes long.
    fn write_to(&self, out: &mut [u8]);
}

impl Payload for &[u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn write_to(&self, out: &mut [u8]) {
        out.copy_from_slice(self);
    }
}

impl Payload for Vec<u8> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn write_to(&self, out: &mut [u8]) {
        out.copy_from_slice(self);
    }
}

/// Result of [`Cache::put`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored (replacing any entry with the same key); these entries were evicted to make room or because
    /// they had expired.
    Stored { evicted: Vec<Evicted> },
    /// The payload alone is larger than `max_bytes`; nothing was written and any existing entry with that
    /// key was left as it was.
    TooLarge,
}

/// Told of every entry the cache removes (replaced, expired, evicted, removed, cleared), *before* the
/// removal commits, so a copy kept elsewhere (the host's in-memory hot cache) is dropped no later than the
/// stored entry. A removal that then fails to commit was reported anyway: a spurious drop is harmless.
pub trait CacheObserver: Send + Sync {
    /// The entry under `key` is being removed or replaced.
    fn removing(&self, key: &CacheKey);
    /// Every entry is being removed.
    fn clearing(&self);
}

/// Totals of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub entries: u64,
    pub bytes: u64,
    pub max_bytes: u64,
}

/// The image cache with a given set of limits. Cheap to clone; clones share the limits.
#[derive(Clone, Debug)]
pub struct Cache {
    store: Store,
    limits: Arc<SharedLimits>,
}

/// The limits of a cache and its clones, changeable while it is in use (a live
/// configuration reload).
#[derive(Debug)]
struct SharedLimits {
    max_bytes: AtomicU64,
    ttl_ms: AtomicU64,
}

impl Cache {
    pub(crate) fn new(store: Store, limits: CacheLimits) -> Cache {
        Cache {
            store,
            limits: Arc::new(SharedLimits {
                max_bytes: AtomicU64::new(limits.max_bytes),
                ttl_ms: AtomicU64::new(limits.ttl_ms),
            }),
        }
    }

    /// Report every removal to `observer` from now on (one observer per store; a later call replaces it).
    pub fn set_observer(&self, observer: std::sync::Arc<dyn CacheObserver>) {
        *self
            .store
            .inner
            .cache_observer
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }

    fn observer(&self) -> Option<std::sync::Arc<dyn CacheObserver>> {
        self.store
            .inner
            .cache_observer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The limits this view (and its clones) enforces now.
    pub fn limits(&self) -> CacheLimits {
        CacheLimits {
            max_bytes: self.limits.max_bytes.load(Ordering::Relaxed),
            ttl_ms: self.limits.ttl_ms.load(Ordering::Relaxed),
        }
    }

    /// Change the limits of this cache and its clones: the TTL applies to every entry
    /// from the next lookup on, a lower byte cap from the next write (or [`Cache::enforce`]).
    pub fn set_limits(&self, limits: CacheLimits) {
        self.limits
            .max_bytes
            .store(limits.max_bytes, Ordering::Relaxed);
        self.limits.ttl_ms.store(limits.ttl_ms, Ordering::Relaxed);
    }

    /// The payload stored under `key`, or `None`. Records the access for LRU (in memory, see the module
    /// docs). An expired entry is deleted and reported as `None`.
    pub fn get(&self, key: &CacheKey, now_ms: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_entry(key, now_ms)?.map(|(payload, _)| payload))
    }

    /// [`Cache::get`], with the entry's creation time (unix ms) beside the payload.
    pub fn get_entry(
        &self,
        key: &CacheKey,
        now_ms: u64,
    ) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let found = self.store.read(|db| {
            let txn = db.begin_read()?;
            let entries = txn.open_table(tables::CACHE_ENTRIES)?;
            let Some((created, _, _)) = entries.get(key)?.map(|g| g.value()) else {
                return Ok(Lookup::Missing);
            };
            if self.is_expired(created, now_ms) {
                return Ok(Lookup::Expired);
            }
            let payloads = txn.open_table(tables::CACHE_PAYLOADS)?;
            match payloads.get((created, key))? {
                Some(p) => Ok(Lookup::Found(p.value().to_vec(), created)),
                None => Err(StoreError::Corrupt(format!(
                    "cache entry {} has no payload",
                    key_prefix(key)
                ))),
            }
        })?;
        match found {
            Lookup::Missing => return Ok(None),
            Lookup::Found(payload, created) => {
                self.note_access(key, now_ms);
                return Ok(Some((payload, created)));
            }
            Lookup::Expired => {}
        }
        // Expired: delete it (re-checking inside the write transaction, it may have been replaced since).
        // Not durable: if the deletion is lost in a crash the entry is simply expired again.
        self.write(Durability::None, |tx| {
            if let Some((created, _, _)) = tx.entry(key)? {
                if self.is_expired(created, now_ms) {
                    tx.remove(key)?;
                }
            }
            Ok(())
        })?;
        Ok(None)
    }

    /// Stores `payload` under `key`, replacing any existing entry, then evicts expired entries and then
    /// least-recently-accessed ones (never the entry just stored) until the total is within `max_bytes`.
    pub fn put(
        &self,
        key: &CacheKey,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<PutOutcome, StoreError> {
        let size = payload.len() as u64;
        let limits = self.limits();
        if size > limits.max_bytes {
            return Ok(PutOutcome::TooLarge);
        }
        let mut made_room = Vec::new();
        let outcome = self.write_or_make_room(
            Durability::Immediate,
            |tx| {
                tx.remove(key)?;
                tx.insert(key, payload, now_ms)?;
                let mut evicted = tx.expire(now_ms, limits.ttl_ms)?;
                evicted.extend(tx.evict_lru(limits.max_bytes, Some(key))?);
                Ok(evicted)
            },
            size,
            &mut made_room,
        )?;
        made_room.extend(outcome);
        Ok(PutOutcome::Stored { evicted: made_room })
    }

    /// Stores several entries in ONE write transaction: for each in order, exactly what [`Cache::put`] does
    /// (replace, expire, evict least recently accessed, never the entry just stored). One outcome per entry,
    /// in order. `durable`: the commit is on disk when this returns (an fsync); otherwise it is visible at
    /// once and made durable by the next durable commit of any kind ([`Cache::flush`]), and a crash before
    /// that rolls the store back to the last durable commit, consistently.
    pub fn put_many<P: Payload>(
        &self,
        entries: &[(CacheKey, P)],
        now_ms: u64,
        durable: bool,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        let limits = self.limits();
        let needed = entries
            .iter()
            .map(|(_, p)| p.len() as u64)
            .filter(|&n| n <= limits.max_bytes)
            .sum();
        let mut made_room = Vec::new();
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        let mut outcomes = self.write_or_make_room(
            durability,
            |tx| {
                let mut outcomes = Vec::with_capacity(entries.len());
                for (key, payload) in entries {
                    if payload.len() as u64 > limits.max_bytes {
                        outcomes.push(PutOutcome::TooLarge);
                        continue;
                    }
                    tx.remove(key)?;
                    tx.insert_payload(key, payload, now_ms)?;
                    let mut evicted = tx.expire(now_ms, limits.ttl_ms)?;
                    evicted.extend(tx.evict_lru(limits.max_bytes, Some(key))?);
                    outcomes.push(PutOutcome::Stored { evicted });
                }
                Ok(outcomes)
            },
            needed,
            &mut made_room,
        )?;
        if let Some(PutOutcome::Stored { evicted }) = outcomes
            .iter_mut()
            .find(|o| matches!(o, PutOutcome::Stored { .. }))
        {
            evicted.extend(made_room);
        }
        Ok(outcomes)
    }

    /// Records a hit served from a copy of the entry kept elsewhere (the host's hot cache), for LRU order,
    /// without reading or writing the database. Returns `true` when the recorded hits are due to be written:
    /// then call [`Cache::write_access_times`] (off the async runtime, it is a write transaction).
    pub fn touch(&self, key: &CacheKey, now_ms: u64) -> bool {
        self.record_access(key, now_ms)
    }

    /// Writes the recorded hits (not durably: losing them only perturbs LRU order).
    pub fn write_access_times(&self) -> Result<(), StoreError> {
        self.write(Durability::None, |_| Ok(()))
    }

    /// Removes the entries under `keys` in one transaction; how many there were.
    pub fn remove_many(&self, keys: &[CacheKey]) -> Result<usize, StoreError> {
        self.write(Durability::Immediate, |tx| {
            let mut removed = 0;
            for key in keys {
                removed += usize::from(tx.remove(key)?.is_some());
            }
            Ok(removed)
        })
    }

    /// Removes the entry under `key`; `true` if there was one.
    pub fn remove(&self, key: &CacheKey) -> Result<bool, StoreError> {
        self.write(Durability::Immediate, |tx| Ok(tx.remove(key)?.is_some()))
    }

    /// Deletes every expired entry.
    pub fn purge_expired(&self, now_ms: u64) -> Result<Vec<Evicted>, StoreError> {
        let ttl = self.limits().ttl_ms;
        self.write(Durability::Immediate, |tx| tx.expire(now_ms, ttl))
    }

    /// Deletes expired entries, then least-recently-accessed ones until the total is within `max_bytes`.
    /// The host calls this at start-up, since the cap may be smaller than when the entries were stored.
    pub fn enforce(&self, now_ms: u64) -> Result<Vec<Evicted>, StoreError> {
        let limits = self.limits();
        self.write(Durability::Immediate, |tx| {
            let mut evicted = tx.expire(now_ms, limits.ttl_ms)?;
            evicted.extend(tx.evict_lru(limits.max_bytes, None)?);
            Ok(evicted)
        })
    }

    /// Deletes every entry; returns how many there were.
    pub fn clear(&self) -> Result<u64, StoreError> {
        let observer = self.observer();
        {
            let mut pending = lock(&self.store.inner.pending_access);
            pending.times.clear();
            pending.since_ms = None;
        }
        self.store.run(|db| {
            let txn = db.begin_write()?;
            if let Some(o) = &observer {
                o.clearing();
            }
            let count = {
                txn.delete_table(tables::CACHE_PAYLOADS)?;
                txn.delete_table(tables::CACHE_ENTRIES)?;
                txn.delete_table(tables::CACHE_BY_ACCESS)?;
                txn.delete_table(tables::CACHE_BY_CREATED)?;
                txn.open_table(tables::CACHE_PAYLOADS)?;
                txn.open_table(tables::CACHE_ENTRIES)?;
                txn.open_table(tables::CACHE_BY_ACCESS)?;
                txn.open_table(tables::CACHE_BY_CREATED)?;
                let mut meta = txn.open_table(tables::META)?;
                let count = meta
                    .get(tables::META_CACHE_ENTRIES)?
                    .map(|g| g.value())
                    .unwrap_or(0);
                meta.insert(tables::META_CACHE_BYTES, 0)?;
                meta.insert(tables::META_CACHE_ENTRIES, 0)?;
                count
            };
            txn.commit()?;
            Ok(count)
        })
    }

    /// Entry count and bytes stored (O(1), from the totals row). `now_ms` is part of the backend-neutral
    /// signature (a lazily-expiring backend may need it); this backend reports what is stored, which
    /// includes expired entries not purged yet.
    pub fn stats(&self, _now_ms: u64) -> Result<CacheStats, StoreError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(tables::META)?;
            let get = |k: &str| -> Result<u64, StoreError> {
                Ok(meta.get(k)?.map(|g| g.value()).unwrap_or(0))
            };
            Ok(CacheStats {
                entries: get(tables::META_CACHE_ENTRIES)?,
                bytes: get(tables::META_CACHE_BYTES)?,
                max_bytes: self.limits().max_bytes,
            })
        })
    }

    /// Writes pending access times durably (e.g. at shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.write(Durability::Immediate, |_| Ok(()))
    }

    fn is_expired(&self, created_ms: u64, now_ms: u64) -> bool {
        let ttl_ms = self.limits().ttl_ms;
        ttl_ms != 0 && created_ms.saturating_add(ttl_ms) <= now_ms
    }

    /// Records a hit; writes the pending hits (non-durably) when there are many or they are old.
    fn note_access(&self, key: &CacheKey, now_ms: u64) {
        if self.record_access(key, now_ms) {
            if let Err(e) = self.write(Durability::None, |_| Ok(())) {
                // The hit itself succeeded; losing access times only perturbs LRU order.
                tracing::warn!(error = %e, "cache: could not record access times");
            }
        }
    }

    /// Records a hit in memory; `true` when the pending hits should be written now.
    fn record_access(&self, key: &CacheKey, now_ms: u64) -> bool {
        let mut pending = lock(&self.store.inner.pending_access);
        let t = pending.times.entry(*key).or_insert(now_ms);
        *t = (*t).max(now_ms);
        let since = *pending.since_ms.get_or_insert(now_ms);
        pending.times.len() >= ACCESS_FLUSH_MAX_PENDING
            || now_ms.saturating_sub(since) >= ACCESS_FLUSH_INTERVAL_MS
    }

    /// Runs `f` in one write transaction with the pending access times applied first, then writes the
    /// totals and commits. After an I/O failure the store reopens the database and `f` runs once more.
    fn write<R>(
        &self,
        durability: Durability,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let pending = self.take_pending();
        let observer = self.observer();
        self.store
            .run(|db| Self::write_on(db, durability, &pending, &observer, &mut f))
    }

    /// [`Cache::write`] for a write that adds `needed` bytes: when it fails with an I/O error (a full
    /// disk), the least recently used entries are evicted — at least `needed` bytes more than the write
    /// frees itself — before the one retry, so the space they held inside the file can be reused. The
    /// entries evicted for room are added to `made_room`.
    fn write_or_make_room<R>(
        &self,
        durability: Durability,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<R, StoreError>,
        needed: u64,
        made_room: &mut Vec<Evicted>,
    ) -> Result<R, StoreError> {
        let pending = self.take_pending();
        let observer = self.observer();
        self.store.run_with(
            |db| Self::write_on(db, durability, &pending, &observer, &mut f),
            |db| match Self::make_room(db, needed, &observer) {
                Ok(evicted) => {
                    tracing::debug!(
                        entries = evicted.len(),
                        bytes = evicted.iter().map(|e| e.size).sum::<u64>(),
                        "cache: evicted to make room after a failed write"
                    );
                    made_room.extend(evicted);
                }
                Err(e) => tracing::debug!(error = %e, "cache: could not evict to make room"),
            },
        )
    }

    /// Evicts least recently used entries until at least `needed` bytes (at least 1 MiB, at least a tenth
    /// of what is stored) are gone, then commits once more so redb releases the freed pages.
    fn make_room(
        db: &redb::Database,
        needed: u64,
        observer: &Option<std::sync::Arc<dyn CacheObserver>>,
    ) -> Result<Vec<Evicted>, StoreError> {
        let evicted = Self::write_on(
            db,
            Durability::Immediate,
            &HashMap::new(),
            observer,
            &mut |tx| {
                let goal = needed.max(1 << 20).max(tx.bytes / 10);
                let target = tx.bytes.saturating_sub(goal);
                tx.evict_lru(target, None)
            },
        )?;
        // Pages freed by a transaction become reusable after the next commit.
        for _ in 0..2 {
            db.begin_write()?.commit()?;
        }
        Ok(evicted)
    }

    fn take_pending(&self) -> HashMap<CacheKey, u64> {
        let mut pending = lock(&self.store.inner.pending_access);
        pending.since_ms = None;
        std::mem::take(&mut pending.times)
    }

    fn write_on<R>(
        db: &redb::Database,
        durability: Durability,
        pending: &HashMap<CacheKey, u64>,
        observer: &Option<std::sync::Arc<dyn CacheObserver>>,
        f: &mut impl FnMut(&mut Tx<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut txn = db.begin_write()?;
        txn.set_durability(durability);
        let result = {
            let mut tx = Tx::open(&txn, observer.as_deref())?;
            tx.apply_access(pending)?;
            let result = f(&mut tx)?;
            tx.finish()?;
            result
        };
        txn.commit()?;
        Ok(result)
    }
}

/// What a cache read found.
enum Lookup {
    Missing,
    Expired,
    Found(Vec<u8>, u64),
}

/// The cache tables opened in one write transaction, with the totals held in memory until `finish`.
struct Tx<'t> {
    payloads: Table<'t, (u64, &'static CacheKey), &'static [u8]>,
    entries: Table<'t, &'static CacheKey, (u64, u64, u64)>,
    by_access: Table<'t, (u64, &'static CacheKey), ()>,
    by_created: Table<'t, (u64, &'static CacheKey), ()>,
    meta: Table<'t, &'static str, u64>,
    bytes: u64,
    count: u64,
    observer: Option<&'t dyn CacheObserver>,
}

impl<'t> Tx<'t> {
    fn open(
        txn: &'t WriteTransaction,
        observer: Option<&'t dyn CacheObserver>,
    ) -> Result<Tx<'t>, StoreError> {
        let meta = txn.open_table(tables::META)?;
        let bytes = meta
            .get(tables::META_CACHE_BYTES)?
            .map(|g| g.value())
            .unwrap_or(0);
        let count = meta
            .get(tables::META_CACHE_ENTRIES)?
            .map(|g| g.value())
            .unwrap_or(0);
        Ok(Tx {
            payloads: txn.open_table(tables::CACHE_PAYLOADS)?,
            entries: txn.open_table(tables::CACHE_ENTRIES)?,
            by_access: txn.open_table(tables::CACHE_BY_ACCESS)?,
            by_created: txn.open_table(tables::CACHE_BY_CREATED)?,
            meta,
            bytes,
            count,
            observer,
        })
    }

    fn finish(mut self) -> Result<(), StoreError> {
        self.meta.insert(tables::META_CACHE_BYTES, self.bytes)?;
        self.meta.insert(tables::META_CACHE_ENTRIES, self.count)?;
        Ok(())
    }

    /// `(created_ms, last_access_ms, size)` of an entry.
    fn entry(&self, key: &CacheKey) -> Result<Option<(u64, u64, u64)>, StoreError> {
        Ok(self.entries.get(key)?.map(|g| g.value()))
    }

    fn apply_access(&mut self, pending: &HashMap<CacheKey, u64>) -> Result<(), StoreError> {
        for (key, &t) in pending {
            if let Some((created, last, size)) = self.entry(key)? {
                if t > last {
                    self.entries.insert(key, (created, t, size))?;
                    self.by_access.remove((last, key))?;
                    self.by_access.insert((t, key), ())?;
                }
            }
        }
        Ok(())
    }

    fn insert(&mut self, key: &CacheKey, payload: &[u8], now_ms: u64) -> Result<(), StoreError> {
        self.insert_payload(key, &payload, now_ms)
    }

    /// [`Tx::insert`] for a payload written straight into the database page.
    fn insert_payload(
        &mut self,
        key: &CacheKey,
        payload: &dyn Payload,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let len = payload.len();
        let reserved = u32::try_from(len).map_err(|_| redb::StorageError::ValueTooLarge(len))?;
        payload.write_to(
            self.payloads
                .insert_reserve((now_ms, key), reserved)?
                .as_mut(),
        );
        let size = len as u64;
        self.entries.insert(key, (now_ms, now_ms, size))?;
        self.by_access.insert((now_ms, key), ())?;
        self.by_created.insert((now_ms, key), ())?;
        self.bytes = self.bytes.saturating_add(size);
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    /// Removes an entry and its index rows; returns its size if it existed.
    fn remove(&mut self, key: &CacheKey) -> Result<Option<u64>, StoreError> {
        if let Some(o) = self.observer {
            if self.entries.get(key)?.is_some() {
                o.removing(key);
            }
        }
        let Some((created, last, size)) = self.entries.remove(key)?.map(|g| g.value()) else {
            return Ok(None);
        };
        self.payloads.remove((created, key))?;
        self.by_access.remove((last, key))?;
        self.by_created.remove((created, key))?;
        self.bytes = self.bytes.saturating_sub(size);
        self.count = self.count.saturating_sub(1);
        Ok(Some(size))
    }

    /// Removes every entry with `created_ms + ttl_ms <= now_ms` (a prefix of the creation index).
    fn expire(&mut self, now_ms: u64, ttl_ms: u64) -> Result<Vec<Evicted>, StoreError> {
        if ttl_ms == 0 {
            return Ok(Vec::new());
        }
        let Some(cutoff) = now_ms.checked_sub(ttl_ms) else {
            return Ok(Vec::new());
        };
        let mut rows = Vec::new();
        for row in self.by_created.range(..=(cutoff, &[0xff; 32]))? {
            let (k, _) = row?;
            let (t, key) = k.value();
            rows.push((t, *key));
        }
        let mut evicted = Vec::with_capacity(rows.len());
        for (t, key) in rows {
            match self.remove(&key)? {
                Some(size) => evicted.push(Evicted {
                    key,
                    size,
                    reason: EvictReason::Expired,
                }),
                None => {
                    // Self-repair: an index row whose entry is gone (cannot happen through this API).
                    tracing::warn!(key = %key_prefix(&key), "cache: dropping a TTL index row without entry");
                    self.by_created.remove((t, &key))?;
                }
            }
        }
        Ok(evicted)
    }

    /// Removes least-recently-accessed entries (never `keep`) until the total is within `max_bytes`.
    fn evict_lru(
        &mut self,
        max_bytes: u64,
        keep: Option<&CacheKey>,
    ) -> Result<Vec<Evicted>, StoreError> {
        if self.bytes <= max_bytes {
            return Ok(Vec::new());
        }
        let mut projected = self.bytes;
        let mut victims = Vec::new();
        let mut dangling = Vec::new();
        for row in self.by_access.iter()? {
            let (k, _) = row?;
            let (t, key) = k.value();
            if keep == Some(key) {
                continue;
            }
            match self.entries.get(key)?.map(|g| g.value()) {
                Some((_, _, size)) => {
                    victims.push(*key);
                    projected = projected.saturating_sub(size);
                    if projected <= max_bytes {
                        break;
                    }
                }
                None => dangling.push((t, *key)),
            }
        }
        for (t, key) in dangling {
            tracing::warn!(key = %key_prefix(&key), "cache: dropping an LRU index row without entry");
            self.by_access.remove((t, &key))?;
        }
        let mut evicted = Vec::with_capacity(victims.len());
        for key in victims {
            if let Some(size) = self.remove(&key)? {
                evicted.push(Evicted {
                    key,
                    size,
                    reason: EvictReason::Lru,
                });
            }
        }
        Ok(evicted)
    }
}

/// First 8 bytes of a key in hex, for log lines.
pub(crate) fn key_prefix(key: &CacheKey) -> String {
    key[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn key(n: u8) -> CacheKey {
        [n; 32]
    }

    fn cache(max_bytes: u64, ttl_ms: u64) -> Cache {
        Store::in_memory()
            .expect("in-memory store")
            .cache(CacheLimits { max_bytes, ttl_ms })
    }

    fn stored(outcome: PutOutcome) -> Vec<Evicted> {
        match outcome {
            PutOutcome::Stored { evicted } => evicted,
            PutOutcome::TooLarge => panic!("unexpected TooLarge"),
        }
    }

    fn keys_of(evicted: &[Evicted]) -> Vec<CacheKey> {
        evicted.iter().map(|e| e.key).collect()
    }

    /// Records what the cache reports removing.
    #[derive(Default)]
    struct Seen(Mutex<Vec<Option<CacheKey>>>);

    impl CacheObserver for Seen {
        fn removing(&self, key: &CacheKey) {
            self.0.lock().unwrap().push(Some(*key));
        }
        fn clearing(&self) {
            self.0.lock().unwrap().push(None);
        }
    }

    #[test]
    fn the_observer_hears_of_every_removal() {
        let c = cache(10, 1_000);
        let seen = std::sync::Arc::new(Seen::default());
        c.set_observer(seen.clone());
        stored(c.put(&key(1), b"aaaa", 0).unwrap());
        stored(c.put(&key(2), b"bbbb", 1).unwrap());
        assert!(seen.0.lock().unwrap().is_empty(), "nothing removed yet");
        // Replaced under the same key.
        stored(c.put(&key(1), b"cccc", 2).unwrap());
        // LRU eviction: key 2 is now the least recently accessed.
        assert_eq!(
            keys_of(&stored(c.put(&key(3), b"dddd", 3).unwrap())),
            vec![key(2)]
        );
        // Expiry on read.
        assert_eq!(c.get(&key(1), 5_000).unwrap(), None);
        // Removal and clear.
        assert!(c.remove(&key(3)).unwrap());
        stored(c.put(&key(4), b"e", 6_000).unwrap());
        c.clear().unwrap();
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec![Some(key(1)), Some(key(2)), Some(key(1)), Some(key(3)), None]
        );
    }

    #[test]
    fn put_many_is_put_in_order_in_one_transaction() {
        let c = cache(10, 60_000);
        c.put(&key(9), b"old", 0).unwrap();
        let outcomes = c
            .put_many(
                &[
                    (key(1), b"aaaa".to_vec()),
                    (key(2), vec![0; 11]),
                    (key(3), b"cccc".to_vec()),
                    (key(4), b"dddd".to_vec()),
                ],
                1,
                true,
            )
            .unwrap();
        assert_eq!(outcomes.len(), 4);
        assert_eq!(outcomes[1], PutOutcome::TooLarge);
        // 3 + 4 + 4 = 11 > 10 when key 3 lands: the oldest (key 9) goes; then key 1 for key 4.
        assert_eq!(keys_of(&stored(outcomes[2].clone())), vec![key(9)]);
        assert_eq!(keys_of(&stored(outcomes[3].clone())), vec![key(1)]);
        assert_eq!(c.get(&key(3), 2).unwrap().as_deref(), Some(&b"cccc"[..]));
        assert_eq!(c.get(&key(4), 2).unwrap().as_deref(), Some(&b"dddd"[..]));
        assert_eq!(c.get(&key(2), 2).unwrap(), None);
        let (_, created) = c.get_entry(&key(4), 3).unwrap().unwrap();
        assert_eq!(created, 1);
    }

    #[test]
    fn miss_then_hit() {
        let c = cache(1 << 20, 60_000);
        assert_eq!(c.get(&key(1), 0).unwrap(), None);
        assert_eq!(stored(c.put(&key(1), b"hello", 0).unwrap()), vec![]);
        assert_eq!(c.get(&key(1), 1).unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(c.get(&key(2), 1).unwrap(), None);
        let s = c.stats(1).unwrap();
        assert_eq!((s.entries, s.bytes, s.max_bytes), (1, 5, 1 << 20));
    }

    #[test]
    fn ttl_expiry_deletes_on_read() {
        let c = cache(1 << 20, 1_000);
        c.put(&key(1), b"abc", 10).unwrap();
        assert!(c.get(&key(1), 1_009).unwrap().is_some());
        assert_eq!(c.get(&key(1), 1_010).unwrap(), None);
        let s = c.stats(1_010).unwrap();
        assert_eq!((s.entries, s.bytes), (0, 0));
        // Gone for good, even for a reader with an earlier clock.
        assert_eq!(c.get(&key(1), 500).unwrap(), None);
    }

    #[test]
    fn new_limits_apply_to_every_clone_and_to_old_entries() {
        let c = cache(1 << 20, 60_000);
        let clone = c.clone();
        c.put(&key(1), &[1; 100], 0).unwrap();
        c.put(&key(2), &[2; 100], 10).unwrap();
        clone.set_limits(CacheLimits {
            max_bytes: 150,
            ttl_ms: 1_000,
        });
        assert_eq!(
            c.limits(),
            CacheLimits {
                max_bytes: 150,
                ttl_ms: 1_000
            }
        );
        // The shorter TTL expires an entry stored under the longer one.
        assert_eq!(c.get(&key(1), 1_000).unwrap(), None);
        // The lower cap evicts at the next write.
        let ev = stored(c.put(&key(3), &[3; 100], 1_001).unwrap());
        assert_eq!(keys_of(&ev), vec![key(2)]);
        assert_eq!(c.stats(1_001).unwrap().max_bytes, 150);
    }

    #[test]
    fn ttl_zero_never_expires() {
        let c = cache(1 << 20, 0);
        c.put(&key(1), b"abc", 0).unwrap();
        assert!(c.get(&key(1), u64::MAX).unwrap().is_some());
        assert!(c.purge_expired(u64::MAX).unwrap().is_empty());
    }

    #[test]
    fn put_evicts_expired_before_lru() {
        let c = cache(300, 1_000);
        c.put(&key(1), &[0; 100], 0).unwrap();
        c.put(&key(2), &[0; 100], 500).unwrap();
        c.put(&key(3), &[0; 100], 600).unwrap();
        // key 1 expires at 1000; it is also the LRU one, but must be reported as expired.
        let ev = stored(c.put(&key(4), &[0; 100], 1_000).unwrap());
        assert_eq!(
            ev,
            vec![Evicted {
                key: key(1),
                size: 100,
                reason: EvictReason::Expired
            }]
        );
        let ev = stored(c.put(&key(5), &[0; 150], 1_100).unwrap());
        assert_eq!(keys_of(&ev), vec![key(2), key(3)]);
        assert!(ev.iter().all(|e| e.reason == EvictReason::Lru));
        assert_eq!(c.stats(1_100).unwrap().bytes, 250);
    }

    #[test]
    fn lru_eviction_follows_last_access() {
        let c = cache(300, 0);
        c.put(&key(1), &[1; 100], 1).unwrap();
        c.put(&key(2), &[2; 100], 2).unwrap();
        c.put(&key(3), &[3; 100], 3).unwrap();
        // Touch the oldest: key 2 becomes the least recently accessed.
        assert!(c.get(&key(1), 4).unwrap().is_some());
        let ev = stored(c.put(&key(4), &[4; 100], 5).unwrap());
        assert_eq!(keys_of(&ev), vec![key(2)]);
        assert_eq!(ev[0].reason, EvictReason::Lru);
        let ev = stored(c.put(&key(5), &[5; 100], 6).unwrap());
        assert_eq!(keys_of(&ev), vec![key(3)]);
        let ev = stored(c.put(&key(6), &[6; 100], 7).unwrap());
        assert_eq!(keys_of(&ev), vec![key(1)]);
        assert!(c.get(&key(4), 8).unwrap().is_some());
    }

    #[test]
    fn replacing_an_entry_refreshes_it() {
        let c = cache(200, 0);
        c.put(&key(1), &[1; 100], 1).unwrap();
        c.put(&key(2), &[2; 100], 2).unwrap();
        c.put(&key(1), &[9; 50], 3).unwrap();
        let s = c.stats(3).unwrap();
        assert_eq!((s.entries, s.bytes), (2, 150));
        let ev = stored(c.put(&key(3), &[3; 100], 4).unwrap());
        assert_eq!(keys_of(&ev), vec![key(2)]);
        assert_eq!(c.get(&key(1), 5).unwrap(), Some(vec![9; 50]));
    }

    #[test]
    fn byte_cap_respected_after_many_puts() {
        let cap = 10_000;
        let c = cache(cap, 0);
        let mut live = std::collections::HashMap::new();
        let mut seed = 12345u64;
        for i in 0..400u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = key((seed >> 33) as u8 % 64);
            let size = (seed >> 40) as usize % 3_000;
            if i % 7 == 0 {
                c.get(&k, i).unwrap();
            }
            let ev = stored(c.put(&k, &vec![i as u8; size], i).unwrap());
            live.insert(k, size as u64);
            for e in ev {
                assert_eq!(live.remove(&e.key), Some(e.size));
            }
            let s = c.stats(i).unwrap();
            assert!(s.bytes <= cap, "{} > cap after put {i}", s.bytes);
            assert_eq!(s.bytes, live.values().sum::<u64>());
            assert_eq!(s.entries, live.len() as u64);
        }
        for (k, size) in &live {
            assert_eq!(
                c.get(k, 1_000).unwrap().map(|v| v.len() as u64),
                Some(*size)
            );
        }
    }

    #[test]
    fn too_large_is_not_stored() {
        let c = cache(100, 0);
        c.put(&key(1), &[1; 60], 1).unwrap();
        assert_eq!(c.put(&key(2), &[2; 101], 2).unwrap(), PutOutcome::TooLarge);
        assert_eq!(c.put(&key(1), &[2; 101], 2).unwrap(), PutOutcome::TooLarge);
        assert_eq!(c.get(&key(1), 3).unwrap(), Some(vec![1; 60]));
        assert_eq!(c.get(&key(2), 3).unwrap(), None);
        // Exactly the cap fits, evicting everything else.
        let ev = stored(c.put(&key(3), &[3; 100], 4).unwrap());
        assert_eq!(keys_of(&ev), vec![key(1)]);
        assert_eq!(c.stats(4).unwrap().bytes, 100);
    }

    #[test]
    fn stats_remove_clear() {
        let c = cache(1_000, 0);
        for i in 0..5 {
            c.put(&key(i), &[i; 10], u64::from(i)).unwrap();
        }
        assert!(c.remove(&key(0)).unwrap());
        assert!(!c.remove(&key(0)).unwrap());
        let s = c.stats(9).unwrap();
        assert_eq!((s.entries, s.bytes), (4, 40));
        assert_eq!(c.clear().unwrap(), 4);
        let s = c.stats(9).unwrap();
        assert_eq!((s.entries, s.bytes), (0, 0));
        assert_eq!(c.get(&key(1), 10).unwrap(), None);
        c.put(&key(1), &[1; 10], 11).unwrap();
        assert_eq!(c.stats(11).unwrap().entries, 1);
    }

    #[test]
    fn purge_and_enforce() {
        let store = Store::in_memory().unwrap();
        let big = store.cache(CacheLimits {
            max_bytes: 1_000,
            ttl_ms: 100,
        });
        big.put(&key(1), &[1; 100], 0).unwrap();
        big.put(&key(2), &[2; 100], 50).unwrap();
        big.put(&key(3), &[3; 100], 60).unwrap();
        big.put(&key(4), &[4; 100], 70).unwrap();
        let ev = big.purge_expired(100).unwrap();
        assert_eq!(keys_of(&ev), vec![key(1)]);
        assert!(ev.iter().all(|e| e.reason == EvictReason::Expired));
        // A smaller cap takes effect on enforce.
        let small = store.cache(CacheLimits {
            max_bytes: 150,
            ttl_ms: 100,
        });
        big.get(&key(2), 80).unwrap();
        let ev = small.enforce(80).unwrap();
        assert_eq!(keys_of(&ev), vec![key(3), key(4)]);
        let s = small.stats(80).unwrap();
        assert_eq!((s.entries, s.bytes, s.max_bytes), (1, 100, 150));
    }

    #[test]
    fn many_hits_flush_access_times() {
        let c = cache(u64::MAX, 0);
        for i in 0..=255u8 {
            c.put(&key(i), &[i], 0).unwrap();
        }
        // Interval-based flush: the hit at 30 s writes the pending accesses.
        c.get(&key(0), 1).unwrap();
        c.get(&key(1), 1 + ACCESS_FLUSH_INTERVAL_MS).unwrap();
        assert!(lock(&c.store.inner.pending_access).times.is_empty());
        let small = Cache::new(
            c.store.clone(),
            CacheLimits {
                max_bytes: 254,
                ttl_ms: 0,
            },
        );
        let ev = small.enforce(50_000).unwrap();
        assert_eq!(keys_of(&ev), vec![key(2), key(3)]);
    }
}
