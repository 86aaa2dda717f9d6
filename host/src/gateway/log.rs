//! Phase 9, log: one logfmt line per request with the fields operators grep
//! (`generation_time_ms=`, `error_type=`, `prompt_hash=`, ...). Successful lines
//! carry no `error_*` fields, so `grep error_type` finds exactly the failures.

use super::ctx::Ctx;
use crate::errors::{error_type_name, GatewayError};

/// One request line at the given level; `None` fields are left out of the line.
macro_rules! request_line {
    ($level:ident, $ctx:expr, $status:expr, $error:expr, $msg:literal) => {{
        let (ctx, error): (&Ctx, Option<&GatewayError>) = ($ctx, $error);
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        let message = error.map(|e| e.to_string());
        let versions = ctx.policy.as_ref().map(|p| p.served());
        let version = |i: usize| versions.map(|v| v[i]).unwrap_or("-");
        tracing::$level!(
            target: "aperture::request",
            request_id = %ctx.request_id,
            client = ctx.client.as_deref(),
            client_ip = %ctx.client_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into()),
            model = %dash(&ctx.model),
            prompt_hash = %dash(&ctx.prompt_hash),
            account_email = %if ctx.accounts.is_empty() { "-".to_string() } else { ctx.accounts.join(",") },
            generation_time_ms = ctx.started.elapsed().as_millis() as u64,
            cache = ctx.cache.map(|c| c.as_str()).unwrap_or("-"),
            status = $status,
            n = %ctx.n.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            aspect_ratio = %dash(&ctx.aspect_ratio),
            image_size = %dash(&ctx.image_size),
            safety_threshold = ctx.safety_threshold.unwrap_or("-"),
            upstream_calls = ctx.upstream_calls,
            coalesced = ctx.coalesced,
            translator = version(0),
            safety = version(1),
            classifier = version(2),
            error_type = error.map(|e| error_type_name(e.error_type())),
            error_code = error.map(|e| e.code()),
            error_message = message.as_deref(),
            $msg
        )
    }};
}

/// Write the request line.
pub fn run(ctx: &Ctx, status: u16, error: Option<&GatewayError>) {
    crate::stats::record(ctx, status, error);
    crate::metrics::request_done(ctx, error);
    match error {
        None => request_line!(info, ctx, status, None, "image request completed"),
        Some(e) => request_line!(warn, ctx, status, Some(e), "image request failed"),
    }
}
