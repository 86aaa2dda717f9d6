//! Phase 5, dispatch: `n` parallel upstream calls (Gemini image models reject
//! `candidateCount` > 1), each on an account from the pool, retried on another
//! account when the classifier says the failure is retryable.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use aperture_store::Checkout;
use tokio::task::JoinSet;

use super::interpret::{self, CallResult};
use super::partial::Partial;
use crate::app::{now_ms, App};
use crate::errors::GatewayError;
use crate::generated::Generated;
use crate::policy::{AccountAction, ImageRequest, OutputFormat, SafetySetting};
use crate::redact::Redactor;

/// What every call for one request's images shares.
struct ImageCall {
    /// The policy versions of the request that leads this dispatch.
    pin: crate::policy::PolicySnapshot,
    /// The `generateContent` body (the same for each image).
    body: Arc<str>,
    /// The upstream model id, checked.
    model: String,
    /// The format the client asked for.
    output_format: Option<OutputFormat>,
    /// Redacts account secrets and the prompt from upstream text.
    redactor: Redactor,
    /// Accounts this request disabled (see [`interpret::guard_disable`]).
    disabled: AtomicU32,
}

/// The most images one request may ask for, whatever the translator says.
pub const MAX_N: u8 = 10;

/// The host does not trust the translator's output with its own resources: `n`
/// is capped and the upstream model id must be a plain Gemini model name before
/// it goes into the upstream URL.
fn check_request(request: &ImageRequest) -> Result<(), GatewayError> {
    if request.n == 0 || request.n > MAX_N {
        return Err(GatewayError::Policy(format!(
            "the translator asked for {} images; the gateway allows 1 to {MAX_N}",
            request.n
        )));
    }
    let model = &request.upstream_model;
    let plain = !model.is_empty()
        && model.len() <= 100
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && !model.starts_with('.');
    if !plain {
        return Err(GatewayError::Policy(format!(
            "the translator named the upstream model {model:?}, which is not a plain Gemini model id"
        )));
    }
    Ok(())
}

/// What one image's calls amounted to, with who made them.
struct ImageAttempts {
    result: Result<CallResult, GatewayError>,
    accounts: Vec<String>,
    calls: u32,
}

/// Accounting for the log.
#[derive(Debug, Default)]
pub struct DispatchReport {
    /// Accounts (email or label) that made calls.
    pub accounts: Vec<String>,
    /// Upstream calls made.
    pub calls: u32,
}

/// Generate all `n` images of `request`.
pub async fn run(
    app: &Arc<App>,
    pin: &crate::policy::PolicySnapshot,
    request: &ImageRequest,
    settings: Vec<SafetySetting>,
    partial: &mut Partial,
    report: &mut DispatchReport,
) -> Result<Generated, GatewayError> {
    check_request(request)?;
    let (app2, req, pin2) = (app.clone(), request.clone(), pin.clone());
    let body: Arc<str> = app
        .run_policy(move || app2.policies.build_upstream_body(&pin2, &req, &settings))
        .await??
        .into();
    let call = Arc::new(ImageCall {
        pin: pin.clone(),
        body,
        model: request.upstream_model.clone(),
        output_format: request.output_format,
        redactor: Redactor::new(app.accounts.secrets(), &request.prompt),
        disabled: AtomicU32::new(0),
    });
    let mut tasks = JoinSet::new();
    let mut slots: Vec<Option<ImageAttempts>> = (0..request.n).map(|_| None).collect();
    for index in 0..request.n {
        // An image an earlier, partly failed attempt already paid for is not generated again.
        if let Some(call) = partial.take(index) {
            slots[index as usize] = Some(ImageAttempts {
                result: Ok(call),
                accounts: Vec::new(),
                calls: 0,
            });
            continue;
        }
        let (app, call) = (app.clone(), call.clone());
        tasks.spawn(async move { (index, one_image(app, call).await) });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, attempts)) => {
                if let Ok(call) = &attempts.result {
                    partial.keep(index, call);
                }
                // A safety block fails the whole request: stop spending quota on the rest.
                if matches!(attempts.result, Err(GatewayError::SafetyBlocked { .. })) {
                    tasks.abort_all();
                }
                slots[index as usize] = Some(attempts);
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => return Err(GatewayError::Internal(format!("image task failed: {e}"))),
        }
    }
    let mut generated = Generated::default();
    let mut first_error: Option<GatewayError> = None;
    for attempts in slots.into_iter().flatten() {
        report.calls += attempts.calls;
        for a in attempts.accounts {
            if !report.accounts.contains(&a) {
                report.accounts.push(a);
            }
        }
        match attempts.result {
            Ok(mut call) => {
                // Each call was asked for ONE image; a model that sends several
                // finals (2.5 Flash may) still gives the client `n`, not more.
                if call.images.len() > 1 {
                    tracing::debug!(
                        extra = call.images.len() - 1,
                        "upstream sent several final images for one; keeping the first"
                    );
                    call.images.truncate(1);
                }
                generated.images.extend(call.images);
                if generated.revised_prompt.is_none() {
                    generated.revised_prompt = call.revised_prompt;
                }
                generated.usage.add(call.usage);
            }
            // A safety block explains more than any other failure: it wins.
            Err(e) => match &first_error {
                Some(GatewayError::SafetyBlocked { .. }) => {}
                Some(_) if !matches!(e, GatewayError::SafetyBlocked { .. }) => {}
                _ => first_error = Some(e),
            },
        }
    }
    match first_error {
        Some(e) => {
            partial.settle(app).await;
            Err(e)
        }
        None => Ok(generated),
    }
}

/// Calls for one image. An account whose failure was its own (quota, bad key) is
/// not tried again for this image; an upstream hiccup (5xx, network) may be retried
/// on any account, the pool's rotation permitting.
async fn one_image(app: Arc<App>, call: Arc<ImageCall>) -> ImageAttempts {
    // Accounts whose key cannot use this model at all are never tried for it.
    let mut excluded: Vec<u64> = app.accounts.disabled_for_model(&call.model);
    let mut accounts = Vec::new();
    let mut last: Option<GatewayError> = None;
    let max_attempts = app.config.upstream.max_attempts;
    for attempt in 0..max_attempts {
        let lease = match app.accounts.checkout(now_ms(), &excluded) {
            Checkout::Lease(lease) => lease,
            Checkout::Unavailable { .. } | Checkout::NoAccounts
                if model_unusable(&app, &call.model) =>
            {
                return ImageAttempts {
                    result: Err(GatewayError::NoAccountForModel {
                        model: call.model.clone(),
                    }),
                    accounts,
                    calls: attempt,
                };
            }
            Checkout::Unavailable { retry_after_ms } => {
                let result = Err(exhausted_or(last, retry_after_ms));
                return ImageAttempts {
                    result,
                    accounts,
                    calls: attempt,
                };
            }
            Checkout::NoAccounts => {
                let result = Err(last.unwrap_or(GatewayError::NoAccounts));
                return ImageAttempts {
                    result,
                    accounts,
                    calls: attempt,
                };
            }
        };
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
        let who = lease.email.clone().unwrap_or_else(|| lease.label.clone());
        accounts.push(who.clone());
        let Ok(slot) = app.upstream_calls.admit().await else {
            return ImageAttempts {
                result: Err(GatewayError::Overloaded { retry_after: 5 }),
                accounts,
                calls: attempt,
            };
        };
        let call_started = std::time::Instant::now();
        let answer = app
            .gemini
            .generate_content(&call.model, &lease.secret, call.body.to_string())
            .await;
        drop(slot);
        let took = call_started.elapsed();
        let record =
            |outcome, images| crate::metrics::upstream_call(&lease.label, outcome, took, images);
        let failure = match &answer {
            Ok(reply) if reply.status == 200 => {
                let (app2, bytes, format, pin) = (
                    app.clone(),
                    reply.body.clone(),
                    call.output_format,
                    call.pin.clone(),
                );
                let result = app
                    .run_policy(move || interpret::success(&app2, &pin, &bytes, format))
                    .await
                    .and_then(|r| r);
                match &result {
                    Ok(call) => record("success", call.images.len() as u64),
                    Err(GatewayError::SafetyBlocked { .. }) => record("safety_block", 0),
                    Err(GatewayError::NoImage { .. }) => record("no_image", 0),
                    Err(_) => record("unusable", 0),
                }
                match result {
                    Ok(call) => {
                        app.accounts.record_success(lease.id, now_ms());
                        return ImageAttempts {
                            result: Ok(call),
                            accounts,
                            calls: attempt + 1,
                        };
                    }
                    // The account worked; the content was refused or unusable.
                    Err(e @ GatewayError::SafetyBlocked { .. })
                    | Err(e @ GatewayError::NoImage { .. })
                    | Err(e @ GatewayError::Policy(_)) => {
                        app.accounts.record_success(lease.id, now_ms());
                        return ImageAttempts {
                            result: Err(e),
                            accounts,
                            calls: attempt + 1,
                        };
                    }
                    Err(e) => {
                        tracing::warn!(account = %who, code = %e.code(), "upstream answer unusable; retrying");
                        last = Some(e);
                        continue;
                    }
                }
            }
            Ok(reply) => {
                record(
                    match reply.status {
                        429 => "rate_limited",
                        500..=599 => "server_error",
                        _ => "client_error",
                    },
                    0,
                );
                interpret::http_failure(reply)
            }
            Err(e) => {
                record("transport_error", 0);
                interpret::transport_failure(e)
            }
        };
        // The transport's own words (never shown to clients) help operators most.
        let transport_detail = answer.as_ref().err().map(|e| e.to_string());
        app.accounts.record_failure(lease.id);
        let (app2, call2) = (app.clone(), call.clone());
        let classified = app
            .run_policy(move || {
                let mut c = app2.policies.classify(&call2.pin, &failure)?;
                // Upstream text may echo a key or the prompt: redact before it goes anywhere.
                c.message = call2.redactor.redact(&c.message);
                match &c.account_action {
                    AccountAction::Disable(reason) => {
                        let reason = call2.redactor.redact(reason);
                        c.account_action =
                            interpret::guard_disable(&app2, &call2.disabled, reason, now_ms());
                    }
                    AccountAction::DisableForModel(reason) => {
                        c.account_action =
                            AccountAction::DisableForModel(call2.redactor.redact(reason));
                    }
                    _ => {}
                }
                let action = interpret::apply_account_action(
                    &app2,
                    lease.id,
                    &call2.model,
                    &c.account_action,
                    now_ms(),
                );
                Ok::<_, GatewayError>((c, action))
            })
            .await
            .and_then(|r| r);
        let (classification, action) = match classified {
            Ok(pair) => pair,
            Err(e) => {
                return ImageAttempts {
                    result: Err(e),
                    accounts,
                    calls: attempt + 1,
                }
            }
        };
        tracing::warn!(
            account_email = %who,
            // Not `error_type=`: `grep error_type` must find request lines only.
            failure_type = %crate::errors::error_type_name(classification.error_type),
            failure_code = %classification.code,
            retryable = classification.retryable,
            account_action = %action,
            transport_error = transport_detail.as_deref(),
            "upstream call failed: {}",
            classification.message
        );
        if !matches!(classification.account_action, AccountAction::None) {
            excluded.push(lease.id);
        }
        last = Some(interpret::error_for(&classification));
        if !classification.retryable {
            break;
        }
    }
    let calls = accounts.len() as u32;
    if model_unusable(&app, &call.model) {
        return ImageAttempts {
            result: Err(GatewayError::NoAccountForModel {
                model: call.model.clone(),
            }),
            accounts,
            calls,
        };
    }
    let result = Err(match last {
        Some(e) if e.code() == "IMG_QUOTA_EXHAUSTED" => exhausted_or(Some(e), retry_after_ms(&app)),
        Some(e) => e,
        None => GatewayError::NoAccounts,
    });
    ImageAttempts {
        result,
        accounts,
        calls,
    }
}

/// Whether every enabled account is one whose key cannot use `model` at all
/// (so waiting helps nothing and the client should hear why).
fn model_unusable(app: &App, model: &str) -> bool {
    let blocked = app.accounts.disabled_for_model(model);
    !blocked.is_empty()
        && app.accounts.list(now_ms()).iter().all(|a| {
            blocked.contains(&a.id)
                || matches!(a.state, aperture_store::AccountState::Disabled { .. })
        })
}

/// When no account is usable: a quota error (or none yet) becomes the 429 with
/// `Retry-After`; any other last failure is the better explanation.
fn exhausted_or(last: Option<GatewayError>, retry_after_ms: u64) -> GatewayError {
    match last {
        Some(e) if e.code() != "IMG_QUOTA_EXHAUSTED" => e,
        _ => GatewayError::QuotaExhausted {
            retry_after: retry_after_ms.div_ceil(1000).max(1),
        },
    }
}

/// Milliseconds until the earliest resting account is usable again (0 if one is usable now).
fn retry_after_ms(app: &App) -> u64 {
    let now = now_ms();
    app.accounts
        .list(now)
        .iter()
        .filter_map(|a| match a.state {
            aperture_store::AccountState::Active => Some(0),
            aperture_store::AccountState::CoolingDown { until_ms }
            | aperture_store::AccountState::Exhausted { until_ms } => {
                Some(until_ms.saturating_sub(now))
            }
            aperture_store::AccountState::Disabled { .. } => None,
        })
        .min()
        .unwrap_or(60_000)
}
