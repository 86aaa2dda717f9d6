//! Limits per client key, in memory: each key's limits (the `[limits]` defaults with the key's stored
//! overrides), its counters (requests per minute as GCRA, images per day, requests in flight), and the
//! batched write of those counters to the store.
//!
//! Every check is a short critical section on one mutex, with no I/O: the request path never waits on
//! redb. Counters are written by [`flush`](Limiter::flush) (called every [`FLUSH_EVERY`] by a background
//! task, and at shutdown) in one transaction for all changed keys, so a crash loses at most that much.
//! In-flight counts are not persisted: after a restart nothing is in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use aperture_store::{KeyLimits, KeyStore, KeyUsage, StoreError};

use crate::config::ClientLimits;
use crate::gateway::interpret::next_quota_reset_ms;
use crate::rate::{retry_secs, Gcra};

/// How often changed counters are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// `Retry-After` of a request refused for concurrency: a slot frees when any request of the key ends.
const CONCURRENCY_RETRY_SECS: u64 = 1;

/// Why a client's request was refused by a limit (each with its own `IMG_*` code).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LimitError {
    /// Over the key's requests per minute.
    #[error("this client key may make {rpm} requests per minute and has used them; retry after {retry_after} seconds, or ask the operator to raise the key's limit")]
    RateLimited {
        /// The limit.
        rpm: u32,
        /// Seconds until one more request is allowed.
        retry_after: u64,
    },
    /// Over the key's images per day.
    #[error("this client key may generate {limit} images per day and has {left} left today, fewer than the {n} asked for; {}retry after {retry_after} seconds (the day ends at midnight America/Los_Angeles), or ask the operator to raise the key's limit", if *left > 0 { format!("ask for at most {left}, or ") } else { String::new() })]
    DailyLimit {
        /// The limit.
        limit: u32,
        /// Images still allowed today.
        left: u64,
        /// Images asked for.
        n: u8,
        /// Seconds until the day ends.
        retry_after: u64,
    },
    /// Too many requests of the key in flight.
    #[error("this client key may have {max} requests in flight at once; wait for one to finish, then retry")]
    ConcurrencyLimit {
        /// The limit.
        max: u32,
    },
    /// The request asked for a safety threshold the key may not use.
    #[error("this client key may not use safety_threshold {requested}; it may use {allowed}, or leave safety_threshold out")]
    ThresholdForbidden {
        /// The refused threshold.
        requested: &'static str,
        /// The allowed ones, comma-separated.
        allowed: String,
    },
    /// Too many failed authentications from the client's address.
    #[error("too many failed authentications from this address; retry after {retry_after} seconds with a valid key")]
    AuthThrottled {
        /// Seconds until one more attempt is allowed.
        retry_after: u64,
    },
}

impl LimitError {
    /// HTTP status: 403 for a forbidden threshold, 429 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            LimitError::ThresholdForbidden { .. } => 403,
            _ => 429,
        }
    }

    /// The `IMG_*` code.
    pub fn code(&self) -> &'static str {
        match self {
            LimitError::RateLimited { .. } => "IMG_RATE_LIMITED",
            LimitError::DailyLimit { .. } => "IMG_DAILY_LIMIT",
            LimitError::ConcurrencyLimit { .. } => "IMG_CONCURRENCY_LIMIT",
            LimitError::ThresholdForbidden { .. } => "IMG_THRESHOLD_FORBIDDEN",
            LimitError::AuthThrottled { .. } => "IMG_AUTH_THROTTLED",
        }
    }

    /// Seconds for `Retry-After` (every 429).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            LimitError::RateLimited { retry_after, .. }
            | LimitError::DailyLimit { retry_after, .. }
            | LimitError::AuthThrottled { retry_after } => Some(*retry_after),
            LimitError::ConcurrencyLimit { .. } => Some(CONCURRENCY_RETRY_SECS),
            LimitError::ThresholdForbidden { .. } => None,
        }
    }

    /// The request field at fault.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            LimitError::ThresholdForbidden { .. } => Some("safety_threshold"),
            LimitError::DailyLimit { .. } => Some("n"),
            _ => None,
        }
    }
}

/// The counters of one key.
#[derive(Debug, Default)]
struct Counters {
    usage: KeyUsage,
    in_flight: u32,
    /// Changed since the last flush.
    dirty: bool,
}

/// Per-key limits and counters. Shared by every request (`App::limiter`).
pub struct Limiter {
    defaults: ClientLimits,
    overrides: RwLock<HashMap<String, KeyLimits>>,
    counters: Mutex<HashMap<String, Counters>>,
    keys: KeyStore,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// Load the stored limits and counters (blocking: call at start-up, off the async workers).
    pub fn load(defaults: ClientLimits, keys: KeyStore) -> Result<Limiter, StoreError> {
        let overrides = keys.all_limits()?;
        let counters = keys
            .usage()?
            .into_iter()
            .map(|(label, usage)| {
                (
                    label,
                    Counters {
                        usage,
                        ..Counters::default()
                    },
                )
            })
            .collect();
        Ok(Limiter {
            defaults,
            overrides: RwLock::new(overrides),
            counters: Mutex::new(counters),
            keys,
        })
    }

    /// The configured defaults.
    pub fn defaults(&self) -> ClientLimits {
        self.defaults
    }

    /// The limits `label` runs with.
    pub fn limits_of(&self, label: &str) -> ClientLimits {
        let overrides = self.overrides.read().unwrap_or_else(|e| e.into_inner());
        match overrides.get(label) {
            None => self.defaults,
            Some(over) => {
                let (limits, problem) = self.defaults.with_overrides(over);
                if let Some(problem) = problem {
                    tracing::warn!(client = label, problem = %problem, "stored limits of a client key are unusable; using the defaults for them");
                }
                limits
            }
        }
    }

    /// `label`'s stored overrides (all `None` when it has none).
    pub fn overrides_of(&self, label: &str) -> KeyLimits {
        self.overrides
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(label)
            .cloned()
            .unwrap_or_default()
    }

    /// Record `label`'s stored limits after the admin API changed them.
    pub fn set_overrides(&self, label: &str, limits: KeyLimits) {
        let mut overrides = self.overrides.write().unwrap_or_else(|e| e.into_inner());
        if limits.is_default() {
            overrides.remove(label);
        } else {
            overrides.insert(label.to_string(), limits);
        }
    }

    /// Forget a removed key (its rows left the store with it).
    pub fn forget(&self, label: &str) {
        self.overrides
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(label);
        let mut counters = self.lock();
        if counters.get(label).is_some_and(|c| c.in_flight == 0) {
            counters.remove(label);
        }
    }

    /// Admit one request of `label`: refused if the key has `max_concurrent` requests in flight, or has
    /// used its requests per minute (a refused request uses nothing). The permit holds the in-flight slot
    /// until dropped.
    pub fn admit(self: &Arc<Self>, label: &str, now_ms: u64) -> Result<Permit, LimitError> {
        let limits = self.limits_of(label);
        let mut counters = self.lock();
        let c = counters.entry(label.to_string()).or_default();
        if limits.max_concurrent > 0 && c.in_flight >= limits.max_concurrent {
            return Err(LimitError::ConcurrencyLimit {
                max: limits.max_concurrent,
            });
        }
        if let Some(gcra) = Gcra::per_minute(limits.rpm) {
            match gcra.check(c.usage.rate_tat_ms, now_ms) {
                Ok(tat) => {
                    c.usage.rate_tat_ms = tat;
                    c.dirty = true;
                }
                Err(wait) => {
                    return Err(LimitError::RateLimited {
                        rpm: limits.rpm,
                        retry_after: retry_secs(wait),
                    })
                }
            }
        }
        c.in_flight += 1;
        Ok(Permit {
            limiter: Arc::clone(self),
            label: label.to_string(),
        })
    }

    /// Reserve `n` of `label`'s images for today before generating them; refused if fewer are left. The
    /// reservation is given back when dropped unless [`Reservation::keep`] says how many were generated.
    pub fn reserve_images(
        self: &Arc<Self>,
        label: &str,
        n: u8,
        now_ms: u64,
    ) -> Result<Reservation, LimitError> {
        let limit = self.limits_of(label).images_per_day;
        let mut counters = self.lock();
        let c = counters.entry(label.to_string()).or_default();
        if now_ms >= c.usage.day_reset_ms {
            c.usage.day_reset_ms = next_quota_reset_ms(now_ms);
            c.usage.images_today = 0;
            c.dirty = true;
        }
        if limit > 0 && c.usage.images_today + u64::from(n) > u64::from(limit) {
            return Err(LimitError::DailyLimit {
                limit,
                left: u64::from(limit).saturating_sub(c.usage.images_today),
                n,
                retry_after: retry_secs(c.usage.day_reset_ms.saturating_sub(now_ms)),
            });
        }
        c.usage.images_today += u64::from(n);
        c.dirty = true;
        Ok(Reservation {
            limiter: Arc::clone(self),
            label: label.to_string(),
            reserved: u64::from(n),
            day_reset_ms: c.usage.day_reset_ms,
        })
    }

    /// Write every changed counter in one transaction (blocking: call through `blocking`). On failure the
    /// counters stay marked changed and the next flush tries again.
    pub fn flush(&self) -> Result<usize, StoreError> {
        let rows: Vec<(String, KeyUsage)> = {
            let mut counters = self.lock();
            counters
                .iter_mut()
                .filter(|(_, c)| c.dirty)
                .map(|(label, c)| {
                    c.dirty = false;
                    (label.clone(), c.usage)
                })
                .collect()
        };
        if let Err(e) = self.keys.save_usage(&rows) {
            let mut counters = self.lock();
            for (label, _) in &rows {
                if let Some(c) = counters.get_mut(label) {
                    c.dirty = true;
                }
            }
            return Err(e);
        }
        Ok(rows.len())
    }

    /// `(images counted today, requests in flight)` of `label`, for the admin API.
    pub fn usage_of(&self, label: &str, now_ms: u64) -> (u64, u32) {
        let counters = self.lock();
        counters.get(label).map_or((0, 0), |c| {
            let images = if now_ms >= c.usage.day_reset_ms {
                0
            } else {
                c.usage.images_today
            };
            (images, c.in_flight)
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Counters>> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One admitted request's in-flight slot; given back on drop.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
    label: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counters = self.limiter.lock();
        if let Some(c) = counters.get_mut(&self.label) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
    }
}

/// Images reserved for one request; what is not kept is given back on drop (same day only).
#[derive(Debug)]
pub struct Reservation {
    limiter: Arc<Limiter>,
    label: String,
    reserved: u64,
    day_reset_ms: u64,
}

impl Reservation {
    /// Keep `generated` of the reserved images (counted for today) and give the rest back.
    pub fn keep(mut self, generated: u64) {
        self.reserved = self.reserved.saturating_sub(generated);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.reserved == 0 {
            return;
        }
        let mut counters = self.limiter.lock();
        if let Some(c) = counters.get_mut(&self.label) {
            if c.usage.day_reset_ms == self.day_reset_ms {
                c.usage.images_today = c.usage.images_today.saturating_sub(self.reserved);
                c.dirty = true;
            }
        }
    }
}

/// Write changed counters every [`FLUSH_EVERY`] until the task is aborted (at shutdown, after which the
/// caller flushes once more).
pub async fn flush_periodically(limiter: Arc<Limiter>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let l = Arc::clone(&limiter);
        match tokio::task::spawn_blocking(move || l.flush()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not write the client keys' usage counters; they are kept in memory and retried")
            }
            Err(e) => tracing::error!(error = %e, "the usage-counter writer failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ThresholdSet;
    use aperture_store::Store;

    fn limiter(store: &Store, defaults: ClientLimits) -> Arc<Limiter> {
        Arc::new(Limiter::load(defaults, store.keys()).unwrap())
    }

    const NOW: u64 = 1_795_687_200_000;

    #[test]
    fn concurrency_is_released_with_the_permit_and_refusals_use_nothing() {
        let store = Store::in_memory().unwrap();
        let l = limiter(
            &store,
            ClientLimits {
                rpm: 3,
                max_concurrent: 1,
                ..ClientLimits::DEFAULT
            },
        );
        let p = l.admit("k", NOW).unwrap();
        assert!(matches!(
            l.admit("k", NOW),
            Err(LimitError::ConcurrencyLimit { max: 1 })
        ));
        assert!(l.admit("other", NOW).is_ok(), "per key");
        drop(p);
        drop(l.admit("k", NOW).unwrap());
        drop(l.admit("k", NOW).unwrap());
        // Three admitted (the concurrency refusal used no rpm): the fourth waits 20 s.
        match l.admit("k", NOW) {
            Err(e @ LimitError::RateLimited { rpm: 3, .. }) => {
                assert_eq!(e.retry_after(), Some(20));
                assert_eq!(e.code(), "IMG_RATE_LIMITED");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn images_per_day_reserve_keep_refund_and_reset_at_pacific_midnight() {
        let store = Store::in_memory().unwrap();
        let l = limiter(
            &store,
            ClientLimits {
                images_per_day: 5,
                ..ClientLimits::DEFAULT
            },
        );
        l.reserve_images("k", 3, NOW).unwrap().keep(3);
        // A failed generation gives its reservation back.
        drop(l.reserve_images("k", 2, NOW).unwrap());
        let r = l.reserve_images("k", 2, NOW).unwrap();
        match l.reserve_images("k", 1, NOW) {
            Err(e @ LimitError::DailyLimit { left: 0, .. }) => {
                // 2026-11-26T10:00Z -> reset at 2026-11-27T08:00Z: 22 h.
                assert_eq!(e.retry_after(), Some(22 * 3600));
                assert!(!e.to_string().contains("ask for at most"));
            }
            other => panic!("{other:?}"),
        }
        r.keep(1);
        let e = l.reserve_images("k", 2, NOW).unwrap_err();
        assert!(e.to_string().contains("ask for at most 1"), "{e}");
        assert_eq!(l.usage_of("k", NOW), (4, 0));
        // The next Pacific day starts from zero.
        let tomorrow = NOW + 22 * 3600 * 1000;
        l.reserve_images("k", 5, tomorrow).unwrap().keep(5);
    }

    #[test]
    fn counters_and_overrides_survive_a_reload() {
        let store = Store::in_memory().unwrap();
        let keys = store.keys();
        keys.add_with_limits(
            "team",
            "sk-team-key",
            &KeyLimits {
                rpm: Some(1),
                images_per_day: Some(2),
                allowed_thresholds: Some(vec!["HIGH".into()]),
                ..KeyLimits::default()
            },
        )
        .unwrap();
        let l = limiter(&store, ClientLimits::DEFAULT);
        assert_eq!(l.limits_of("team").rpm, 1);
        assert_eq!(
            l.limits_of("team").allowed_thresholds,
            ThresholdSet::parse(&["HIGH"]).unwrap()
        );
        assert_eq!(l.limits_of("config:1"), ClientLimits::DEFAULT);
        drop(l.admit("team", NOW).unwrap());
        l.reserve_images("team", 2, NOW).unwrap().keep(2);
        assert_eq!(l.flush().unwrap(), 1);
        assert_eq!(l.flush().unwrap(), 0, "nothing changed since");

        let again = limiter(&store, ClientLimits::DEFAULT);
        assert!(matches!(
            again.admit("team", NOW + 1000),
            Err(LimitError::RateLimited { .. })
        ));
        assert!(matches!(
            again.reserve_images("team", 1, NOW + 1000),
            Err(LimitError::DailyLimit { .. })
        ));
        again.set_overrides("team", KeyLimits::default());
        assert_eq!(again.limits_of("team"), ClientLimits::DEFAULT);
    }
}
