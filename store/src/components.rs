//! The component registry: every installed policy component version (bytes and metadata, keyed by the
//! sha256 of its bytes), the per-slot lifecycle state (active, candidate, previous) and a bounded history
//! of lifecycle events, so a restart serves the same versions it served before and a rollback has
//! something to go back to. Compiled artifacts (wasmtime's serialized components) are cached here too,
//! keyed by sha256 and the engine's compatibility hash, so start-up does not recompile.
//!
//! The store checks nothing about the bytes: verification is the host's job, done before `install`.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::Store;
use crate::tables;

/// Events kept in the history; older ones are dropped.
pub const MAX_EVENTS: u64 = 1000;

/// Whether a version may still be offered (`verified`) or was taken out by an aborted rollout (`failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionState {
    /// Passed verification; may become candidate or active.
    Verified,
    /// A canary or shadow of it was aborted automatically; it can still be activated by hand.
    Failed,
}

/// One installed component version (without its bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentVersion {
    /// `translator`, `safety` or `classifier`.
    pub slot: String,
    /// Lower-case hex sha256 of the bytes.
    pub sha256: String,
    /// Size of the bytes.
    pub size: u64,
    /// Optional operator label (`embedded` for the built-in defaults).
    pub label: Option<String>,
    /// The WIT package version the component targets, e.g. `0.2.0`.
    pub wit_version: String,
    /// Unix milliseconds of the first install.
    pub installed_at_ms: u64,
    /// The verification report (the host's JSON).
    pub report: serde_json::Value,
    /// Verified or failed.
    pub state: VersionState,
}

/// How a candidate takes part in live traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum CandidateMode {
    /// Called beside the active version; its results are compared, never served.
    Shadow,
    /// Serves this share of requests (1..=99).
    Canary {
        /// Percent of requests.
        percent: u8,
    },
}

/// The candidate of a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Its sha256.
    pub sha256: String,
    /// Shadow or canary.
    #[serde(flatten)]
    pub mode: CandidateMode,
}

/// The lifecycle state of one slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SlotState {
    /// The sha256 of the active version (empty only before the first start).
    pub active: String,
    /// The candidate, if any.
    pub candidate: Option<Candidate>,
    /// The version that was active before the current one.
    pub previous: Option<String>,
}

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// The slot.
    pub slot: String,
    /// `installed`, `refused`, `shadow_started`, `canary_started`, `aborted`, `activated`,
    /// `rolled_back`, `promoted`.
    pub event: String,
    /// The version concerned (sha256; empty for a refused one that was never stored).
    pub version: String,
    /// The version that was active or candidate before, when relevant.
    pub previous: Option<String>,
    /// Why (operator command, configuration, automatic abort reason...).
    pub reason: String,
}

/// The component registry. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ComponentStore {
    pub(crate) store: Store,
}

fn encode<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(StoreError::Encode)
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

impl ComponentStore {
    pub(crate) fn new(store: Store) -> ComponentStore {
        ComponentStore { store }
    }

    /// Stores a version and its bytes. Installing bytes already stored is a no-op that returns the stored
    /// version and `false` (a label given now is added if the stored one has none).
    pub fn install(
        &self,
        version: &ComponentVersion,
        bytes: &[u8],
    ) -> Result<(ComponentVersion, bool), StoreError> {
        if let Some(label) = &version.label {
            check_label(label)?;
        }
        self.store.run(|db| {
            let txn = db.begin_write()?;
            let result = {
                let mut versions = txn.open_table(tables::COMPONENT_VERSIONS)?;
                let existing = versions
                    .get(version.sha256.as_str())?
                    .map(|v| v.value().to_string());
                match existing {
                    Some(row) => {
                        let mut stored: ComponentVersion = decode("component version", &row)?;
                        if stored.slot != version.slot {
                            return Err(StoreError::Duplicate(format!(
                                "component {} (installed for the {} slot)",
                                &stored.sha256[..12],
                                stored.slot
                            )));
                        }
                        if stored.label.is_none() && version.label.is_some() {
                            stored.label = version.label.clone();
                            versions.insert(version.sha256.as_str(), encode(&stored)?.as_str())?;
                        }
                        (stored, false)
                    }
                    None => {
                        versions.insert(version.sha256.as_str(), encode(version)?.as_str())?;
                        let mut blobs = txn.open_table(tables::COMPONENT_BYTES)?;
                        blobs.insert(version.sha256.as_str(), bytes)?;
                        (version.clone(), true)
                    }
                }
            };
            txn.commit()?;
            Ok(result)
        })
    }

    /// One version by full sha256.
    pub fn version(&self, sha256: &str) -> Result<Option<ComponentVersion>, StoreError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(tables::COMPONENT_VERSIONS)?;
            table
                .get(sha256)?
                .map(|v| decode("component version", v.value()))
                .transpose()
        })
    }

    /// The bytes of a version.
    pub fn bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(tables::COMPONENT_BYTES)?;
            Ok(table.get(sha256)?.map(|v| v.value().to_vec()))
        })
    }

    /// Every version (of one slot when given), oldest install first.
    pub fn versions(&self, slot: Option<&str>) -> Result<Vec<ComponentVersion>, StoreError> {
        let mut all: Vec<ComponentVersion> = self.store.read(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(tables::COMPONENT_VERSIONS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (_, v) = row?;
                out.push(decode::<ComponentVersion>("component version", v.value())?);
            }
            Ok(out)
        })?;
        all.retain(|v| slot.is_none_or(|s| v.slot == s));
        all.sort_by(|a, b| (a.installed_at_ms, &a.sha256).cmp(&(b.installed_at_ms, &b.sha256)));
        Ok(all)
    }

    /// Finds a version of `slot` by a sha256 prefix (at least 8 hex digits) or a label. A label names the
    /// most recently installed version carrying it. Unknown -> `NotFound`; an ambiguous prefix -> `Invalid`.
    pub fn resolve(&self, slot: &str, reference: &str) -> Result<ComponentVersion, StoreError> {
        let reference = reference.trim();
        let versions = self.versions(Some(slot))?;
        let is_hex = reference.len() >= 8 && reference.chars().all(|c| c.is_ascii_hexdigit());
        if is_hex {
            let lower = reference.to_ascii_lowercase();
            let matching: Vec<&ComponentVersion> = versions
                .iter()
                .filter(|v| v.sha256.starts_with(&lower))
                .collect();
            match matching.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                many => {
                    return Err(StoreError::Invalid(format!(
                        "{reference} matches {} {slot} versions; give more hex digits",
                        many.len()
                    )))
                }
            }
        }
        if let Some(v) = versions
            .iter()
            .rev()
            .find(|v| v.label.as_deref() == Some(reference))
        {
            return Ok(v.clone());
        }
        Err(StoreError::NotFound(format!(
            "{slot} version {reference:?} (a sha256 prefix of at least 8 hex digits, or a label)"
        )))
    }

    /// Marks a version verified or failed.
    pub fn set_version_state(&self, sha256: &str, state: VersionState) -> Result<(), StoreError> {
        self.store.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(tables::COMPONENT_VERSIONS)?;
                let row = table.get(sha256)?.map(|v| v.value().to_string());
                let Some(row) = row else {
                    return Err(StoreError::NotFound(format!("component version {sha256}")));
                };
                let mut v: ComponentVersion = decode("component version", &row)?;
                v.state = state;
                table.insert(sha256, encode(&v)?.as_str())?;
            }
            txn.commit()?;
            Ok(())
        })
    }

    /// The stored state of a slot (`None` before the first start).
    pub fn slot(&self, slot: &str) -> Result<Option<SlotState>, StoreError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(tables::COMPONENT_SLOTS)?;
            table
                .get(slot)?
                .map(|v| decode("slot state", v.value()))
                .transpose()
        })
    }

    /// Writes a slot's state and, in the same transaction, the event that changed it.
    pub fn set_slot(
        &self,
        slot: &str,
        state: &SlotState,
        event: Option<&LifecycleEvent>,
    ) -> Result<(), StoreError> {
        let row = encode(state)?;
        self.store.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(tables::COMPONENT_SLOTS)?;
                table.insert(slot, row.as_str())?;
                if let Some(e) = event {
                    append_event(&txn, e)?;
                }
            }
            txn.commit()?;
            Ok(())
        })
    }

    /// Appends an event to the history (dropping the oldest beyond [`MAX_EVENTS`]).
    pub fn record(&self, event: &LifecycleEvent) -> Result<(), StoreError> {
        self.store.run(|db| {
            let txn = db.begin_write()?;
            append_event(&txn, event)?;
            txn.commit()?;
            Ok(())
        })
    }

    /// The most recent `limit` events (of one slot when given), oldest first.
    pub fn history(
        &self,
        slot: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LifecycleEvent>, StoreError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(tables::COMPONENT_EVENTS)?;
            let mut out = Vec::new();
            for row in table.iter()?.rev() {
                let (_, v) = row?;
                let e: LifecycleEvent = decode("lifecycle event", v.value())?;
                if slot.is_none_or(|s| e.slot == s) {
                    out.push(e);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            out.reverse();
            Ok(out)
        })
    }

    /// A cached compiled artifact for `key` (sha256 and engine hash, see the host).
    pub fn artifact(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(tables::COMPONENT_ARTIFACTS)?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        })
    }

    /// Caches a compiled artifact. Artifacts of other engines for the same sha256 are dropped (their
    /// keys start with the same sha256), so an upgraded host does not accumulate stale ones.
    pub fn put_artifact(&self, sha256: &str, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.store.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(tables::COMPONENT_ARTIFACTS)?;
                let stale: Vec<String> = table
                    .range(sha256..)?
                    .map_while(|r| r.ok())
                    .map(|(k, _)| k.value().to_string())
                    .take_while(|k| k.starts_with(sha256))
                    .filter(|k| k != key)
                    .collect();
                for k in stale {
                    table.remove(k.as_str())?;
                }
                table.insert(key, bytes)?;
            }
            txn.commit()?;
            Ok(())
        })
    }
}

fn append_event(txn: &redb::WriteTransaction, e: &LifecycleEvent) -> Result<(), StoreError> {
    let mut table = txn.open_table(tables::COMPONENT_EVENTS)?;
    let next = table.last()?.map(|(k, _)| k.value() + 1).unwrap_or(0);
    table.insert(next, encode(e)?.as_str())?;
    if table.len()? > MAX_EVENTS {
        let cut = next.saturating_sub(MAX_EVENTS);
        let old: Vec<u64> = table
            .range(..=cut)?
            .map_while(|r| r.ok())
            .map(|(k, _)| k.value())
            .collect();
        for k in old {
            table.remove(k)?;
        }
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), StoreError> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "label {label:?}: use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(slot: &str, sha: &str, label: Option<&str>, at: u64) -> ComponentVersion {
        ComponentVersion {
            slot: slot.into(),
            sha256: sha.into(),
            size: 3,
            label: label.map(str::to_string),
            wit_version: "0.2.0".into(),
            installed_at_ms: at,
            report: serde_json::json!({"passed": true}),
            state: VersionState::Verified,
        }
    }

    #[test]
    fn installing_the_same_bytes_twice_returns_the_stored_version() {
        let c = Store::in_memory().unwrap().components();
        let sha = "ab".repeat(32);
        let (v, new) = c
            .install(&version("safety", &sha, Some("embedded"), 1), b"abc")
            .unwrap();
        assert!(new);
        let (again, new) = c
            .install(&version("safety", &sha, Some("other"), 2), b"abc")
            .unwrap();
        assert!(!new);
        assert_eq!(again, v);
        assert_eq!(c.bytes(&sha).unwrap().unwrap(), b"abc");
        assert_eq!(c.versions(None).unwrap().len(), 1);
        assert!(c
            .install(&version("translator", &sha, None, 3), b"abc")
            .is_err());
    }

    #[test]
    fn references_resolve_by_prefix_or_label_and_ambiguity_is_refused() {
        let c = Store::in_memory().unwrap().components();
        let a = format!("aaaaaaaa1{}", "0".repeat(55));
        let b = format!("aaaaaaaa2{}", "0".repeat(55));
        c.install(&version("safety", &a, Some("v1"), 1), b"a")
            .unwrap();
        c.install(&version("safety", &b, Some("v2"), 2), b"b")
            .unwrap();
        assert_eq!(c.resolve("safety", "aaaaaaaa1").unwrap().sha256, a);
        assert_eq!(c.resolve("safety", "v2").unwrap().sha256, b);
        assert!(matches!(
            c.resolve("safety", "aaaaaaaa"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            c.resolve("translator", "v1"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            c.resolve("safety", "aaaa"),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn slot_state_and_history_persist_and_the_history_is_bounded() {
        let c = Store::in_memory().unwrap().components();
        assert_eq!(c.slot("safety").unwrap(), None);
        let state = SlotState {
            active: "a".into(),
            candidate: Some(Candidate {
                sha256: "b".into(),
                mode: CandidateMode::Canary { percent: 10 },
            }),
            previous: None,
        };
        let event = |i: u64| LifecycleEvent {
            at_ms: i,
            slot: if i % 2 == 0 { "safety" } else { "translator" }.into(),
            event: "activated".into(),
            version: "a".into(),
            previous: None,
            reason: "test".into(),
        };
        c.set_slot("safety", &state, Some(&event(0))).unwrap();
        assert_eq!(c.slot("safety").unwrap(), Some(state));
        for i in 1..(MAX_EVENTS + 10) {
            c.record(&event(i)).unwrap();
        }
        let all = c.history(None, usize::MAX).unwrap();
        assert_eq!(all.len() as u64, MAX_EVENTS);
        assert_eq!(all.last().unwrap().at_ms, MAX_EVENTS + 9);
        let safety = c.history(Some("safety"), 3).unwrap();
        assert_eq!(safety.len(), 3);
        assert!(safety.iter().all(|e| e.slot == "safety"));
    }

    #[test]
    fn an_artifact_for_a_new_engine_replaces_the_old_one() {
        let c = Store::in_memory().unwrap().components();
        let sha = "cd".repeat(32);
        c.put_artifact(&sha, &format!("{sha}:1"), b"one").unwrap();
        c.put_artifact(&sha, &format!("{sha}:2"), b"two").unwrap();
        assert_eq!(c.artifact(&format!("{sha}:1")).unwrap(), None);
        assert_eq!(
            c.artifact(&format!("{sha}:2")).unwrap().as_deref(),
            Some(&b"two"[..])
        );
    }

    #[test]
    fn a_bad_label_is_refused() {
        let c = Store::in_memory().unwrap().components();
        assert!(matches!(
            c.install(&version("safety", &"ef".repeat(32), Some("a b"), 1), b"x"),
            Err(StoreError::Invalid(_))
        ));
    }
}
