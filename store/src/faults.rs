//! Test support: a redb storage backend over a real file that behaves like a small, full disk — a write
//! reaching past [`Disk`]'s limit fails with `StorageFull` (ENOSPC), as the page that would hold it has no
//! block behind it. Raising the limit is "freeing space". Pages already inside the limit stay writable,
//! so space freed inside the file (evicted cache entries) is reusable, as on a real filesystem.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{Builder, Database, StorageBackend};

use crate::error::StoreError;

/// The simulated disk: how many bytes of the file can be backed.
#[derive(Debug)]
pub(crate) struct Disk {
    limit: AtomicU64,
    /// Writes refused so far.
    pub(crate) refused: AtomicU64,
}

impl Disk {
    pub(crate) fn new(limit: u64) -> Arc<Disk> {
        Arc::new(Disk {
            limit: AtomicU64::new(limit),
            refused: AtomicU64::new(0),
        })
    }

    pub(crate) fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct FaultyBackend {
    file: FileBackend,
    disk: Arc<Disk>,
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, io::Error> {
        self.file.read(offset, len)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        // Like ftruncate on a full disk: growing a sparse file succeeds, writing into it does not.
        self.file.set_len(len)
    }

    fn sync_data(&self, eventual: bool) -> Result<(), io::Error> {
        self.file.sync_data(eventual)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        if offset + data.len() as u64 > self.disk.limit.load(Ordering::SeqCst) {
            self.disk.refused.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device (simulated)",
            ));
        }
        self.file.write(offset, data)
    }
}

/// Opens (or creates) the database at `path` behind the simulated disk.
pub(crate) fn open(
    path: &Path,
    builder: &Builder,
    disk: &Arc<Disk>,
) -> Result<Database, StoreError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::file(format!("opening {}", path.display()), e))?;
    let backend = FaultyBackend {
        file: FileBackend::new(file)?,
        disk: Arc::clone(disk),
    };
    Ok(builder.create_with_backend(backend)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::AccountState;
    use crate::cache::{CacheLimits, PutOutcome};
    use crate::pool::Checkout;
    use crate::store::Store;

    const LIMITS: CacheLimits = CacheLimits {
        max_bytes: 64 << 20,
        ttl_ms: 0,
    };

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn a_full_disk_evicts_to_make_room_and_the_store_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        let disk = Disk::new(u64::MAX);
        let store = Store::faulty(&path, Arc::clone(&disk)).unwrap();
        let cache = store.cache(LIMITS);
        for i in 0..10u8 {
            cache
                .put(&[i; 32], &vec![i; 500_000], u64::from(i))
                .unwrap();
        }
        // The disk is full: the file cannot grow any more. Puts go on until one needs new space.
        disk.set_limit(file_len(&path));
        let (mut made_room, mut last) = (None, 0);
        for i in 10..60u8 {
            let outcome = cache
                .put(&[i; 32], &vec![i; 500_000], u64::from(i))
                .unwrap();
            last = i;
            if disk.refused.load(Ordering::SeqCst) > 0 {
                made_room = Some(outcome);
                break;
            }
        }
        match made_room.expect("a put hit the full disk") {
            PutOutcome::Stored { evicted } => {
                assert!(!evicted.is_empty(), "made room by evicting");
                assert_eq!(evicted[0].key, [0; 32], "least recently used first");
            }
            PutOutcome::TooLarge => panic!("too large"),
        }
        let stored = cache
            .get(&[last; 32], 100)
            .unwrap()
            .expect("the retried put stored");
        assert_eq!(stored.len(), 500_000);
        // Reads and the operator's clear work on the full disk (before: PreviousIo until restart).
        assert!(cache.stats(102).unwrap().entries > 0);
        assert!(cache.clear().unwrap() > 0);
        assert_eq!(cache.stats(103).unwrap().entries, 0);
    }

    #[test]
    fn account_state_is_kept_in_memory_and_saved_when_writes_succeed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        let disk = Disk::new(u64::MAX);
        {
            let store = Store::faulty(&path, Arc::clone(&disk)).unwrap();
            let pool = store.accounts().unwrap();
            for l in ["a1", "a2", "a3"] {
                pool.add(l, None, &format!("secret-{l}-0123456789"), 0)
                    .unwrap();
            }
            // Nothing can be written any more.
            disk.set_limit(0);
            pool.cool_down("a1", 60_000).unwrap();
            pool.cool_down("a2", 60_000).unwrap();
            assert_eq!(pool.unsaved(), 2);
            // The cool-downs are honoured: only a3 is handed out.
            for t in 0..6 {
                match pool.checkout(1_000 + t, &[]) {
                    Checkout::Lease(l) => assert_eq!(l.label, "a3"),
                    other => panic!("{other:?}"),
                }
            }
            // An operator's add fails plainly and changes nothing.
            assert!(pool.add("a4", None, "secret-a4-0123456789", 0).is_err());
            assert_eq!(pool.list(0).len(), 3);
            // Space again: the next write (here a flush) saves what was kept in memory.
            disk.set_limit(u64::MAX);
            pool.flush().unwrap();
            assert_eq!(pool.unsaved(), 0);
        }
        let store = Store::open(&path).unwrap();
        let list = store.accounts().unwrap().list(2_000);
        assert_eq!(
            list[0].state,
            AccountState::CoolingDown { until_ms: 60_000 }
        );
        assert_eq!(
            list[1].state,
            AccountState::CoolingDown { until_ms: 60_000 }
        );
        assert_eq!(list[2].counters.requests, 6);
    }
}
