//! The account pool in memory: round-robin checkout over usable accounts, outcome reporting (success,
//! failure, cool-down, quota exhaustion, disable) and admin changes, each state change written through to
//! the `accounts` table.
//!
//! Persistence: add/remove and every state change are written immediately, each in one write transaction
//! (which also writes any counters changed since the last write). Counter-only changes (`checkout`,
//! `record_success`, `record_failure`) stay in memory until the next such write or [`AccountPool::flush`].
//! Add and remove take effect only once written. A state change (cool-down, exhaustion, disable, enable)
//! takes effect in memory even when it cannot be written (a full disk): the pool must keep honouring a
//! cool-down rather than hammer a rate-limited account; the account stays marked unwritten and the next
//! write or `flush` saves it. Writes happen under the pool's lock (so a concurrent `checkout` waits for one
//! commit); they are rare (operator actions and upstream verdicts).
//!
//! Secrets are sealed in the rows when the store has a secret key (see `account_rows.rs`); loading with a
//! key seals any plain secret left from before (a migration, in one transaction).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableTable};

use crate::account_rows;
use crate::accounts::{mask_secret, Account, AccountState, AccountView, Counters, Selector};
use crate::error::StoreError;
use crate::seal::SecretKey;
use crate::store::{lock, Store};
use crate::tables;

/// What [`AccountPool::checkout`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    /// Use this account.
    Lease(Lease),
    /// No account is usable now, but one will be in `retry_after_ms` (the earliest). Non-excluded accounts
    /// are preferred for this estimate; if only excluded ones remain, an excluded account that is active
    /// counts as 0 (a new request could use it now).
    Unavailable { retry_after_ms: u64 },
    /// None configured, or every account is disabled: nothing will become usable without an operator.
    NoAccounts,
}

/// An account checked out for one upstream call. Carries the secret; its `Debug` masks it.
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: u64,
    pub label: String,
    pub email: Option<String>,
    pub secret: String,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("email", &self.email)
            .field("secret", &mask_secret(&self.secret))
            .finish()
    }
}

/// The pool's in-memory state, shared by every [`AccountPool`] handle of one [`Store`].
pub(crate) struct PoolState {
    /// Sorted by id.
    accounts: Vec<Account>,
    /// Index where the next round-robin search starts.
    cursor: usize,
    /// Accounts whose counters changed since they were last written.
    dirty: BTreeSet<u64>,
    next_id: u64,
    /// Writers of the accounts table take turns here, outside the state lock, so a
    /// commit (an fsync) never holds up a checkout. Always taken before `state`.
    writer: Arc<Mutex<()>>,
}

impl PoolState {
    /// Loads every account, opening sealed secrets with `key`. With a key, plain secrets (stored before a
    /// key was configured) are sealed in one transaction.
    pub(crate) fn load(db: &Database, key: Option<&SecretKey>) -> Result<PoolState, StoreError> {
        let txn = db.begin_read()?;
        let table = txn.open_table(tables::ACCOUNTS)?;
        let mut accounts = Vec::new();
        let mut plain = Vec::new();
        for row in table.iter()? {
            let (id, json) = row?;
            let decoded = account_rows::decode(id.value(), json.value(), key)?;
            if decoded.plain {
                plain.push(decoded.account.id);
            }
            accounts.push(decoded.account);
        }
        let meta = txn.open_table(tables::META)?;
        let stored_next = meta
            .get(tables::META_NEXT_ACCOUNT_ID)?
            .map(|g| g.value())
            .unwrap_or(1);
        drop((table, meta, txn));
        if let (Some(key), false) = (key, plain.is_empty()) {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(tables::ACCOUNTS)?;
                for account in accounts.iter().filter(|a| plain.contains(&a.id)) {
                    table.insert(
                        account.id,
                        account_rows::encode(account, Some(key))?.as_str(),
                    )?;
                }
            }
            txn.commit()?;
            tracing::info!(
                accounts = plain.len(),
                "Encrypted {} plain-text account secret(s) at rest with the secret key",
                plain.len()
            );
        }
        let after_max = accounts.last().map(|a| a.id.saturating_add(1)).unwrap_or(1);
        Ok(PoolState {
            accounts,
            cursor: 0,
            dirty: BTreeSet::new(),
            next_id: stored_next.max(after_max),
            writer: Arc::default(),
        })
    }

    fn find(&self, sel: Selector<'_>) -> Result<usize, StoreError> {
        self.accounts
            .iter()
            .position(|a| sel.matches(a))
            .ok_or_else(|| StoreError::NotFound(sel.to_string()))
    }

    fn find_id(&mut self, id: u64) -> Option<&mut Account> {
        self.accounts.iter_mut().find(|a| a.id == id)
    }
}

/// The upstream account pool. Cheap to clone; all handles from one [`Store`] share the same state.
#[derive(Clone)]
pub struct AccountPool {
    store: Store,
    state: Arc<Mutex<PoolState>>,
}

impl std::fmt::Debug for AccountPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountPool").finish_non_exhaustive()
    }
}

impl AccountPool {
    pub(crate) fn new(store: Store, state: Arc<Mutex<PoolState>>) -> AccountPool {
        AccountPool { store, state }
    }

    /// Adds an active account. The label (trimmed) must be non-empty, unique and not all digits; the secret
    /// (trimmed, so a pasted trailing newline does no harm) must be non-empty; an empty email counts as none.
    pub fn add(
        &self,
        label: &str,
        email: Option<&str>,
        secret: &str,
        now_ms: u64,
    ) -> Result<AccountView, StoreError> {
        let label = label.trim();
        let secret = secret.trim();
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if label.is_empty() {
            return Err(StoreError::Invalid("the account label is empty".into()));
        }
        if label.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StoreError::Invalid(format!(
                "the account label {label:?} is all digits; labels must not look like ids"
            )));
        }
        if secret.is_empty() {
            return Err(StoreError::Invalid("the account secret is empty".into()));
        }
        let writer = self.writer();
        let _turn = lock(&writer);
        let mut st = lock(&self.state);
        if st.accounts.iter().any(|a| a.label == label) {
            return Err(StoreError::Duplicate(label.to_string()));
        }
        let account = Account {
            id: st.next_id,
            label: label.to_string(),
            email: email.map(str::to_string),
            secret: secret.to_string(),
            state: AccountState::Active,
            created_ms: now_ms,
            counters: Counters::default(),
            disabled_models: Default::default(),
        };
        let next_id = account.id.saturating_add(1);
        self.write(&mut st, Some(&account), None, Some(next_id))?;
        st.next_id = next_id;
        let view = account.view(now_ms);
        st.accounts.push(account);
        Ok(view)
    }

    /// Removes an account by id or label; returns it as it was (state as stored).
    pub fn remove<'a>(&self, sel: impl Into<Selector<'a>>) -> Result<AccountView, StoreError> {
        let writer = self.writer();
        let _turn = lock(&writer);
        let mut st = lock(&self.state);
        let idx = st.find(sel.into())?;
        let id = st.accounts[idx].id;
        self.write(&mut st, None, Some(id), None)?;
        let account = st.accounts.remove(idx);
        st.dirty.remove(&id);
        Ok(account.view_stored())
    }

    /// Disables an account until [`AccountPool::enable`]; `reason` is shown in listings.
    pub fn disable<'a>(
        &self,
        sel: impl Into<Selector<'a>>,
        reason: &str,
    ) -> Result<AccountView, StoreError> {
        let reason = reason.to_string();
        self.update(sel.into(), |a| {
            a.state = AccountState::Disabled { reason };
        })
    }

    /// Makes an account active again, clearing a disable, cool-down or exhaustion, and its disabled models.
    pub fn enable<'a>(&self, sel: impl Into<Selector<'a>>) -> Result<AccountView, StoreError> {
        self.update(sel.into(), |a| {
            a.state = AccountState::Active;
            a.disabled_models.clear();
        })
    }

    /// Stops using an account for one upstream `model` (other models keep using it) until
    /// [`AccountPool::enable`]; `reason` is shown in listings.
    pub fn disable_for_model<'a>(
        &self,
        sel: impl Into<Selector<'a>>,
        model: &str,
        reason: &str,
    ) -> Result<AccountView, StoreError> {
        let (model, reason) = (model.to_string(), reason.to_string());
        self.update(sel.into(), |a| {
            a.disabled_models.insert(model, reason);
        })
    }

    /// Ids of the accounts not to be used for upstream `model`.
    pub fn disabled_for_model(&self, model: &str) -> Vec<u64> {
        lock(&self.state)
            .accounts
            .iter()
            .filter(|a| a.disabled_models.contains_key(model))
            .map(|a| a.id)
            .collect()
    }

    /// Puts an account in cool-down until `until_ms`. Never shortens a longer cool-down or exhaustion, and
    /// leaves a disabled account disabled.
    pub fn cool_down<'a>(
        &self,
        sel: impl Into<Selector<'a>>,
        until_ms: u64,
    ) -> Result<AccountView, StoreError> {
        self.update(sel.into(), |a| {
            a.state = match &a.state {
                AccountState::Disabled { .. } => return,
                AccountState::Exhausted { until_ms: u } if *u >= until_ms => return,
                AccountState::CoolingDown { until_ms: u } => AccountState::CoolingDown {
                    until_ms: until_ms.max(*u),
                },
                AccountState::Active | AccountState::Exhausted { .. } => {
                    AccountState::CoolingDown { until_ms }
                }
            }
        })
    }

    /// Marks an account's quota exhausted until `until_ms` (its reset) and counts a quota hit. Never
    /// shortens a longer cool-down or exhaustion, and leaves a disabled account disabled (the hit still
    /// counts).
    pub fn exhaust<'a>(
        &self,
        sel: impl Into<Selector<'a>>,
        until_ms: u64,
    ) -> Result<AccountView, StoreError> {
        self.update(sel.into(), |a| {
            a.counters.quota_hits = a.counters.quota_hits.saturating_add(1);
            a.state = match &a.state {
                AccountState::Disabled { .. } => return,
                AccountState::CoolingDown { until_ms: u }
                | AccountState::Exhausted { until_ms: u } => AccountState::Exhausted {
                    until_ms: until_ms.max(*u),
                },
                AccountState::Active => AccountState::Exhausted { until_ms },
            }
        })
    }

    /// Every account, by id, with its state at `now_ms`.
    pub fn list(&self, now_ms: u64) -> Vec<AccountView> {
        lock(&self.state)
            .accounts
            .iter()
            .map(|a| a.view(now_ms))
            .collect()
    }

    /// Every account's secret, for redacting upstream text that might echo one.
    pub fn secrets(&self) -> Vec<String> {
        lock(&self.state)
            .accounts
            .iter()
            .map(|a| a.secret.clone())
            .collect()
    }

    /// One account by id or label, with its state at `now_ms`.
    pub fn get<'a>(&self, sel: impl Into<Selector<'a>>, now_ms: u64) -> Option<AccountView> {
        let sel = sel.into();
        lock(&self.state)
            .accounts
            .iter()
            .find(|a| sel.matches(a))
            .map(|a| a.view(now_ms))
    }

    /// Picks the next usable account not in `exclude`, round-robin (the search starts after the account
    /// handed out last), and counts a request on it. See [`Checkout`] for what comes back when none is
    /// usable.
    pub fn checkout(&self, now_ms: u64, exclude: &[u64]) -> Checkout {
        let mut st = lock(&self.state);
        let n = st.accounts.len();
        if n == 0 {
            return Checkout::NoAccounts;
        }
        let start = st.cursor % n;
        for i in 0..n {
            let idx = (start + i) % n;
            let a = &st.accounts[idx];
            if exclude.contains(&a.id) || !a.is_usable(now_ms) {
                continue;
            }
            st.cursor = idx + 1;
            let a = &mut st.accounts[idx];
            a.counters.requests = a.counters.requests.saturating_add(1);
            a.counters.last_used_ms = Some(now_ms);
            let lease = Lease {
                id: a.id,
                label: a.label.clone(),
                email: a.email.clone(),
                secret: a.secret.clone(),
            };
            st.dirty.insert(lease.id);
            return Checkout::Lease(lease);
        }
        // Nothing usable now. How long until something is? (None: disabled, never by itself.)
        let wait = |a: &Account| match a.effective_state(now_ms) {
            AccountState::Active => Some(0),
            AccountState::CoolingDown { until_ms } | AccountState::Exhausted { until_ms } => {
                Some(until_ms.saturating_sub(now_ms))
            }
            AccountState::Disabled { .. } => None,
        };
        let (excluded, others): (Vec<&Account>, Vec<&Account>) =
            st.accounts.iter().partition(|a| exclude.contains(&a.id));
        let earliest = others
            .into_iter()
            .filter_map(wait)
            .min()
            .or_else(|| excluded.into_iter().filter_map(wait).min());
        match earliest {
            Some(retry_after_ms) => Checkout::Unavailable { retry_after_ms },
            None => Checkout::NoAccounts,
        }
    }

    /// Counts a successful upstream call (in memory until the next write or `flush`). Unknown ids (an
    /// account removed mid-request) are ignored.
    pub fn record_success(&self, id: u64, now_ms: u64) {
        let mut st = lock(&self.state);
        if let Some(a) = st.find_id(id) {
            a.counters.successes = a.counters.successes.saturating_add(1);
            a.counters.last_used_ms = Some(a.counters.last_used_ms.unwrap_or(0).max(now_ms));
            st.dirty.insert(id);
        }
    }

    /// Counts a failed upstream call (in memory until the next write or `flush`). Unknown ids are ignored.
    pub fn record_failure(&self, id: u64) {
        let mut st = lock(&self.state);
        if let Some(a) = st.find_id(id) {
            a.counters.failures = a.counters.failures.saturating_add(1);
            st.dirty.insert(id);
        }
    }

    /// How many accounts are usable at `now_ms`.
    pub fn usable_count(&self, now_ms: u64) -> usize {
        lock(&self.state)
            .accounts
            .iter()
            .filter(|a| a.is_usable(now_ms))
            .count()
    }

    /// Writes counters changed since the last write.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.persist_dirty()
    }

    /// The writers' turn lock (see `PoolState::writer`).
    fn writer(&self) -> Arc<Mutex<()>> {
        lock(&self.state).writer.clone()
    }

    /// Writes the accounts changed in memory without holding the state lock across
    /// the commit, so checkouts and listings on the async workers never wait for the
    /// disk. An account changed again while its row was being written stays marked
    /// for the next write.
    fn persist_dirty(&self) -> Result<(), StoreError> {
        let writer = self.writer();
        let _turn = lock(&writer);
        let rows: Vec<Account> = {
            let st = lock(&self.state);
            st.accounts
                .iter()
                .filter(|a| st.dirty.contains(&a.id))
                .cloned()
                .collect()
        };
        if rows.is_empty() {
            return Ok(());
        }
        let key = self.store.secret_key();
        let key = key.as_ref();
        self.store.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(tables::ACCOUNTS)?;
                for account in &rows {
                    table.insert(account.id, account_rows::encode(account, key)?.as_str())?;
                }
            }
            txn.commit()?;
            Ok(())
        })?;
        let mut st = lock(&self.state);
        for written in &rows {
            if st.accounts.iter().any(|a| a == written) {
                st.dirty.remove(&written.id);
            }
        }
        Ok(())
    }

    /// Applies `f` to the account in memory and writes it. A write that fails with an I/O error (after
    /// the store's reopen and retry) leaves the change in effect in memory and the account marked
    /// unwritten, so the next write or `flush` saves it; the store logs the failure.
    fn update(
        &self,
        sel: Selector<'_>,
        f: impl FnOnce(&mut Account),
    ) -> Result<AccountView, StoreError> {
        let (id, view) = {
            let mut st = lock(&self.state);
            let idx = st.find(sel)?;
            let mut updated = st.accounts[idx].clone();
            f(&mut updated);
            if updated == st.accounts[idx] {
                return Ok(st.accounts[idx].view_stored());
            }
            let id = updated.id;
            st.accounts[idx] = updated;
            st.dirty.insert(id);
            (id, st.accounts[idx].view_stored())
        };
        match self.persist_dirty() {
            Ok(()) => {}
            Err(e) if e.is_io() => {
                tracing::debug!(account_id = id, error = %e, "account state kept in memory");
            }
            Err(e) => return Err(e),
        }
        Ok(view)
    }

    /// Re-encrypts every secret with `new` in one transaction and makes it the store's key. The pool
    /// must have been loaded with the old key (or with none, when the secrets are plain).
    pub(crate) fn reseal(&self, new: &SecretKey) -> Result<usize, StoreError> {
        let writer = self.writer();
        let _turn = lock(&writer);
        let mut st = lock(&self.state);
        let accounts = &st.accounts;
        self.store.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(tables::ACCOUNTS)?;
                for account in accounts {
                    table.insert(
                        account.id,
                        account_rows::encode(account, Some(new))?.as_str(),
                    )?;
                }
            }
            txn.commit()?;
            Ok(())
        })?;
        st.dirty.clear();
        self.store.set_secret_key(new.clone());
        Ok(st.accounts.len())
    }

    /// Accounts whose latest change is not written yet.
    pub fn unsaved(&self) -> usize {
        lock(&self.state).dirty.len()
    }

    /// One write transaction: upsert `upsert`, delete `delete`, set the next id, and write every account
    /// with unwritten counters. Clears the dirty set on success.
    fn write(
        &self,
        st: &mut PoolState,
        upsert: Option<&Account>,
        delete: Option<u64>,
        next_id: Option<u64>,
    ) -> Result<(), StoreError> {
        let key = self.store.secret_key();
        let key = key.as_ref();
        let state: &PoolState = st;
        self.store.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(tables::ACCOUNTS)?;
                let skip = |id: u64| upsert.map(|a| a.id) == Some(id) || delete == Some(id);
                for account in state
                    .accounts
                    .iter()
                    .filter(|a| state.dirty.contains(&a.id))
                {
                    if !skip(account.id) {
                        table.insert(account.id, account_rows::encode(account, key)?.as_str())?;
                    }
                }
                if let Some(account) = upsert {
                    table.insert(account.id, account_rows::encode(account, key)?.as_str())?;
                }
                if let Some(id) = delete {
                    table.remove(id)?;
                }
                if let Some(next) = next_id {
                    let mut meta = txn.open_table(tables::META)?;
                    meta.insert(tables::META_NEXT_ACCOUNT_ID, next)?;
                }
            }
            txn.commit()?;
            Ok(())
        })?;
        st.dirty.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_A: &str = "AIzaSyA-secret-number-one-f3Q9";

    /// The accounts as written in the store (not the shared in-memory state).
    fn stored(store: &Store) -> Vec<Account> {
        store.run(|db| PoolState::load(db, None)).unwrap().accounts
    }

    #[test]
    fn concurrent_changes_and_checkouts_all_reach_the_disk() {
        let (store, pool) = pool_with(3);
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let pool = &pool;
                scope.spawn(move || {
                    for i in 0..100u64 {
                        let id = 1 + (i + t) % 3;
                        pool.cool_down(id, 1_000 + i * 4 + t).unwrap();
                        if let Checkout::Lease(lease) = pool.checkout(0, &[]) {
                            pool.record_success(lease.id, i);
                        }
                    }
                });
            }
        });
        pool.flush().unwrap();
        let memory: Vec<AccountView> = pool.list(0);
        let disk: Vec<AccountView> = stored(&store).iter().map(|a| a.view(0)).collect();
        assert_eq!(memory, disk);
    }

    fn pool_with(n: usize) -> (Store, AccountPool) {
        let store = Store::in_memory().unwrap();
        let pool = store.accounts().unwrap();
        for i in 0..n {
            pool.add(
                &format!("acct-{i}"),
                None,
                &format!("secret-key-number-{i}"),
                0,
            )
            .unwrap();
        }
        (store, pool)
    }

    fn lease_id(c: Checkout) -> u64 {
        match c {
            Checkout::Lease(l) => l.id,
            other => panic!("expected a lease, got {other:?}"),
        }
    }

    #[test]
    fn add_and_list_masked() {
        let (_s, pool) = pool_with(0);
        let v = pool
            .add(
                " main ",
                Some("me@example.com"),
                &format!("{SECRET_A}\n"),
                5,
            )
            .unwrap();
        assert_eq!(v.label, "main");
        assert_eq!(v.secret_masked, "AIza…f3Q9");
        assert_eq!(v.state, AccountState::Active);
        let short = pool.add("short", Some(""), "abc", 5).unwrap();
        assert_eq!(short.secret_masked, "****");
        assert_eq!(short.email, None);
        let list = pool.list(6);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].email.as_deref(), Some("me@example.com"));
        let json = serde_json::to_string(&list).unwrap();
        assert!(!json.contains("secret-number"), "{json}");
        assert!(json.contains(r#""state":{"kind":"active"}"#), "{json}");
        // Debug output never shows the secret.
        let lease = pool.checkout(7, &[]);
        let dbg = format!("{lease:?}");
        assert!(!dbg.contains("secret-number"), "{dbg}");
        let st = lock(&pool.state);
        let dbg = format!("{:?}", st.accounts[0]);
        assert!(!dbg.contains("secret-number"), "{dbg}");
    }

    #[test]
    fn add_validates() {
        let (_s, pool) = pool_with(1);
        assert!(matches!(
            pool.add("acct-0", None, "x", 0),
            Err(StoreError::Duplicate(l)) if l == "acct-0"
        ));
        assert!(matches!(
            pool.add("new", None, "  \n", 0),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            pool.add("", None, "x", 0),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            pool.add("123", None, "x", 0),
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(pool.list(0).len(), 1);
    }

    #[test]
    fn round_robin_spreads_and_counts() {
        let (_s, pool) = pool_with(3);
        let ids: Vec<u64> = (0..6).map(|t| lease_id(pool.checkout(t, &[]))).collect();
        assert_eq!(ids, vec![1, 2, 3, 1, 2, 3]);
        for v in pool.list(10) {
            assert_eq!(v.counters.requests, 2);
            assert_eq!(v.counters.last_used_ms, Some(v.id + 2));
        }
    }

    #[test]
    fn exclude_skips_accounts() {
        let (_s, pool) = pool_with(3);
        assert_eq!(lease_id(pool.checkout(0, &[1, 2])), 3);
        assert_eq!(lease_id(pool.checkout(0, &[1, 3])), 2);
        assert_eq!(lease_id(pool.checkout(0, &[2])), 3);
        // All excluded but active: a new request could use them now.
        assert_eq!(
            pool.checkout(0, &[1, 2, 3]),
            Checkout::Unavailable { retry_after_ms: 0 }
        );
    }

    #[test]
    fn cool_down_then_active_again() {
        let (_s, pool) = pool_with(2);
        pool.cool_down(1, 1_000).unwrap();
        assert_eq!(pool.usable_count(500), 1);
        for t in 0..4 {
            assert_eq!(lease_id(pool.checkout(500 + t, &[])), 2);
        }
        assert_eq!(
            pool.list(999)[0].state,
            AccountState::CoolingDown { until_ms: 1_000 }
        );
        assert_eq!(pool.list(1_000)[0].state, AccountState::Active);
        assert_eq!(pool.usable_count(1_000), 2);
        let ids: Vec<u64> = (0..2)
            .map(|_| lease_id(pool.checkout(1_000, &[])))
            .collect();
        assert!(ids.contains(&1) && ids.contains(&2), "{ids:?}");
        // A shorter cool-down does not shorten a longer one.
        pool.cool_down(1, 5_000).unwrap();
        pool.cool_down(1, 2_000).unwrap();
        assert_eq!(
            pool.get(1, 0).unwrap().state,
            AccountState::CoolingDown { until_ms: 5_000 }
        );
    }

    #[test]
    fn exhaust_counts_quota_hits() {
        let (_s, pool) = pool_with(1);
        pool.exhaust("acct-0", 10_000).unwrap();
        let v = pool.get("acct-0", 0).unwrap();
        assert_eq!(v.state, AccountState::Exhausted { until_ms: 10_000 });
        assert_eq!(v.counters.quota_hits, 1);
        // A cool-down shorter than the exhaustion leaves it exhausted.
        pool.cool_down(1, 5_000).unwrap();
        assert_eq!(
            pool.get(1, 0).unwrap().state,
            AccountState::Exhausted { until_ms: 10_000 }
        );
        assert_eq!(
            pool.checkout(4_000, &[]),
            Checkout::Unavailable {
                retry_after_ms: 6_000
            }
        );
        assert_eq!(lease_id(pool.checkout(10_000, &[])), 1);
    }

    #[test]
    fn unavailable_reports_earliest() {
        let (_s, pool) = pool_with(3);
        pool.cool_down(1, 3_000).unwrap();
        pool.exhaust(2, 2_000).unwrap();
        pool.disable(3, "bad key").unwrap();
        assert_eq!(
            pool.checkout(500, &[]),
            Checkout::Unavailable {
                retry_after_ms: 1_500
            }
        );
        // Excluded accounts count only when nothing else will come back.
        assert_eq!(
            pool.checkout(500, &[2]),
            Checkout::Unavailable {
                retry_after_ms: 2_500
            }
        );
        assert_eq!(lease_id(pool.checkout(2_000, &[])), 2);
    }

    #[test]
    fn a_model_disable_affects_that_model_only_persists_and_enable_clears_it() {
        let (store, pool) = pool_with(2);
        pool.disable_for_model(1, "gemini-2.5-flash-image", "limit: 0")
            .unwrap();
        assert_eq!(pool.disabled_for_model("gemini-2.5-flash-image"), vec![1]);
        assert!(pool
            .disabled_for_model("gemini-3-pro-image-preview")
            .is_empty());
        assert_eq!(pool.get(1, 0).unwrap().state, AccountState::Active);
        let on_disk = stored(&store);
        assert_eq!(
            on_disk[0].disabled_models.get("gemini-2.5-flash-image"),
            Some(&"limit: 0".to_string())
        );
        pool.enable(1).unwrap();
        assert!(pool.disabled_for_model("gemini-2.5-flash-image").is_empty());
    }

    #[test]
    fn no_accounts_when_all_disabled() {
        let (_s, pool) = pool_with(0);
        assert_eq!(pool.checkout(0, &[]), Checkout::NoAccounts);
        pool.add("a", None, "secret-a", 0).unwrap();
        pool.add("b", None, "secret-b", 0).unwrap();
        pool.disable("a", "revoked").unwrap();
        pool.disable("2", "revoked").unwrap();
        assert_eq!(pool.checkout(0, &[]), Checkout::NoAccounts);
        assert_eq!(pool.usable_count(0), 0);
        // Cool-down does not revive a disabled account; enable does, clearing everything.
        pool.cool_down("a", 100).unwrap();
        assert_eq!(
            pool.get("a", 0).unwrap().state,
            AccountState::Disabled {
                reason: "revoked".into()
            }
        );
        pool.enable("a").unwrap();
        assert_eq!(lease_id(pool.checkout(0, &[])), 1);
        pool.exhaust("a", 1_000).unwrap();
        pool.enable("a").unwrap();
        assert_eq!(pool.usable_count(0), 1);
    }

    #[test]
    fn remove_and_not_found() {
        let (_s, pool) = pool_with(2);
        let v = pool.remove("acct-0").unwrap();
        assert_eq!(v.id, 1);
        assert!(matches!(pool.remove(1), Err(StoreError::NotFound(_))));
        assert!(matches!(
            pool.disable("nope", "x"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(pool.enable(99), Err(StoreError::NotFound(_))));
        // Reporting on a removed account is harmless.
        pool.record_success(1, 0);
        pool.record_failure(1);
        assert_eq!(lease_id(pool.checkout(0, &[])), 2);
        assert_eq!(lease_id(pool.checkout(0, &[])), 2);
        // Ids are never reused.
        assert_eq!(pool.add("acct-9", None, "s", 0).unwrap().id, 3);
    }

    #[test]
    fn handles_share_state() {
        let (store, pool) = pool_with(2);
        let other = store.accounts().unwrap();
        assert_eq!(lease_id(pool.checkout(0, &[])), 1);
        assert_eq!(lease_id(other.checkout(0, &[])), 2);
        other.disable(1, "x").unwrap();
        assert_eq!(pool.usable_count(0), 1);
    }

    #[test]
    fn counters_and_state_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        {
            let store = Store::open(&path).unwrap();
            let pool = store.accounts().unwrap();
            pool.add("a", Some("a@example.com"), "secret-a-123456", 1)
                .unwrap();
            pool.add("b", None, "secret-b-123456", 2).unwrap();
            pool.add("c", None, "secret-c-123456", 3).unwrap();
            let id = lease_id(pool.checkout(10, &[]));
            pool.record_success(id, 11);
            pool.record_failure(id);
            pool.exhaust("b", 5_000).unwrap();
            pool.disable("c", "key revoked").unwrap();
            pool.remove("c").unwrap();
            pool.add("d", None, "secret-d-123456", 4).unwrap();
            // Counter-only change after the last state change: written by flush.
            pool.record_success(id, 12);
            pool.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let pool = store.accounts().unwrap();
        let list = pool.list(20);
        let labels: Vec<&str> = list.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, ["a", "b", "d"]);
        assert_eq!(list[0].email.as_deref(), Some("a@example.com"));
        assert_eq!(
            list[0].counters,
            Counters {
                requests: 1,
                successes: 2,
                failures: 1,
                quota_hits: 0,
                last_used_ms: Some(12)
            }
        );
        assert_eq!(list[1].state, AccountState::Exhausted { until_ms: 5_000 });
        assert_eq!(list[1].counters.quota_hits, 1);
        assert_eq!(list[2].id, 4);
        assert_eq!(pool.add("e", None, "s", 30).unwrap().id, 5);
        match pool.checkout(20, &[]) {
            Checkout::Lease(l) => assert_eq!(l.secret, "secret-a-123456"),
            other => panic!("{other:?}"),
        }
    }
}
