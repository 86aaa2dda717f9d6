//! One log line per account state change (cooling down, exhausted, disabled,
//! recovered), whatever caused it: an upstream answer, the admin API, or a
//! cool-down or quota reset running out (states expire lazily in the pool, so a
//! watcher compares each account's effective state with the last one it saw).

use std::collections::HashMap;
use std::sync::Mutex;

use aperture_store::{AccountPool, AccountState};

/// The state's name in logs and metrics.
pub fn state_name(state: &AccountState) -> &'static str {
    match state {
        AccountState::Active => "active",
        AccountState::CoolingDown { .. } => "cooling_down",
        AccountState::Exhausted { .. } => "exhausted",
        AccountState::Disabled { .. } => "disabled",
    }
}

/// The last state seen per account id.
#[derive(Default)]
pub struct AccountsWatch {
    seen: Mutex<Option<HashMap<u64, &'static str>>>,
}

impl AccountsWatch {
    /// Compare the pool's effective states with the last seen ones and log each change.
    /// The first call only records (start-up is not a change). Cheap: in-memory only.
    pub fn check(&self, pool: &AccountPool, now_ms: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let first = seen.is_none();
        let seen = seen.get_or_insert_with(HashMap::new);
        let accounts = pool.list(now_ms);
        for a in &accounts {
            let state = state_name(&a.state);
            // An account added since the last look starts active.
            let before = seen.insert(a.id, state).unwrap_or("active");
            if first || before == state {
                continue;
            }
            let label = a.label.as_str();
            match &a.state {
                AccountState::Active => tracing::info!(
                    target: "aperture::account",
                    account = label,
                    account_state = "active",
                    previous_state = before,
                    "Account recovered"
                ),
                AccountState::CoolingDown { until_ms } => tracing::warn!(
                    target: "aperture::account",
                    account = label,
                    account_state = "cooling_down",
                    previous_state = before,
                    until = %rfc3339(*until_ms),
                    "Account cooling down"
                ),
                AccountState::Exhausted { until_ms } => tracing::warn!(
                    target: "aperture::account",
                    account = label,
                    account_state = "exhausted",
                    previous_state = before,
                    until = %rfc3339(*until_ms),
                    "Account quota exhausted"
                ),
                AccountState::Disabled { reason } => tracing::error!(
                    target: "aperture::account",
                    account = label,
                    account_state = "disabled",
                    previous_state = before,
                    reason = reason.as_str(),
                    "Account disabled"
                ),
            }
        }
        seen.retain(|id, _| accounts.iter().any(|a| a.id == *id));
    }
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}
