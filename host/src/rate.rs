//! Rate limiting as GCRA (the generic cell rate algorithm, as in `governor` and `redis-cell`): a bucket of
//! `n` requests refilled at `n` per minute, kept as one number per client, the theoretical arrival time
//! (TAT). One `u64` is cheap to hold for many clients and cheap to persist.

/// A rate of `n` per minute with a burst of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Milliseconds between two requests at the steady rate.
    interval_ms: u64,
    /// How far ahead of `now` the TAT may run: the burst beyond the first request.
    tolerance_ms: u64,
}

impl Gcra {
    /// `n` per minute; `None` for 0 (unlimited).
    pub fn per_minute(n: u32) -> Option<Gcra> {
        if n == 0 {
            return None;
        }
        let interval_ms = (60_000 / u64::from(n)).max(1);
        Some(Gcra {
            interval_ms,
            tolerance_ms: interval_ms * (u64::from(n) - 1),
        })
    }

    /// Whether one more request may pass at `now_ms` given the stored `tat`: `Ok(new tat)` to store, or
    /// `Err(ms to wait)`. A refused request leaves the TAT unchanged.
    pub fn check(&self, tat: u64, now_ms: u64) -> Result<u64, u64> {
        let tat = tat.max(now_ms);
        let allowed_at = tat.saturating_sub(self.tolerance_ms);
        if now_ms >= allowed_at {
            Ok(tat + self.interval_ms)
        } else {
            Err(allowed_at - now_ms)
        }
    }
}

/// Whole seconds for `Retry-After` (at least 1) covering `ms`.
pub fn retry_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_n_then_one_per_interval() {
        let g = Gcra::per_minute(3).unwrap();
        let mut tat = 0;
        let now = 1_000_000;
        for _ in 0..3 {
            tat = g.check(tat, now).unwrap();
        }
        assert_eq!(g.check(tat, now), Err(20_000));
        // The refusal changed nothing; 20 s later one more passes, and only one.
        assert_eq!(g.check(tat, now + 19_999), Err(1));
        tat = g.check(tat, now + 20_000).unwrap();
        assert!(g.check(tat, now + 20_000).is_err());
        // After a long idle time the whole burst is back, not more.
        let mut tat2 = tat;
        for _ in 0..3 {
            tat2 = g.check(tat2, now + 3_600_000).unwrap();
        }
        assert!(g.check(tat2, now + 3_600_000).is_err());
        assert_eq!(Gcra::per_minute(0), None);
        assert_eq!(retry_secs(1), 1);
        assert_eq!(retry_secs(20_000), 20);
        assert_eq!(retry_secs(20_001), 21);
    }
}
