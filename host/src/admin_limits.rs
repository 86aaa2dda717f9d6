//! The admin API's side of client-key limits: reading a change of limits from a JSON body (checked with
//! the same rules as the `[limits]` defaults) and showing a key's limits, effective values and usage.

use aperture_store::KeyLimits;
use serde_json::{json, Map, Value};

use crate::config::{ClientLimits, ThresholdSet};
use crate::errors::GatewayError;

/// The fields a change of limits may name.
const FIELDS: [&str; 4] = [
    "rpm",
    "images_per_day",
    "max_concurrent",
    "allowed_thresholds",
];

/// A change of a key's limits: for each field, `None` = leave as is, `Some(None)` = back to the default,
/// `Some(Some(v))` = set.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LimitChange {
    rpm: Option<Option<u32>>,
    images_per_day: Option<Option<u32>>,
    max_concurrent: Option<Option<u32>>,
    allowed_thresholds: Option<Option<Vec<String>>>,
}

fn invalid(message: String) -> GatewayError {
    GatewayError::Admin {
        status: 400,
        code: "IMG_INVALID_REQUEST",
        message,
    }
}

fn number(name: &str, v: &Value) -> Result<Option<u32>, GatewayError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                invalid(format!(
                    "{name} must be a whole number from 0 (unlimited) to 4294967295, or null for the default"
                ))
            }),
        _ => Err(invalid(format!(
            "{name} must be a whole number (0 = unlimited) or null for the default"
        ))),
    }
}

impl LimitChange {
    /// Read a change from a JSON object; unknown fields and bad values are refused (400).
    pub fn from_json(value: &Value) -> Result<LimitChange, GatewayError> {
        let map: &Map<String, Value> = value
            .as_object()
            .ok_or_else(|| invalid("the limits must be a JSON object".into()))?;
        let mut change = LimitChange::default();
        for (k, v) in map {
            match k.as_str() {
                "rpm" => change.rpm = Some(number(k, v)?),
                "images_per_day" => change.images_per_day = Some(number(k, v)?),
                "max_concurrent" => change.max_concurrent = Some(number(k, v)?),
                "allowed_thresholds" => {
                    change.allowed_thresholds = Some(match v {
                        Value::Null => None,
                        Value::Array(items) => {
                            let names: Vec<String> = items
                                .iter()
                                .map(|i| i.as_str().map(|s| s.trim().to_ascii_uppercase()))
                                .collect::<Option<_>>()
                                .ok_or_else(|| {
                                    invalid("allowed_thresholds must be a list of names".into())
                                })?;
                            let set = ThresholdSet::parse(&names)
                                .map_err(|e| invalid(format!("allowed_thresholds: {e}")))?;
                            Some(set.names().iter().map(|s| s.to_string()).collect())
                        }
                        _ => {
                            return Err(invalid(
                                "allowed_thresholds must be a list such as [\"MEDIUM\", \"HIGH\"], or null for the default".into(),
                            ))
                        }
                    })
                }
                other => {
                    return Err(invalid(format!(
                        "unknown limit {other:?}; the limits are {}",
                        FIELDS.join(", ")
                    )))
                }
            }
        }
        Ok(change)
    }

    /// True when the change names no field.
    pub fn is_empty(&self) -> bool {
        *self == LimitChange::default()
    }

    /// Apply the change.
    pub fn apply(self, limits: &mut KeyLimits) {
        if let Some(v) = self.rpm {
            limits.rpm = v;
        }
        if let Some(v) = self.images_per_day {
            limits.images_per_day = v;
        }
        if let Some(v) = self.max_concurrent {
            limits.max_concurrent = v;
        }
        if let Some(v) = self.allowed_thresholds {
            limits.allowed_thresholds = v;
        }
    }
}

/// Effective limits as JSON (0 = unlimited).
pub fn effective_json(l: &ClientLimits) -> Value {
    json!({
        "rpm": l.rpm,
        "images_per_day": l.images_per_day,
        "max_concurrent": l.max_concurrent,
        "allowed_thresholds": l.allowed_thresholds.names(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_set_reset_and_leave_fields() {
        let mut limits = KeyLimits {
            rpm: Some(5),
            images_per_day: Some(9),
            ..KeyLimits::default()
        };
        LimitChange::from_json(
            &json!({"rpm": null, "max_concurrent": 0, "allowed_thresholds": ["high", "medium"]}),
        )
        .unwrap()
        .apply(&mut limits);
        assert_eq!(limits.rpm, None);
        assert_eq!(limits.images_per_day, Some(9));
        assert_eq!(limits.max_concurrent, Some(0));
        assert_eq!(
            limits.allowed_thresholds,
            Some(vec!["MEDIUM".to_string(), "HIGH".to_string()])
        );
        for bad in [
            json!({"rpm": -1}),
            json!({"rpm": 1.5}),
            json!({"rpm": "60"}),
            json!({"allowed_thresholds": []}),
            json!({"allowed_thresholds": ["EXTREME"]}),
            json!({"allowed_thresholds": "HIGH"}),
            json!({"burst": 3}),
            json!([1]),
        ] {
            assert!(LimitChange::from_json(&bad).is_err(), "{bad}");
        }
        assert!(LimitChange::from_json(&json!({})).unwrap().is_empty());
    }
}
