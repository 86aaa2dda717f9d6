//! The image-generation request as named phases with one driver (like Pingora's
//! `ProxyHttp`): authenticate -> parse -> screen -> lookup -> dispatch ->
//! interpret -> store -> respond -> log. One module per phase; [`Ctx`] carries
//! state between them.

pub mod authenticate;
pub mod body;
pub mod ctx;
pub mod dispatch;
pub mod group_commit;
pub mod hot;
pub mod interpret;
pub mod limits;
pub mod log;
pub mod lookup;
pub mod parse;
pub mod partial;
pub mod respond;
pub mod screen;
pub mod splice;
pub mod store;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response};

pub use ctx::{CacheStatus, Ctx};

use crate::app::App;
use crate::errors::GatewayError;
use crate::live::LiveSettings;

/// Whether the client asked not to be served from the cache.
fn wants_fresh(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| {
            matches!(
                d.trim().to_ascii_lowercase().as_str(),
                "no-cache" | "no-store" | "max-age=0"
            )
        })
}

/// Drive one `POST /v1/images/generations` through the phases after
/// authentication and body reading (done by the server). `live` is the snapshot of the
/// live settings the request took at its start; every phase uses it, never a newer one.
pub async fn generate(
    app: &Arc<App>,
    ctx: &mut Ctx,
    live: &Arc<LiveSettings>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<body::Chunks>, GatewayError> {
    // Each slot's version is taken once, here, and used by every phase after.
    let pin = ctx.policy(app);
    let mut request = parse::run(app, ctx, body).await?;
    limits::threshold(app, ctx, live, &mut request)?;
    let settings = screen::run(app, ctx, live, &request).await?;

    let key = lookup::cache_key(
        pin.namespace(),
        &request,
        screen::effective_threshold(live, &request),
        &settings,
    );
    let fresh = wants_fresh(headers);
    if !fresh {
        if let Some(body) = lookup::hot(app, ctx, &key, request.response_format) {
            return Ok(respond::response(ctx, body));
        }
    }
    if let Some(hit) = lookup::run(app, ctx, key, fresh).await {
        let Some((created_ms, ticket)) = hit.stored else {
            return respond::run(app, ctx, hit.generated, request.response_format).await;
        };
        // A stored entry renders with its own creation time: the body is then the same for the
        // entry's life, and the hot cache keeps it for the next hit.
        let renderer = hot::renderer(&pin);
        let body = respond::render(
            app,
            Some(pin.clone()),
            hit.generated,
            request.response_format,
            created_ms / 1000,
        )
        .await?;
        if let (Some(hot), Some(ticket)) = (&app.hot, ticket) {
            let ttl = live.cache.ttl_ms;
            let expires = if ttl == 0 {
                u64::MAX
            } else {
                created_ms.saturating_add(ttl)
            };
            hot.insert(
                &key,
                request.response_format,
                body.clone(),
                expires,
                &renderer,
                ticket,
            );
        }
        return Ok(respond::response(ctx, body));
    }

    // Identical requests in flight share one dispatch; the first one does the work.
    // A request that asked for a fresh result must not be handed one that is only
    // waiting for its cache write: it gets a private cell (release ignores it).
    // The key's images per day: reserved before the upstream phase, kept only for images generated here.
    let reservation = limits::reserve_images(app, ctx, &request)?;
    let cell = if fresh && app.inflight.completed(&key).is_some() {
        Arc::default()
    } else {
        app.inflight.cell(key)
    };
    let mut report = dispatch::DispatchReport::default();
    let mut led = false;
    let outcome = cell
        .get_or_init(|| async {
            led = true;
            let mut partial = partial::Partial::load(app, key, request.n, fresh).await;
            if partial.reused() > 0 {
                tracing::info!(request_id = %ctx.request_id, key = %lookup::key_prefix(&key), images = partial.reused(), "Partial result reused");
            }
            let deadline = live.request_deadline;
            match tokio::time::timeout(deadline, dispatch::run(app, &pin, &request, settings, &mut partial, &mut report)).await {
                Ok(result) => result.map(Arc::new),
                Err(_) => Err({
                    // The images that did arrive were paid for: kept for the retry.
                    partial.settle(app).await;
                    GatewayError::Upstream {
                    error_type: crate::policy::ErrorType::NetworkError,
                    code: "IMG_UPSTREAM_TIMEOUT".into(),
                    status: 504,
                    message: format!(
                        "the upstream did not produce the images within the gateway's deadline of {} s; try again later or ask for fewer images",
                        deadline.as_secs()
                    ),
                    retry_after: None,
                }}),
            }
        })
        .await
        .clone();
    ctx.coalesced = !led;
    if let Some(reservation) = reservation {
        let generated = match (&outcome, led) {
            (Ok(generated), true) => generated.images.len() as u64,
            _ => 0,
        };
        reservation.keep(generated);
    }
    ctx.upstream_calls = report.calls;
    for a in &report.accounts {
        ctx.used_account(a);
    }
    // Render before storing: a result the translator cannot render is never cached.
    let rendered = match &outcome {
        Ok(generated) => respond::run(app, ctx, generated.clone(), request.response_format).await,
        Err(e) => Err(e.clone()),
    };
    match (&outcome, &rendered, led) {
        // Store after answering: the cache write (an fsync) is off the client's path.
        // The in-flight entry stays until it lands, so a repeat meanwhile is served
        // the same result rather than generating again. Shutdown waits for these writes.
        (Ok(generated), Ok(_), true) => {
            let (app2, generated, request_id, n) = (
                app.clone(),
                generated.clone(),
                ctx.request_id.clone(),
                request.n,
            );
            app.background.spawn(async move {
                store::run(&app2, &request_id, key, &generated).await;
                partial::Partial::forget(&app2, key, n).await;
                app2.inflight.release(&key, &cell);
            });
        }
        (_, _, true) => app.inflight.release(&key, &cell),
        // A follower leaves the entry to its leader.
        (_, _, false) => {}
    }
    rendered
}
