//! The `generateContent` and `streamGenerateContent` endpoints: the checks in the order the real API applies
//! them (injected fault, key, model, body), then the call's shape (instance-wide, overridden by `emu:`
//! directives in the prompt): delay, named error, quota, block / finish / refusal, safety verdict, and the
//! image answer.

use std::sync::Arc;

use serde_json::Value;

use crate::catalog::ErrorContext;
use crate::directives;
use crate::errors::ApiError;
use crate::images::{self, ImageSpec};
use crate::models;
use crate::reply::Reply;
use crate::request;
use crate::response::{Answer, Plan};
use crate::safety::Verdict;
use crate::shape::SignatureSize;
use crate::signatures::{self, Carrier};
use crate::state::{Injected, KeyCheck, Shared};
use crate::stream::{self, Framing};

/// One call: which endpoint, for which model, with which key and body.
pub(crate) struct Call<'a> {
    pub model_id: &'a str,
    pub key: Option<&'a str>,
    pub body: &'a [u8],
    /// `None` for `generateContent`, the framing for `streamGenerateContent`.
    pub stream: Option<Framing>,
}

/// Answers `POST /v1beta/models/{model_id}:generateContent` (or `:streamGenerateContent`).
pub(crate) async fn generate_content(shared: &Arc<Shared>, call: Call<'_>) -> Reply {
    let arrival = shared.arrive(call.key);
    if !arrival.latency.is_zero() {
        tokio::time::sleep(arrival.latency).await;
    }
    let sequence = arrival.sequence;
    let reply = match answer(shared, &call, arrival.injected, arrival.shape, sequence).await {
        Ok(reply) => reply,
        Err(e) => e.into(),
    };
    tracing::debug!(
        model = call.model_id,
        status = reply.status,
        call = sequence,
        stream = call.stream.is_some(),
        "generateContent"
    );
    reply
}

async fn answer(
    shared: &Arc<Shared>,
    call: &Call<'_>,
    injected: Option<Injected>,
    instance_shape: crate::shape::Shape,
    sequence: u64,
) -> Result<Reply, ApiError> {
    let ctx = ErrorContext {
        model_id: call.model_id,
        key: call.key,
    };
    match injected {
        Some(Injected::Status(status)) => {
            tracing::info!(status, "answering with an injected failure");
            return Err(ApiError::for_status(status, call.model_id));
        }
        Some(Injected::Named(named)) => {
            tracing::info!(error = named.as_str(), "answering with an injected failure");
            return Ok(named.reply(ctx));
        }
        None => {}
    }
    let key = call.key.ok_or_else(ApiError::unregistered_caller)?;
    let quota = match shared.check_key(key) {
        KeyCheck::Valid(quota) => quota,
        KeyCheck::Invalid => return Err(ApiError::api_key_invalid()),
    };
    let model =
        models::find(call.model_id).ok_or_else(|| ApiError::model_not_found(call.model_id))?;
    let request = request::parse(&model, call.body)?;
    let directives = directives::parse(&request.prompt)
        .map_err(|e| ApiError::invalid_argument(e.to_string()))?;
    let shape = instance_shape.overlaid(&directives);
    if let Some(delay) = shape.delay.filter(|d| !d.is_zero()) {
        tokio::time::sleep(delay).await;
    }
    if let Some(named) = shape.error {
        return Ok(named.reply(ctx));
    }
    shared
        .admit(key, quota)
        .map_err(|e| ApiError::quota_exhausted(model.quota_model, e.per, e.limit, e.retry))?;

    let answer = Answer {
        model_id: call.model_id,
        model,
        request: &request,
        hash: images::prompt_hash(&request.prompt),
        sequence,
        shape: &shape,
    };
    let body = if let Some(reason) = shape.block {
        answer.blocked(reason)
    } else if let Some(reason) = shape.finish {
        answer.finished(reason, shape.content)
    } else if shape.refuse.is_some() {
        finish_plan(shared, answer.refusal_plan()).await?
    } else {
        match shared.triggers.judge(&request.prompt, &request.thresholds) {
            Verdict::PromptBlocked => answer.blocked(crate::shape::BlockReason::ProhibitedContent),
            Verdict::HarmBlocked(ratings) => answer.harm_blocked(&ratings),
            Verdict::ImageFiltered => answer.image_filtered(),
            Verdict::Allowed(ratings) => {
                let size = model
                    .family
                    .pixel_size(request.aspect_ratio, request.image_size)
                    .ok_or_else(|| ApiError::for_status(500, call.model_id))?;
                let mut body = finish_plan(shared, answer.plan(size)).await?;
                Answer::with_ratings(&mut body, &ratings);
                body
            }
        }
    };
    Ok(match call.stream {
        None => Reply::ok(&body),
        Some(framing) => {
            let closing = model.thinking().then(|| {
                signatures::signature(
                    &shared.signatures,
                    &answer.hash,
                    usize::MAX,
                    Carrier::Text,
                    SignatureSize::Short,
                )
            });
            stream::reply(
                &stream::events(&body, closing.as_deref().map(String::as_str)),
                framing,
            )
        }
    })
}

/// Renders the plan's images (cached) and builds its signatures off the async runtime.
async fn finish_plan(shared: &Arc<Shared>, plan: Plan) -> Result<Value, ApiError> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let rendered: Vec<Arc<String>> = plan
            .image_specs()
            .iter()
            .map(|spec| rendered(&shared, spec))
            .collect();
        plan.into_response(&rendered, &shared.signatures)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "answer rendering task failed");
        ApiError::for_status(500, "")
    })
}

fn rendered(shared: &Shared, spec: &ImageSpec) -> Arc<String> {
    if let Some(hit) = shared.images.get(spec) {
        return hit;
    }
    let image = Arc::new(images::render(spec));
    shared.images.put(*spec, image.clone());
    image
}
