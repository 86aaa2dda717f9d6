//! Live counters per component version: calls, traps, timeouts, call times
//! (median and p99 over a window of recent calls), the outcome mix and shadow
//! disagreements. They decide automatic canary aborts and are shown by
//! `aperture policy list`.
//!
//! [`StatsSnapshot`] is the stable, serializable view: the metrics exporter can
//! turn each field into a Prometheus metric labelled by slot and short sha256
//! (`calls`/`traps`/`timeouts`/`disagreements` as counters, `outcomes` as one
//! counter per outcome label, the call-time quantiles as gauges).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::PolicyError;

/// Call times kept for the quantiles.
const WINDOW: usize = 2048;

/// The counters of one version, shared by every call made on it.
#[derive(Debug, Default)]
pub struct VersionStats {
    calls: AtomicU64,
    traps: AtomicU64,
    timeouts: AtomicU64,
    shadow_calls: AtomicU64,
    disagreements: AtomicU64,
    fallbacks: AtomicU64,
    memo_hits: AtomicU64,
    time_us_total: AtomicU64,
    times_us: Mutex<VecDeque<u64>>,
    outcomes: Mutex<BTreeMap<&'static str, u64>>,
}

/// A point-in-time copy of [`VersionStats`] (what `policy list` and metrics show).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StatsSnapshot {
    /// Calls made (served, shadow and canary alike).
    pub calls: u64,
    /// Calls that trapped.
    pub traps: u64,
    /// Calls stopped at their deadline.
    pub timeouts: u64,
    /// Calls made as a shadow.
    pub shadow_calls: u64,
    /// Shadow calls whose result differed from the active version's.
    pub disagreements: u64,
    /// Canary calls redone on the active version after a trap or timeout.
    pub fallbacks: u64,
    /// Results served from the host's memo instead of a call (not counted in `calls`).
    pub memo_hits: u64,
    /// Time spent in all calls, microseconds (with `calls`, the mean call time).
    pub time_us_total: u64,
    /// Median call time over the recent window, microseconds.
    pub median_us: u64,
    /// 99th percentile call time over the recent window, microseconds.
    pub p99_us: u64,
    /// Count per outcome label (`user_error`, `deny`, `block`, an error_type...).
    pub outcomes: BTreeMap<String, u64>,
    /// Share (0..1) per outcome label, of the calls that produced one.
    pub outcome_shares: BTreeMap<String, f64>,
}

impl VersionStats {
    /// Count one call: its time and its result.
    pub fn record<R: Outcome>(&self, elapsed: Duration, result: &Result<R, PolicyError>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(r) => {
                if let Some(label) = r.label() {
                    *lock(&self.outcomes).entry(label).or_default() += 1;
                }
            }
            Err(PolicyError::Timeout { .. }) => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.traps.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.time_us_total
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let mut times = lock(&self.times_us);
        if times.len() == WINDOW {
            times.pop_front();
        }
        times.push_back(elapsed.as_micros() as u64);
    }

    /// Count a shadow call, and whether it disagreed.
    pub fn shadowed(&self, disagreed: bool) {
        self.shadow_calls.fetch_add(1, Ordering::Relaxed);
        if disagreed {
            self.disagreements.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Count a canary call redone on the active version.
    pub fn fell_back(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a result served from the memo instead of a call.
    pub fn memo_hit(&self) {
        self.memo_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Results served from the memo.
    pub fn memo_hits(&self) -> u64 {
        self.memo_hits.load(Ordering::Relaxed)
    }

    /// Traps plus timeouts.
    pub fn failures(&self) -> u64 {
        self.traps.load(Ordering::Relaxed) + self.timeouts.load(Ordering::Relaxed)
    }

    /// Calls made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Share of calls that trapped or timed out (0 without calls).
    pub fn failure_share(&self) -> f64 {
        match self.calls() {
            0 => 0.0,
            n => self.failures() as f64 / n as f64,
        }
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut times: Vec<u64> = lock(&self.times_us).iter().copied().collect();
        times.sort_unstable();
        let quantile = |q: f64| -> u64 {
            if times.is_empty() {
                return 0;
            }
            let i = ((times.len() as f64 - 1.0) * q).round() as usize;
            times[i.min(times.len() - 1)]
        };
        let outcomes: BTreeMap<String, u64> = lock(&self.outcomes)
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let total: u64 = outcomes.values().sum();
        let outcome_shares = outcomes
            .iter()
            .map(|(k, v)| (k.clone(), *v as f64 / total.max(1) as f64))
            .collect();
        StatsSnapshot {
            calls: self.calls(),
            traps: self.traps.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            shadow_calls: self.shadow_calls.load(Ordering::Relaxed),
            disagreements: self.disagreements.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            memo_hits: self.memo_hits(),
            time_us_total: self.time_us_total.load(Ordering::Relaxed),
            median_us: quantile(0.5),
            p99_us: quantile(0.99),
            outcomes,
            outcome_shares,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a component call's result says for the counters and the shadow log.
pub trait Outcome: std::fmt::Debug {
    /// The outcome label counted in the mix, if this function has one.
    fn label(&self) -> Option<&'static str>;
    /// A one-line description for the shadow log: never prompt text.
    fn summary(&self) -> String;
}

/// sha256 prefix and length: how texts that may hold the prompt are logged.
pub(crate) fn fingerprint(text: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "sha256:{} len={}",
        &super::hex(&Sha256::digest(text.as_bytes()))[..12],
        text.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Outcome for bool {
        fn label(&self) -> Option<&'static str> {
            Some(if *self { "yes" } else { "no" })
        }
        fn summary(&self) -> String {
            self.to_string()
        }
    }

    #[test]
    fn counters_quantiles_and_shares() {
        let s = VersionStats::default();
        for i in 1..=100u64 {
            s.record(
                Duration::from_micros(i),
                &Ok::<bool, PolicyError>(i % 4 == 0),
            );
        }
        s.record::<bool>(
            Duration::from_micros(1),
            &Err(PolicyError::Timeout {
                which: super::super::Which::Safety,
                function: "screen",
            }),
        );
        s.shadowed(true);
        let snap = s.snapshot();
        assert_eq!(snap.calls, 101);
        assert_eq!(snap.timeouts, 1);
        assert_eq!(snap.traps, 0);
        assert_eq!(snap.disagreements, 1);
        assert_eq!(snap.outcomes["yes"], 25);
        assert!((snap.outcome_shares["no"] - 0.75).abs() < 1e-9);
        assert_eq!(snap.median_us, 50);
        assert_eq!(snap.p99_us, 99);
        assert!((s.failure_share() - 1.0 / 101.0).abs() < 1e-9);
    }
}
