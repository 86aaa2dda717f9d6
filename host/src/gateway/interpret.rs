//! Phase 6, interpret: what an upstream answer means. A 200 body goes (image data
//! swapped for blob tokens) to the translator and its verdict to the safety
//! policy; a failure goes to the error-classifier, and the host carries out the
//! account action it prescribes.

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::America::Los_Angeles;

use crate::app::App;
use crate::errors::GatewayError;
use crate::generated::{GenImage, TokenUsage};
use crate::policy::{
    blobs, AccountAction, Classification, ErrorType, Failure, HttpFailure, OutputFormat,
    ReviewOutcome, TransportFailure, TransportKind, UpstreamOutcome,
};
use crate::upstream::{Reply, TransportError};

/// The images and text one successful upstream call produced.
#[derive(Debug, Clone, Default)]
pub struct CallResult {
    /// Final images (no thought images).
    pub images: Vec<GenImage>,
    /// Text returned with them.
    pub revised_prompt: Option<String>,
    /// Tokens.
    pub usage: TokenUsage,
}

/// What a 200 answer amounts to: images (in `output_format` when the client asked
/// for one), a safety block, a refusal, or an unusable answer.
/// Runs component calls and image conversion: call it from `blocking`.
pub fn success(
    app: &App,
    pin: &crate::policy::PolicySnapshot,
    body: &Bytes,
    output_format: Option<OutputFormat>,
) -> Result<CallResult, GatewayError> {
    let malformed = |detail: String| {
        GatewayError::Upstream {
        error_type: ErrorType::ApiError,
        code: "IMG_UPSTREAM_MALFORMED".into(),
        status: 502,
        message: format!("the upstream answered with something that is not a generateContent response ({detail}); try again"),
        retry_after: None,
    }
    };
    // The image data stays in `body`: the images are slices of it.
    let (value, mut blobs) = blobs::extract_body(body).map_err(|e| malformed(e.to_string()))?;
    let outcome = app
        .policies
        .parse_response(pin, &value.to_string())?
        .map_err(malformed)?;
    match outcome {
        UpstreamOutcome::Images(generation) => {
            let mut images = Vec::with_capacity(generation.images.len());
            for image in generation.images {
                // The (megabytes of) base64 are shared with the body, not copied.
                let b64 = blobs
                    .take_image(image.blob)
                    .map_err(|e| GatewayError::Policy(format!("the translator's answer: {e}")))?;
                let image = GenImage { mime_type: image.mime_type, b64 };
                let image = match output_format {
                    None => image,
                    Some(format) => crate::convert::to_format(image, format).map_err(|e| GatewayError::Upstream {
                        error_type: ErrorType::ApiError,
                        code: "IMG_UPSTREAM_MALFORMED".into(),
                        status: 502,
                        message: format!("{e}; try again, or ask for the format the model sends (omit output_format)"),
                        retry_after: None,
                    })?,
                };
                images.push(image);
            }
            let u = generation.usage;
            Ok(CallResult {
                images,
                revised_prompt: generation.revised_prompt,
                usage: TokenUsage {
                    prompt: u.prompt_tokens,
                    output: u.output_tokens,
                    thought: u.thought_tokens,
                    total: u.total_tokens,
                },
            })
        }
        UpstreamOutcome::NoImage(verdict) => match app.policies.review(pin, &verdict)? {
            ReviewOutcome::Blocked(block) => {
                Err(GatewayError::SafetyBlocked { reason: block.reason, categories: block.categories, local: false, prompt: verdict.block_reason.is_some() })
            }
            ReviewOutcome::NoImage(refusal) => Err(GatewayError::NoImage {
                message: refusal.message,
                code: refusal.code,
                error_type: refusal.error_type,
                status: refusal.status,
            }),
            // The policy saw nothing wrong, yet there is no image: still a refusal.
            ReviewOutcome::Pass => Err(GatewayError::NoImage {
                error_type: ErrorType::ApiError,
                code: "IMG_NO_IMAGE".into(),
                status: 502,
                message: format!(
                    "the model returned no image (finish reason {}); try again or rephrase the prompt",
                    verdict.finish_reason.as_deref().unwrap_or("none")
                ),
            }),
        },
    }
}

/// The classifier's input for a non-2xx answer.
pub fn http_failure(reply: &Reply) -> Failure {
    Failure::Http(HttpFailure {
        status: reply.status,
        headers: reply.headers.clone(),
        body: String::from_utf8_lossy(&reply.body[..reply.body.len().min(64 << 10)]).into_owned(),
    })
}

/// The classifier's input for a call without an answer.
pub fn transport_failure(e: &TransportError) -> Failure {
    let kind = match e {
        TransportError::Connect(_) => TransportKind::Connect,
        TransportError::Timeout(_) => TransportKind::Timeout,
        TransportError::Tls(_) => TransportKind::Tls,
        TransportError::Protocol(_) => TransportKind::Protocol,
    };
    Failure::Transport(TransportFailure {
        kind,
        message: e.to_string(),
    })
}

/// The client-facing error for a classification.
pub fn error_for(c: &Classification) -> GatewayError {
    GatewayError::Upstream {
        error_type: c.error_type,
        code: c.code.clone(),
        status: c.client_status,
        message: c.message.clone(),
        retry_after: None,
    }
}

/// How long an account rests instead of being disabled when disabling it looks
/// like an upstream-side problem rather than the account's own.
pub const SUSPECT_DISABLE_COOL_DOWN_MS: u64 = 5 * 60 * 1000;

/// A disable on the evidence of one request is believed once: a second account
/// that the same request would disable, or the last enabled account, rests for
/// [`SUSPECT_DISABLE_COOL_DOWN_MS`] instead, with an alert in the log. A fault
/// that hits every account at once is the upstream's, not every key's, and one
/// request must never leave the pool with no account at all.
pub fn guard_disable(
    app: &App,
    disabled_by_request: &std::sync::atomic::AtomicU32,
    reason: String,
    now_ms: u64,
) -> AccountAction {
    use std::sync::atomic::Ordering;
    let enabled = app
        .accounts
        .list(now_ms)
        .iter()
        .filter(|a| !matches!(a.state, aperture_store::AccountState::Disabled { .. }))
        .count();
    let earlier = disabled_by_request.fetch_add(1, Ordering::SeqCst);
    if earlier == 0 && enabled > 1 {
        return AccountAction::Disable(reason);
    }
    tracing::warn!(
        alert = "suspect_disable",
        enabled_accounts = enabled,
        disabled_by_this_request = earlier,
        "not disabling a {} account on one request's evidence ({reason}); cooling it down for {} s instead: if every account fails this way the upstream is at fault",
        if enabled <= 1 { "last enabled" } else { "second" },
        SUSPECT_DISABLE_COOL_DOWN_MS / 1000
    );
    AccountAction::CoolDown(SUSPECT_DISABLE_COOL_DOWN_MS)
}

/// Carry out the classifier's account action; returns a log label for it.
/// Writes to the store: call it from `blocking`.
pub fn apply_account_action(
    app: &App,
    account_id: u64,
    model: &str,
    action: &AccountAction,
    now_ms: u64,
) -> String {
    let result = match action {
        AccountAction::None => return "none".into(),
        AccountAction::CoolDown(ms) => app
            .accounts
            .cool_down(account_id, now_ms.saturating_add(*ms))
            .map(|_| format!("cool_down_ms={ms}")),
        AccountAction::ExhaustedUntilReset => {
            let until = next_quota_reset_ms(now_ms);
            app.accounts
                .exhaust(account_id, until)
                .map(|_| format!("exhausted_until_ms={until}"))
        }
        AccountAction::Disable(reason) => app
            .accounts
            .disable(account_id, reason)
            .map(|_| "disabled".to_string()),
        AccountAction::DisableForModel(reason) => app
            .accounts
            .disable_for_model(account_id, model, reason)
            .map(|_| format!("disabled_for_model={model}")),
    };
    let label = result.unwrap_or_else(|e| {
        tracing::error!(account_id, error = %e, "could not record the account's new state");
        "failed".into()
    });
    app.accounts_watch.check(&app.accounts, now_ms);
    label
}

/// The next midnight in America/Los_Angeles (when Gemini daily quotas reset), in unix ms.
pub fn next_quota_reset_ms(now_ms: u64) -> u64 {
    let now: DateTime<Utc> = Utc
        .timestamp_millis_opt(now_ms as i64)
        .single()
        .unwrap_or_else(Utc::now);
    let local = now.with_timezone(&Los_Angeles);
    let tomorrow = local.date_naive().succ_opt().unwrap_or(local.date_naive());
    let midnight = tomorrow
        .and_hms_opt(0, 0, 0)
        .and_then(|t| Los_Angeles.from_local_datetime(&t).earliest());
    match midnight {
        Some(m) => m.with_timezone(&Utc).timestamp_millis().max(0) as u64,
        // Midnight skipped by a DST change (never in LA, but be total): a day from now.
        None => now_ms.saturating_add(86_400_000),
    }
}

#[cfg(test)]
mod tests {
    use super::next_quota_reset_ms;

    #[test]
    fn daily_quota_resets_at_the_next_pacific_midnight() {
        // 2026-11-26T10:00:00Z is 02:00 PST (UTC-8): the reset is 2026-11-27T08:00:00Z.
        let now = 1_795_687_200_000;
        assert_eq!(next_quota_reset_ms(now), 1_795_766_400_000);
        // 2026-07-01T06:30:00Z is 23:30 PDT (UTC-7) on June 30: reset at 2026-07-01T07:00:00Z.
        assert_eq!(next_quota_reset_ms(1_782_887_400_000), 1_782_889_200_000);
    }
}
