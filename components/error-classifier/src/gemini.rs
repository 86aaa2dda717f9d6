//! Reading Gemini's `{"error": {...}}` body (google.rpc.Status): message, status,
//! ErrorInfo reason, QuotaFailure violations, BadRequest field violations and RetryInfo
//! delay, plus what the message text itself says (`Please retry in 1h2m3.4s`,
//! `limit: 0, model: …`). Anything else parses to an empty [`UpstreamError`] with
//! `is_gemini_error: false`, so a non-JSON body (an HTML error page) never breaks
//! classification and is never quoted.

use serde_json::Value;

/// One `QuotaFailure.violations[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaViolation {
    /// `quotaId`, e.g. `GenerateRequestsPerDayPerProjectPerModel-FreeTier`.
    pub quota_id: Option<String>,
    /// `quotaMetric`, e.g. `generativelanguage.googleapis.com/generate_content_free_tier_requests`.
    pub metric: Option<String>,
    /// `quotaDimensions.model`: the quota family, e.g. `gemini-2.5-flash-preview-image`.
    pub model: Option<String>,
    /// `quotaValue` (the limit), when present.
    pub value: Option<u64>,
}

impl QuotaViolation {
    /// A daily quota (`…PerDay…` quota id, or a `…per_day…` metric).
    pub fn is_per_day(&self) -> bool {
        let id = self.quota_id.as_deref().unwrap_or("").to_ascii_lowercase();
        let metric = self.metric.as_deref().unwrap_or("").to_ascii_lowercase();
        id.contains("perday") || metric.contains("per_day")
    }
}

/// One `* Quota exceeded for metric: M, limit: N, model: X` line of a 429 message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaLine {
    /// The metric, e.g. `generativelanguage.googleapis.com/generate_content_free_tier_requests`.
    pub metric: String,
    /// The limit.
    pub limit: Option<u64>,
    /// The quota model.
    pub model: Option<String>,
}

/// What a Gemini error body says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamError {
    /// The body was a Gemini `{"error": {...}}` object (otherwise every field is empty).
    pub is_gemini_error: bool,
    /// `error.message`.
    pub message: Option<String>,
    /// `error.status`, e.g. `RESOURCE_EXHAUSTED`.
    pub status: Option<String>,
    /// The first `ErrorInfo.reason`, e.g. `API_KEY_INVALID`.
    pub reason: Option<String>,
    /// Every `QuotaFailure.violations[]`.
    pub violations: Vec<QuotaViolation>,
    /// Every `BadRequest.fieldViolations[].description`.
    pub field_violations: Vec<String>,
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

/// A non-negative integer written as a JSON number or a string.
fn as_u64(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
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
            is_gemini_error: true,
            message: non_empty(error.get("message")),
            status: non_empty(error.get("status")).map(|s| s.to_ascii_uppercase()),
            ..Self::default()
        };
        let details = error.get("details").and_then(Value::as_array);
        for detail in details.into_iter().flatten() {
            if detail_is(detail, "ErrorInfo") {
                if out.reason.is_none() {
                    out.reason = non_empty(detail.get("reason")).map(|r| r.to_ascii_uppercase());
                }
            } else if detail_is(detail, "QuotaFailure") {
                let violations = detail.get("violations").and_then(Value::as_array);
                for v in violations.into_iter().flatten() {
                    out.violations.push(QuotaViolation {
                        quota_id: non_empty(v.get("quotaId")),
                        metric: non_empty(v.get("quotaMetric")),
                        model: non_empty(v.get("quotaDimensions").and_then(|d| d.get("model"))),
                        value: as_u64(v.get("quotaValue")),
                    });
                }
            } else if detail_is(detail, "BadRequest") {
                let violations = detail.get("fieldViolations").and_then(Value::as_array);
                for v in violations.into_iter().flatten() {
                    if let Some(d) = non_empty(v.get("description")) {
                        out.field_violations.push(d);
                    }
                }
            } else if detail_is(detail, "RetryInfo") && out.retry_delay_ms.is_none() {
                out.retry_delay_ms = detail.get("retryDelay").and_then(|d| match d {
                    Value::String(s) => duration_ms(s),
                    // The proto3 object form {"seconds": .., "nanos": ..}.
                    Value::Object(_) => {
                        let secs = as_u64(d.get("seconds"))?;
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

    /// The message, or "".
    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }

    /// The longest `retry in <duration>` delay named in the message, in milliseconds.
    pub fn message_retry_ms(&self) -> Option<u64> {
        message_retry_ms(self.message())
    }

    /// The `* Quota exceeded for metric: …` lines of the message.
    pub fn quota_lines(&self) -> Vec<QuotaLine> {
        quota_lines(self.message())
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

/// Nanoseconds in one unit of a Go duration (`h`, `m`, `s`, `ms`, `us`/`µs`, `ns`), and
/// the unit's length in bytes; the longest unit that matches wins (`ms` before `m`).
fn go_unit(s: &str) -> Option<(u128, usize)> {
    const UNITS: [(&str, u128); 8] = [
        ("ms", 1_000_000),
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
    ];
    let (unit, ns) = UNITS.iter().find(|(u, _)| s.starts_with(u))?;
    // A unit is not followed by a letter ("5 minutes" is not "5m").
    let rest = &s[unit.len()..];
    if rest.chars().next().is_some_and(char::is_alphabetic) {
        return None;
    }
    Some((*ns, unit.len()))
}

/// A Go-style duration at the start of `s` (`37.363665079s`, `1h52m56.409571576s`,
/// `500ms`), in milliseconds rounded up; `None` if `s` does not start with one. Text
/// after the duration is ignored (`"37s."` is 37 s).
pub fn go_duration_ms(s: &str) -> Option<u64> {
    let mut rest = s;
    let mut total_ns: u128 = 0;
    let mut any = false;
    loop {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (whole, after) = rest.split_at(digits);
        let (frac, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after),
        };
        if whole.is_empty() && frac.is_empty() {
            break;
        }
        let Some((unit_ns, unit_len)) = go_unit(after) else {
            break;
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut part = whole.checked_mul(unit_ns)?;
        let mut scale = unit_ns;
        for b in frac.bytes().take(18) {
            // Digits beyond the nanosecond are dropped, as Go does.
            scale /= 10;
            part += u128::from(b - b'0') * scale;
        }
        total_ns = total_ns.checked_add(part)?;
        any = true;
        rest = &after[unit_len..];
    }
    if !any {
        return None;
    }
    u64::try_from(total_ns.div_ceil(1_000_000)).ok()
}

/// The longest `retry in <Go duration>` delay in a message (case-insensitive), in ms.
pub fn message_retry_ms(message: &str) -> Option<u64> {
    let lower = message.to_ascii_lowercase();
    lower
        .match_indices("retry in ")
        .filter_map(|(i, m)| go_duration_ms(&message[i + m.len()..]))
        .max()
}

/// The value after `key` in `line` up to the next `,` or whitespace, trimmed of `.`.
fn field_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    let value = line[at..]
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()?
        .trim_end_matches('.');
    (!value.is_empty()).then_some(value)
}

/// The `* Quota exceeded for metric: M, limit: N, model: X` lines of a 429 message.
pub fn quota_lines(message: &str) -> Vec<QuotaLine> {
    const MARK: &str = "Quota exceeded for metric:";
    message
        .lines()
        .filter_map(|line| {
            let at = line.find(MARK)?;
            let line = &line[at + MARK.len()..];
            Some(QuotaLine {
                metric: field_after(line, " ").unwrap_or("").to_string(),
                limit: field_after(line, "limit: ").and_then(|n| n.parse().ok()),
                model: field_after(line, "model: ").map(str::to_string),
            })
        })
        .collect()
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
    fn go_durations() {
        assert_eq!(go_duration_ms("37.363665079s."), Some(37_364));
        assert_eq!(go_duration_ms("1h52m56.409571576s"), Some(6_776_410));
        assert_eq!(go_duration_ms("2m"), Some(120_000));
        assert_eq!(go_duration_ms("500ms"), Some(500));
        assert_eq!(go_duration_ms("1.5h"), Some(5_400_000));
        assert_eq!(go_duration_ms("10µs"), Some(1));
        assert_eq!(go_duration_ms("0s"), Some(0));
        assert_eq!(go_duration_ms("6776s"), Some(6_776_000));
        for bad in ["", "s", "soon", ".s", "5 minutes", "5minutes", "-3s"] {
            assert_eq!(go_duration_ms(bad), None, "{bad}");
        }
        assert_eq!(go_duration_ms(&format!("{}h", "9".repeat(40))), None);
    }

    #[test]
    fn retry_in_takes_the_longest() {
        assert_eq!(
            message_retry_ms("Quota exceeded.\nPlease retry in 37.363665079s."),
            Some(37_364)
        );
        assert_eq!(
            message_retry_ms("Please retry in 2s. Or Retry In 1m3s."),
            Some(63_000)
        );
        assert_eq!(message_retry_ms("retry in a moment"), None);
        assert_eq!(message_retry_ms(""), None);
    }

    #[test]
    fn quota_lines_are_read() {
        let m = "You exceeded your current quota. \n* Quota exceeded for metric: \
                 generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, \
                 model: gemini-2.5-flash-preview-image\n* Quota exceeded for metric: x/y, limit: 250, \
                 model: gemini-3-pro-image\nPlease retry in 3s.";
        let lines = quota_lines(m);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0].metric,
            "generativelanguage.googleapis.com/generate_content_free_tier_requests"
        );
        assert_eq!(lines[0].limit, Some(0));
        assert_eq!(
            lines[0].model.as_deref(),
            Some("gemini-2.5-flash-preview-image")
        );
        assert_eq!(lines[1].limit, Some(250));
        assert!(quota_lines("Resource has been exhausted (e.g. check quota).").is_empty());
    }

    #[test]
    fn parses_quota_body() {
        let body = r#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED",
          "details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[
            {"quotaMetric":"m","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
             "quotaDimensions":{"location":"global","model":"gemini-2.5-flash-preview-image"},"quotaValue":"10"},
            {"quotaId":"GenerateRequestsPerDayPerProjectPerModel"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36.840429583s"}]}}"#;
        let e = UpstreamError::parse(body);
        assert!(e.is_gemini_error);
        assert_eq!(e.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(e.violations.len(), 2);
        assert_eq!(
            e.violations[0],
            QuotaViolation {
                quota_id: Some("GenerateRequestsPerMinutePerProjectPerModel-FreeTier".into()),
                metric: Some("m".into()),
                model: Some("gemini-2.5-flash-preview-image".into()),
                value: Some(10),
            }
        );
        assert!(!e.violations[0].is_per_day() && e.violations[1].is_per_day());
        assert_eq!(e.retry_delay_ms, Some(36841));
        let e = UpstreamError::parse(
            r#"{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":{"seconds":3,"nanos":1}}]}}"#,
        );
        assert_eq!(e.retry_delay_ms, Some(3001));
    }

    #[test]
    fn parses_field_violations() {
        let body = "{\n  \"error\": {\n    \"code\": 400,\n    \"message\": \"Invalid JSON payload\",\n    \
                    \"status\": \"INVALID_ARGUMENT\",\n    \"details\": [\n      {\n        \
                    \"@type\": \"type.googleapis.com/google.rpc.BadRequest\",\n        \
                    \"fieldViolations\": [\n          {\n            \"field\": \"generation_config\",\n            \
                    \"description\": \"Unknown name\"\n          }\n        ]\n      }\n    ]\n  }\n}\n";
        let e = UpstreamError::parse(body);
        assert_eq!(e.field_violations, vec!["Unknown name"]);
    }

    #[test]
    fn junk_bodies_parse_to_default() {
        for body in [
            "",
            "<html>",
            "<!DOCTYPE html>\n<html lang=en><title>Error 502 (Server Error)!!1</title>",
            "[]",
            "{}",
            r#"{"error":"x"}"#,
        ] {
            assert_eq!(
                UpstreamError::parse(body),
                UpstreamError::default(),
                "{body}"
            );
        }
        let e = UpstreamError::parse(r#"{"error":{"details":7}}"#);
        assert!(e.is_gemini_error && e.violations.is_empty() && e.retry_delay_ms.is_none());
    }
}
