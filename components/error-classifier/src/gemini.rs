//! Reading Gemini's `{"error": {...}}` body (google.rpc.Status): message, status,
//! ErrorInfo reason, QuotaFailure quota ids and RetryInfo delay. Anything else parses
//! to an empty [`UpstreamError`], so a non-JSON body never breaks classification.

use serde_json::Value;

/// What a Gemini error body says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamError {
    /// `error.message`.
    pub message: Option<String>,
    /// `error.status`, e.g. `RESOURCE_EXHAUSTED`.
    pub status: Option<String>,
    /// `ErrorInfo.reason`, e.g. `API_KEY_INVALID`.
    pub reason: Option<String>,
    /// Every `QuotaFailure.violations[].quotaId`.
    pub quota_ids: Vec<String>,
    /// `RetryInfo.retryDelay`, in milliseconds (rounded up).
    pub retry_delay_ms: Option<u64>,
}

fn detail_is(detail: &Value, name: &str) -> bool {
    detail
        .get("@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.rsplit(['.', '/']).next() == Some(name))
}

fn non_empty(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl UpstreamError {
    /// Parse a response body; bodies that are not a Gemini error give the default.
    pub fn parse(body: &str) -> Self {
        let Ok(value) = serde_json::from_str::<Value>(body) else {
            return Self::default();
        };
        // Some proxies wrap the error in a one-element array.
        let value = match value {
            Value::Array(mut items) if items.len() == 1 => items.swap_remove(0),
            other => other,
        };
        let Some(error) = value.get("error").filter(|e| e.is_object()) else {
            return Self::default();
        };
        let mut out = Self {
            message: non_empty(error.get("message")),
            status: non_empty(error.get("status")).map(|s| s.to_ascii_uppercase()),
            ..Self::default()
        };
        let details = error.get("details").and_then(Value::as_array);
        for detail in details.into_iter().flatten() {
            if detail_is(detail, "ErrorInfo") {
                if out.reason.is_none() {
                    out.reason = non_empty(detail.get("reason"));
                }
            } else if detail_is(detail, "QuotaFailure") {
                let violations = detail.get("violations").and_then(Value::as_array);
                for v in violations.into_iter().flatten() {
                    if let Some(id) = non_empty(v.get("quotaId")) {
                        out.quota_ids.push(id);
                    }
                }
            } else if detail_is(detail, "RetryInfo") && out.retry_delay_ms.is_none() {
                out.retry_delay_ms = detail.get("retryDelay").and_then(|d| match d {
                    Value::String(s) => duration_ms(s),
                    // The proto3 object form {"seconds": .., "nanos": ..}.
                    Value::Object(_) => {
                        let secs = d.get("seconds").and_then(|s| {
                            s.as_u64()
                                .or_else(|| s.as_str().and_then(|s| s.parse().ok()))
                        })?;
                        let nanos = d.get("nanos").and_then(Value::as_u64).unwrap_or(0);
                        Some(
                            secs.saturating_mul(1000)
                                .saturating_add(nanos.div_ceil(1_000_000)),
                        )
                    }
                    _ => None,
                });
            }
        }
        out
    }
}

/// Milliseconds in a duration written as decimal seconds, with an optional `s` suffix
/// (`"36.840429583s"` -> 36841, `"1.5s"` -> 1500, `"30"` -> 30000), rounded up to the
/// next millisecond. Exact: no floating point.
pub fn duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_suffix('s').unwrap_or(s).trim_end();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut millis: u64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        let digit = u64::from(b - b'0');
        match i {
            0 => millis += digit * 100,
            1 => millis += digit * 10,
            2 => millis += digit,
            _ => {}
        }
    }
    let rounds_up = frac.bytes().skip(3).any(|b| b != b'0');
    Some(
        whole
            .saturating_mul(1000)
            .saturating_add(millis)
            .saturating_add(u64::from(rounds_up)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms("36.840429583s"), Some(36841));
        assert_eq!(duration_ms("1.5s"), Some(1500));
        assert_eq!(duration_ms("30s"), Some(30000));
        assert_eq!(duration_ms("0.0001s"), Some(1));
        assert_eq!(duration_ms("2.000s"), Some(2000));
        assert_eq!(duration_ms(" 7 "), Some(7000));
        assert_eq!(duration_ms(".5s"), Some(500));
        for bad in [
            "",
            "s",
            "abc",
            "-1s",
            "1.2.3s",
            "1e3s",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(duration_ms(bad), None, "{bad}");
        }
        assert_eq!(duration_ms("99999999999999999999s"), None);
    }

    #[test]
    fn parses_quota_body() {
        let body = r#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED",
          "details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[
            {"quotaMetric":"m","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36.840429583s"}]}}"#;
        let e = UpstreamError::parse(body);
        assert_eq!(e.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(
            e.quota_ids,
            vec!["GenerateRequestsPerMinutePerProjectPerModel-FreeTier"]
        );
        assert_eq!(e.retry_delay_ms, Some(36841));
        let e = UpstreamError::parse(
            r#"{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":{"seconds":3,"nanos":1}}]}}"#,
        );
        assert_eq!(e.retry_delay_ms, Some(3001));
    }

    #[test]
    fn junk_bodies_parse_to_default() {
        for body in [
            "",
            "<html>",
            "[]",
            "{}",
            r#"{"error":"x"}"#,
            r#"{"error":{"details":7}}"#,
        ] {
            let e = UpstreamError::parse(body);
            assert_eq!(e.retry_delay_ms, None, "{body}");
            assert!(e.quota_ids.is_empty());
        }
    }
}
