//! The classification table: what a failed upstream call means for the client (error
//! family, `IMG_*` code, HTTP status, retryability) and for the account that made it.

use crate::gemini::{duration_ms, UpstreamError};
use crate::redact::redact;
use crate::types::{
    AccountAction, Classification, ErrorType, Failure, HttpFailure, TransportFailure, TransportKind,
};

/// Cool-down used for a 429 that names no delay at all (no RetryInfo, no Retry-After).
pub const DEFAULT_COOL_DOWN_MS: u64 = 60_000;

/// Classify one failed upstream call.
pub fn classify(failure: &Failure) -> Classification {
    match failure {
        Failure::Http(http) => classify_http(http),
        Failure::Transport(transport) => classify_transport(transport),
    }
}

fn classification(
    error_type: ErrorType,
    code: &str,
    client_status: u16,
    retryable: bool,
    message: String,
    account_action: AccountAction,
) -> Classification {
    Classification {
        error_type,
        code: code.to_string(),
        client_status,
        retryable,
        message,
        account_action,
    }
}

/// `Retry-After` in milliseconds, when it is a number of seconds.
fn retry_after_ms(headers: &[(String, String)]) -> Option<u64> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, value)| duration_ms(value))
}

/// "HTTP 429 RESOURCE_EXHAUSTED: <message>" (redacted), for client messages.
fn upstream_detail(status: u16, e: &UpstreamError) -> String {
    let mut out = format!("HTTP {status}");
    if let Some(s) = &e.status {
        out.push(' ');
        out.push_str(&redact(s));
    }
    if let Some(m) = &e.message {
        out.push_str(": ");
        out.push_str(&redact(m));
    }
    out
}

fn is_invalid_key(status: u16, e: &UpstreamError) -> bool {
    let reason_says = e
        .reason
        .as_deref()
        .is_some_and(|r| r.starts_with("API_KEY_"));
    let message_says = e.message.as_deref().is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("api key not valid") || m.contains("api key expired")
    });
    let status_says = matches!(
        e.status.as_deref(),
        Some("PERMISSION_DENIED" | "UNAUTHENTICATED")
    );
    matches!(status, 401 | 403) || status_says || (status == 400 && (reason_says || message_says))
}

fn classify_http(http: &HttpFailure) -> Classification {
    let status = http.status;
    let e = UpstreamError::parse(&http.body);
    let detail = upstream_detail(status, &e);
    let google_status = e.status.as_deref().unwrap_or("");

    if status == 429 || google_status == "RESOURCE_EXHAUSTED" {
        let per_day = e
            .quota_ids
            .iter()
            .any(|id| id.to_ascii_lowercase().contains("perday"));
        let (action, what) = if per_day {
            (
                AccountAction::ExhaustedUntilReset,
                "daily quota is exhausted",
            )
        } else {
            let ms = e
                .retry_delay_ms
                .or_else(|| retry_after_ms(&http.headers))
                .unwrap_or(DEFAULT_COOL_DOWN_MS);
            (AccountAction::CoolDown(ms), "rate limit was reached")
        };
        return classification(
            ErrorType::ApiError,
            "IMG_QUOTA_EXHAUSTED",
            429,
            true,
            format!(
                "The upstream Gemini account's {what} (upstream said {detail}). The gateway \
                 moves on to another account; when none is left, retry after the Retry-After \
                 interval."
            ),
            action,
        );
    }

    if is_invalid_key(status, &e) {
        let label = e.reason.as_deref().or(e.status.as_deref()).unwrap_or("");
        let why = e.message.as_deref().unwrap_or("request refused");
        let reason = if label.is_empty() {
            format!("{status}: {}", redact(why))
        } else {
            format!("{status} {}: {}", redact(label), redact(why))
        };
        return classification(
            ErrorType::ApiError,
            "IMG_ACCOUNT_INVALID",
            502,
            true,
            format!(
                "The upstream rejected the Gemini account's API key (upstream said {detail}). \
                 The account has been disabled and the gateway moves on to another one; when \
                 none is left, the operator must add a valid account."
            ),
            AccountAction::Disable(reason),
        );
    }

    match status {
        400 if google_status == "FAILED_PRECONDITION" => classification(
            ErrorType::ApiError,
            "IMG_UPSTREAM_REJECTED",
            502,
            true,
            format!(
                "The upstream refused to serve this Gemini account (upstream said {detail}). \
                 The gateway tries another account; if this persists, tell the operator."
            ),
            AccountAction::None,
        ),
        400 | 413 | 422 => classification(
            ErrorType::UserError,
            "IMG_UPSTREAM_REJECTED",
            400,
            false,
            format!(
                "The upstream rejected the request as invalid (upstream said {detail}). Change \
                 the request (prompt, size or other options) and try again."
            ),
            AccountAction::None,
        ),
        404 => classification(
            ErrorType::ApiError,
            "IMG_UPSTREAM_REJECTED",
            502,
            false,
            format!(
                "The upstream does not serve the requested model (upstream said {detail}). Try \
                 another model, or tell the operator."
            ),
            AccountAction::None,
        ),
        500..=599 => classification(
            ErrorType::ApiError,
            "IMG_UPSTREAM_UNAVAILABLE",
            503,
            true,
            format!(
                "The upstream is temporarily unavailable (upstream said {detail}). Retry in a \
                 moment."
            ),
            AccountAction::None,
        ),
        _ => classification(
            ErrorType::ApiError,
            "IMG_UPSTREAM_ERROR",
            502,
            false,
            format!(
                "The upstream returned an unexpected error (upstream said {detail}). Retry \
                 later; if it persists, tell the operator."
            ),
            AccountAction::None,
        ),
    }
}

/// Transport failures never blame the account; the transport's own message is for the
/// log only and is not repeated to the client.
fn classify_transport(transport: &TransportFailure) -> Classification {
    let (code, client_status, message) = match transport.kind {
        TransportKind::Timeout => (
            "IMG_UPSTREAM_TIMEOUT",
            504,
            "The upstream did not answer in time. Retry later, or ask for a smaller \
             image_size or fewer images.",
        ),
        TransportKind::Connect => (
            "IMG_NETWORK_ERROR",
            502,
            "The gateway could not connect to the upstream. Retry later; if it persists, \
             tell the operator.",
        ),
        TransportKind::Tls => (
            "IMG_NETWORK_ERROR",
            502,
            "The gateway could not establish a secure (TLS) connection to the upstream. \
             Retry later; if it persists, tell the operator.",
        ),
        TransportKind::Protocol => (
            "IMG_NETWORK_ERROR",
            502,
            "The connection to the upstream broke or its response was not valid HTTP. \
             Retry later; if it persists, tell the operator.",
        ),
    };
    classification(
        ErrorType::NetworkError,
        code,
        client_status,
        true,
        message.to_string(),
        AccountAction::None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, body: &str) -> Classification {
        classify(&Failure::Http(HttpFailure {
            status,
            headers: vec![],
            body: body.to_string(),
        }))
    }

    #[test]
    fn status_table_without_bodies() {
        for (status, ty, code, client, retry) in [
            (429, ErrorType::ApiError, "IMG_QUOTA_EXHAUSTED", 429, true),
            (401, ErrorType::ApiError, "IMG_ACCOUNT_INVALID", 502, true),
            (403, ErrorType::ApiError, "IMG_ACCOUNT_INVALID", 502, true),
            (
                400,
                ErrorType::UserError,
                "IMG_UPSTREAM_REJECTED",
                400,
                false,
            ),
            (
                422,
                ErrorType::UserError,
                "IMG_UPSTREAM_REJECTED",
                400,
                false,
            ),
            (
                404,
                ErrorType::ApiError,
                "IMG_UPSTREAM_REJECTED",
                502,
                false,
            ),
            (
                500,
                ErrorType::ApiError,
                "IMG_UPSTREAM_UNAVAILABLE",
                503,
                true,
            ),
            (
                503,
                ErrorType::ApiError,
                "IMG_UPSTREAM_UNAVAILABLE",
                503,
                true,
            ),
            (
                599,
                ErrorType::ApiError,
                "IMG_UPSTREAM_UNAVAILABLE",
                503,
                true,
            ),
            (302, ErrorType::ApiError, "IMG_UPSTREAM_ERROR", 502, false),
            (418, ErrorType::ApiError, "IMG_UPSTREAM_ERROR", 502, false),
        ] {
            let c = http(status, "<html>bad gateway</html>");
            assert_eq!(
                (c.error_type, c.code.as_str(), c.client_status, c.retryable),
                (ty, code, client, retry),
                "{status}"
            );
            assert!(!c.message.contains("html"));
        }
        assert_eq!(
            http(429, "").account_action,
            AccountAction::CoolDown(DEFAULT_COOL_DOWN_MS)
        );
        assert!(
            matches!(http(403, "").account_action, AccountAction::Disable(ref r) if r.starts_with("403"))
        );
    }

    #[test]
    fn retry_after_header_is_the_fallback() {
        let c = classify(&Failure::Http(HttpFailure {
            status: 429,
            headers: vec![("retry-after".into(), "12".into())],
            body: r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"slow down"}}"#
                .into(),
        }));
        assert_eq!(c.account_action, AccountAction::CoolDown(12_000));
    }

    #[test]
    fn api_key_invalid_is_disabled_without_leaking_the_key() {
        let body = r#"{"error":{"code":400,"message":"API key not valid (key=AIzaSyXYZ). Please pass a valid API key.",
          "status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo",
          "reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        let c = http(400, body);
        assert_eq!(c.code, "IMG_ACCOUNT_INVALID");
        let AccountAction::Disable(reason) = &c.account_action else {
            panic!("{c:?}")
        };
        assert!(reason.starts_with("400 API_KEY_INVALID: API key not valid"));
        assert!(!reason.contains("AIza") && !c.message.contains("AIza"));
    }

    #[test]
    fn failed_precondition_is_not_the_clients_fault() {
        let c = http(
            400,
            r#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#,
        );
        assert_eq!((c.error_type, c.client_status), (ErrorType::ApiError, 502));
    }
}
