//! Gemini's error bodies, byte-for-byte in the shapes the real API returns (google.rpc.Status with details), so
//! the gateway's error classifier is tested against what production sends.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::QuotaWindow;

/// An error answer: HTTP status and the `{"error": {...}}` body.
#[derive(Debug, Clone, thiserror::Error)]
#[error("HTTP {status}: {body}")]
pub(crate) struct ApiError {
    pub status: u16,
    pub body: Value,
}

const RATE_LIMITS_URL: &str = "https://ai.google.dev/gemini-api/docs/rate-limits";
const USAGE_URL: &str = "https://ai.dev/rate-limit";
pub(crate) const FREE_TIER_METRIC: &str =
    "generativelanguage.googleapis.com/generate_content_free_tier_requests";

/// One violated quota in a 429 body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Violation<'a> {
    pub metric: &'a str,
    pub quota_id: &'a str,
    /// The quota family (`quotaDimensions.model`).
    pub model: &'a str,
    pub limit: u32,
}

impl ApiError {
    pub fn new(code: u16, status: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: code,
            body: json!({"error": {"code": code, "message": message.into(), "status": status}}),
        }
    }

    pub fn with_details(
        code: u16,
        status: &str,
        message: impl Into<String>,
        details: Value,
    ) -> Self {
        ApiError {
            status: code,
            body: json!({"error": {
                "code": code, "message": message.into(), "status": status, "details": details,
            }}),
        }
    }

    /// 400 INVALID_ARGUMENT with the given message.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        ApiError::new(400, "INVALID_ARGUMENT", message)
    }

    /// 403 for a call without any API key.
    pub fn unregistered_caller() -> Self {
        ApiError::new(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        )
    }

    /// 400 API_KEY_INVALID for a key the emulator does not know.
    pub fn api_key_invalid() -> Self {
        let message = "API key not valid. Please pass a valid API key.";
        ApiError::with_details(
            400,
            "INVALID_ARGUMENT",
            message,
            json!([
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"}
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message
                }
            ]),
        )
    }

    /// 400 for fields the request message does not have: every offender, one line each, and a BadRequest
    /// detail with one field violation each (`field` left out at the root). `unknown` holds `(path, name)`.
    pub fn unknown_fields(unknown: &[(String, String)]) -> Self {
        let describe = |at: &str, name: &str| {
            if at.is_empty() {
                format!(
                    "Invalid JSON payload received. Unknown name \"{name}\": Cannot find field."
                )
            } else {
                format!(
                    "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
                )
            }
        };
        let lines: Vec<String> = unknown
            .iter()
            .map(|(at, name)| describe(at, name))
            .collect();
        let violations: Vec<Value> = unknown
            .iter()
            .zip(&lines)
            .map(|((at, _), description)| {
                if at.is_empty() {
                    json!({"description": description})
                } else {
                    json!({"field": at, "description": description})
                }
            })
            .collect();
        ApiError::with_details(
            400,
            "INVALID_ARGUMENT",
            lines.join("\n"),
            json!([{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}]),
        )
    }

    /// 400 for a value the proto JSON parser rejects, with its BadRequest field violation.
    pub fn bad_value(field: &str, description: String) -> Self {
        ApiError::with_details(
            400,
            "INVALID_ARGUMENT",
            description.clone(),
            json!([{"@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": field, "description": description}]}]),
        )
    }

    /// 400 for an aspect ratio the model does not take, listing the ones it does.
    pub fn aspect_ratio(model_id: &str) -> Self {
        let family =
            crate::models::find(model_id).map_or(aperture_models::Family::Pro3, |m| m.family);
        let names: Vec<String> = family
            .ratios()
            .iter()
            .map(|r| format!("'{}'", r.name))
            .collect();
        let list = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{}, or {last}", rest.join(", ")),
            _ => names.join(""),
        };
        ApiError::invalid_argument(format!(
            "* GenerateContentRequest.generation_config.image_config.aspect_ratio: aspect_ratio must be one of \
             {list}.\n"
        ))
    }

    /// 404 for a model that does not exist or cannot generate content.
    pub fn model_not_found(model: &str) -> Self {
        ApiError::new(
            404,
            "NOT_FOUND",
            format!(
                "models/{model} is not found for API version v1beta, or is not supported for generateContent. \
                 Call ListModels to see the list of available models and their supported methods."
            ),
        )
    }

    /// 404 for a path the API does not serve.
    pub fn path_not_found(path: &str) -> Self {
        ApiError::new(
            404,
            "NOT_FOUND",
            format!("The requested URL {path} was not found on this server."),
        )
    }

    /// 405 for a known path called with the wrong method.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        ApiError::new(
            405,
            "METHOD_NOT_ALLOWED",
            format!("Method {method} is not allowed for {path}."),
        )
    }

    /// 429 RESOURCE_EXHAUSTED for one free-tier request quota, with QuotaFailure, Help and RetryInfo details
    /// (the message keeps nanoseconds, `retryDelay` whole seconds, as production does).
    pub fn quota_exhausted(
        base_model: &str,
        per: QuotaWindow,
        limit: u32,
        retry: Duration,
    ) -> Self {
        let quota_id = match per {
            QuotaWindow::Minute => "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            QuotaWindow::Day => "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        };
        ApiError::quota(
            &[Violation {
                metric: FREE_TIER_METRIC,
                quota_id,
                model: base_model,
                limit,
            }],
            &format_duration(retry),
            Some(retry.as_secs()),
        )
    }

    /// 429 RESOURCE_EXHAUSTED naming every violated quota; `retry_in` is the message's "Please retry in"
    /// text and `retry_secs` the RetryInfo detail (none when `None`).
    pub fn quota(violations: &[Violation<'_>], retry_in: &str, retry_secs: Option<u64>) -> Self {
        let mut message = format!(
            "You exceeded your current quota, please check your plan and billing details. For more information \
             on this error, head to: {RATE_LIMITS_URL}. To monitor your current usage, head to: {USAGE_URL}. "
        );
        for v in violations {
            message.push_str(&format!(
                "\n* Quota exceeded for metric: {}, limit: {}, model: {}",
                v.metric, v.limit, v.model
            ));
        }
        message.push_str(&format!("\nPlease retry in {retry_in}."));
        let violations: Vec<Value> = violations
            .iter()
            .map(|v| {
                let mut violation = json!({
                    "quotaMetric": v.metric,
                    "quotaId": v.quota_id,
                    "quotaDimensions": {"location": "global", "model": v.model},
                });
                // proto3 JSON leaves a zero int64 out.
                if v.limit > 0 {
                    violation["quotaValue"] = json!(v.limit.to_string());
                }
                violation
            })
            .collect();
        let mut details = vec![
            json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": violations}),
            ApiError::help_detail(),
        ];
        if let Some(secs) = retry_secs {
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format!("{secs}s")
            }));
        }
        ApiError::with_details(429, "RESOURCE_EXHAUSTED", message, Value::Array(details))
    }

    /// The Help detail of 429 bodies.
    pub fn help_detail() -> Value {
        json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas", "url": RATE_LIMITS_URL}]
        })
    }

    /// The error the real API sends for `status` on a call to `model_id`, used for injected faults.
    pub fn for_status(status: u16, model_id: &str) -> Self {
        let base_model = crate::models::quota_name(model_id);
        match status {
            400 => ApiError::invalid_argument("Request contains an invalid argument."),
            401 => ApiError::new(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or \
                 other valid authentication credential.",
            ),
            403 => ApiError::new(
                403,
                "PERMISSION_DENIED",
                "The caller does not have permission",
            ),
            404 => ApiError::model_not_found(model_id),
            429 => ApiError::quota_exhausted(
                base_model,
                QuotaWindow::Minute,
                crate::quota::DEFAULT_MINUTE_LIMIT,
                Duration::from_secs(60),
            ),
            500 => ApiError::new(
                500,
                "INTERNAL",
                "An internal error has occurred. Please retry or report in \
                 https://developers.generativeai.google/guide/troubleshooting",
            ),
            503 => ApiError::new(
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
            ),
            504 => ApiError::new(
                504,
                "DEADLINE_EXCEEDED",
                "The request timed out. Please try again.",
            ),
            other => ApiError::new(other, "UNKNOWN", "An unknown error occurred."),
        }
    }
}

/// Formats a duration as protobuf JSON does: whole seconds as `36s`, otherwise nanosecond precision
/// (`36.840429583s`).
pub(crate) fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}.{:09}s", d.as_secs(), d.subsec_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_like_protobuf_json() {
        assert_eq!(format_duration(Duration::from_secs(36)), "36s");
        assert_eq!(
            format_duration(Duration::new(36, 840_429_583)),
            "36.840429583s"
        );
        assert_eq!(format_duration(Duration::from_millis(500)), "0.500000000s");
    }

    #[test]
    fn unknown_statuses_still_have_the_error_shape() {
        let e = ApiError::for_status(502, "gemini-3-pro-image-preview");
        assert_eq!(e.status, 502);
        assert_eq!(e.body["error"]["code"], 502);
    }
}
