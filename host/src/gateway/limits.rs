//! The client key's limits, applied at three points of a request: admission (requests in flight and
//! per minute, right after authenticate), the safety threshold (after parse: a threshold the key may not
//! use is refused, and the default it runs at is settled here), and images per day (after lookup, only
//! when the images will be generated upstream: cache hits and coalesced followers cost no quota).

use std::sync::Arc;

use super::ctx::Ctx;
use crate::app::{now_ms, App};
use crate::config::threshold_name;
use crate::errors::GatewayError;
use crate::limiter::{LimitError, Permit, Reservation};
use crate::live::LiveSettings;
use crate::policy::ImageRequest;

/// Admit one request of `client`; the permit holds its in-flight slot until dropped.
pub fn admit(app: &App, client: &str) -> Result<Permit, GatewayError> {
    Ok(app.limiter.admit(client, now_ms())?)
}

/// Refuse a `safety_threshold` the key may not use (403). A request without one runs at the global
/// default when the key may use it, else at the key's strictest allowed threshold, which is written into
/// the request so every later phase (screen, the cache key, the log) sees the same one.
pub fn threshold(
    app: &App,
    ctx: &Ctx,
    live: &LiveSettings,
    request: &mut ImageRequest,
) -> Result<(), GatewayError> {
    let Some(client) = ctx.client.as_deref() else {
        return Ok(());
    };
    let limits = app.limiter.limits_of(client);
    let global = live.safety_threshold;
    match limits.threshold(request.safety_threshold, global) {
        Ok(t) => {
            if request.safety_threshold.is_none() && t != global {
                request.safety_threshold = Some(t);
            }
            Ok(())
        }
        Err(refused) => Err(LimitError::ThresholdForbidden {
            requested: threshold_name(refused),
            allowed: limits.allowed_thresholds.names().join(", "),
        }
        .into()),
    }
}

/// Reserve the request's `n` images of the key's daily allowance before they are generated upstream.
pub fn reserve_images(
    app: &Arc<App>,
    ctx: &Ctx,
    request: &ImageRequest,
) -> Result<Option<Reservation>, GatewayError> {
    let Some(client) = ctx.client.as_deref() else {
        return Ok(None);
    };
    Ok(Some(app.limiter.reserve_images(
        client,
        request.n,
        now_ms(),
    )?))
}
