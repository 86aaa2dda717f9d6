//! The [`Store`] handle: opens the redb file (refusing a damaged one, see `open.rs`) or an in-memory
//! database for tests, creates the tables, and hands out the cache, account pool and key store views that
//! share it. After an I/O failure (a full disk, a failed fsync) redb refuses all further work on that
//! handle (`PreviousIo`); [`Store::run`] then reopens the file and retries once, so the store recovers
//! without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use redb::{Builder, Database, ReadableTable};

use crate::cache::{Cache, CacheKey, CacheLimits};
use crate::error::StoreError;
use crate::keys::{KeyEntry, KeyStore};
use crate::open;
use crate::pool::{AccountPool, PoolState};
use crate::seal::SecretKey;
use crate::tables;

/// Memory redb may use for its page cache. redb's default is 1 GiB, far more than a gateway wants to spend
/// next to the OS page cache for a file that mostly holds images. redb keeps every page it writes in this
/// cache while there is room, and never gives it back, so after a burst of cache writes the process holds
/// all of it: 16 MiB keeps the B-tree's hot pages (recent images are the host's hot cache's job).
const PAGE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// How often a reopen retries while transactions on the failed handle are still finishing.
const REOPEN_ATTEMPTS: u32 = 200;
const REOPEN_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// How a store is opened.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// The key account secrets are encrypted with. Without one they are stored as plain text.
    pub secret_key: Option<SecretKey>,
}

/// Handle to the database. Cheap to clone; every clone (and every [`Cache`], [`AccountPool`] and
/// [`KeyStore`] made from it) shares one `Arc`. The file is closed (and its lock released) when the last of
/// them is dropped.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// At most one `Storage write failed` line per this interval (a nearly full disk flaps).
const FAILURE_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

pub(crate) struct Inner {
    /// The open database and its generation (bumped by every reopen); `None` while a reopen failed.
    db: RwLock<Option<(Arc<Database>, u64)>>,
    /// Where the database lives, to reopen it.
    source: Source,
    /// Serialises reopens.
    reopen: Mutex<()>,
    /// Set while writes fail, so the failure is logged once and the recovery once.
    failing: AtomicBool,
    /// When the failure line was last written, and whether its recovery line is still owed: on a nearly
    /// full disk small writes succeed while large ones fail, and the flapping must not flood the log.
    failure_logged: Mutex<(Option<std::time::Instant>, bool)>,
    /// Whether redb's integrity check repaired the file at open.
    pub(crate) repaired_at_open: bool,
    /// The key account secrets are sealed with.
    pub(crate) secret_key: RwLock<Option<SecretKey>>,
    /// Cache access times recorded by hits and not yet written (see `cache.rs`).
    pub(crate) pending_access: Mutex<PendingAccess>,
    /// Client keys loaded into memory for `verify`, dropped on every change made through this store.
    pub(crate) keys_cache: RwLock<Option<Arc<Vec<KeyEntry>>>>,
    /// The account pool, loaded once so every `Store::accounts()` call shares the same in-memory state.
    pub(crate) pool: Mutex<Option<Arc<Mutex<PoolState>>>>,
    /// Told of every cache entry removal before it commits (see [`crate::CacheObserver`]).
    pub(crate) cache_observer: RwLock<Option<Arc<dyn crate::cache::CacheObserver>>>,
}

/// Where a database lives.
enum Source {
    File(PathBuf),
    Memory,
    /// A file behind a backend that fails writes past a size, for tests of a full disk.
    #[cfg(test)]
    Faulty(PathBuf, Arc<crate::faults::Disk>),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Memory => "the in-memory database".into(),
            #[cfg(test)]
            Source::Faulty(p, _) => p.display().to_string(),
        }
    }
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

pub(crate) fn builder() -> Builder {
    let mut builder = Builder::new();
    builder.set_cache_size(PAGE_CACHE_BYTES);
    builder.create_with_file_format_v3(true);
    builder
}

impl Store {
    /// [`Store::open_with`] without a secret key.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens the database file at `path`, creating it (mode 0600) if it does not exist (its parent
    /// directory must exist), and creates any missing tables. An existing file is checked first: empty,
    /// not redb, or failing redb's integrity check (including redb panicking on it) is
    /// [`StoreError::Damaged`]; another process holding it is [`StoreError::Locked`]; a newer schema is
    /// [`StoreError::Corrupt`].
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let found = open::prepare(path)?;
        let (db, repaired) = open::open_checked(path, &builder(), found)?;
        if repaired {
            tracing::warn!(
                file = %path.display(),
                "Store file failed redb's integrity check and was repaired (rolled back to its last intact commit)"
            );
        }
        Self::init(db, Source::File(path.to_path_buf()), repaired, options)
    }

    /// An empty database held in memory (redb's `InMemoryBackend`), for tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        let db = builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db, Source::Memory, false, StoreOptions::default())
    }

    /// A file-backed store whose writes fail once the file would grow past `disk`'s limit.
    #[cfg(test)]
    pub(crate) fn faulty(path: &Path, disk: Arc<crate::faults::Disk>) -> Result<Store, StoreError> {
        let db = crate::faults::open(path, &builder(), &disk)?;
        Self::init(
            db,
            Source::Faulty(path.to_path_buf(), disk),
            false,
            StoreOptions::default(),
        )
    }

    fn init(
        db: Database,
        source: Source,
        repaired: bool,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        create_tables(&db)?;
        Ok(Store {
            inner: Arc::new(Inner {
                db: RwLock::new(Some((Arc::new(db), 0))),
                source,
                reopen: Mutex::new(()),
                failing: AtomicBool::new(false),
                failure_logged: Mutex::new((None, false)),
                repaired_at_open: repaired,
                secret_key: RwLock::new(options.secret_key),
                pending_access: Mutex::new(PendingAccess::default()),
                keys_cache: RwLock::new(None),
                pool: Mutex::new(None),
                cache_observer: RwLock::new(None),
            }),
        })
    }

    /// A view of the image cache with the given limits. Limits are not stored: a smaller cap than last time
    /// takes effect at the next `put` (or call [`Cache::enforce`] at start-up).
    pub fn cache(&self, limits: CacheLimits) -> Cache {
        Cache::new(self.clone(), limits)
    }

    /// The upstream account pool. The first call loads every account into memory (opening sealed secrets
    /// with the secret key, and sealing plain ones when a key is set); later calls return a handle to the
    /// same in-memory pool, so all callers see one round-robin cursor and one set of states.
    pub fn accounts(&self) -> Result<AccountPool, StoreError> {
        let mut slot = lock(&self.inner.pool);
        if let Some(state) = slot.as_ref() {
            return Ok(AccountPool::new(self.clone(), Arc::clone(state)));
        }
        let key = self.secret_key();
        let state = self.run(|db| PoolState::load(db, key.as_ref()))?;
        let state = Arc::new(Mutex::new(state));
        *slot = Some(Arc::clone(&state));
        Ok(AccountPool::new(self.clone(), state))
    }

    /// The policy component registry.
    pub fn components(&self) -> crate::components::ComponentStore {
        crate::components::ComponentStore::new(self.clone())
    }

    /// The client-key store.
    pub fn keys(&self) -> KeyStore {
        KeyStore::new(self.clone())
    }

    /// Whether redb's integrity check found and repaired damage when this store was opened.
    pub fn repaired_at_open(&self) -> bool {
        self.inner.repaired_at_open
    }

    /// Whether account secrets are encrypted at rest (a secret key is set).
    pub fn encrypts_secrets(&self) -> bool {
        self.secret_key().is_some()
    }

    pub(crate) fn secret_key(&self) -> Option<SecretKey> {
        self.inner
            .secret_key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_secret_key(&self, key: SecretKey) {
        *self
            .inner
            .secret_key
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(key);
    }

    /// The open database. Fails only while a reopen after an I/O failure has not succeeded (the call
    /// tries again).
    pub(crate) fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.current().map(|(db, _)| db)
    }

    fn current(&self) -> Result<(Arc<Database>, u64), StoreError> {
        if let Some((db, generation)) = self
            .inner
            .db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Ok((Arc::clone(db), *generation));
        }
        self.reopen(None)?;
        self.current_if_open()
    }

    fn current_if_open(&self) -> Result<(Arc<Database>, u64), StoreError> {
        self.inner
            .db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(db, g)| (Arc::clone(db), *g))
            .ok_or_else(|| StoreError::Unavailable(format!("{} is not open", self.describe())))
    }

    fn describe(&self) -> String {
        self.inner.source.describe()
    }

    /// Runs `op` on the database. On an I/O failure the database is reopened (redb refuses every later
    /// call on a handle that saw one), `between` runs on the fresh handle (e.g. evicting to make room),
    /// and `op` is tried once more. The first failure and the recovery are logged once each.
    pub(crate) fn run_with<R>(
        &self,
        op: impl FnMut(&Database) -> Result<R, StoreError>,
        between: impl FnOnce(&Database),
    ) -> Result<R, StoreError> {
        self.attempt(op, between, true)
    }

    /// [`Store::run`] for reads: a success does not count as "writes succeed again".
    pub(crate) fn read<R>(
        &self,
        op: impl FnMut(&Database) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.attempt(op, |_| {}, false)
    }

    fn attempt<R>(
        &self,
        mut op: impl FnMut(&Database) -> Result<R, StoreError>,
        between: impl FnOnce(&Database),
        write: bool,
    ) -> Result<R, StoreError> {
        let (db, generation) = self.current()?;
        let first = op(&db);
        drop(db);
        let e = match first {
            Ok(r) => {
                if write {
                    self.note_success();
                }
                return Ok(r);
            }
            Err(e) if e.is_io() => e,
            Err(e) => return Err(e),
        };
        self.note_failure(&e);
        self.reopen(Some(generation))?;
        let (db, _) = self.current_if_open()?;
        between(&db);
        let second = op(&db);
        match &second {
            Ok(_) if write => self.note_success(),
            Ok(_) => {}
            Err(e) if e.is_io() => tracing::debug!(error = %e, "storage: retry failed"),
            Err(_) => {}
        }
        second
    }

    /// [`Store::run_with`] with nothing to do between the attempts.
    pub(crate) fn run<R>(
        &self,
        op: impl FnMut(&Database) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.run_with(op, |_| {})
    }

    /// Reads one row, reopening the database if it fails with an I/O error; a cheap health probe for a
    /// periodic task (after an I/O failure seen by a caller that does not reopen itself).
    pub fn probe(&self) -> Result<(), StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(tables::META)?;
            meta.get(tables::META_SCHEMA_VERSION)?;
            Ok(())
        })
    }

    /// Whether the last write failed (disk full, I/O error); cleared by the next write that succeeds.
    pub fn writes_failing(&self) -> bool {
        self.inner.failing.load(Ordering::Acquire)
    }

    fn note_failure(&self, e: &StoreError) {
        if self.inner.failing.swap(true, Ordering::AcqRel) {
            tracing::debug!(error = %e, "storage: another write failed");
            return;
        }
        let mut logged = lock(&self.inner.failure_logged);
        let quiet = logged
            .0
            .is_some_and(|at| at.elapsed() < FAILURE_LOG_INTERVAL);
        if quiet {
            tracing::debug!(error = %e, "storage: writes fail again (logged less than a minute ago)");
            return;
        }
        *logged = (Some(std::time::Instant::now()), true);
        tracing::error!(
            file = %self.describe(),
            error = %e,
            "Storage write failed (disk full?): reopening the store and retrying; cache entries are evicted to make room, account state is kept in memory and saved once writes succeed"
        );
    }

    fn note_success(&self) {
        if self.inner.failing.swap(false, Ordering::AcqRel) {
            let mut logged = lock(&self.inner.failure_logged);
            if std::mem::take(&mut logged.1) {
                tracing::info!(file = %self.describe(), "Storage writes succeed again");
            }
        }
    }

    /// Drops the failed handle and opens the file again, unless another caller already did since
    /// `failed_generation`. Waits (briefly) for transactions still holding the old handle.
    fn reopen(&self, failed_generation: Option<u64>) -> Result<(), StoreError> {
        let _one = lock(&self.inner.reopen);
        let generation = {
            let mut slot = self.inner.db.write().unwrap_or_else(|e| e.into_inner());
            match (slot.as_ref(), failed_generation) {
                (Some((_, g)), Some(failed)) if *g != failed => return Ok(()),
                (Some(_), None) => return Ok(()),
                _ => {}
            }
            let generation = slot.as_ref().map(|(_, g)| g + 1).unwrap_or(1);
            if matches!(self.inner.source, Source::Memory) {
                return Err(StoreError::Unavailable(
                    "the in-memory database cannot be reopened".into(),
                ));
            }
            *slot = None;
            generation
        };
        let mut last = None;
        for _ in 0..REOPEN_ATTEMPTS {
            let opened = match &self.inner.source {
                // The file must still be there (never a new empty store in its place); redb repairs it
                // itself if the failed handle left it unclean, so the full integrity check is skipped.
                Source::File(path) => std::fs::metadata(path)
                    .map_err(|e| StoreError::file(format!("reading {}", path.display()), e))
                    .and_then(|m| open::check_header(path, m.len()))
                    .and_then(|()| open::open_checked(path, &builder(), open::Found::Created))
                    .map(|(db, _)| db),
                Source::Memory => unreachable_memory(),
                #[cfg(test)]
                Source::Faulty(path, disk) => crate::faults::open(path, &builder(), disk),
            };
            match opened {
                Ok(db) => {
                    *self.inner.db.write().unwrap_or_else(|e| e.into_inner()) =
                        Some((Arc::new(db), generation));
                    tracing::debug!(file = %self.describe(), "store reopened after an I/O failure");
                    return Ok(());
                }
                // Transactions on the old handle still hold the file's lock; they finish quickly.
                Err(StoreError::Locked) => {
                    last = Some(StoreError::Locked);
                    std::thread::sleep(REOPEN_PAUSE);
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        let why = last.map(|e| e.to_string()).unwrap_or_default();
        tracing::error!(file = %self.describe(), error = %why, "Store could not be reopened; the next call tries again");
        Err(StoreError::Unavailable(format!(
            "{} could not be reopened: {why}",
            self.describe()
        )))
    }
}

fn unreachable_memory() -> Result<Database, StoreError> {
    Err(StoreError::Unavailable(
        "the in-memory database cannot be reopened".into(),
    ))
}

/// Schema 1 to 2: moves the payloads of a file written before they were kept in creation order
/// ([`tables::CACHE_PAYLOADS`]) into their new table, in the transaction that records the new version.
/// A payload whose entry row is missing was unreachable before and is dropped.
fn migrate_payloads(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    use redb::TableHandle;
    let legacy_name = tables::LEGACY_CACHE_PAYLOADS.name();
    if !txn.list_tables()?.any(|t| t.name() == legacy_name) {
        return Ok(());
    }
    let (mut moved, mut bytes) = (0u64, 0u64);
    {
        let legacy = txn.open_table(tables::LEGACY_CACHE_PAYLOADS)?;
        let entries = txn.open_table(tables::CACHE_ENTRIES)?;
        let mut payloads = txn.open_table(tables::CACHE_PAYLOADS)?;
        for row in legacy.iter()? {
            let (key, payload) = row?;
            let key = key.value();
            if let Some((created, _, _)) = entries.get(key)?.map(|g| g.value()) {
                payloads.insert((created, key), payload.value())?;
                moved += 1;
                bytes += payload.value().len() as u64;
            }
        }
    }
    txn.delete_table(tables::LEGACY_CACHE_PAYLOADS)?;
    tracing::info!(
        entries = moved,
        bytes,
        "store: cache payloads moved to schema 2 (creation order)"
    );
    Ok(())
}

/// Creates any missing table and records (or checks) the schema version.
fn create_tables(db: &Database) -> Result<(), StoreError> {
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
            Some(v) if v == tables::SCHEMA_VERSION => {}
            _ => {
                meta.insert(tables::META_SCHEMA_VERSION, tables::SCHEMA_VERSION)?;
            }
        }
        drop(meta);
        migrate_payloads(&txn)?;
        txn.open_table(tables::CACHE_PAYLOADS)?;
        txn.open_table(tables::CACHE_ENTRIES)?;
        txn.open_table(tables::CACHE_BY_ACCESS)?;
        txn.open_table(tables::CACHE_BY_CREATED)?;
        txn.open_table(tables::ACCOUNTS)?;
        txn.open_table(tables::CLIENT_KEYS)?;
        txn.open_table(tables::CLIENT_KEY_LIMITS)?;
        txn.open_table(tables::CLIENT_KEY_USAGE)?;
        txn.open_table(tables::ROLLUP_MINUTES)?;
        txn.open_table(tables::ROLLUP_HOURS)?;
        txn.open_table(tables::COMPONENT_VERSIONS)?;
        txn.open_table(tables::COMPONENT_BYTES)?;
        txn.open_table(tables::COMPONENT_SLOTS)?;
        txn.open_table(tables::COMPONENT_EVENTS)?;
        txn.open_table(tables::COMPONENT_ARTIFACTS)?;
    }
    txn.commit()?;
    Ok(())
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
            assert!(matches!(Store::open(&path), Err(StoreError::Locked)));
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
            let txn = store.db().unwrap().begin_write().unwrap();
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
    fn a_schema_1_file_keeps_its_cache_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        let (kept, orphan) = ([7u8; 32], [9u8; 32]);
        {
            // The layout of schema 1: payloads by key alone.
            let store = Store::open(&path).unwrap();
            let txn = store.db().unwrap().begin_write().unwrap();
            txn.delete_table(tables::CACHE_PAYLOADS).unwrap();
            {
                let mut meta = txn.open_table(tables::META).unwrap();
                meta.insert(tables::META_SCHEMA_VERSION, 1).unwrap();
                meta.insert(tables::META_CACHE_BYTES, 5).unwrap();
                meta.insert(tables::META_CACHE_ENTRIES, 1).unwrap();
                let mut legacy = txn.open_table(tables::LEGACY_CACHE_PAYLOADS).unwrap();
                legacy.insert(&kept, b"image".as_slice()).unwrap();
                legacy.insert(&orphan, b"no entry row".as_slice()).unwrap();
                let mut entries = txn.open_table(tables::CACHE_ENTRIES).unwrap();
                entries.insert(&kept, (1_000, 2_000, 5)).unwrap();
                let mut by_access = txn.open_table(tables::CACHE_BY_ACCESS).unwrap();
                by_access.insert((2_000, &kept), ()).unwrap();
                let mut by_created = txn.open_table(tables::CACHE_BY_CREATED).unwrap();
                by_created.insert((1_000, &kept), ()).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let cache = store.cache(crate::cache::CacheLimits {
            max_bytes: 1 << 20,
            ttl_ms: 0,
        });
        assert_eq!(
            cache.get_entry(&kept, 3_000).unwrap(),
            Some((b"image".to_vec(), 1_000))
        );
        assert_eq!(cache.get(&orphan, 3_000).unwrap(), None);
        let txn = store.db().unwrap().begin_read().unwrap();
        let meta = txn.open_table(tables::META).unwrap();
        let version = meta.get(tables::META_SCHEMA_VERSION).unwrap().unwrap();
        assert_eq!(version.value(), tables::SCHEMA_VERSION);
        assert!(matches!(
            txn.open_table(tables::LEGACY_CACHE_PAYLOADS),
            Err(redb::TableError::TableDoesNotExist(_))
        ));
        // Evicting the moved entry removes its payload from the new table.
        drop((meta, txn));
        assert!(cache.remove(&kept).unwrap());
        let txn = store.db().unwrap().begin_read().unwrap();
        let payloads = txn.open_table(tables::CACHE_PAYLOADS).unwrap();
        assert_eq!(redb::ReadableTableMetadata::len(&payloads).unwrap(), 0);
    }

    #[test]
    fn corrupt_account_row_is_an_error_not_a_panic() {
        let store = Store::in_memory().unwrap();
        let txn = store.db().unwrap().begin_write().unwrap();
        {
            let mut t = txn.open_table(tables::ACCOUNTS).unwrap();
            t.insert(1, "{not json").unwrap();
        }
        txn.commit().unwrap();
        assert!(matches!(store.accounts(), Err(StoreError::Corrupt(_))));
    }
}
