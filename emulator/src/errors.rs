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
const FREE_TIER_METRIC: &str =
    "generativelanguage.googleapis.com/generate_content_free_tier_requests";

impl ApiError {
    fn new(code: u16, status: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: code,
            body: json!({"error": {"code": code, "message": message.into(), "status": status}}),
        }
    }

    fn with_details(code: u16, status: &str, message: impl Into<String>, details: Value) -> Self {
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

    /// 429 RESOURCE_EXHAUSTED with QuotaFailure, Help and RetryInfo details.
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
        let delay = format_duration(retry);
        let message = format!(
            "You exceeded your current quota, please check your plan and billing details. For more information \
             on this error, head to: {RATE_LIMITS_URL}.\n* Quota exceeded for metric: {FREE_TIER_METRIC}, \
             limit: {limit}, model: {base_model}\nPlease retry in {delay}."
        );
        ApiError::with_details(
            429,
            "RESOURCE_EXHAUSTED",
            message,
            json!([
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{
                        "quotaMetric": FREE_TIER_METRIC,
                        "quotaId": quota_id,
                        "quotaDimensions": {"location": "global", "model": base_model},
                        "quotaValue": limit.to_string()
                    }]
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [{"description": "Learn more about Gemini API quotas", "url": RATE_LIMITS_URL}]
                },
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": delay
                }
            ]),
        )
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
