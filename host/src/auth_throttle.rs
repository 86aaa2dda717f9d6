//! Throttling of failed authentication per client address, so keys cannot be guessed at line rate.
//!
//! Each address has a GCRA bucket of `failures_per_minute` failures, refilled at that rate (see
//! `rate.rs`). A request from an address whose bucket is empty is refused with 429 `IMG_AUTH_THROTTLED`
//! and `Retry-After` before any key is looked at; every failed check (no key, wrong key, the admin key
//! used as a client key, a wrong admin key) takes one failure from the bucket; successes take nothing.
//!
//! The address is the TCP peer: an IPv4 address, or the /64 prefix of an IPv6 address (one host usually
//! holds a whole /64). `X-Forwarded-For` is not trusted. Memory is bounded: at most `max_tracked_addresses`
//! buckets are kept; an address whose bucket is full again is forgotten, and when the table is full of
//! throttled addresses the one closest to being forgiven makes room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::config::AuthThrottle as Settings;
use crate::limiter::LimitError;
use crate::rate::{retry_secs, Gcra};

/// The failed-authentication throttle (`App::auth_throttle`).
#[derive(Debug)]
pub struct AuthThrottle {
    gcra: Option<Gcra>,
    max: usize,
    /// Theoretical arrival time per address.
    tats: Mutex<HashMap<IpAddr, u64>>,
}

/// The throttled unit of an address: IPv4 as is (also when mapped into IPv6), IPv6 by /64.
fn unit(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

impl AuthThrottle {
    /// A throttle with these settings (`failures_per_minute` 0: off).
    pub fn new(settings: Settings) -> AuthThrottle {
        AuthThrottle {
            gcra: Gcra::per_minute(settings.failures_per_minute),
            max: settings.max_tracked_addresses.max(1),
            tats: Mutex::new(HashMap::new()),
        }
    }

    /// Refuse `ip` if it has no failure left.
    pub fn check(&self, ip: IpAddr, now_ms: u64) -> Result<(), LimitError> {
        let Some(gcra) = self.gcra else {
            return Ok(());
        };
        let tats = self.tats.lock().unwrap_or_else(|e| e.into_inner());
        match tats.get(&unit(ip)) {
            Some(&tat) => {
                gcra.check(tat, now_ms)
                    .map(|_| ())
                    .map_err(|wait| LimitError::AuthThrottled {
                        retry_after: retry_secs(wait),
                    })
            }
            None => Ok(()),
        }
    }

    /// Count one failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr, now_ms: u64) {
        let Some(gcra) = self.gcra else {
            return;
        };
        let key = unit(ip);
        let mut tats = self.tats.lock().unwrap_or_else(|e| e.into_inner());
        if !tats.contains_key(&key) && tats.len() >= self.max {
            // Forget addresses whose bucket is full again, then, if none was, the least throttled one.
            tats.retain(|_, tat| *tat > now_ms);
            if tats.len() >= self.max {
                if let Some(victim) = tats.iter().min_by_key(|(_, tat)| **tat).map(|(k, _)| *k) {
                    tats.remove(&victim);
                }
            }
        }
        let tat = tats.get(&key).copied().unwrap_or(0);
        // A failure that races past `check` still counts, without pushing the TAT further than one
        // interval past a full bucket's worth.
        let next = gcra.check(tat, now_ms).unwrap_or(tat);
        tats.insert(key, next);
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.tats.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_minute: u32, max: usize) -> AuthThrottle {
        AuthThrottle::new(Settings {
            failures_per_minute: per_minute,
            max_tracked_addresses: max,
        })
    }

    const NOW: u64 = 1_000_000;

    #[test]
    fn n_failures_then_refused_until_one_refills() {
        let t = throttle(3, 100);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..3 {
            t.check(ip, NOW).unwrap();
            t.failed(ip, NOW);
        }
        let e = t.check(ip, NOW).unwrap_err();
        assert_eq!(e.code(), "IMG_AUTH_THROTTLED");
        assert_eq!(e.retry_after(), Some(20));
        assert!(t.check("203.0.113.8".parse().unwrap(), NOW).is_ok());
        assert!(t.check(ip, NOW + 20_000).is_ok());
    }

    #[test]
    fn ipv6_is_throttled_by_64_prefix_and_mapped_v4_as_v4() {
        let t = throttle(1, 100);
        t.failed("2001:db8:1:2::1".parse().unwrap(), NOW);
        assert!(t
            .check("2001:db8:1:2:ffff::9".parse().unwrap(), NOW)
            .is_err());
        assert!(t.check("2001:db8:1:3::1".parse().unwrap(), NOW).is_ok());
        t.failed("192.0.2.1".parse().unwrap(), NOW);
        assert!(t.check("::ffff:192.0.2.1".parse().unwrap(), NOW).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let t = throttle(1, 50);
        for i in 0..10_000u32 {
            t.failed(IpAddr::V4(i.into()), NOW + u64::from(i));
        }
        assert!(t.tracked() <= 50, "{}", t.tracked());
        // The newest addresses are the ones still throttled.
        assert!(t.check(IpAddr::V4(9_999u32.into()), NOW + 9_999).is_err());
        assert!(throttle(0, 1)
            .check("192.0.2.1".parse().unwrap(), NOW)
            .is_ok());
    }
}
