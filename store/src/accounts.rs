//! Upstream accounts as stored: identity, secret, state and counters, plus the masked view the admin API
//! returns. Secrets never leave this crate unmasked except in a [`crate::Lease`] (to call the upstream), and
//! no `Debug` output contains them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An upstream account (one row of the `accounts` table, stored as JSON).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Assigned at `add`, never reused.
    pub id: u64,
    /// Unique, not purely numeric (so a selector is never ambiguous).
    pub label: String,
    pub email: Option<String>,
    /// The upstream API key. Never logged; see [`mask_secret`].
    pub secret: String,
    /// Stored state; see [`Account::effective_state`] for what it means at a given time.
    pub state: AccountState,
    pub created_ms: u64,
    #[serde(default)]
    pub counters: Counters,
    /// Upstream models this account must not be used for (model id -> reason), e.g. a free tier with a
    /// quota of `limit: 0` for one model. Other models keep using the account; `enable` clears these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub disabled_models: BTreeMap<String, String>,
}

/// What an account may be used for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccountState {
    /// Usable.
    Active,
    /// Rate-limited by the upstream; usable again at `until_ms`.
    CoolingDown { until_ms: u64 },
    /// Quota used up; usable again at `until_ms` (the quota reset).
    Exhausted { until_ms: u64 },
    /// Not used until an operator enables it again.
    Disabled { reason: String },
}

/// Usage counters of an account. Kept in memory and written on state changes and on
/// [`crate::AccountPool::flush`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Times the account was checked out for an upstream call.
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    /// Times the upstream said the quota was exhausted.
    pub quota_hits: u64,
    pub last_used_ms: Option<u64>,
}

/// What the admin API shows of an account: the secret masked, the state as it is at `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub id: u64,
    pub label: String,
    pub email: Option<String>,
    /// See [`mask_secret`].
    pub secret_masked: String,
    pub state: AccountState,
    pub counters: Counters,
    /// Upstream models the account is not used for, with why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub disabled_models: BTreeMap<String, String>,
}

/// Names an account by id or by label. From a string, all digits means an id (labels are never all digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector<'a> {
    Id(u64),
    Label(&'a str),
}

impl<'a> From<&'a str> for Selector<'a> {
    fn from(s: &'a str) -> Self {
        let s = s.trim();
        match s.parse::<u64>() {
            Ok(id) if s.bytes().all(|b| b.is_ascii_digit()) => Selector::Id(id),
            _ => Selector::Label(s),
        }
    }
}

impl<'a> From<&'a String> for Selector<'a> {
    fn from(s: &'a String) -> Self {
        Selector::from(s.as_str())
    }
}

impl From<u64> for Selector<'_> {
    fn from(id: u64) -> Self {
        Selector::Id(id)
    }
}

impl std::fmt::Display for Selector<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Id(id) => write!(f, "account {id}"),
            Selector::Label(l) => write!(f, "account {l:?}"),
        }
    }
}

impl Selector<'_> {
    pub(crate) fn matches(&self, account: &Account) -> bool {
        match *self {
            Selector::Id(id) => account.id == id,
            Selector::Label(l) => account.label == l,
        }
    }
}

impl Account {
    /// The state at `now_ms`: a cool-down or exhaustion that has run out is `Active`.
    pub fn effective_state(&self, now_ms: u64) -> AccountState {
        match &self.state {
            AccountState::CoolingDown { until_ms } | AccountState::Exhausted { until_ms }
                if *until_ms <= now_ms =>
            {
                AccountState::Active
            }
            s => s.clone(),
        }
    }

    /// Whether the account may be checked out at `now_ms`.
    pub fn is_usable(&self, now_ms: u64) -> bool {
        self.effective_state(now_ms) == AccountState::Active
    }

    /// The view with the state at `now_ms`.
    pub fn view(&self, now_ms: u64) -> AccountView {
        AccountView {
            state: self.effective_state(now_ms),
            ..self.view_stored()
        }
    }

    /// The view with the state as stored (for calls that take no time).
    pub(crate) fn view_stored(&self) -> AccountView {
        AccountView {
            id: self.id,
            label: self.label.clone(),
            email: self.email.clone(),
            secret_masked: mask_secret(&self.secret),
            state: self.state.clone(),
            counters: self.counters.clone(),
            disabled_models: self.disabled_models.clone(),
        }
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("email", &self.email)
            .field("secret", &mask_secret(&self.secret))
            .field("state", &self.state)
            .field("created_ms", &self.created_ms)
            .field("counters", &self.counters)
            .field("disabled_models", &self.disabled_models)
            .finish()
    }
}

/// Masks a secret for display: the first 4 and last 4 characters around `…` (`AIza…f3Q9`), or `****` when
/// the secret is shorter than 12 characters (so at most 8 of at least 12 characters show).
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "****".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}
