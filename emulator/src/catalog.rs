//! Named real error answers (`emu:error=429-limit0`, `fail-next {"errors": [...]}`): each one the status,
//! `status` string, message and `details` production sends, or the HTML page a Google front end sends.

use serde_json::json;

use crate::errors::{ApiError, Violation, FREE_TIER_METRIC};
use crate::reply::Reply;

/// A named error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamedError {
    UnknownFields,
    Aspect,
    ImageSize,
    MultipleCandidates,
    Thinking,
    InvalidImage,
    Mime,
    Payload,
    Location,
    Suspended,
    ServiceBlocked,
    Permission,
    Billing,
    Model,
    Multi429,
    Limit0,
    PaidDaily,
    Bare429,
    HelpOnly429,
    Internal,
    Overloaded,
    Deadline503,
    Deadline504,
    Html413,
    Html502,
}

const NAMES: &[(NamedError, &str)] = &[
    (NamedError::UnknownFields, "400-unknown-fields"),
    (NamedError::Aspect, "400-aspect"),
    (NamedError::ImageSize, "400-image-size"),
    (NamedError::MultipleCandidates, "400-multiple-candidates"),
    (NamedError::Thinking, "400-thinking"),
    (NamedError::InvalidImage, "400-invalid-image"),
    (NamedError::Mime, "400-mime"),
    (NamedError::Payload, "400-payload"),
    (NamedError::Location, "400-location"),
    (NamedError::Suspended, "403-suspended"),
    (NamedError::ServiceBlocked, "403-service-blocked"),
    (NamedError::Permission, "403-permission"),
    (NamedError::Billing, "403-billing"),
    (NamedError::Model, "404-model"),
    (NamedError::Multi429, "429-multi"),
    (NamedError::Limit0, "429-limit0"),
    (NamedError::PaidDaily, "429-paid-daily"),
    (NamedError::Bare429, "429-bare"),
    (NamedError::HelpOnly429, "429-help-only"),
    (NamedError::Internal, "500-internal"),
    (NamedError::Overloaded, "503-overloaded"),
    (NamedError::Deadline503, "503-deadline"),
    (NamedError::Deadline504, "504"),
    (NamedError::Html413, "413-html"),
    (NamedError::Html502, "502-html"),
];

/// Who the error is for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorContext<'a> {
    /// The model id in the request path.
    pub model_id: &'a str,
    /// The API key presented, if any.
    pub key: Option<&'a str>,
}

const TOKENS_METRIC: &str =
    "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count";
const PAID_DAILY_METRIC: &str =
    "generativelanguage.googleapis.com/generate_requests_per_model_per_day";
const INTERNAL_MESSAGE: &str = "An internal error has occurred. Please retry or report in \
                                https://developers.generativeai.google/guide/troubleshooting";

const HTML_413: &str = "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <meta name=viewport \
    content=\"initial-scale=1, minimum-scale=1, width=device-width\">\n  <title>Error 413 (Request Entity Too \
    Large)!!1</title>\n  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>\n  \
    <p><b>413.</b> <ins>That’s an error.</ins>\n  <p>Your client issued a request that was too large.\n  \
    <ins>That’s all we know.</ins>\n";

const HTML_502: &str = "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <meta name=viewport \
    content=\"initial-scale=1, minimum-scale=1, width=device-width\">\n  <title>Error 502 (Server \
    Error)!!1</title>\n  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>\n  \
    <p><b>502.</b> <ins>That’s an error.</ins>\n  <p>The server encountered a temporary error and could not \
    complete your request.<p>Please try again in 30 seconds.  <ins>That’s all we know.</ins>\n";

impl NamedError {
    /// Every named error, in documentation order.
    pub fn all() -> impl Iterator<Item = NamedError> {
        NAMES.iter().map(|(e, _)| *e)
    }

    /// The name (`429-limit0`).
    pub fn as_str(self) -> &'static str {
        NAMES
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("", |(_, n)| n)
    }

    /// Parses a name (any case).
    pub fn parse(s: &str) -> Option<NamedError> {
        NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s.trim()))
            .map(|(e, _)| *e)
    }

    /// The HTTP status it answers with.
    pub fn status(self) -> u16 {
        self.as_str()
            .get(..3)
            .and_then(|s| s.parse().ok())
            .unwrap_or(500)
    }

    /// The answer.
    pub(crate) fn reply(self, ctx: ErrorContext<'_>) -> Reply {
        match self {
            NamedError::Html413 => Reply::html(413, HTML_413),
            NamedError::Html502 => Reply::html(502, HTML_502),
            other => other.api_error(ctx).into(),
        }
    }

    /// The JSON error body (HTML errors get a plain 5xx/4xx shape here; `reply` sends their pages).
    pub(crate) fn api_error(self, ctx: ErrorContext<'_>) -> ApiError {
        let model = crate::models::quota_name(ctx.model_id);
        let model_id = ctx.model_id;
        match self {
            NamedError::UnknownFields => ApiError::unknown_fields(&[
                (
                    "generation_config.image_config".to_string(),
                    "outputMimeType".to_string(),
                ),
                (String::new(), "n".to_string()),
            ]),
            NamedError::Aspect => ApiError::aspect_ratio(model_id),
            NamedError::ImageSize => {
                ApiError::invalid_argument("Request contains an invalid argument.")
            }
            NamedError::MultipleCandidates => {
                ApiError::invalid_argument("Multiple candidates is not enabled for this model")
            }
            NamedError::Thinking => ApiError::invalid_argument(format!(
                "Thinking is not enabled for models/{model_id}"
            )),
            NamedError::InvalidImage => ApiError::invalid_argument("Provided image is not valid"),
            NamedError::Mime => {
                ApiError::invalid_argument("Unsupported MIME type: application/octet-stream")
            }
            NamedError::Payload => ApiError::invalid_argument(
                "Request payload size exceeds the limit: 20971520 bytes.",
            ),
            NamedError::Location => ApiError::new(
                400,
                "FAILED_PRECONDITION",
                "User location is not supported for the API use.",
            ),
            NamedError::Suspended => {
                let consumer = format!("api_key:{}", ctx.key.unwrap_or(""));
                let message = format!("Permission denied: Consumer '{consumer}' has been suspended.");
                ApiError::with_details(
                    403,
                    "PERMISSION_DENIED",
                    message.clone(),
                    json!([
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "CONSUMER_SUSPENDED",
                            "domain": "googleapis.com",
                            "metadata": {"consumer": format!("projects/{}", project_number(ctx.key)),
                                         "service": "generativelanguage.googleapis.com"}
                        },
                        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                         "message": message}
                    ]),
                )
            }
            NamedError::ServiceBlocked => {
                let method = "google.ai.generativelanguage.v1beta.GenerativeService.GenerateContent";
                let message = format!(
                    "Requests to this API generativelanguage.googleapis.com method {method} are blocked."
                );
                ApiError::with_details(
                    403,
                    "PERMISSION_DENIED",
                    message.clone(),
                    json!([
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_SERVICE_BLOCKED",
                            "domain": "googleapis.com",
                            "metadata": {"consumer": format!("projects/{}", project_number(ctx.key)),
                                         "service": "generativelanguage.googleapis.com",
                                         "methodName": method}
                        },
                        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                         "message": message}
                    ]),
                )
            }
            NamedError::Permission => ApiError::new(
                403,
                "PERMISSION_DENIED",
                "The caller does not have permission",
            ),
            NamedError::Billing => ApiError::new(
                403,
                "PERMISSION_DENIED",
                "Lightning dunning decision is deny for this project. Check the billing account linked to \
                 the project.",
            ),
            NamedError::Model => ApiError::model_not_found(model_id),
            NamedError::Multi429 => ApiError::quota(
                &[
                    Violation {
                        metric: TOKENS_METRIC,
                        quota_id: "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                        model,
                        limit: 250_000,
                    },
                    Violation {
                        metric: FREE_TIER_METRIC,
                        quota_id: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        model,
                        limit: 10,
                    },
                    Violation {
                        metric: FREE_TIER_METRIC,
                        quota_id: "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                        model,
                        limit: 250,
                    },
                ],
                "37.363665079s",
                Some(37),
            ),
            NamedError::Limit0 => ApiError::quota(
                &[
                    Violation {
                        metric: FREE_TIER_METRIC,
                        quota_id: "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                        model,
                        limit: 0,
                    },
                    Violation {
                        metric: FREE_TIER_METRIC,
                        quota_id: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        model,
                        limit: 0,
                    },
                    Violation {
                        metric: TOKENS_METRIC,
                        quota_id: "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                        model,
                        limit: 0,
                    },
                ],
                "37.363665079s",
                Some(37),
            ),
            NamedError::PaidDaily => ApiError::quota(
                &[Violation {
                    metric: PAID_DAILY_METRIC,
                    quota_id: "GenerateRequestsPerDayPerProjectPerModel",
                    model,
                    limit: 250,
                }],
                "1h52m56.409571576s",
                Some(6776),
            ),
            NamedError::Bare429 => ApiError::new(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
            ),
            NamedError::HelpOnly429 => ApiError::with_details(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details. For more \
                 information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
                json!([ApiError::help_detail()]),
            ),
            NamedError::Internal => ApiError::new(500, "INTERNAL", INTERNAL_MESSAGE),
            NamedError::Overloaded => ApiError::new(
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
            ),
            NamedError::Deadline503 => ApiError::new(
                503,
                "UNAVAILABLE",
                "Deadline expired before operation could complete.",
            ),
            NamedError::Deadline504 => ApiError::new(
                504,
                "DEADLINE_EXCEEDED",
                "Deadline expired before operation could complete.",
            ),
            NamedError::Html413 => ApiError::new(413, "", "Request Entity Too Large"),
            NamedError::Html502 => ApiError::new(502, "", "Server Error"),
        }
    }
}

/// A stable fake project number for a key, as ErrorInfo metadata carries one.
fn project_number(key: Option<&str>) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.unwrap_or("").as_bytes());
    let mut n = [0u8; 8];
    n.copy_from_slice(&digest[..8]);
    100_000_000_000 + u64::from_be_bytes(n) % 900_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_has_its_status() {
        for e in NamedError::all() {
            assert_eq!(NamedError::parse(e.as_str()), Some(e));
            let ctx = ErrorContext {
                model_id: "gemini-2.5-flash-image",
                key: Some("AIzaTest"),
            };
            let reply = e.reply(ctx);
            assert_eq!(reply.status, e.status(), "{}", e.as_str());
        }
        assert_eq!(NamedError::Deadline504.status(), 504);
        assert!(NamedError::parse("418-teapot").is_none());
    }

    #[test]
    fn limit0_names_the_quota_family() {
        let e = NamedError::Limit0.api_error(ErrorContext {
            model_id: "gemini-2.5-flash-image",
            key: None,
        });
        let message = e.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("limit: 0, model: gemini-2.5-flash-preview-image"));
        assert!(e.body["error"]["details"][0]["violations"][0]
            .get("quotaValue")
            .is_none());
    }
}
