//! The [`Store`] handle: opens the redb file (or an in-memory database for tests), creates the tables, and
//! hands out the cache, account pool and key store views that share it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use redb::{Builder, Database, ReadableTable};

use crate::cache::{Cache, CacheKey, CacheLimits};
use crate::error::StoreError;
use crate::keys::{KeyEntry, KeyStore};
use crate::pool::{AccountPool, PoolState};
use crate::tables;

/// Memory redb may use for its page cache. redb's default is 1 GiB, far more than a gateway wants to spend
/// next to the OS page cache for a file that mostly holds images.
const PAGE_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Handle to the database. Cheap to clone; every clone (and every [`Cache`], [`AccountPool`] and
/// [`KeyStore`] made from it) shares one `Arc`. The file is closed (and its lock released) when the last of
/// them is dropped.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: Database,
    /// Cache access times recorded by hits and not yet written (see `cache.rs`).
    pub(crate) pending_access: Mutex<PendingAccess>,
    /// Client keys loaded into memory for `verify`, dropped on every change made through this store.
    pub(crate) keys_cache: RwLock<Option<Arc<Vec<KeyEntry>>>>,
    /// The account pool, loaded once so every `Store::accounts()` call shares the same in-memory state.
    pub(crate) pool: Mutex<Option<Arc<Mutex<PoolState>>>>,
}

/// Last-access times of cache hits not yet written to the LRU index.
#[derive(Default)]
pub(crate) struct PendingAccess {
    pub(crate) times: HashMap<CacheKey, u64>,
    /// `now_ms` of the oldest pending access.
    pub(crate) since_ms: Option<u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database file at `path`, creating the file if it does not exist (its parent directory must
    /// exist), and creates any missing tables. Fails with [`StoreError::Database`] if another process has it
    /// open, and with [`StoreError::Corrupt`] if it was written by a newer schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut builder = Builder::new();
        builder.set_cache_size(PAGE_CACHE_BYTES);
        builder.create_with_file_format_v3(true);
        Self::init(builder.create(path)?)
    }

    /// An empty database held in memory (redb's `InMemoryBackend`), for tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        let mut builder = Builder::new();
        builder.set_cache_size(PAGE_CACHE_BYTES);
        builder.create_with_file_format_v3(true);
        Self::init(builder.create_with_backend(redb::backends::InMemoryBackend::new())?)
    }

    fn init(db: Database) -> Result<Store, StoreError> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            let stored = meta.get(tables::META_SCHEMA_VERSION)?.map(|v| v.value());
            match stored {
                Some(v) if v > tables::SCHEMA_VERSION => {
                    return Err(StoreError::Corrupt(format!(
                        "the database has schema version {v}; this build understands up to {}",
                        tables::SCHEMA_VERSION
                    )));
                }
                Some(_) => {}
                None => {
                    meta.insert(tables::META_SCHEMA_VERSION, tables::SCHEMA_VERSION)?;
                }
            }
            txn.open_table(tables::CACHE_PAYLOADS)?;
            txn.open_table(tables::CACHE_ENTRIES)?;
            txn.open_table(tables::CACHE_BY_ACCESS)?;
            txn.open_table(tables::CACHE_BY_CREATED)?;
            txn.open_table(tables::ACCOUNTS)?;
            txn.open_table(tables::CLIENT_KEYS)?;
            txn.open_table(tables::CLIENT_KEY_LIMITS)?;
            txn.open_table(tables::CLIENT_KEY_USAGE)?;
        }
        txn.commit()?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                pending_access: Mutex::new(PendingAccess::default()),
                keys_cache: RwLock::new(None),
                pool: Mutex::new(None),
            }),
        })
    }

    /// A view of the image cache with the given limits. Limits are not stored: a smaller cap than last time
    /// takes effect at the next `put` (or call [`Cache::enforce`] at start-up).
    pub fn cache(&self, limits: CacheLimits) -> Cache {
        Cache::new(self.clone(), limits)
    }

    /// The upstream account pool. The first call loads every account into memory; later calls return a
    /// handle to the same in-memory pool, so all callers see one round-robin cursor and one set of states.
    pub fn accounts(&self) -> Result<AccountPool, StoreError> {
        let mut slot = lock(&self.inner.pool);
        if let Some(state) = slot.as_ref() {
            return Ok(AccountPool::new(self.clone(), Arc::clone(state)));
        }
        let state = Arc::new(Mutex::new(PoolState::load(&self.inner.db)?));
        *slot = Some(Arc::clone(&state));
        Ok(AccountPool::new(self.clone(), state))
    }

    /// The client-key store.
    pub fn keys(&self) -> KeyStore {
        KeyStore::new(self.clone())
    }

    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }
}

/// Locks a mutex, recovering from poisoning: every critical section in this crate leaves its state
/// consistent before doing anything that could panic, so a poisoned lock carries no broken invariant.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CacheLimits, PutOutcome};

    fn assert_shareable<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn handles_are_send_sync_clone() {
        assert_shareable::<Store>();
        assert_shareable::<Cache>();
        assert_shareable::<AccountPool>();
        assert_shareable::<KeyStore>();
    }

    #[test]
    fn cache_and_keys_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        let limits = CacheLimits {
            max_bytes: 250,
            ttl_ms: 0,
        };
        {
            let store = Store::open(&path).unwrap();
            let cache = store.cache(limits);
            for i in 1..=2u8 {
                assert!(matches!(
                    cache.put(&[i; 32], &[i; 100], u64::from(i)).unwrap(),
                    PutOutcome::Stored { .. }
                ));
            }
            // A hit on the older entry, made durable at shutdown.
            cache.get(&[1; 32], 5).unwrap();
            cache.flush().unwrap();
            store.keys().add("ops", "sk-ops").unwrap();
            // A second open while this one lives is refused (redb locks the file).
            assert!(matches!(Store::open(&path), Err(StoreError::Database(_))));
        }
        let store = Store::open(&path).unwrap();
        let cache = store.cache(limits);
        assert_eq!(cache.get(&[1; 32], 10).unwrap(), Some(vec![1; 100]));
        let s = cache.stats(10).unwrap();
        assert_eq!((s.entries, s.bytes), (2, 200));
        // The access at 5 survived: entry 2 is now the least recently accessed.
        match cache.put(&[3; 32], &[3; 100], 11).unwrap() {
            PutOutcome::Stored { evicted } => {
                assert_eq!(evicted.len(), 1);
                assert_eq!(evicted[0].key, [2; 32]);
            }
            PutOutcome::TooLarge => panic!("too large"),
        }
        assert_eq!(
            store.keys().verify("sk-ops").unwrap().as_deref(),
            Some("ops")
        );
        drop(cache);
        drop(store);
        // A smaller cap at the next start: enforce evicts down to it.
        let store = Store::open(&path).unwrap();
        let cache = store.cache(CacheLimits {
            max_bytes: 100,
            ttl_ms: 0,
        });
        let evicted = cache.enforce(20).unwrap();
        assert_eq!(evicted.len(), 1);
        assert_eq!(cache.stats(20).unwrap().bytes, 100);
    }

    #[test]
    fn concurrent_use_from_threads() {
        let store = Store::in_memory().unwrap();
        let cache = store.cache(CacheLimits {
            max_bytes: 5_000,
            ttl_ms: 0,
        });
        let pool = store.accounts().unwrap();
        pool.add("a", None, "secret-a", 0).unwrap();
        pool.add("b", None, "secret-b", 0).unwrap();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let (cache, pool, keys) = (cache.clone(), pool.clone(), store.keys());
                std::thread::spawn(move || {
                    for i in 0..200u64 {
                        let k = [(i % 50) as u8; 32];
                        cache.put(&k, &[t; 100], i).unwrap();
                        cache.get(&[(i * 7 % 50) as u8; 32], i).unwrap();
                        let _ = pool.checkout(i, &[]);
                        keys.verify("nope").unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = cache.stats(0).unwrap();
        assert!(s.bytes <= 5_000);
        assert_eq!(s.bytes, s.entries * 100);
        let requests: u64 = pool.list(0).iter().map(|v| v.counters.requests).sum();
        assert_eq!(requests, 800);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        {
            let store = Store::open(&path).unwrap();
            let txn = store.db().begin_write().unwrap();
            {
                let mut meta = txn.open_table(tables::META).unwrap();
                meta.insert(tables::META_SCHEMA_VERSION, tables::SCHEMA_VERSION + 1)
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        assert!(matches!(Store::open(&path), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn corrupt_account_row_is_an_error_not_a_panic() {
        let store = Store::in_memory().unwrap();
        let txn = store.db().begin_write().unwrap();
        {
            let mut t = txn.open_table(tables::ACCOUNTS).unwrap();
            t.insert(1, "{not json").unwrap();
        }
        txn.commit().unwrap();
        assert!(matches!(store.accounts(), Err(StoreError::Corrupt(_))));
    }
}
