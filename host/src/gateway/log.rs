//! Phase 9, log: one logfmt line per request with the fields operators grep
//! (`generation_time_ms=`, `error_type=`, `prompt_hash=`, ...). Successful lines
//! carry no `error_type`, so `grep error_type` finds exactly the failures.

use super::ctx::Ctx;
use crate::errors::{error_type_name, GatewayError};

/// Write the request line.
pub fn run(ctx: &Ctx, status: u16, error: Option<&GatewayError>) {
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let account_email = if ctx.accounts.is_empty() {
        "-".to_string()
    } else {
        ctx.accounts.join(",")
    };
    let generation_time_ms = ctx.started.elapsed().as_millis() as u64;
    let cache = ctx.cache.map(|c| c.as_str()).unwrap_or("-");
    let n = ctx.n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    let threshold = ctx.safety_threshold.unwrap_or("-");
    match error {
        None => tracing::info!(
            target: "aperture::request",
            request_id = %ctx.request_id,
            model = %dash(&ctx.model),
            prompt_hash = %dash(&ctx.prompt_hash),
            account_email = %account_email,
            generation_time_ms,
            cache,
            status,
            n = %n,
            aspect_ratio = %dash(&ctx.aspect_ratio),
            image_size = %dash(&ctx.image_size),
            safety_threshold = threshold,
            upstream_calls = ctx.upstream_calls,
            coalesced = ctx.coalesced,
            "image request completed"
        ),
        Some(e) => tracing::warn!(
            target: "aperture::request",
            request_id = %ctx.request_id,
            model = %dash(&ctx.model),
            prompt_hash = %dash(&ctx.prompt_hash),
            account_email = %account_email,
            generation_time_ms,
            cache,
            status,
            n = %n,
            aspect_ratio = %dash(&ctx.aspect_ratio),
            image_size = %dash(&ctx.image_size),
            safety_threshold = threshold,
            upstream_calls = ctx.upstream_calls,
            coalesced = ctx.coalesced,
            error_type = error_type_name(e.error_type()),
            error_code = %e.code(),
            error_message = %e,
            "image request failed"
        ),
    }
}
