//! Limits per client key: the configured defaults (`[limits]`), the set of safety thresholds a key may
//! use, and how a key's stored overrides resolve against the defaults. The admin API validates per-key
//! values with the same functions, so a value is checked the same way wherever it comes from.

use aperture_store::KeyLimits;

use super::{parse_threshold, threshold_name};
use crate::policy::SafetyThreshold;

/// Every threshold, from the most permissive to the strictest (`HIGH` blocks the most).
pub const THRESHOLDS: [SafetyThreshold; 4] = [
    SafetyThreshold::Off,
    SafetyThreshold::Low,
    SafetyThreshold::Medium,
    SafetyThreshold::High,
];

/// A set of safety thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThresholdSet(u8);

fn bit(t: SafetyThreshold) -> u8 {
    match t {
        SafetyThreshold::Off => 1,
        SafetyThreshold::Low => 2,
        SafetyThreshold::Medium => 4,
        SafetyThreshold::High => 8,
    }
}

impl ThresholdSet {
    /// All four.
    pub const ALL: ThresholdSet = ThresholdSet(15);

    /// Parse a list of names (any case); empty lists and unknown names are refused.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<ThresholdSet, String> {
        let mut set = 0u8;
        for name in names {
            let name = name.as_ref();
            match parse_threshold(name) {
                Some(t) => set |= bit(t),
                None => {
                    return Err(format!(
                        "{name:?} is not a safety threshold (OFF, LOW, MEDIUM or HIGH)"
                    ))
                }
            }
        }
        if set == 0 {
            return Err("the list of allowed safety thresholds is empty: name at least one of OFF, LOW, MEDIUM, HIGH".into());
        }
        Ok(ThresholdSet(set))
    }

    /// Whether `t` is in the set.
    pub fn contains(self, t: SafetyThreshold) -> bool {
        self.0 & bit(t) != 0
    }

    /// The strictest threshold in the set.
    pub fn strictest(self) -> SafetyThreshold {
        THRESHOLDS
            .iter()
            .rev()
            .copied()
            .find(|t| self.contains(*t))
            .unwrap_or(SafetyThreshold::High)
    }

    /// The names, most permissive first.
    pub fn names(self) -> Vec<&'static str> {
        THRESHOLDS
            .iter()
            .filter(|t| self.contains(**t))
            .map(|t| threshold_name(*t))
            .collect()
    }
}

/// The limits a client key runs with. For the numbers, 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Requests per minute (a bucket of `rpm` requests refilled at `rpm` per minute).
    pub rpm: u32,
    /// Images generated upstream per day (the day ends at midnight America/Los_Angeles).
    pub images_per_day: u32,
    /// Requests in flight at once.
    pub max_concurrent: u32,
    /// Safety thresholds the key may ask for.
    pub allowed_thresholds: ThresholdSet,
}

impl ClientLimits {
    /// The built-in defaults: no rate or daily limit, 8 requests at once, every threshold.
    pub const DEFAULT: ClientLimits = ClientLimits {
        rpm: 0,
        images_per_day: 0,
        max_concurrent: 8,
        allowed_thresholds: ThresholdSet::ALL,
    };

    /// These defaults with a key's stored overrides applied. Stored threshold names were validated when
    /// they were set; if the row is unusable anyway, the default set applies and the caller is told why.
    pub fn with_overrides(self, over: &KeyLimits) -> (ClientLimits, Option<String>) {
        let mut problem = None;
        let allowed_thresholds = match &over.allowed_thresholds {
            None => self.allowed_thresholds,
            Some(names) => ThresholdSet::parse(names).unwrap_or_else(|e| {
                problem = Some(e);
                self.allowed_thresholds
            }),
        };
        (
            ClientLimits {
                rpm: over.rpm.unwrap_or(self.rpm),
                images_per_day: over.images_per_day.unwrap_or(self.images_per_day),
                max_concurrent: over.max_concurrent.unwrap_or(self.max_concurrent),
                allowed_thresholds,
            },
            problem,
        )
    }

    /// The threshold a request of this key runs at: the one it asked for if allowed (else `Err` with the
    /// refused one); without one, the global default if allowed, else the key's strictest allowed one.
    pub fn threshold(
        &self,
        requested: Option<SafetyThreshold>,
        global: SafetyThreshold,
    ) -> Result<SafetyThreshold, SafetyThreshold> {
        match requested {
            Some(t) if self.allowed_thresholds.contains(t) => Ok(t),
            Some(t) => Err(t),
            None if self.allowed_thresholds.contains(global) => Ok(global),
            None => Ok(self.allowed_thresholds.strictest()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SafetyThreshold::*;

    #[test]
    fn threshold_sets_parse_and_order() {
        let set = ThresholdSet::parse(&["medium", " HIGH "]).unwrap();
        assert!(set.contains(Medium) && set.contains(High) && !set.contains(Off));
        assert_eq!(set.names(), ["MEDIUM", "HIGH"]);
        assert_eq!(set.strictest(), High);
        assert_eq!(
            ThresholdSet::parse(&["OFF", "LOW"]).unwrap().strictest(),
            Low
        );
        assert!(ThresholdSet::parse::<&str>(&[]).is_err());
        assert!(ThresholdSet::parse(&["EXTREME"])
            .unwrap_err()
            .contains("EXTREME"));
        assert_eq!(ThresholdSet::ALL.names(), ["OFF", "LOW", "MEDIUM", "HIGH"]);
    }

    #[test]
    fn the_effective_threshold_of_a_key() {
        let only_strict = ClientLimits {
            allowed_thresholds: ThresholdSet::parse(&["MEDIUM", "HIGH"]).unwrap(),
            ..ClientLimits::DEFAULT
        };
        assert_eq!(only_strict.threshold(Some(High), Medium), Ok(High));
        assert_eq!(only_strict.threshold(Some(Off), Medium), Err(Off));
        assert_eq!(only_strict.threshold(None, Medium), Ok(Medium));
        // The global default is not allowed for this key: its strictest allowed one.
        assert_eq!(only_strict.threshold(None, Off), Ok(High));
        assert_eq!(ClientLimits::DEFAULT.threshold(Some(Off), Medium), Ok(Off));
    }

    #[test]
    fn overrides_apply_field_by_field() {
        let over = KeyLimits {
            rpm: Some(60),
            max_concurrent: Some(0),
            ..KeyLimits::default()
        };
        let (l, problem) = ClientLimits::DEFAULT.with_overrides(&over);
        assert_eq!((l.rpm, l.images_per_day, l.max_concurrent), (60, 0, 0));
        assert_eq!(l.allowed_thresholds, ThresholdSet::ALL);
        assert!(problem.is_none());
        let bad = KeyLimits {
            allowed_thresholds: Some(vec!["NOPE".into()]),
            ..KeyLimits::default()
        };
        let (l, problem) = ClientLimits::DEFAULT.with_overrides(&bad);
        assert_eq!(l.allowed_thresholds, ThresholdSet::ALL);
        assert!(problem.unwrap().contains("NOPE"));
    }
}
