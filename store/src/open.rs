//! Opening the database file safely: a new file is created private (0600); an existing one is checked
//! before and after redb opens it (not empty, redb's header, no redb error or panic, redb's integrity
//! check), so a damaged file is refused with [`StoreError::Damaged`] rather than started empty or
//! crashing; a lock held by another process is [`StoreError::Locked`].

use std::io::Read;
use std::path::Path;

use redb::{Builder, Database};

use crate::error::StoreError;

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// What [`prepare`] found at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// No file: a new, empty one was created (mode 0600). Also used to skip the integrity check when
    /// reopening a file this process opened (and checked) before.
    Created,
    /// An existing file with redb's header.
    Existing,
}

/// Checks the file at `path` before redb sees it: an existing file must be non-empty and start with
/// redb's header (a 0-byte file is damage, never "new"); a missing one is created with mode 0600, and an
/// existing one readable by others is tightened to 0600 (logged).
pub(crate) fn prepare(path: &Path) -> Result<Found, StoreError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_private(path)?;
            return Ok(Found::Created);
        }
        Err(e) => return Err(StoreError::file(format!("reading {}", path.display()), e)),
    };
    if !meta.is_file() {
        return Err(StoreError::Damaged(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    check_header(path, meta.len())?;
    tighten(path, &meta)?;
    Ok(Found::Existing)
}

/// Whether the file at `path` (of `len` bytes) starts with redb's header.
pub(crate) fn check_header(path: &Path, len: u64) -> Result<(), StoreError> {
    if len == 0 {
        return Err(StoreError::Damaged(
            "the file is empty (0 bytes): its accounts, keys and cache are gone".into(),
        ));
    }
    let mut head = [0u8; REDB_MAGIC.len()];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|()| head == REDB_MAGIC);
    match read {
        Ok(true) => Ok(()),
        Ok(false) => Err(StoreError::Damaged(
            "the file does not start with redb's header (overwritten, or not a store file)".into(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(StoreError::Damaged(
            format!("the file is {len} bytes, shorter than redb's header"),
        )),
        Err(e) => Err(StoreError::file(format!("reading {}", path.display()), e)),
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::file(format!("creating {}", path.display()), e))
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> Result<(), StoreError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::file(format!("creating {}", path.display()), e))
}

/// Makes an existing file 0600 if group or others may read it.
#[cfg(unix)]
fn tighten(path: &Path, meta: &std::fs::Metadata) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| StoreError::file(format!("making {} private", path.display()), e))?;
        tracing::info!(
            file = %path.display(),
            "Store file permissions tightened from {mode:o} to 600 (it holds account secrets)"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), StoreError> {
    Ok(())
}

/// Opens a file [`prepare`] accepted, then runs redb's integrity check. Returns the database and whether
/// the check had to repair something (redb then rolled back to the last intact commit).
pub(crate) fn open_checked(
    path: &Path,
    builder: &Builder,
    found: Found,
) -> Result<(Database, bool), StoreError> {
    // redb marks the file in its header as soon as it opens it; a file refused as damaged must be
    // left exactly as found (for `store repair` and for whoever inspects it), so the header is put back.
    let header = match found {
        Found::Existing => read_header(path),
        Found::Created => None,
    };
    let opened = (|| {
        let mut db = quietly(|| builder.create(path))
            .map_err(|panic| damaged_by_panic("opening", &panic))?
            .map_err(classify_open_error)?;
        if found == Found::Created {
            return Ok((db, false));
        }
        let clean = quietly(|| db.check_integrity())
            .map_err(|panic| damaged_by_panic("checking", &panic))?
            .map_err(classify_open_error)?;
        Ok((db, !clean))
    })();
    if let (Err(StoreError::Damaged(_)), Some(header)) = (&opened, header) {
        restore_header(path, &header);
    }
    opened
}

/// The bytes of redb's file header (its commit slots included).
const HEADER_BYTES: u64 = 4096;

fn read_header(path: &Path) -> Option<Vec<u8>> {
    let mut header = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(HEADER_BYTES)
        .read_to_end(&mut header)
        .ok()?;
    Some(header)
}

fn restore_header(path: &Path, header: &[u8]) {
    use std::io::Write;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(header).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        tracing::warn!(file = %path.display(), error = %e, "could not put the damaged store's header back as found");
    }
}

/// A redb open error as this crate reports it: a lock is [`StoreError::Locked`], corruption and
/// unreadable structures are [`StoreError::Damaged`], anything else stays a database error.
pub(crate) fn classify_open_error(e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked,
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => {
            StoreError::Damaged(format!("redb reports corruption: {why}"))
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            StoreError::Damaged(format!("the file is truncated ({io})"))
        }
        other => StoreError::from(other),
    }
}

fn damaged_by_panic(doing: &str, panic: &str) -> StoreError {
    StoreError::Damaged(format!(
        "redb failed while {doing} the file ({panic}); its pages are inconsistent"
    ))
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into `Err(message)` without printing it: redb 2 may panic on corrupt pages,
/// and a damaged file must give a clear error, never a backtrace. Only panics on this thread while `f`
/// runs are silenced; every other panic still reaches the previous hook.
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into())
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use crate::cache::CacheLimits;
    use crate::error::StoreError;
    use crate::store::Store;

    /// A store file of a few MB: two accounts, a client key, 40 cache entries of 100 KB.
    pub(crate) fn filled_file(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("aperture.redb");
        let store = Store::open(&path).unwrap();
        let pool = store.accounts().unwrap();
        pool.add("a", None, "secret-a-0123456789", 1).unwrap();
        pool.add("b", None, "secret-b-0123456789", 1).unwrap();
        store.keys().add("ops", "sk-ops-0123").unwrap();
        let cache = store.cache(CacheLimits {
            max_bytes: 64 << 20,
            ttl_ms: 0,
        });
        for i in 0..40u8 {
            cache.put(&[i; 32], &vec![i; 100_000], 1).unwrap();
        }
        path
    }

    fn damaged(path: &std::path::Path) -> String {
        match Store::open(path) {
            Err(StoreError::Damaged(why)) => why,
            Err(other) => panic!("expected Damaged, got {other:?}"),
            Ok(_) => panic!("a damaged file opened"),
        }
    }

    #[test]
    fn empty_file_is_damage_not_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = filled_file(dir.path());
        std::fs::File::create(&path).unwrap();
        assert!(damaged(&path).contains("empty"));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as found");
    }

    #[test]
    fn truncated_files_are_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = filled_file(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len > 1 << 20, "{len}");
        for cut in [4096, len / 2, 5] {
            let copy = dir.path().join(format!("cut-{cut}.redb"));
            std::fs::copy(&path, &copy).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&copy)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let why = damaged(&copy);
            assert!(!why.is_empty());
        }
    }

    #[test]
    fn zeroed_middle_and_foreign_files_are_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = filled_file(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        {
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(SeekFrom::Start(len / 4)).unwrap();
            f.write_all(&vec![0; (len / 2) as usize]).unwrap();
        }
        damaged(&path);
        let foreign = dir.path().join("notes.redb");
        std::fs::write(&foreign, b"not a database at all, just some text").unwrap();
        assert!(damaged(&foreign).contains("header"));
    }

    #[test]
    fn a_lock_is_reported_as_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        let _held = Store::open(&path).unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::Locked)));
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        drop(Store::open(&path).unwrap());
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Store::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600, "tightened at open");
    }
}
