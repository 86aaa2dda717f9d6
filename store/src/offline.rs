//! Operations on a stopped gateway's store file: [`repair`], [`restore`] and [`rotate_key`]. Each one
//! first makes sure no process holds the file's lock (a running gateway is never touched), and none of
//! them deletes a file: whatever is replaced is kept beside it under a timestamped name.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::error::StoreError;
use crate::open;
use crate::seal::SecretKey;
use crate::snapshot::{inspect, Inventory};
use crate::store::{Store, StoreOptions};

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RepairOutcome {
    /// The file passed every check; nothing was changed.
    Intact { inventory: Inventory },
    /// redb repaired the file (rolled back to its last intact commit, rebuilt its allocator state) and
    /// every row now reads.
    Repaired { inventory: Inventory },
    /// The file could not be repaired; it was renamed to `moved_to`. The next start creates an empty store.
    MovedAside { moved_to: PathBuf, reason: String },
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreOutcome {
    /// What the restored file holds.
    pub inventory: Inventory,
    /// Where the file it replaced was kept, if there was one.
    pub previous: Option<PathBuf>,
}

/// Fails with [`StoreError::Locked`] if another process holds `path`'s lock (a running gateway). The lock
/// is released again before returning: redb takes its own.
pub fn ensure_unlocked(path: &Path) -> Result<(), StoreError> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::file(format!("opening {}", path.display()), e)),
    };
    redb::backends::FileBackend::new(file).map(drop)?;
    Ok(())
}

/// Checks `path` and repairs it if redb can: the header, redb's own repair (run at open after an
/// unclean shutdown, and by its integrity check), then a read of every row. A file that fails is renamed
/// to `<name>.damaged-<UTC time>` and reported as [`RepairOutcome::MovedAside`].
pub fn repair(path: &Path) -> Result<RepairOutcome, StoreError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| StoreError::file(format!("reading {}", path.display()), e))?;
    ensure_unlocked(path)?;
    if let Err(StoreError::Damaged(reason)) = open::check_header(path, meta.len()) {
        return move_aside(path, reason);
    }
    let repaired = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&repaired);
    let mut builder = crate::store::builder();
    builder.set_repair_callback(move |_| flag.store(true, Ordering::SeqCst));
    let checked = open::open_checked(path, &builder, open::Found::Existing)
        .and_then(|(db, fixed)| inspect(&db, None).map(|inv| (inv, fixed)));
    match checked {
        Ok((inventory, fixed)) if fixed || repaired.load(Ordering::SeqCst) => {
            Ok(RepairOutcome::Repaired { inventory })
        }
        Ok((inventory, _)) => Ok(RepairOutcome::Intact { inventory }),
        Err(StoreError::Locked) => Err(StoreError::Locked),
        Err(e @ (StoreError::Damaged(_) | StoreError::Corrupt(_) | StoreError::Database(_))) => {
            move_aside(path, e.to_string())
        }
        Err(e) if e.is_io() => move_aside(path, e.to_string()),
        Err(e) => Err(e),
    }
}

fn move_aside(path: &Path, reason: String) -> Result<RepairOutcome, StoreError> {
    let moved_to = aside_name(path, "damaged");
    rename(path, &moved_to)?;
    Ok(RepairOutcome::MovedAside { moved_to, reason })
}

/// Replaces the store file `target` with a copy of the backup `backup`, after checking the copy: it must
/// open, pass redb's integrity check, have a schema this build understands, and every row must read
/// (sealed secrets must open when `key` is given). Refused while a gateway holds `target`. The replaced
/// file is kept as `<name>.before-restore-<UTC time>`; the backup itself is never modified.
pub fn restore(
    backup: &Path,
    target: &Path,
    key: Option<&SecretKey>,
) -> Result<RestoreOutcome, StoreError> {
    let len = std::fs::metadata(backup)
        .map_err(|e| StoreError::file(format!("reading the backup {}", backup.display()), e))?
        .len();
    open::check_header(backup, len).map_err(|e| match e {
        StoreError::Damaged(why) => {
            StoreError::Damaged(format!("the backup {}: {why}", backup.display()))
        }
        other => other,
    })?;
    ensure_unlocked(target)?;
    let staging = sibling(target, "restoring");
    match std::fs::remove_file(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StoreError::file(
                format!("removing {}", staging.display()),
                e,
            ))
        }
    }
    let staged = stage(backup, &staging).and_then(|()| {
        let (db, _) =
            open::open_checked(&staging, &crate::store::builder(), open::Found::Existing)?;
        inspect(&db, key)
    });
    let inventory = match staged {
        Ok(inv) => inv,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(match e {
                StoreError::Damaged(why) => {
                    StoreError::Damaged(format!("the backup {}: {why}", backup.display()))
                }
                other => other,
            });
        }
    };
    ensure_unlocked(target)?;
    let previous = if target.exists() {
        let aside = aside_name(target, "before-restore");
        rename(target, &aside)?;
        Some(aside)
    } else {
        None
    };
    rename(&staging, target)?;
    Ok(RestoreOutcome {
        inventory,
        previous,
    })
}

/// Copies `backup` to `staging` (mode 0600) and syncs it.
fn stage(backup: &Path, staging: &Path) -> Result<(), StoreError> {
    open::prepare(staging)?;
    let copy = || -> std::io::Result<()> {
        let mut from = std::fs::File::open(backup)?;
        let mut to = std::fs::OpenOptions::new().write(true).open(staging)?;
        std::io::copy(&mut from, &mut to)?;
        to.sync_all()
    };
    copy().map_err(|e| {
        StoreError::file(
            format!("copying {} to {}", backup.display(), staging.display()),
            e,
        )
    })
}

/// Checks a backup file the way [`restore`] does (opens, passes redb's integrity check, every row reads;
/// sealed secrets open when `key` is given) and says what it holds.
pub fn verify(path: &Path, key: Option<&SecretKey>) -> Result<Inventory, StoreError> {
    let len = std::fs::metadata(path)
        .map_err(|e| StoreError::file(format!("reading {}", path.display()), e))?
        .len();
    open::check_header(path, len)?;
    let (db, _) = open::open_checked(path, &crate::store::builder(), open::Found::Existing)?;
    inspect(&db, key)
}

/// Re-encrypts every account secret of the store at `path` from `old` (none: the secrets are plain) to
/// `new`, in one transaction. Refused while a gateway holds the file; a wrong `old` key changes nothing.
pub fn rotate_key(
    path: &Path,
    old: Option<SecretKey>,
    new: &SecretKey,
) -> Result<usize, StoreError> {
    if !path.exists() {
        return Err(StoreError::NotFound(format!(
            "store file {}",
            path.display()
        )));
    }
    let store = Store::open_with(path, StoreOptions { secret_key: old })?;
    let pool = store.accounts()?;
    pool.reseal(new)
}

fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    std::fs::rename(from, to).map_err(|e| {
        StoreError::file(
            format!("renaming {} to {}", from.display(), to.display()),
            e,
        )
    })?;
    if let Some(dir) = to.parent() {
        // Make the rename durable; not every platform can open a directory, which is harmless.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// `<path>.<what>`.
fn sibling(path: &Path, what: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{what}"));
    path.with_file_name(name)
}

/// `<path>.<what>-<UTC time>`, with a counter if that exists already.
fn aside_name(path: &Path, what: &str) -> PathBuf {
    let stamp = utc_stamp(std::time::SystemTime::now());
    let first = sibling(path, &format!("{what}-{stamp}"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| sibling(path, &format!("{what}-{stamp}-{n}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// `YYYYMMDDTHHMMSSZ`.
fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheLimits;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes([b; 32])
    }

    fn with_accounts(path: &Path, secret_key: Option<SecretKey>) {
        let store = Store::open_with(path, StoreOptions { secret_key }).unwrap();
        let pool = store.accounts().unwrap();
        pool.add("a", None, "AIzaSy-secret-a-0123", 1).unwrap();
        pool.add("b", None, "AIzaSy-secret-b-0123", 1).unwrap();
        store.keys().add("ops", "sk-ops-0123").unwrap();
        store
            .cache(CacheLimits {
                max_bytes: 1 << 20,
                ttl_ms: 0,
            })
            .put(&[1; 32], &[1; 5000], 1)
            .unwrap();
    }

    fn file_text(path: &Path) -> String {
        String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
    }

    fn secrets(path: &Path, secret_key: Option<SecretKey>) -> Result<Vec<String>, StoreError> {
        let store = Store::open_with(path, StoreOptions { secret_key })?;
        let pool = store.accounts()?;
        Ok(pool.secrets())
    }

    #[test]
    fn secrets_are_sealed_migrated_and_a_wrong_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        with_accounts(&path, None);
        assert!(
            file_text(&path).contains("AIzaSy-secret-a"),
            "plain without a key"
        );
        // Starting with a key seals the plain secrets (migration).
        assert_eq!(
            secrets(&path, Some(key(1))).unwrap(),
            ["AIzaSy-secret-a-0123", "AIzaSy-secret-b-0123"]
        );
        assert!(
            !file_text(&path).contains("AIzaSy-secret"),
            "sealed at rest"
        );
        // Sealed secrets: no key or a wrong key is a clear error, never garbage.
        let e = secrets(&path, None).unwrap_err();
        assert!(
            matches!(&e, StoreError::SecretKey(m) if m.contains("APERTURE_SECRET_KEY")),
            "{e}"
        );
        let e = secrets(&path, Some(key(2))).unwrap_err();
        assert!(
            matches!(&e, StoreError::SecretKey(m) if m.contains("not the one")),
            "{e}"
        );
        // New accounts are sealed too.
        {
            let store = Store::open_with(
                &path,
                StoreOptions {
                    secret_key: Some(key(1)),
                },
            )
            .unwrap();
            store
                .accounts()
                .unwrap()
                .add("c", None, "AIzaSy-secret-c-0123", 2)
                .unwrap();
        }
        assert!(!file_text(&path).contains("AIzaSy-secret"));
    }

    #[test]
    fn rotate_key_re_encrypts_every_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        with_accounts(&path, Some(key(1)));
        // A wrong old key changes nothing.
        assert!(matches!(
            rotate_key(&path, Some(key(9)), &key(2)),
            Err(StoreError::SecretKey(_))
        ));
        assert_eq!(rotate_key(&path, Some(key(1)), &key(2)).unwrap(), 2);
        assert!(secrets(&path, Some(key(1))).is_err());
        assert_eq!(secrets(&path, Some(key(2))).unwrap().len(), 2);
        // While a gateway holds the file, rotation is refused.
        let _running = Store::open_with(
            &path,
            StoreOptions {
                secret_key: Some(key(2)),
            },
        )
        .unwrap();
        assert!(matches!(
            rotate_key(&path, Some(key(2)), &key(3)),
            Err(StoreError::Locked)
        ));
    }

    #[test]
    fn repair_keeps_a_good_file_and_moves_a_ruined_one_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        with_accounts(&path, None);
        match repair(&path).unwrap() {
            RepairOutcome::Intact { inventory } => assert_eq!(inventory.accounts, 2),
            other => panic!("{other:?}"),
        }
        {
            let _running = Store::open(&path).unwrap();
            assert!(matches!(repair(&path), Err(StoreError::Locked)));
        }
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        match repair(&path).unwrap() {
            RepairOutcome::MovedAside { moved_to, reason } => {
                assert!(!path.exists());
                assert!(moved_to.exists());
                let name = moved_to.file_name().unwrap().to_string_lossy().into_owned();
                assert!(name.starts_with("aperture.redb.damaged-"), "{name}");
                assert!(!reason.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // The next open starts a new, empty store (the operator chose this by repairing).
        assert!(Store::open(&path)
            .unwrap()
            .accounts()
            .unwrap()
            .list(0)
            .is_empty());
        // An empty file is moved aside too.
        let empty = dir.path().join("empty.redb");
        std::fs::File::create(&empty).unwrap();
        assert!(matches!(
            repair(&empty).unwrap(),
            RepairOutcome::MovedAside { .. }
        ));
    }

    #[test]
    fn restore_checks_the_backup_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("aperture.redb");
        with_accounts(&live, Some(key(1)));
        let backup = dir.path().join("backup.redb");
        let store = Store::open_with(
            &live,
            StoreOptions {
                secret_key: Some(key(1)),
            },
        )
        .unwrap();
        store.backup_to(&backup, false).unwrap();
        // While the gateway runs, restore is refused.
        assert!(matches!(
            restore(&backup, &live, None),
            Err(StoreError::Locked)
        ));
        store.accounts().unwrap().remove("a").unwrap();
        drop(store);
        // A wrong key is caught before anything is replaced.
        assert!(matches!(
            restore(&backup, &live, Some(&key(2))),
            Err(StoreError::SecretKey(_))
        ));
        let backup_bytes = std::fs::read(&backup).unwrap();
        let out = restore(&backup, &live, Some(&key(1))).unwrap();
        assert_eq!(out.inventory.accounts, 2);
        assert_eq!(out.inventory.sealed_secrets, 2);
        let previous = out.previous.unwrap();
        assert!(previous
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("aperture.redb.before-restore-"));
        assert_eq!(
            std::fs::read(&backup).unwrap(),
            backup_bytes,
            "backup untouched"
        );
        assert_eq!(secrets(&live, Some(key(1))).unwrap().len(), 2);
        assert_eq!(secrets(&previous, Some(key(1))).unwrap().len(), 1);
        // A damaged backup is refused and the live file stays.
        let bad = dir.path().join("bad.redb");
        std::fs::write(&bad, &backup_bytes[..backup_bytes.len() / 2]).unwrap();
        assert!(matches!(
            restore(&bad, &live, None),
            Err(StoreError::Damaged(_))
        ));
        assert!(!dir.path().join("aperture.redb.restoring").exists());
        assert_eq!(secrets(&live, Some(key(1))).unwrap().len(), 2);
        assert_eq!(verify(&backup, Some(&key(1))).unwrap().accounts, 2);
    }

    #[test]
    fn utc_stamps() {
        let at = |s| utc_stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_767_225_599), "20251231T235959Z");
    }
}
