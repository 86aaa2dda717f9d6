//! The hot cache: ready-to-send response bodies of recent cache hits, in memory in front of redb, served as
//! shared pieces ([`Chunks`]) with no copy and no component render. It is a copy of what the store holds, never more:
//!
//! - keyed by the same cache key (plus `response_format`), so nothing is served across what the key separates;
//!   each body also remembers the translator version that rendered it and is served only while that version
//!   is active;
//! - an entry expires when its stored entry does (the store's TTL from the stored creation time);
//! - the store tells it of every removal (replace, eviction, expiry, remove, clear) before the removal commits
//!   (`aperture_store::CacheObserver`), and a body read from the store before a removal is never inserted
//!   after it: a [`Ticket`] taken before the store read is checked after the insert (per key stripe).
//!
//! Bodies of hits read from the store are rendered with `created` set to the stored entry's creation time
//! (when the images were generated), so a body is the same for the life of the entry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use aperture_store::{CacheKey, CacheObserver};
use indexmap::IndexMap;

use super::body::Chunks;

use crate::policy::ResponseFormat;

/// Budget for the bodies held (bytes); never more than the configured cache size.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Bookkeeping per body counted on top of its length.
const OVERHEAD: u64 = 128;
/// Removal counters, by the key's first byte.
const STRIPES: usize = 256;

type HotKey = (CacheKey, u8);

/// One ready-to-send body.
#[derive(Clone)]
struct HotBody {
    body: Chunks,
    /// Unix ms at which the stored entry expires (`u64::MAX`: never).
    expires_ms: u64,
    /// sha256 of the translator version that rendered it.
    renderer: Arc<str>,
}

fn weight(body: &HotBody) -> u64 {
    body.body.len() + OVERHEAD
}

/// Bodies in least- to most-recently-used order, with their total weight. (A few hundred entries at
/// most: moving one to the back is a short memmove. quick_cache was the first choice, but it switches on a
/// hashbrown feature shared with wasmtime's compiler, which then has to be rebuilt: a later change.)
struct Lru {
    bodies: IndexMap<HotKey, HotBody>,
    weight: u64,
    max: u64,
}

impl Lru {
    fn remove(&mut self, key: &HotKey) {
        if let Some(old) = self.bodies.shift_remove(key) {
            self.weight -= weight(&old);
        }
    }
}

/// What the removal counters were before a store read; see [`HotCache::insert`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    stripe: u64,
    cleared: u64,
}

/// Response bodies by (cache key, response format), with a byte budget.
pub struct HotCache {
    lru: Mutex<Lru>,
    removals: Box<[AtomicU64]>,
    cleared: AtomicU64,
}

fn format_id(format: ResponseFormat) -> u8 {
    match format {
        ResponseFormat::B64Json => 0,
        ResponseFormat::Url => 1,
    }
}

const FORMATS: [u8; 2] = [0, 1];

impl HotCache {
    /// A hot cache holding at most `max_bytes` of bodies.
    pub fn new(max_bytes: u64) -> HotCache {
        HotCache {
            lru: Mutex::new(Lru {
                bodies: IndexMap::new(),
                weight: 0,
                max: max_bytes,
            }),
            removals: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            cleared: AtomicU64::new(0),
        }
    }

    fn lru(&self) -> MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stripe(&self, key: &CacheKey) -> &AtomicU64 {
        &self.removals[key[0] as usize % STRIPES]
    }

    /// The body for `key` in `format`, rendered by `renderer`, unless its stored entry has expired.
    pub fn get(
        &self,
        key: &CacheKey,
        format: ResponseFormat,
        renderer: &str,
        now_ms: u64,
    ) -> Option<Chunks> {
        let hot_key = (*key, format_id(format));
        let mut lru = self.lru();
        let at = lru.bodies.get_index_of(&hot_key)?;
        if now_ms >= lru.bodies[at].expires_ms {
            lru.remove(&hot_key);
            return None;
        }
        if *lru.bodies[at].renderer != *renderer {
            return None;
        }
        let last = lru.bodies.len() - 1;
        lru.bodies.move_index(at, last);
        Some(lru.bodies[last].body.clone())
    }

    /// Take before reading the stored entry whose body will be inserted.
    pub fn ticket(&self, key: &CacheKey) -> Ticket {
        Ticket {
            stripe: self.stripe(key).load(Ordering::SeqCst),
            cleared: self.cleared.load(Ordering::SeqCst),
        }
    }

    /// Keep `body` for `key`; dropped again at once if the store removed anything of the key's stripe (or
    /// everything) since `ticket` was taken, so a body read before a removal never outlives it.
    pub fn insert(
        &self,
        key: &CacheKey,
        format: ResponseFormat,
        body: Chunks,
        expires_ms: u64,
        renderer: &str,
        ticket: Ticket,
    ) {
        let hot_key = (*key, format_id(format));
        let body = HotBody {
            body,
            expires_ms,
            renderer: renderer.into(),
        };
        {
            let mut lru = self.lru();
            if weight(&body) > lru.max {
                return;
            }
            lru.remove(&hot_key);
            lru.weight += weight(&body);
            lru.bodies.insert(hot_key, body);
            while lru.weight > lru.max {
                match lru.bodies.shift_remove_index(0) {
                    Some((_, old)) => lru.weight -= weight(&old),
                    None => break,
                }
            }
        }
        if self.stripe(key).load(Ordering::SeqCst) != ticket.stripe
            || self.cleared.load(Ordering::SeqCst) != ticket.cleared
        {
            self.lru().remove(&hot_key);
        }
    }

    /// Bytes of bodies held.
    pub fn weight(&self) -> u64 {
        self.lru().weight
    }
}

/// Identity of the translator version serving a request: bodies another version
/// rendered are not served to it.
pub fn renderer(pin: &crate::policy::PolicySnapshot) -> String {
    pin.translator.serving().info.sha256.clone()
}

impl CacheObserver for HotCache {
    fn removing(&self, key: &CacheKey) {
        // Counter first, then the removal: an insert racing with this either sees the new count or is
        // removed here after it landed.
        self.stripe(key).fetch_add(1, Ordering::SeqCst);
        let mut lru = self.lru();
        for f in FORMATS {
            lru.remove(&(*key, f));
        }
    }

    fn clearing(&self) {
        self.cleared.fetch_add(1, Ordering::SeqCst);
        let mut lru = self.lru();
        lru.bodies.clear();
        lru.weight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key(n: u8) -> CacheKey {
        [n; 32]
    }

    #[test]
    fn serves_what_was_inserted_until_removed_expired_or_rerendered() {
        let hot = HotCache::new(1 << 20);
        let t = hot.ticket(&key(1));
        hot.insert(
            &key(1),
            ResponseFormat::B64Json,
            Chunks::from(Bytes::from_static(b"{}")),
            1_000,
            "v1",
            t,
        );
        assert_eq!(
            hot.get(&key(1), ResponseFormat::B64Json, "v1", 10)
                .map(|b| b.to_bytes()),
            Some(Bytes::from_static(b"{}"))
        );
        assert!(hot.get(&key(1), ResponseFormat::Url, "v1", 10).is_none());
        assert!(
            hot.get(&key(1), ResponseFormat::B64Json, "v2", 10)
                .is_none(),
            "another translator version renders it anew"
        );
        assert!(
            hot.get(&key(1), ResponseFormat::B64Json, "v1", 1_000)
                .is_none(),
            "expired with the stored entry"
        );
        let t = hot.ticket(&key(1));
        hot.insert(
            &key(1),
            ResponseFormat::Url,
            Chunks::from(Bytes::from_static(b"u")),
            u64::MAX,
            "v1",
            t,
        );
        hot.removing(&key(1));
        assert!(hot.get(&key(1), ResponseFormat::Url, "v1", 10).is_none());
        let t = hot.ticket(&key(2));
        hot.insert(
            &key(2),
            ResponseFormat::Url,
            Chunks::from(Bytes::from_static(b"u")),
            u64::MAX,
            "v1",
            t,
        );
        hot.clearing();
        assert!(hot.get(&key(2), ResponseFormat::Url, "v1", 10).is_none());
    }

    #[test]
    fn a_body_read_before_a_removal_is_not_kept() {
        let hot = HotCache::new(1 << 20);
        let t = hot.ticket(&key(3));
        hot.removing(&key(3));
        hot.insert(
            &key(3),
            ResponseFormat::B64Json,
            Chunks::from(Bytes::from_static(b"old")),
            u64::MAX,
            "v1",
            t,
        );
        assert!(hot.get(&key(3), ResponseFormat::B64Json, "v1", 0).is_none());
        let t = hot.ticket(&key(4));
        hot.clearing();
        hot.insert(
            &key(4),
            ResponseFormat::B64Json,
            Chunks::from(Bytes::from_static(b"old")),
            u64::MAX,
            "v1",
            t,
        );
        assert!(hot.get(&key(4), ResponseFormat::B64Json, "v1", 0).is_none());
    }

    #[test]
    fn the_byte_budget_holds() {
        let hot = HotCache::new(10_000);
        for i in 0..50u8 {
            let t = hot.ticket(&key(i));
            hot.insert(
                &key(i),
                ResponseFormat::B64Json,
                Chunks::from(Bytes::from(vec![0u8; 1_000])),
                u64::MAX,
                "v1",
                t,
            );
        }
        assert!(hot.weight() <= 10_000, "{}", hot.weight());
    }
}
