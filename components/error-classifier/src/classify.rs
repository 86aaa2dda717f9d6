//! The classification table: what a failed upstream call means for the client (error
//! family, `IMG_*` code, HTTP status, retryability) and for the account that made it.

use crate::gemini::{duration_ms, UpstreamError};
use crate::redact::{clean_with, redact, redact_to, REASON_MAX_CHARS};
use crate::types::{
    AccountAction, Classification, ErrorType, Failure, HttpFailure, TransportFailure, TransportKind,
};

/// Cool-down for a 429 that names no delay at all (no RetryInfo, no "retry in …" in
/// the message, no Retry-After): the detail-less `Resource has been exhausted (e.g.
/// check quota).` and Help-only bodies.
pub const DEFAULT_COOL_DOWN_MS: u64 = 60_000;

/// Cool-down for a 401/403 that does not blame the account's key (no key-specific
/// ErrorInfo reason or message): it may be an upstream-side problem that every account
/// sees, so no account is disabled for it.
pub const FORBIDDEN_COOL_DOWN_MS: u64 = 300_000;

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

/// "HTTP 429 RESOURCE_EXHAUSTED: <message>" for client messages: the message without
/// URLs, links, API keys and the sentences `skip` accepts. A body that is not a Gemini
/// error (an HTML page) is never quoted: only the status is.
fn upstream_detail_with(status: u16, e: &UpstreamError, skip: impl Fn(&str) -> bool) -> String {
    let mut out = format!("HTTP {status}");
    if let Some(s) = &e.status {
        out.push(' ');
        out.push_str(&redact(s));
    }
    let message = e
        .message
        .as_deref()
        .map(|m| clean_with(m, skip))
        .unwrap_or_default();
    if !message.is_empty() {
        out.push_str(": ");
        out.push_str(&message);
    }
    out
}

fn upstream_detail(status: u16, e: &UpstreamError) -> String {
    upstream_detail_with(status, e, |_| false)
}

fn lower_message(e: &UpstreamError) -> String {
    e.message().to_ascii_lowercase()
}

fn classify_http(http: &HttpFailure) -> Classification {
    let status = http.status;
    let e = UpstreamError::parse(&http.body);
    let google_status = e.status.as_deref().unwrap_or("");

    if status == 429 || google_status == "RESOURCE_EXHAUSTED" {
        return quota(http, &e);
    }
    if let Some(refusal) = account_refusal(&e) {
        return disabled(status, &e, refusal);
    }
    if matches!(status, 401 | 403)
        || matches!(google_status, "PERMISSION_DENIED" | "UNAUTHENTICATED")
    {
        return forbidden(status, &e);
    }
    match status {
        400 | 413 | 422 => bad_request(status, &e),
        404 => not_found(status, &e),
        500..=599 => classification(
            ErrorType::ApiError,
            "IMG_UPSTREAM_UNAVAILABLE",
            503,
            true,
            format!(
                "The upstream is temporarily unavailable (upstream said {}). Retry in a \
                 moment.",
                upstream_detail(status, &e)
            ),
            AccountAction::None,
        ),
        _ => classification(
            ErrorType::ApiError,
            "IMG_UPSTREAM_ERROR",
            502,
            false,
            format!(
                "The upstream returned an unexpected error (upstream said {}). Retry \
                 later; if it persists, tell the operator.",
                upstream_detail(status, &e)
            ),
            AccountAction::None,
        ),
    }
}

// ---- 429 -------------------------------------------------------------------------

/// A quota with limit 0 (no quota at all for the model on this key's project).
struct NoQuota {
    /// The quota model, e.g. `gemini-2.5-flash-preview-image`.
    model: Option<String>,
    /// The quota is a free-tier one (billing would lift it).
    free_tier: bool,
}

/// A `limit: 0` line in the message or a `quotaValue` of 0 in a violation.
fn no_quota(e: &UpstreamError) -> Option<NoQuota> {
    let line = e.quota_lines().into_iter().find(|l| l.limit == Some(0));
    let violation = e.violations.iter().find(|v| v.value == Some(0));
    if line.is_none() && violation.is_none() {
        return None;
    }
    let model = line
        .as_ref()
        .and_then(|l| l.model.clone())
        .or_else(|| violation.and_then(|v| v.model.clone()))
        .or_else(|| e.violations.iter().find_map(|v| v.model.clone()));
    let free_tier = line
        .as_ref()
        .is_some_and(|l| l.metric.to_ascii_lowercase().contains("free_tier"))
        || violation.is_some_and(|v| {
            let id = v.quota_id.as_deref().unwrap_or("").to_ascii_lowercase();
            let metric = v.metric.as_deref().unwrap_or("").to_ascii_lowercase();
            id.contains("freetier") || metric.contains("free_tier")
        });
    Some(NoQuota { model, free_tier })
}

/// The quota lines and the "Please retry in …" sentence, which the classification
/// states on its own terms, are left out of the quoted message.
fn is_quota_noise(sentence: &str) -> bool {
    let s = sentence.trim_start_matches(['*', ' ']).to_ascii_lowercase();
    s.starts_with("quota exceeded for metric:") || s.starts_with("please retry in")
}

fn quota(http: &HttpFailure, e: &UpstreamError) -> Classification {
    let detail = upstream_detail_with(http.status, e, is_quota_noise);
    if let Some(none) = no_quota(e) {
        let model = none.model.as_deref().map(redact);
        let what = model.as_deref().unwrap_or("the requested model");
        let (limit, fix) = if none.free_tier {
            ("free tier limit: 0", "enable billing or remove the account")
        } else {
            (
                "limit: 0",
                "raise the project's quota or remove the account",
            )
        };
        return classification(
            ErrorType::ApiError,
            "IMG_QUOTA_EXHAUSTED",
            429,
            true,
            format!(
                "The upstream Gemini account has no quota for {what} ({limit}, which never \
                 resets; upstream said {detail}). The account is no longer used for this \
                 model and the gateway moves on to another one; when none is left, the \
                 operator must enable billing or add an account."
            ),
            AccountAction::DisableForModel(format!(
                "{} RESOURCE_EXHAUSTED: this key's project has no quota for {what} ({limit}); \
                 {fix}",
                http.status
            )),
        );
    }
    let per_day = e.violations.iter().any(|v| v.is_per_day());
    let (action, what) = if per_day {
        (
            AccountAction::ExhaustedUntilReset,
            "daily quota is exhausted",
        )
    } else {
        // The longest delay anyone named: RetryInfo is whole seconds on paid bodies
        // ("6776s") while the message has the exact "1h52m56.4s".
        let ms = [
            e.retry_delay_ms,
            e.message_retry_ms(),
            retry_after_ms(&http.headers),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(DEFAULT_COOL_DOWN_MS);
        (AccountAction::CoolDown(ms), "rate limit was reached")
    };
    classification(
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
    )
}

// ---- the account's key or project is refused ---------------------------------------

/// Key-specific evidence that this account (not the upstream) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The API key is invalid, expired, restricted, leaked or its consumer suspended.
    Key,
    /// The key's project has the API or billing disabled.
    Project,
    /// The key's project's Cloud billing account is blocked ("Lightning dunning").
    Billing,
    /// The free tier is not offered in the gateway's region and the project has no billing.
    FreeTierRegion,
}

/// ErrorInfo reasons that name the caller's key or project.
fn reason_refusal(reason: &str) -> Option<Refusal> {
    match reason {
        r if r.starts_with("API_KEY_") => Some(Refusal::Key),
        "CONSUMER_SUSPENDED" | "CONSUMER_INVALID" => Some(Refusal::Key),
        "SERVICE_DISABLED" | "BILLING_DISABLED" => Some(Refusal::Project),
        _ => None,
    }
}

/// The only disable trigger: an ErrorInfo reason or a message that names this
/// account's key or project. A bare 401/403 never disables.
fn account_refusal(e: &UpstreamError) -> Option<Refusal> {
    if let Some(r) = e.reason.as_deref().and_then(reason_refusal) {
        return Some(r);
    }
    let m = lower_message(e);
    if m.contains("api key not valid")
        || m.contains("api key expired")
        || m.contains("api_key_invalid")
        || m.contains("api key was reported as leaked")
        || (m.contains("consumer 'api_key:") && m.contains("has been suspended"))
    {
        Some(Refusal::Key)
    } else if m.contains("lightning dunning decision is deny") {
        Some(Refusal::Billing)
    } else if m.contains("free tier is not available in your country") {
        Some(Refusal::FreeTierRegion)
    } else {
        None
    }
}

fn disabled(status: u16, e: &UpstreamError, refusal: Refusal) -> Classification {
    let label = e.reason.as_deref().or(e.status.as_deref()).unwrap_or("");
    let head = if label.is_empty() {
        format!("{status}")
    } else {
        format!("{status} {}", redact(label))
    };
    let why = redact_to(
        e.message.as_deref().unwrap_or("request refused"),
        REASON_MAX_CHARS,
    );
    let (reason, whose) = match refusal {
        Refusal::Key => (format!("{head}: {why}"), "the Gemini account's API key"),
        Refusal::Project => (format!("{head}: {why}"), "the Gemini account's project"),
        Refusal::Billing => (
            format!(
                "{head}: the Cloud billing account of this key's project is blocked ({why}); \
                 settle the billing account, then enable the account"
            ),
            "the Gemini account: its project's billing is blocked",
        ),
        Refusal::FreeTierRegion => (
            format!(
                "{head}: the free tier is not available in the gateway's region and this key's \
                 project has no billing ({why}); enable billing or remove the account"
            ),
            "the Gemini account: the free tier is not available in the gateway's region",
        ),
    };
    classification(
        ErrorType::ApiError,
        "IMG_ACCOUNT_INVALID",
        502,
        true,
        format!(
            "The upstream rejected {whose} (upstream said {}). The account has been disabled \
             and the gateway moves on to another one; when none is left, the operator must \
             add a valid account.",
            upstream_detail(status, e)
        ),
        AccountAction::Disable(reason),
    )
}

/// A 401/403 without key-specific evidence ("The caller does not have permission", or
/// no details): maybe the upstream's side, so the account only rests.
fn forbidden(status: u16, e: &UpstreamError) -> Classification {
    classification(
        ErrorType::ApiError,
        "IMG_UPSTREAM_FORBIDDEN",
        502,
        true,
        format!(
            "The upstream refused the call without naming a problem with the account's key \
             (upstream said {}). The gateway rests this account for 5 minutes and tries \
             another; if this persists, tell the operator.",
            upstream_detail(status, e)
        ),
        AccountAction::CoolDown(FORBIDDEN_COOL_DOWN_MS),
    )
}

// ---- 400 / 413 / 422 -----------------------------------------------------------------

/// Messages (lower-case) that mean the request the gateway built does not fit the
/// upstream API or model: the client sent only a prompt and options the gateway
/// accepted, so it cannot fix these.
const GATEWAY_BUILT: [&str; 11] = [
    "invalid json payload received",
    "request contains an invalid argument",
    "multiple candidates is not enabled",
    "thinking is not enabled",
    "media resolution is not enabled",
    "thought_signature",
    "provided image is not valid",
    "unable to process input image",
    "unsupported mime type",
    "base64 decoding failed",
    "cannot find field",
];

fn bad_request(status: u16, e: &UpstreamError) -> Classification {
    let m = lower_message(e);
    let detail = upstream_detail(status, e);
    if status == 413 || m.contains("request payload size exceeds the limit") {
        return classification(
            ErrorType::ApiError,
            "IMG_UPSTREAM_REJECTED",
            502,
            false,
            format!(
                "The request the gateway sent upstream was too large (upstream said {detail}). \
                 Retrying will not help; shorten the prompt, and if it persists, tell the \
                 operator."
            ),
            AccountAction::None,
        );
    }
    if m.contains("user location is not supported") {
        return classification(
            ErrorType::ApiError,
            "IMG_UPSTREAM_REJECTED",
            502,
            false,
            format!(
                "The upstream does not serve the region the gateway connects from (upstream \
                 said {detail}). Retrying will not help: the operator must route the \
                 gateway's upstream traffic through a supported region."
            ),
            AccountAction::None,
        );
    }
    if e.status.as_deref() == Some("FAILED_PRECONDITION") {
        return classification(
            ErrorType::ApiError,
            "IMG_UPSTREAM_REJECTED",
            502,
            true,
            format!(
                "The upstream refused to serve this Gemini account (upstream said {detail}). \
                 The gateway tries another account; if this persists, tell the operator."
            ),
            AccountAction::None,
        );
    }
    let aspect = m.contains("aspect_ratio") || m.contains("aspect ratio");
    let gateway_built =
        !e.field_violations.is_empty() || GATEWAY_BUILT.iter().any(|g| m.contains(g));
    if gateway_built && !aspect {
        return classification(
            ErrorType::ApiError,
            "IMG_UPSTREAM_REJECTED",
            502,
            false,
            format!(
                "The upstream refused the request the gateway built for it (upstream said \
                 {detail}). Retrying the same request will not help; another model, image_size \
                 or aspect_ratio may work. Tell the operator: the gateway's request for this \
                 model needs fixing."
            ),
            AccountAction::None,
        );
    }
    classification(
        ErrorType::UserError,
        "IMG_UPSTREAM_REJECTED",
        400,
        false,
        format!(
            "The upstream rejected the request as invalid (upstream said {detail}). Change \
             the request (prompt, size or other options) and try again."
        ),
        AccountAction::None,
    )
}

// ---- 404 -------------------------------------------------------------------------

/// `X` in `models/X is not found…` (not in "The requested URL /v1beta/models/X:… was
/// not found", which is a wrong address).
fn missing_model(message: &str) -> Option<String> {
    message.match_indices("models/").find_map(|(at, m)| {
        let rest = &message[at + m.len()..];
        let model: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && !",;:'\"()".contains(*c))
            .collect();
        let after = rest[model.len()..].to_ascii_lowercase();
        let model = model.trim_end_matches('.');
        (!model.is_empty() && after.starts_with(" is not found")).then(|| redact(model))
    })
}

fn not_found(status: u16, e: &UpstreamError) -> Classification {
    let detail = upstream_detail(status, e);
    let model = e.message.as_deref().and_then(missing_model);
    let entity = lower_message(e).contains("requested entity was not found");
    if model.is_some() || entity {
        let what = model.map_or_else(
            || "the requested model".to_string(),
            |m| format!("the model {m}"),
        );
        return classification(
            ErrorType::ApiError,
            "IMG_UNSUPPORTED_MODEL",
            502,
            false,
            format!(
                "The upstream does not serve {what} (upstream said {detail}). Use another \
                 model; the operator should check the gateway's model ids against the \
                 upstream."
            ),
            AccountAction::None,
        );
    }
    classification(
        ErrorType::ApiError,
        "IMG_UPSTREAM_REJECTED",
        502,
        false,
        format!(
            "The upstream does not know the address the gateway called (upstream said \
             {detail}). Retrying will not help; tell the operator (check upstream.base_url)."
        ),
        AccountAction::None,
    )
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

    fn summary(c: &Classification) -> (ErrorType, &str, u16, bool) {
        (c.error_type, c.code.as_str(), c.client_status, c.retryable)
    }

    #[test]
    fn status_table_without_bodies() {
        use ErrorType::{ApiError, UserError};
        for (status, expected) in [
            (429, (ApiError, "IMG_QUOTA_EXHAUSTED", 429, true)),
            (401, (ApiError, "IMG_UPSTREAM_FORBIDDEN", 502, true)),
            (403, (ApiError, "IMG_UPSTREAM_FORBIDDEN", 502, true)),
            (400, (UserError, "IMG_UPSTREAM_REJECTED", 400, false)),
            (422, (UserError, "IMG_UPSTREAM_REJECTED", 400, false)),
            (413, (ApiError, "IMG_UPSTREAM_REJECTED", 502, false)),
            (404, (ApiError, "IMG_UPSTREAM_REJECTED", 502, false)),
            (500, (ApiError, "IMG_UPSTREAM_UNAVAILABLE", 503, true)),
            (502, (ApiError, "IMG_UPSTREAM_UNAVAILABLE", 503, true)),
            (503, (ApiError, "IMG_UPSTREAM_UNAVAILABLE", 503, true)),
            (599, (ApiError, "IMG_UPSTREAM_UNAVAILABLE", 503, true)),
            (302, (ApiError, "IMG_UPSTREAM_ERROR", 502, false)),
            (418, (ApiError, "IMG_UPSTREAM_ERROR", 502, false)),
        ] {
            let c = http(status, "<html>bad gateway</html>");
            assert_eq!(summary(&c), expected, "{status}");
            assert!(!c.message.contains("html"), "{status}: {}", c.message);
            assert!(c
                .message
                .contains(&format!("(upstream said HTTP {status})")));
        }
        assert_eq!(
            http(429, "").account_action,
            AccountAction::CoolDown(DEFAULT_COOL_DOWN_MS)
        );
        for status in [401, 403] {
            assert_eq!(
                http(status, "").account_action,
                AccountAction::CoolDown(FORBIDDEN_COOL_DOWN_MS)
            );
        }
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

    fn quota_body(message: &str, quota_ids: &[&str], retry_delay: Option<&str>) -> String {
        let violations: Vec<_> = quota_ids
            .iter()
            .map(|id| {
                serde_json::json!({
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
                    "quotaId": id,
                    "quotaDimensions": {"location": "global", "model": "gemini-3-pro-image"}
                })
            })
            .collect();
        let mut details = vec![serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": violations
        })];
        if let Some(d) = retry_delay {
            details.push(serde_json::json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": d
            }));
        }
        serde_json::to_string_pretty(&serde_json::json!({"error": {
            "code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": details
        }}))
        .unwrap()
    }

    #[test]
    fn cool_down_is_the_longest_delay_named() {
        let per_minute = ["GenerateRequestsPerMinutePerProjectPerModel"];
        // Whole-second RetryInfo beside the exact message delay: the message's is longer.
        let body = quota_body(
            "You exceeded your current quota.\nPlease retry in 1h52m56.409571576s.",
            &per_minute,
            Some("6776s"),
        );
        assert_eq!(
            http(429, &body).account_action,
            AccountAction::CoolDown(6_776_410)
        );
        // RetryInfo longer than the message.
        let body = quota_body("Please retry in 2s.", &per_minute, Some("30s"));
        assert_eq!(
            http(429, &body).account_action,
            AccountAction::CoolDown(30_000)
        );
        // Only the message names one.
        let body = quota_body("Please retry in 37.363665079s.", &per_minute, None);
        assert_eq!(
            http(429, &body).account_action,
            AccountAction::CoolDown(37_364)
        );
        // A Retry-After header longer than both counts too.
        let c = classify(&Failure::Http(HttpFailure {
            status: 429,
            headers: vec![("Retry-After".into(), "90".into())],
            body: quota_body("Please retry in 2s.", &per_minute, Some("3s")),
        }));
        assert_eq!(c.account_action, AccountAction::CoolDown(90_000));
    }

    #[test]
    fn any_per_day_violation_exhausts_until_reset() {
        for ids in [
            &["GenerateRequestsPerDayPerProjectPerModel"][..],
            &[
                "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            ],
        ] {
            let body = quota_body("Please retry in 1h52m56.409571576s.", ids, Some("6776s"));
            let c = http(429, &body);
            assert_eq!(
                c.account_action,
                AccountAction::ExhaustedUntilReset,
                "{ids:?}"
            );
            assert!(c.message.contains("daily quota is exhausted"));
            assert!(!c.message.contains("retry in 1h"), "{}", c.message);
        }
    }

    #[test]
    fn limit_zero_disables_naming_the_quota_model() {
        let message = "You exceeded your current quota, please check your plan and billing \
            details. For more information on this error, head to: \
            https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, \
            head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: \
            generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, \
            model: gemini-2.5-flash-preview-image\nPlease retry in 37.363665079s.";
        let c = http(
            429,
            &quota_body(
                message,
                &["GenerateRequestsPerDayPerProjectPerModel-FreeTier"],
                None,
            ),
        );
        assert_eq!(
            summary(&c),
            (ErrorType::ApiError, "IMG_QUOTA_EXHAUSTED", 429, true)
        );
        assert_eq!(
            c.account_action,
            AccountAction::DisableForModel(
                "429 RESOURCE_EXHAUSTED: this key's project has no quota for \
                 gemini-2.5-flash-preview-image (free tier limit: 0); enable billing or remove \
                 the account"
                    .into()
            )
        );
        assert!(!c.message.contains("http"), "{}", c.message);
        // A quotaValue of 0 without the message line: the model comes from quotaDimensions.
        let body = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Quota exceeded.",
          "details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[
            {"quotaId":"GenerateRequestsPerMinutePerProjectPerModel","quotaValue":"0",
             "quotaDimensions":{"model":"gemini-3-pro-image"}}]}]}}"#;
        let AccountAction::DisableForModel(reason) = http(429, body).account_action else {
            panic!()
        };
        assert!(
            reason.contains("no quota for gemini-3-pro-image (limit: 0)"),
            "{reason}"
        );
        // "limit: 10" is not "limit: 0".
        let body = quota_body(
            "* Quota exceeded for metric: x, limit: 10, model: m",
            &["GenerateRequestsPerMinutePerProjectPerModel"],
            Some("5s"),
        );
        assert_eq!(
            http(429, &body).account_action,
            AccountAction::CoolDown(5_000)
        );
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
    fn only_key_specific_evidence_disables() {
        let forbidden = |reason: Option<&str>, message: &str| {
            let details = reason.map_or(String::new(), |r| {
                format!(
                    r#","details":[{{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"{r}"}}]"#
                )
            });
            http(
                403,
                &format!(
                    r#"{{"error":{{"code":403,"status":"PERMISSION_DENIED","message":"{message}"{details}}}}}"#
                ),
            )
        };
        for (reason, message) in [
            (
                Some("CONSUMER_SUSPENDED"),
                "Permission denied: Consumer 'api_key:AIzaX' has been suspended.",
            ),
            (
                Some("API_KEY_SERVICE_BLOCKED"),
                "Requests to this API are blocked.",
            ),
            (
                Some("API_KEY_HTTP_REFERRER_BLOCKED"),
                "Requests from referer <empty> are blocked.",
            ),
            (
                Some("SERVICE_DISABLED"),
                "Generative Language API has not been used in project 1.",
            ),
            (
                None,
                "Permission denied: Consumer 'api_key:AIzaX' has been suspended.",
            ),
            (
                None,
                "Your API key was reported as leaked. Please use another API key.",
            ),
            (
                None,
                "Lightning dunning decision is deny for project: projects/188122257775",
            ),
        ] {
            let c = forbidden(reason, message);
            assert_eq!(c.code, "IMG_ACCOUNT_INVALID", "{reason:?} {message}");
            assert!(matches!(c.account_action, AccountAction::Disable(_)));
            assert!(!format!("{c:?}").contains("AIza"));
        }
        for (reason, message) in [
            (None, "The caller does not have permission"),
            (
                Some("IAM_PERMISSION_DENIED"),
                "Permission denied on resource project x.",
            ),
            (
                None,
                "Method doesn't allow unregistered callers (callers without established identity).",
            ),
        ] {
            let c = forbidden(reason, message);
            assert_eq!(c.code, "IMG_UPSTREAM_FORBIDDEN", "{reason:?} {message}");
            assert_eq!(
                c.account_action,
                AccountAction::CoolDown(FORBIDDEN_COOL_DOWN_MS)
            );
        }
    }

    #[test]
    fn bad_requests_by_whose_fault() {
        let bad = |message: &str| {
            http(
                400,
                &serde_json::json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": message}})
                    .to_string(),
            )
        };
        for m in [
            "Invalid JSON payload received. Unknown name \"outputMimeType\" at 'generation_config.image_config': Cannot find field.",
            "Request contains an invalid argument.",
            "Multiple candidates is not enabled for this model",
            "Thinking is not enabled for models/gemini-2.5-flash-image",
            "Provided image is not valid",
            "Unable to process input image. Please retry or report in https://x.example/",
            "Unsupported MIME type: image/gif",
            "Image part is missing a thought_signature in content position 2, part position 1.",
        ] {
            let c = bad(m);
            assert_eq!(
                summary(&c),
                (ErrorType::ApiError, "IMG_UPSTREAM_REJECTED", 502, false),
                "{m}"
            );
            assert_eq!(c.account_action, AccountAction::None);
            assert!(!c.message.contains("https"), "{}", c.message);
        }
        for m in [
            "* GenerateContentRequest.generation_config.image_config.aspect_ratio: aspect_ratio must be one of '1:1', '16:9', or '21:9'.\n",
            "The input token count exceeds the maximum number of tokens allowed.",
        ] {
            assert_eq!(
                summary(&bad(m)),
                (ErrorType::UserError, "IMG_UPSTREAM_REJECTED", 400, false),
                "{m}"
            );
        }
        let c = bad("Request payload size exceeds the limit: 20971520 bytes.");
        assert_eq!(
            summary(&c),
            (ErrorType::ApiError, "IMG_UPSTREAM_REJECTED", 502, false)
        );
        assert!(c.message.contains("too large"));
    }

    #[test]
    fn failed_precondition_is_not_the_clients_fault() {
        let c = http(
            400,
            r#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#,
        );
        assert_eq!(
            summary(&c),
            (ErrorType::ApiError, "IMG_UPSTREAM_REJECTED", 502, false)
        );
        assert_eq!(c.account_action, AccountAction::None);
        assert!(c.message.contains("region"));
        let c = http(
            400,
            r#"{"error":{"code":400,"message":"Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.","status":"FAILED_PRECONDITION"}}"#,
        );
        assert!(
            matches!(c.account_action, AccountAction::Disable(ref r) if r.contains("enable billing"))
        );
        let c = http(
            400,
            r#"{"error":{"code":400,"message":"Something else.","status":"FAILED_PRECONDITION"}}"#,
        );
        assert_eq!(
            summary(&c),
            (ErrorType::ApiError, "IMG_UPSTREAM_REJECTED", 502, true)
        );
    }

    #[test]
    fn not_found_names_the_model() {
        for (body, model) in [
            (
                r#"{"error":{"code":404,"status":"NOT_FOUND","message":"models/gemini-3.1-flash-image-preview is not found for API version v1beta, or is not supported for generateContent."}}"#,
                "the model gemini-3.1-flash-image-preview",
            ),
            (
                r#"{"error":{"code":404,"status":"NOT_FOUND","message":"Requested entity was not found."}}"#,
                "the requested model",
            ),
        ] {
            let c = http(404, body);
            assert_eq!(
                summary(&c),
                (ErrorType::ApiError, "IMG_UNSUPPORTED_MODEL", 502, false)
            );
            assert!(c.message.contains(model), "{}", c.message);
        }
        assert_eq!(
            missing_model("models/gemini-x is not found for API version v1beta"),
            Some("gemini-x".into())
        );
        assert_eq!(missing_model("models/x is fine"), None);
        // A wrong address (the emulator answers it in JSON) is not a missing model.
        let c = http(
            404,
            r#"{"error":{"code":404,"status":"NOT_FOUND","message":"The requested URL /v1/v1beta/models/gemini-3-pro-image:generateContent was not found on this server."}}"#,
        );
        assert_eq!(
            summary(&c),
            (ErrorType::ApiError, "IMG_UPSTREAM_REJECTED", 502, false)
        );
        assert!(c.message.contains("upstream.base_url"));
    }
}
