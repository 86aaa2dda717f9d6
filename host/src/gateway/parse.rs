//! Phase 2, parse: the request-translator component turns the OpenAI body into
//! the canonical image request, or a user error naming the field at fault.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::ctx::Ctx;
use crate::app::App;
use crate::errors::GatewayError;
use crate::policy::{hex, ImageRequest, Lookup};

/// Parse `body` into the canonical request, recording what the log needs.
pub async fn run(app: &Arc<App>, ctx: &mut Ctx, body: Bytes) -> Result<ImageRequest, GatewayError> {
    let text = std::str::from_utf8(&body).map_err(|_| GatewayError::InvalidRequest {
        message: "the request body is not UTF-8 text; send a JSON object".into(),
        param: None,
        code: "IMG_INVALID_REQUEST".into(),
    })?;
    let pin = ctx.policy(app);
    // A memo hit (same translator version, same body) costs no call and no thread hop.
    let parsed = match app.policies.parse_lookup(&pin, text) {
        Lookup::Hit(parsed) => parsed,
        Lookup::Miss(key) => {
            let (app2, text) = (app.clone(), text.to_owned());
            app.run_policy(move || app2.policies.parse_request_remember(&pin, &text, key))
                .await??
        }
    };
    let request = parsed.map_err(|e| GatewayError::InvalidRequest {
        message: e.message,
        param: e.param,
        code: e.code,
    })?;
    ctx.model = Some(request.model.clone());
    ctx.prompt_hash = Some(hex(&Sha256::digest(request.prompt.as_bytes()))[..16].to_string());
    ctx.n = Some(request.n);
    ctx.aspect_ratio = Some(request.aspect_ratio.clone());
    ctx.image_size = Some(request.image_size.clone());
    Ok(request)
}
