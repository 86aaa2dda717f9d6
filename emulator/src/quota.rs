//! Per-key request quotas counted in fixed windows, plus keys forced into exhaustion by the operator; tells the
//! caller how long is left in the window so the 429 carries a real `retryDelay`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::{Quota, QuotaWindow};

/// `limit` reported for a key forced into per-minute exhaustion without a per-minute quota of its own.
pub(crate) const DEFAULT_MINUTE_LIMIT: u32 = 10;
/// `limit` reported for a key forced into per-day exhaustion without a per-day quota of its own.
pub(crate) const DEFAULT_DAY_LIMIT: u32 = 100;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded {
    pub per: QuotaWindow,
    pub limit: u32,
    /// Time left until the window resets.
    pub retry: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

#[derive(Debug, Clone, Copy)]
struct Forced {
    per: QuotaWindow,
    since: Instant,
}

/// Quota bookkeeping for every key.
#[derive(Debug, Default)]
pub(crate) struct QuotaBook {
    windows: HashMap<String, Window>,
    forced: HashMap<String, Forced>,
}

impl QuotaBook {
    /// Admits one request for `key` at `now`, counting it, or says which quota it exceeds.
    pub fn admit(&mut self, key: &str, quota: Option<Quota>, now: Instant) -> Result<(), Exceeded> {
        if let Some(forced) = self.forced.get(key) {
            let length = forced.per.length();
            let elapsed = now.saturating_duration_since(forced.since);
            // The forced window rolls over and over: the key stays exhausted, the delay counts down.
            let into = Duration::from_nanos((elapsed.as_nanos() % length.as_nanos()) as u64);
            let limit = match quota {
                Some(q) if q.per == forced.per => q.limit,
                _ => default_limit(forced.per),
            };
            return Err(Exceeded {
                per: forced.per,
                limit,
                retry: length - into,
            });
        }
        let Some(quota) = quota else {
            return Ok(());
        };
        let length = quota.per.length();
        let window = self.windows.entry(key.to_string()).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.saturating_duration_since(window.start) >= length {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        if window.count >= quota.limit {
            let elapsed = now.saturating_duration_since(window.start);
            return Err(Exceeded {
                per: quota.per,
                limit: quota.limit,
                retry: length.saturating_sub(elapsed),
            });
        }
        window.count += 1;
        Ok(())
    }

    /// From `now` on, `key` is refused with the `per` window's 429.
    pub fn force_exhausted(&mut self, key: &str, per: QuotaWindow, now: Instant) {
        self.forced
            .insert(key.to_string(), Forced { per, since: now });
    }

    /// Forgets everything about `key` (its counts and any forced exhaustion).
    pub fn reset(&mut self, key: &str) {
        self.windows.remove(key);
        self.forced.remove(key);
    }
}

fn default_limit(per: QuotaWindow) -> u32 {
    match per {
        QuotaWindow::Minute => DEFAULT_MINUTE_LIMIT,
        QuotaWindow::Day => DEFAULT_DAY_LIMIT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PER_MINUTE_2: Option<Quota> = Some(Quota {
        limit: 2,
        per: QuotaWindow::Minute,
    });

    #[test]
    fn keys_without_quota_are_unlimited() {
        let mut book = QuotaBook::default();
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(book.admit("k", None, now).is_ok());
        }
    }

    #[test]
    fn limit_then_reset_after_the_window() {
        let mut book = QuotaBook::default();
        let t0 = Instant::now();
        assert!(book.admit("k", PER_MINUTE_2, t0).is_ok());
        assert!(book.admit("k", PER_MINUTE_2, t0).is_ok());
        let t1 = t0 + Duration::new(23, 159_570_417);
        let e = book.admit("k", PER_MINUTE_2, t1).unwrap_err();
        assert_eq!(e.per, QuotaWindow::Minute);
        assert_eq!(e.limit, 2);
        assert_eq!(e.retry, Duration::new(36, 840_429_583));
        // Another key has its own window.
        assert!(book.admit("other", PER_MINUTE_2, t1).is_ok());
        assert!(book
            .admit("k", PER_MINUTE_2, t0 + Duration::from_secs(60))
            .is_ok());
    }

    #[test]
    fn forced_exhaustion_persists_and_counts_down() {
        let mut book = QuotaBook::default();
        let t0 = Instant::now();
        book.force_exhausted("k", QuotaWindow::Day, t0);
        let e = book
            .admit("k", None, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(e.per, QuotaWindow::Day);
        assert_eq!(e.limit, DEFAULT_DAY_LIMIT);
        assert_eq!(e.retry, Duration::from_secs(24 * 3600 - 10));
        book.force_exhausted("m", QuotaWindow::Minute, t0);
        let e = book
            .admit("m", PER_MINUTE_2, t0 + Duration::from_secs(70))
            .unwrap_err();
        assert_eq!((e.limit, e.retry), (2, Duration::from_secs(50)));
        book.reset("m");
        assert!(book.admit("m", PER_MINUTE_2, t0).is_ok());
    }
}
