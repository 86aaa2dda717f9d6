//! Phase 8, respond: the translator renders the OpenAI response with blob
//! tokens, the host splices the image data in. (Errors are rendered in
//! `errors.rs`, the one place for them.)

use std::sync::Arc;

use http::{HeaderValue, Response};

use super::body::Chunks;
use super::ctx::{CacheStatus, Ctx};
use crate::app::App;
use crate::errors::GatewayError;
use crate::generated::Generated;
use crate::policy::{Generation, Image, PolicySnapshot, ResponseFormat, Usage};

/// The OpenAI response for `generated`, created now.
pub async fn run(
    app: &Arc<App>,
    ctx: &Ctx,
    generated: Arc<Generated>,
    format: ResponseFormat,
) -> Result<Response<Chunks>, GatewayError> {
    let created = crate::app::now_ms() / 1000;
    let body = render(app, ctx.policy.clone(), generated, format, created).await?;
    Ok(response(ctx, body))
}

/// The OpenAI response body for `generated` (`created`: unix seconds), rendered by
/// the translator version the request pinned (`pin`).
pub async fn render(
    app: &Arc<App>,
    pin: Option<PolicySnapshot>,
    generated: Arc<Generated>,
    format: ResponseFormat,
    created: u64,
) -> Result<Chunks, GatewayError> {
    let app2 = app.clone();
    let body = app
        .run_policy(move || {
            let generation = Generation {
                images: generated
                    .images
                    .iter()
                    .enumerate()
                    .map(|(i, img)| Image {
                        blob: i as u32,
                        mime_type: img.mime_type.clone(),
                    })
                    .collect(),
                revised_prompt: generated.revised_prompt.clone(),
                usage: Usage {
                    prompt_tokens: generated.usage.prompt,
                    output_tokens: generated.usage.output,
                    thought_tokens: generated.usage.thought,
                    total_tokens: generated.usage.total,
                },
            };
            let pin = pin.unwrap_or_else(|| app2.policies.pin("-"));
            let json = app2
                .policies
                .build_response(&pin, &generation, format, created)?;
            let data: Vec<_> = generated.images.iter().map(|i| i.b64.clone()).collect();
            super::splice::splice(&json, &data).map_err(|e| {
                tracing::error!(error = %e, "the translator's response could not be completed");
                GatewayError::Policy(format!("the translator's response: {e}"))
            })
        })
        .await??;
    Ok(body)
}

/// The HTTP response carrying `body`, with the cache status and request id headers.
pub fn response(ctx: &Ctx, body: Chunks) -> Response<Chunks> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-aperture-cache",
        HeaderValue::from_static(ctx.cache.unwrap_or(CacheStatus::Bypass).as_str()),
    );
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        headers.insert("x-request-id", v);
    }
    response
}
