//! Per-client-key limits and usage counters, in tables of their own keyed by the key's label (so stores
//! written before limits existed open unchanged, and a key without a limits row simply has the defaults).
//!
//! The store keeps values, not policy: a limit is `None` ("use the gateway's configured default") or a
//! number (0 means unlimited), and the allowed safety thresholds are names the host validates. Usage rows
//! are written in batches by the host ([`KeyStore::save_usage`]), never once per request.

use std::collections::HashMap;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys::KeyStore;
use crate::tables;

/// The limits an operator set on one client key. Every field is an override: `None` means "the gateway's
/// configured default", and for the numbers `Some(0)` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyLimits {
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Images generated per day (the day ends at the host's daily reset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images_per_day: Option<u32>,
    /// Requests in flight at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// Safety thresholds the key may ask for, by name (`OFF`, `LOW`, `MEDIUM`, `HIGH`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_thresholds: Option<Vec<String>>,
}

impl KeyLimits {
    /// True when every field is the default (no row is stored for it).
    pub fn is_default(&self) -> bool {
        *self == KeyLimits::default()
    }
}

/// The counters of one client key, as persisted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// The rate limiter's theoretical arrival time (GCRA), unix ms; 0 when unused.
    pub rate_tat_ms: u64,
    /// When `images_today` goes back to 0, unix ms.
    pub day_reset_ms: u64,
    /// Images counted since the last reset.
    pub images_today: u64,
}

impl KeyStore {
    /// Changes the limits of the key stored under `label` with `change`, in one transaction, and returns
    /// the result. `NotFound` if no key has that label.
    pub fn update_limits(
        &self,
        label: &str,
        change: impl FnOnce(&mut KeyLimits),
    ) -> Result<KeyLimits, StoreError> {
        let label = label.trim();
        let txn = self.store.db()?.begin_write()?;
        let limits = {
            let keys = txn.open_table(tables::CLIENT_KEYS)?;
            let mut exists = false;
            for row in keys.iter()? {
                let (_, l) = row?;
                if l.value() == label {
                    exists = true;
                    break;
                }
            }
            if !exists {
                return Err(StoreError::NotFound(format!("client key {label:?}")));
            }
            let table = txn.open_table(tables::CLIENT_KEY_LIMITS)?;
            let mut limits = match table.get(label)? {
                Some(v) => decode(label, v.value())?,
                None => KeyLimits::default(),
            };
            drop(table);
            change(&mut limits);
            write_limits(&txn, label, &limits)?;
            limits
        };
        txn.commit()?;
        Ok(limits)
    }

    /// Every stored key's limits, by label (keys without a row are absent: they have the defaults).
    pub fn all_limits(&self) -> Result<HashMap<String, KeyLimits>, StoreError> {
        let txn = self.store.db()?.begin_read()?;
        let table = txn.open_table(tables::CLIENT_KEY_LIMITS)?;
        let mut out = HashMap::new();
        for row in table.iter()? {
            let (label, json) = row?;
            let label = label.value().to_string();
            let limits = decode(&label, json.value())?;
            out.insert(label, limits);
        }
        Ok(out)
    }

    /// Every persisted usage row, by label.
    pub fn usage(&self) -> Result<HashMap<String, KeyUsage>, StoreError> {
        let txn = self.store.db()?.begin_read()?;
        let table = txn.open_table(tables::CLIENT_KEY_USAGE)?;
        let mut out = HashMap::new();
        for row in table.iter()? {
            let (label, value) = row?;
            let (rate_tat_ms, day_reset_ms, images_today) = value.value();
            out.insert(
                label.value().to_string(),
                KeyUsage {
                    rate_tat_ms,
                    day_reset_ms,
                    images_today,
                },
            );
        }
        Ok(out)
    }

    /// Writes these usage rows in one durable transaction (the host batches them: one commit per flush,
    /// not one per request).
    pub fn save_usage(&self, rows: &[(String, KeyUsage)]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let txn = self.store.db()?.begin_write()?;
        {
            let mut table = txn.open_table(tables::CLIENT_KEY_USAGE)?;
            for (label, u) in rows {
                table.insert(
                    label.as_str(),
                    (u.rate_tat_ms, u.day_reset_ms, u.images_today),
                )?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Writes (or, for all-default limits, removes) the limits row of `label` inside `txn`.
pub(crate) fn write_limits(
    txn: &WriteTransaction,
    label: &str,
    limits: &KeyLimits,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(tables::CLIENT_KEY_LIMITS)?;
    if limits.is_default() {
        table.remove(label)?;
    } else {
        let json = serde_json::to_string(limits).map_err(StoreError::Encode)?;
        table.insert(label, json.as_str())?;
    }
    Ok(())
}

/// Removes the limits and usage rows of `label` inside `txn` (its key is being removed).
pub(crate) fn forget(txn: &WriteTransaction, label: &str) -> Result<(), StoreError> {
    txn.open_table(tables::CLIENT_KEY_LIMITS)?.remove(label)?;
    txn.open_table(tables::CLIENT_KEY_USAGE)?.remove(label)?;
    Ok(())
}

fn decode(label: &str, json: &str) -> Result<KeyLimits, StoreError> {
    serde_json::from_str(json).map_err(|e| {
        StoreError::Corrupt(format!(
            "the limits of client key {label:?} do not decode: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn limits() -> KeyLimits {
        KeyLimits {
            rpm: Some(60),
            images_per_day: Some(500),
            max_concurrent: Some(4),
            allowed_thresholds: Some(vec!["MEDIUM".into(), "HIGH".into()]),
        }
    }

    #[test]
    fn limits_are_stored_with_the_key_changed_and_removed_with_it() {
        let keys = Store::in_memory().unwrap().keys();
        keys.add_with_limits("team", "sk-team-key", &limits())
            .unwrap();
        keys.add("plain", "sk-plain-key").unwrap();
        let all = keys.all_limits().unwrap();
        assert_eq!(all.len(), 1, "a key with default limits has no row");
        assert_eq!(all["team"], limits());

        let changed = keys
            .update_limits("team", |l| {
                l.rpm = Some(0);
                l.allowed_thresholds = None;
            })
            .unwrap();
        assert_eq!(changed.rpm, Some(0));
        assert_eq!(changed.images_per_day, Some(500));
        assert_eq!(changed.allowed_thresholds, None);
        assert_eq!(keys.all_limits().unwrap()["team"], changed);

        // Back to all defaults: the row goes.
        keys.update_limits("team", |l| *l = KeyLimits::default())
            .unwrap();
        assert!(keys.all_limits().unwrap().is_empty());

        assert!(matches!(
            keys.update_limits("nobody", |_| {}),
            Err(StoreError::NotFound(_))
        ));

        keys.update_limits("plain", |l| l.rpm = Some(5)).unwrap();
        keys.save_usage(&[(
            "plain".into(),
            KeyUsage {
                rate_tat_ms: 1,
                day_reset_ms: 2,
                images_today: 3,
            },
        )])
        .unwrap();
        keys.remove("plain").unwrap();
        assert!(keys.all_limits().unwrap().is_empty());
        assert!(keys.usage().unwrap().is_empty());
    }

    #[test]
    fn usage_and_limits_survive_reopen_and_old_stores_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        // A store as written before limits existed: only the client_keys table, plain label values.
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(tables::CLIENT_KEYS).unwrap();
                let hash: String = {
                    use sha2::Digest;
                    sha2::Sha256::digest(b"sk-old-key")
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect()
                };
                t.insert(hash.as_str(), "old").unwrap();
            }
            txn.commit().unwrap();
        }
        let usage = KeyUsage {
            rate_tat_ms: 10,
            day_reset_ms: 20,
            images_today: 7,
        };
        {
            let store = Store::open(&path).unwrap();
            let keys = store.keys();
            assert_eq!(keys.verify("sk-old-key").unwrap().as_deref(), Some("old"));
            assert!(keys.all_limits().unwrap().is_empty());
            keys.update_limits("old", |l| l.images_per_day = Some(3))
                .unwrap();
            keys.save_usage(&[("old".into(), usage), ("config:1".into(), usage)])
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let keys = store.keys();
        assert_eq!(keys.all_limits().unwrap()["old"].images_per_day, Some(3));
        let saved = keys.usage().unwrap();
        assert_eq!(saved["old"], usage);
        assert_eq!(saved["config:1"], usage);
    }
}
