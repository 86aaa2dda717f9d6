//! Client API keys: stored only as sha256 hashes (hex) with a label, verified in constant time.
//!
//! `verify` runs on every request, so the hashes are kept in memory (loaded on first use, dropped on every
//! change made through this store; redb locks the file, so no other process can change it meanwhile).
//! Verification hashes the presented key and compares it with every stored hash using `subtle`, without
//! branching on which one matched, so timing reveals neither the key nor which label it belongs to.

use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};

use redb::ReadableTable;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::error::StoreError;
use crate::limits::KeyLimits;
use crate::store::Store;
use crate::tables;

/// Hex characters of the hash shown by [`KeyStore::list`].
const HASH_PREFIX_CHARS: usize = 12;

/// One stored key, in memory.
pub(crate) struct KeyEntry {
    hash: [u8; 32],
    label: String,
}

/// The client keys. Cheap to clone.
#[derive(Clone, Debug)]
pub struct KeyStore {
    pub(crate) store: Store,
}

impl KeyStore {
    pub(crate) fn new(store: Store) -> KeyStore {
        KeyStore { store }
    }

    /// Adds a key under a new label. Fails with `Duplicate` if the label exists or the same key is already
    /// stored under another label, `Invalid` if the label (trimmed) or the key is empty.
    pub fn add(&self, label: &str, raw: &str) -> Result<(), StoreError> {
        self.add_with_limits(label, raw, &KeyLimits::default())
    }

    /// [`KeyStore::add`] with the key's limits, written in the same transaction (no row when `limits` is
    /// all defaults).
    pub fn add_with_limits(
        &self,
        label: &str,
        raw: &str,
        limits: &KeyLimits,
    ) -> Result<(), StoreError> {
        let label = check(label, raw)?;
        let hash = hash_hex(raw);
        let txn = self.store.db()?.begin_write()?;
        {
            let mut table = txn.open_table(tables::CLIENT_KEYS)?;
            if let Some(existing) = table.get(hash.as_str())? {
                return Err(StoreError::Duplicate(format!(
                    "this key (registered as {:?})",
                    existing.value()
                )));
            }
            for row in table.iter()? {
                let (_, l) = row?;
                if l.value() == label {
                    return Err(StoreError::Duplicate(label.to_string()));
                }
            }
            table.insert(hash.as_str(), label)?;
            crate::limits::write_limits(&txn, label, limits)?;
        }
        txn.commit()?;
        self.invalidate();
        Ok(())
    }

    /// Makes `label` name exactly this key (used at start-up for `APERTURE_API_KEY`): replaces the label's
    /// previous key, and takes the key over if it was stored under another label. Returns `true` if
    /// anything was written, `false` if it was already so.
    pub fn ensure(&self, label: &str, raw: &str) -> Result<bool, StoreError> {
        let label = check(label, raw)?;
        let hash = hash_hex(raw);
        let txn = self.store.db()?.begin_write()?;
        {
            let mut table = txn.open_table(tables::CLIENT_KEYS)?;
            if table
                .get(hash.as_str())?
                .is_some_and(|l| l.value() == label)
            {
                let others = count_label(&table, label)?;
                if others == 1 {
                    return Ok(false);
                }
            }
            let stale = hashes_of(&table, label)?;
            for h in stale {
                table.remove(h.as_str())?;
            }
            table.insert(hash.as_str(), label)?;
        }
        txn.commit()?;
        self.invalidate();
        Ok(true)
    }

    /// Removes the key stored under `label` (`NotFound` if none).
    pub fn remove(&self, label: &str) -> Result<(), StoreError> {
        let label = label.trim();
        let txn = self.store.db()?.begin_write()?;
        {
            let mut table = txn.open_table(tables::CLIENT_KEYS)?;
            let stale = hashes_of(&table, label)?;
            if stale.is_empty() {
                return Err(StoreError::NotFound(format!("client key {label:?}")));
            }
            for h in stale {
                table.remove(h.as_str())?;
            }
            crate::limits::forget(&txn, label)?;
        }
        txn.commit()?;
        self.invalidate();
        Ok(())
    }

    /// `(label, first 12 hex characters of the key's sha256)` for every key, by label.
    pub fn list(&self) -> Result<Vec<(String, String)>, StoreError> {
        let txn = self.store.db()?.begin_read()?;
        let table = txn.open_table(tables::CLIENT_KEYS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (hash, label) = row?;
            let prefix: String = hash.value().chars().take(HASH_PREFIX_CHARS).collect();
            out.push((label.value().to_string(), prefix));
        }
        out.sort();
        Ok(out)
    }

    /// The label of the stored key equal to `raw`, or `None`. Constant time in the key's content.
    pub fn verify(&self, raw: &str) -> Result<Option<String>, StoreError> {
        let entries = self.entries()?;
        Ok(matching(&entries, raw))
    }

    /// [`KeyStore::verify`] answered from memory only: `None` when the keys are not loaded (at first use,
    /// and after every change), so the caller can go to [`KeyStore::verify`] off the async workers.
    pub fn verify_in_memory(&self, raw: &str) -> Option<Option<String>> {
        let entries = self.read_cache().as_ref().map(Arc::clone)?;
        Some(matching(&entries, raw))
    }

    /// The stored hashes, loading them on first use.
    fn entries(&self) -> Result<Arc<Vec<KeyEntry>>, StoreError> {
        if let Some(entries) = self.read_cache().as_ref() {
            return Ok(Arc::clone(entries));
        }
        let mut cache = self.write_cache();
        if let Some(entries) = cache.as_ref() {
            return Ok(Arc::clone(entries));
        }
        let txn = self.store.db()?.begin_read()?;
        let table = txn.open_table(tables::CLIENT_KEYS)?;
        let mut entries = Vec::new();
        for row in table.iter()? {
            let (hash, label) = row?;
            let hash = decode_hash(hash.value()).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "client key {:?} has an invalid hash",
                    label.value()
                ))
            })?;
            entries.push(KeyEntry {
                hash,
                label: label.value().to_string(),
            });
        }
        let entries = Arc::new(entries);
        *cache = Some(Arc::clone(&entries));
        Ok(entries)
    }

    fn read_cache(&self) -> RwLockReadGuard<'_, Option<Arc<Vec<KeyEntry>>>> {
        self.store
            .inner
            .keys_cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the loaded keys after a committed change. Taken after the commit, never
    /// across it, so `verify` on the async workers never waits for an fsync: a load
    /// that raced the commit finished before this lock was granted, and is dropped.
    fn invalidate(&self) {
        *self.write_cache() = None;
    }

    fn write_cache(&self) -> RwLockWriteGuard<'_, Option<Arc<Vec<KeyEntry>>>> {
        self.store
            .inner
            .keys_cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// The label of the entry whose hash is sha256(`raw`), comparing with every entry in constant time.
fn matching(entries: &[KeyEntry], raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    let presented: [u8; 32] = Sha256::digest(raw.as_bytes()).into();
    let mut found = Choice::from(0);
    let mut index = 0u64;
    for (i, entry) in entries.iter().enumerate() {
        let eq = entry.hash.ct_eq(&presented);
        index = u64::conditional_select(&index, &(i as u64), eq);
        found |= eq;
    }
    if bool::from(found) {
        usize::try_from(index)
            .ok()
            .and_then(|i| entries.get(i))
            .map(|e| e.label.clone())
    } else {
        None
    }
}

fn check<'a>(label: &'a str, raw: &str) -> Result<&'a str, StoreError> {
    let label = label.trim();
    if label.is_empty() {
        return Err(StoreError::Invalid("the client key label is empty".into()));
    }
    if raw.is_empty() {
        return Err(StoreError::Invalid("the client key is empty".into()));
    }
    Ok(label)
}

fn hashes_of(
    table: &impl ReadableTable<&'static str, &'static str>,
    label: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for row in table.iter()? {
        let (hash, l) = row?;
        if l.value() == label {
            out.push(hash.value().to_string());
        }
    }
    Ok(out)
}

fn count_label(
    table: &impl ReadableTable<&'static str, &'static str>,
    label: &str,
) -> Result<usize, StoreError> {
    Ok(hashes_of(table, label)?.len())
}

fn hash_hex(raw: &str) -> String {
    Sha256::digest(raw.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_right_and_wrong() {
        let keys = Store::in_memory().unwrap().keys();
        assert_eq!(keys.verify("sk-anything").unwrap(), None);
        keys.add("ops", "sk-ops-key").unwrap();
        keys.add("ci", "sk-ci-key").unwrap();
        assert_eq!(keys.verify("sk-ops-key").unwrap().as_deref(), Some("ops"));
        assert_eq!(keys.verify("sk-ci-key").unwrap().as_deref(), Some("ci"));
        assert_eq!(keys.verify("sk-ops-ke").unwrap(), None);
        assert_eq!(keys.verify("").unwrap(), None);
        let list = keys.list().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].0, "ci");
        assert_eq!(list[0].1, &hash_hex("sk-ci-key")[..12]);
        assert_eq!(
            keys.verify_in_memory("sk-ci-key"),
            Some(Some("ci".to_string()))
        );
        keys.remove("ops").unwrap();
        assert_eq!(
            keys.verify_in_memory("sk-ci-key"),
            None,
            "dropped by a change"
        );
        assert_eq!(keys.verify("sk-ops-key").unwrap(), None);
        assert_eq!(keys.verify_in_memory("sk-ops-key"), Some(None));
        assert!(matches!(keys.remove("ops"), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn add_rejects_duplicates_and_empty() {
        let keys = Store::in_memory().unwrap().keys();
        keys.add("ops", "k1").unwrap();
        assert!(matches!(
            keys.add("ops", "k2"),
            Err(StoreError::Duplicate(_))
        ));
        assert!(matches!(
            keys.add("other", "k1"),
            Err(StoreError::Duplicate(_))
        ));
        assert!(matches!(keys.add("x", ""), Err(StoreError::Invalid(_))));
        assert!(matches!(keys.add(" ", "k3"), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn ensure_is_idempotent_upsert() {
        let store = Store::in_memory().unwrap();
        let keys = store.keys();
        assert!(keys.ensure("env", "sk-1").unwrap());
        assert!(!keys.ensure("env", "sk-1").unwrap());
        assert_eq!(keys.list().unwrap().len(), 1);
        // Rotating the env key replaces the old one.
        assert!(keys.ensure("env", "sk-2").unwrap());
        assert_eq!(keys.verify("sk-1").unwrap(), None);
        assert_eq!(keys.verify("sk-2").unwrap().as_deref(), Some("env"));
        // A key stored under another label is taken over.
        keys.add("manual", "sk-3").unwrap();
        assert!(keys.ensure("env", "sk-3").unwrap());
        let list = keys.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].0, "env");
        // Another handle sees the change (the in-memory copy is shared).
        assert_eq!(store.keys().verify("sk-3").unwrap().as_deref(), Some("env"));
    }
}
