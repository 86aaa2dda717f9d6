//! The `generateContent` endpoint: the checks in the order the real API applies them (injected fault, key,
//! model, body, quota), then the safety verdict and the image answer.

use std::sync::Arc;

use crate::errors::ApiError;
use crate::images::{self, pixel_size, Rendered};
use crate::models;
use crate::request;
use crate::response::Answer;
use crate::safety::Verdict;
use crate::state::{KeyCheck, Shared};

/// An HTTP answer with a JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(body: Vec<u8>) -> Self {
        Reply { status: 200, body }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Reply {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Reply::json(e.status, &e.body)
    }
}

/// Answers `POST /v1beta/models/{model_id}:generateContent`.
pub(crate) async fn generate_content(
    shared: &Arc<Shared>,
    model_id: &str,
    key: Option<&str>,
    body: &[u8],
) -> Reply {
    let arrival = shared.arrive(key);
    if !arrival.latency.is_zero() {
        tokio::time::sleep(arrival.latency).await;
    }
    let reply = match answer(
        shared,
        model_id,
        key,
        body,
        arrival.injected,
        arrival.sequence,
    )
    .await
    {
        Ok(reply) => reply,
        Err(e) => e.into(),
    };
    tracing::debug!(
        model = model_id,
        status = reply.status,
        call = arrival.sequence,
        "generateContent"
    );
    reply
}

async fn answer(
    shared: &Arc<Shared>,
    model_id: &str,
    key: Option<&str>,
    body: &[u8],
    injected: Option<u16>,
    sequence: u64,
) -> Result<Reply, ApiError> {
    if let Some(status) = injected {
        tracing::info!(status, "answering with an injected failure");
        return Err(ApiError::for_status(status, model_id));
    }
    let key = key.ok_or_else(ApiError::unregistered_caller)?;
    let quota = match shared.check_key(key) {
        KeyCheck::Valid(quota) => quota,
        KeyCheck::Invalid => return Err(ApiError::api_key_invalid()),
    };
    let model = models::find(model_id).ok_or_else(|| ApiError::model_not_found(model_id))?;
    let request = request::parse(model_id, body)?;
    shared
        .admit(key, quota)
        .map_err(|e| ApiError::quota_exhausted(model.quota_model, e.per, e.limit, e.retry))?;

    let prompt_hash = images::prompt_hash(&request.prompt);
    let answer = Answer {
        model_version: model_id,
        model,
        request: &request,
        prompt_hash: &prompt_hash,
        sequence,
    };
    let body = match shared.triggers.judge(&request.prompt, &request.thresholds) {
        Verdict::PromptBlocked => answer.prompt_blocked(),
        Verdict::HarmBlocked(ratings) => answer.harm_blocked(&ratings),
        Verdict::ImageFiltered => answer.image_filtered(),
        Verdict::Allowed(ratings) => {
            let rendered = if request.image_out {
                Some(
                    render(
                        shared,
                        prompt_hash,
                        request.aspect_ratio,
                        request.image_size,
                    )
                    .await?,
                )
            } else {
                None
            };
            answer.success(rendered.as_deref(), &ratings)
        }
    };
    Ok(Reply::ok(body))
}

/// The images for a prompt, from the cache or rendered off the async runtime.
async fn render(
    shared: &Arc<Shared>,
    hash: [u8; 32],
    ratio: &'static str,
    size: &'static str,
) -> Result<Arc<Rendered>, ApiError> {
    let key = (hash, ratio, size);
    if let Some(rendered) = shared.images.get(&key) {
        return Ok(rendered);
    }
    let internal = || ApiError::for_status(500, "");
    let (width, height) = pixel_size(ratio, size).ok_or_else(internal)?;
    let rendered = tokio::task::spawn_blocking(move || images::render(&hash, width, height))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "image rendering task failed");
            internal()
        })?;
    let rendered = Arc::new(rendered);
    shared.images.put(key, rendered.clone());
    Ok(rendered)
}
