//! Consistent copies of the store: [`Store::backup_to`] copies every table, as one read transaction sees
//! it, into a fresh redb file while the gateway keeps serving (writers are not blocked); [`inspect`] reads
//! every row of a database, so damage anywhere in it (not only in the pages redb checks at open) shows.

use std::path::Path;

use redb::{
    Database, Key, ReadTransaction, ReadableTable, TableDefinition, Value, WriteTransaction,
};
use serde::Serialize;

use crate::account_rows;
use crate::error::StoreError;
use crate::open;
use crate::seal::SecretKey;
use crate::store::Store;
use crate::tables;

/// What a database holds (rows counted by reading every one of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub accounts: u64,
    /// Accounts whose secret is encrypted at rest.
    pub sealed_secrets: u64,
    pub client_keys: u64,
    pub cache_entries: u64,
    pub cache_bytes: u64,
}

/// Names of the tables [`copy_tables`] copies; a test checks it covers every table the store creates.
#[cfg(test)]
pub(crate) const COPIED: [&str; 16] = [
    "meta",
    "rollup_minutes",
    "rollup_hours",
    "accounts",
    "client_keys",
    "client_key_limits",
    "client_key_usage",
    "cache_payloads_by_created",
    "cache_entries",
    "cache_by_access",
    "cache_by_created",
    "component_versions",
    "component_bytes",
    "component_slots",
    "component_events",
    // Created empty in a backup: compiled artifacts are a cache, rebuilt at the next start.
    "component_artifacts",
];

impl Store {
    /// Writes a consistent copy of the store to `dest` (a new file, mode 0600; an existing file is
    /// refused), leaving the cache out when `include_cache` is false. Unwritten account counters are saved
    /// first. Sealed secrets stay sealed: restoring the copy needs the same secret key.
    pub fn backup_to(&self, dest: &Path, include_cache: bool) -> Result<Inventory, StoreError> {
        if dest.exists() {
            return Err(StoreError::Invalid(format!(
                "{} already exists; choose a new file name",
                dest.display()
            )));
        }
        if let Some(pool) = self.inner_pool() {
            if let Err(e) = pool.flush() {
                tracing::warn!(error = %e, "backup: account counters not saved first");
            }
        }
        let read = self.run(|db| Ok(db.begin_read()?))?;
        let result = (|| {
            open::prepare(dest)?;
            let copy = open::open_checked(dest, &crate::store::builder(), open::Found::Created)?.0;
            let txn = copy.begin_write()?;
            copy_tables(&read, &txn, include_cache)?;
            txn.commit()?;
            inspect(&copy, None)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        result
    }

    fn inner_pool(&self) -> Option<crate::AccountPool> {
        let has_pool = crate::store::lock(&self.inner.pool).is_some();
        if has_pool {
            self.accounts().ok()
        } else {
            None
        }
    }
}

fn copy_table<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<(), StoreError> {
    let source = from.open_table(def)?;
    let mut dest = to.open_table(def)?;
    for row in source.iter()? {
        let (k, v) = row?;
        dest.insert(k.value(), v.value())?;
    }
    Ok(())
}

/// [`copy_table`] for a table the source may not have (it is then created empty).
fn copy_optional<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<(), StoreError> {
    match from.open_table(def) {
        Err(redb::TableError::TableDoesNotExist(_)) => {
            to.open_table(def)?;
            Ok(())
        }
        _ => copy_table(from, to, def),
    }
}

/// Copies every table (the cache tables only when `include_cache`; otherwise they are created empty and
/// the cache totals are zero).
pub(crate) fn copy_tables(
    from: &ReadTransaction,
    to: &WriteTransaction,
    include_cache: bool,
) -> Result<(), StoreError> {
    copy_table(from, to, tables::META)?;
    copy_table(from, to, tables::ACCOUNTS)?;
    copy_table(from, to, tables::CLIENT_KEYS)?;
    copy_table(from, to, tables::CLIENT_KEY_LIMITS)?;
    copy_table(from, to, tables::CLIENT_KEY_USAGE)?;
    copy_table(from, to, tables::ROLLUP_MINUTES)?;
    copy_table(from, to, tables::ROLLUP_HOURS)?;
    // Stores from before the component registry have none of its tables.
    copy_optional(from, to, tables::COMPONENT_VERSIONS)?;
    copy_optional(from, to, tables::COMPONENT_BYTES)?;
    copy_optional(from, to, tables::COMPONENT_SLOTS)?;
    copy_optional(from, to, tables::COMPONENT_EVENTS)?;
    to.open_table(tables::COMPONENT_ARTIFACTS)?;
    if include_cache {
        copy_table(from, to, tables::CACHE_PAYLOADS)?;
        copy_table(from, to, tables::CACHE_ENTRIES)?;
        copy_table(from, to, tables::CACHE_BY_ACCESS)?;
        copy_table(from, to, tables::CACHE_BY_CREATED)?;
    } else {
        to.open_table(tables::CACHE_PAYLOADS)?;
        to.open_table(tables::CACHE_ENTRIES)?;
        to.open_table(tables::CACHE_BY_ACCESS)?;
        to.open_table(tables::CACHE_BY_CREATED)?;
        let mut meta = to.open_table(tables::META)?;
        meta.insert(tables::META_CACHE_BYTES, 0)?;
        meta.insert(tables::META_CACHE_ENTRIES, 0)?;
    }
    Ok(())
}

/// Reads every row of every table (payloads included) and counts them; account rows are decoded, and
/// their sealed secrets opened when `key` is given. A redb panic on a damaged page is
/// [`StoreError::Damaged`].
pub(crate) fn inspect(db: &Database, key: Option<&SecretKey>) -> Result<Inventory, StoreError> {
    open::quietly(|| inspect_rows(db, key))
        .map_err(|panic| StoreError::Damaged(format!("redb failed reading a row ({panic})")))?
}

fn inspect_rows(db: &Database, key: Option<&SecretKey>) -> Result<Inventory, StoreError> {
    let txn = db.begin_read()?;
    let mut inv = Inventory::default();
    let meta = txn.open_table(tables::META)?;
    for row in meta.iter()? {
        row?;
    }
    if let Some(v) = meta.get(tables::META_SCHEMA_VERSION)? {
        if v.value() > tables::SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "the database has schema version {}; this build understands up to {}",
                v.value(),
                tables::SCHEMA_VERSION
            )));
        }
    }
    for row in txn.open_table(tables::ACCOUNTS)?.iter()? {
        let (id, json) = row?;
        let json = json.value();
        if account_rows::is_sealed_row(json) {
            inv.sealed_secrets += 1;
            if key.is_some() {
                account_rows::decode(id.value(), json, key)?;
            }
        } else {
            account_rows::decode(id.value(), json, None)?;
        }
        inv.accounts += 1;
    }
    for row in txn.open_table(tables::CLIENT_KEYS)?.iter()? {
        row?;
        inv.client_keys += 1;
    }
    // A file of schema 1 (an old backup, checked before it is restored) has its payloads by key alone.
    match txn.open_table(tables::CACHE_PAYLOADS) {
        Err(redb::TableError::TableDoesNotExist(_)) => {
            count_payloads(&txn.open_table(tables::LEGACY_CACHE_PAYLOADS)?, &mut inv)?
        }
        table => count_payloads(&table?, &mut inv)?,
    }
    for row in txn.open_table(tables::CACHE_ENTRIES)?.iter()? {
        row?;
    }
    for row in txn.open_table(tables::CACHE_BY_ACCESS)?.iter()? {
        row?;
    }
    for row in txn.open_table(tables::CACHE_BY_CREATED)?.iter()? {
        row?;
    }
    Ok(inv)
}

/// Adds every row of a payload table to the inventory's cache totals.
fn count_payloads<K: Key + 'static>(
    table: &impl ReadableTable<K, &'static [u8]>,
    inv: &mut Inventory,
) -> Result<(), StoreError> {
    for row in table.iter()? {
        let (_, payload) = row?;
        inv.cache_entries += 1;
        inv.cache_bytes += payload.value().len() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheLimits;
    use redb::TableHandle;

    fn filled(path: &Path) -> Store {
        let store = Store::open(path).unwrap();
        let pool = store.accounts().unwrap();
        pool.add("a", None, "secret-a-0123456789", 1).unwrap();
        pool.add("b", None, "secret-b-0123456789", 1).unwrap();
        store.keys().add("ops", "sk-ops-0123").unwrap();
        let cache = store.cache(CacheLimits {
            max_bytes: 1 << 20,
            ttl_ms: 0,
        });
        cache.put(&[1; 32], &[7; 1000], 1).unwrap();
        store
    }

    #[test]
    fn backup_copies_everything_or_leaves_the_cache_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(&dir.path().join("aperture.redb"));
        // A counter change not yet written is in the backup.
        let pool = store.accounts().unwrap();
        pool.checkout(5, &[]);

        let full = dir.path().join("full.redb");
        let inv = store.backup_to(&full, true).unwrap();
        assert_eq!(
            inv,
            Inventory {
                accounts: 2,
                sealed_secrets: 0,
                client_keys: 1,
                cache_entries: 1,
                cache_bytes: 1000,
            }
        );
        let lean = dir.path().join("lean.redb");
        let inv = store.backup_to(&lean, false).unwrap();
        assert_eq!(
            (inv.accounts, inv.client_keys, inv.cache_entries),
            (2, 1, 0)
        );
        assert!(matches!(
            store.backup_to(&lean, false),
            Err(StoreError::Invalid(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&full).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        drop((pool, store));

        let copy = Store::open(&full).unwrap();
        assert_eq!(copy.accounts().unwrap().list(0)[0].counters.requests, 1);
        assert_eq!(
            copy.keys().verify("sk-ops-0123").unwrap().as_deref(),
            Some("ops")
        );
        let cache = copy.cache(CacheLimits {
            max_bytes: 1 << 20,
            ttl_ms: 0,
        });
        assert_eq!(cache.get(&[1; 32], 2).unwrap(), Some(vec![7; 1000]));
        let lean = Store::open(&lean).unwrap();
        let cache = lean.cache(cache.limits());
        assert_eq!(cache.stats(0).unwrap().entries, 0);
        assert_eq!(cache.get(&[1; 32], 2).unwrap(), None);
    }

    #[test]
    fn backup_covers_every_table() {
        let store = Store::in_memory().unwrap();
        let db = store.db().unwrap();
        let txn = db.begin_read().unwrap();
        let mut names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        names.sort();
        let mut copied: Vec<String> = COPIED.iter().map(|s| s.to_string()).collect();
        copied.sort();
        assert_eq!(
            names, copied,
            "a table was added: copy it in snapshot::copy_tables and list it in COPIED"
        );
    }
}
