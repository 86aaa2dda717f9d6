//! Phase 3, screen: the safety-policy component allows the request (with the
//! upstream safety settings for the effective threshold) or denies it locally.

use std::sync::Arc;

use super::ctx::Ctx;
use crate::app::App;
use crate::config::threshold_name;
use crate::errors::GatewayError;
use crate::live::LiveSettings;
use crate::policy::{ImageRequest, Lookup, SafetySetting, SafetyThreshold, Screening};

/// The effective threshold: the request's own, else the operator's global one.
pub fn effective_threshold(live: &LiveSettings, request: &ImageRequest) -> SafetyThreshold {
    request.safety_threshold.unwrap_or(live.safety_threshold)
}

/// Screen `request`; on allow, the settings to send upstream.
pub async fn run(
    app: &Arc<App>,
    ctx: &mut Ctx,
    live: &Arc<LiveSettings>,
    request: &ImageRequest,
) -> Result<Vec<SafetySetting>, GatewayError> {
    let threshold = effective_threshold(live, request);
    ctx.safety_threshold = Some(threshold_name(threshold));
    let pin = ctx.policy(app);
    // A memo hit (same safety version, same request, threshold and policy config)
    // costs no call and no thread hop.
    let screening = match app
        .policies
        .screen_lookup(&pin, request, threshold, &live.policy_config)
    {
        Lookup::Hit(screening) => screening,
        Lookup::Miss(key) => {
            let (app2, live, req) = (app.clone(), live.clone(), request.clone());
            app.run_policy(move || {
                app2.policies
                    .screen_remember(&pin, &req, threshold, &live.policy_config, key)
            })
            .await??
        }
    };
    match screening {
        Screening::Allow(settings) => Ok(settings),
        Screening::Deny(denial) => Err(GatewayError::SafetyBlocked {
            reason: denial.reason,
            categories: Vec::new(),
            local: true,
            prompt: true,
        }),
    }
}
