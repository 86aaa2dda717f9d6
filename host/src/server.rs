//! The HTTP front: accept connections (hyper, HTTP/1.1), give every request an
//! id, route it, read bodies under the size limit, and make sure every outcome —
//! success or error — is rendered and logged exactly once.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;

use tokio::net::TcpListener;

use crate::app::App;
use crate::errors::GatewayError;
use crate::gateway::body::Chunks;
use crate::gateway::{self, Ctx};

/// Every response body: a whole buffer, or a generation's pieces (`gateway::body`).
pub type ResponseBody = Either<Full<Bytes>, Chunks>;

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `listen`: the client API, and `/admin/*` unless `admin_listen` is set (then 404).
    Public,
    /// `admin_listen`: `/admin/*`, `/healthz`, `/readyz` and (`[metrics] listener = "admin"`) `/metrics` only.
    Admin,
}

/// Serve the public API on `listener` until `shutdown` resolves; then stop accepting and let
/// in-flight requests finish (up to 30 s).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    serve_as(app, listener, shutdown, Role::Public).await
}

/// [`serve`] for a listener of the given role.
pub async fn serve_as(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
    role: Role,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(app, req, peer.ip(), role).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(30))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("Shutting down: no new connections, waiting for in-flight requests");
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown()).await;
}

fn request_id(req: &Request<Incoming>) -> String {
    let given = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok());
    match given {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_string()
        }
        _ => format!("req_{:016x}", rand::random::<u64>()),
    }
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: IpAddr,
    role: Role,
) -> Response<ResponseBody> {
    let id = request_id(&req);
    if let Err(e) = check_head(&req) {
        return e.render(&id).map(Either::Left);
    }
    // From here on the "peer" is the client's address (a trusted proxy's X-Forwarded-For).
    let peer = crate::client_ip::resolve(peer, req.headers(), &app.config.trusted_proxies);
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let not_allowed = |allowed| GatewayError::MethodNotAllowed {
        method: method.to_string(),
        path: path.clone(),
        allowed,
    };
    let admin_here = match role {
        Role::Admin => true,
        Role::Public => app.config.admin_listen.is_none(),
    };
    let result = match path.as_str() {
        "/healthz" => match method {
            Method::GET => Ok(health(&app, &id)),
            _ => Err(not_allowed("GET")),
        },
        p if (p == "/dashboard" || p.starts_with("/dashboard/")) && admin_here => {
            return crate::dashboard::handle(app, req, id, peer, role)
                .await
                .map(Either::Left)
        }
        "/readyz" => match method {
            Method::GET => Ok(crate::readiness::response(
                crate::readiness::reasons(&app),
                &id,
            )),
            _ => Err(not_allowed("GET")),
        },
        "/metrics" if metrics_here(&app, role) => match method {
            Method::GET => crate::metrics::expose::handle(&app, req.headers(), peer, &id).await,
            _ => Err(not_allowed("GET")),
        },
        p if p.starts_with("/admin/") && admin_here => {
            crate::admin::handle(&app, req, &id, peer).await
        }
        _ if role == Role::Admin => Err(GatewayError::NotFound(path.clone())),
        "/v1/images/generations" => return generations(app, req, id, peer).await,
        "/v1/models" => match method {
            Method::GET => gateway::authenticate::run(&app, req.headers(), peer)
                .await
                .map(|_| models(&id)),
            _ => Err(not_allowed("GET")),
        },
        _ => Err(GatewayError::NotFound(path.clone())),
    };
    result.unwrap_or_else(|e| e.render(&id)).map(Either::Left)
}

/// `/v1/images/generations`. The request runs in its own task, so a client that
/// disconnects mid-generation does not cancel it: the images are still generated
/// and cached (the client's retry is a hit, not a second upstream call), and the
/// request line says 499.
async fn generations(
    app: Arc<App>,
    req: Request<Incoming>,
    id: String,
    peer: IpAddr,
) -> Response<ResponseBody> {
    let waiting = ClientWaiting::default();
    let gone = waiting.0.clone();
    let task = app.background.spawn({
        let app = app.clone();
        async move {
            let _in_flight = crate::metrics::in_flight();
            let mut ctx = Ctx::new(id.clone());
            let _counted = app.stats.begin(&mut ctx);
            ctx.client_ip = Some(peer);
            let result = match req.method() {
                &Method::POST => images_generations(&app, &mut ctx, req, peer).await,
                other => Err(GatewayError::MethodNotAllowed {
                    method: other.to_string(),
                    path: "/v1/images/generations".into(),
                    allowed: "POST",
                }),
            };
            let (mut response, error) = match result {
                Ok(response) => (response.map(Either::Right), None),
                Err(e) => (e.render(&id).map(Either::Left), Some(e)),
            };
            if let Some(v) = ctx
                .policy
                .as_ref()
                .and_then(|p| http::HeaderValue::from_str(&p.header()).ok())
            {
                response.headers_mut().insert("x-aperture-policy", v);
            }
            if gone.load(Ordering::SeqCst) {
                let closed = GatewayError::ClientClosed {
                    completed: error.is_none(),
                };
                gateway::log::run(&ctx, closed.status().as_u16(), Some(&closed));
            } else {
                gateway::log::run(&ctx, response.status().as_u16(), error.as_ref());
            }
            response
        }
    });
    let response = task.await.unwrap_or_else(|e| {
        GatewayError::Internal(format!("the request task failed: {e}"))
            .render("-")
            .map(Either::Left)
    });
    waiting.answered();
    response
}

/// Whether `/metrics` is served on a listener of `role` (`[metrics] enabled`, `listener`).
fn metrics_here(app: &App, role: Role) -> bool {
    use crate::config::observability::MetricsListener;
    app.config.metrics.enabled
        && match (app.config.metrics.listener, role) {
            (MetricsListener::Main, Role::Public) => true,
            (MetricsListener::Admin, Role::Admin) => true,
            // No separate admin listener: the main one serves it all.
            (MetricsListener::Admin, Role::Public) => app.config.admin_listen.is_none(),
            (MetricsListener::Main, Role::Admin) => false,
        }
}

/// Set to "gone" when the connection drops the request before it was answered.
#[derive(Default)]
struct ClientWaiting(Arc<AtomicBool>, bool);

impl ClientWaiting {
    fn answered(mut self) {
        self.1 = true;
    }
}

impl Drop for ClientWaiting {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// The longest request target (path and query) accepted, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) accepted.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Limits on the request head that hyper leaves to us, so they are refused with
/// the JSON error body and `x-request-id` (hyper's own, larger, limits answer
/// with an empty body: see docs/api.md).
fn check_head(req: &Request<Incoming>) -> Result<(), GatewayError> {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Err(GatewayError::UriTooLong {
            limit: MAX_URI_BYTES,
        });
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Err(GatewayError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        });
    }
    Ok(())
}

/// `GET /healthz`: liveness plus what an operator checks first.
fn health(app: &App, request_id: &str) -> Response<Full<Bytes>> {
    let now = crate::app::now_ms();
    let components: Vec<_> = app
        .policies
        .active()
        .iter()
        .map(|c| json!({"slot": c.slot, "source": c.source, "sha256": c.sha256}))
        .collect();
    let body = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": app.started.elapsed().as_secs(),
        "cache_backend": app.config.cache.backend.name(),
        "accounts_usable": app.accounts.usable_count(now),
        "accounts_total": app.accounts.list(now).len(),
        "components": components,
    });
    json_response(StatusCode::OK, &body, request_id)
}

async fn images_generations(
    app: &Arc<App>,
    ctx: &mut Ctx,
    req: Request<Incoming>,
    peer: IpAddr,
) -> Result<Response<Chunks>, GatewayError> {
    let client = gateway::authenticate::run(app, req.headers(), peer).await?;
    ctx.client = Some(client.clone());
    // Held until the request ends (also when the client left: its work still costs memory).
    let _permit = gateway::limits::admit(app, &client)?;
    // The live settings this request runs with, from its body to its response (`live.rs`).
    let live = app.live.load_full();
    let (parts, body) = req.into_parts();
    let body = read_body(
        body,
        &parts.headers,
        app.config.max_body_bytes,
        live.body_timeout,
    )
    .await?;
    gateway::generate(app, ctx, &live, &parts.headers, body).await
}

/// Read a whole body within `timeout`, refusing more than `limit` bytes (by header or by count).
pub async fn read_body(
    body: Incoming,
    headers: &http::HeaderMap,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| GatewayError::BodyTimeout {
            secs: timeout.as_secs().max(1),
        })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::BodyTooLarge { limit })
        }
        Err(e) => Err(GatewayError::InvalidRequest {
            message: format!("the request body could not be read ({e}); send it again"),
            param: None,
            code: "IMG_INVALID_REQUEST".into(),
        }),
    }
}

/// A JSON response.
pub fn json_response(
    status: StatusCode,
    value: &serde_json::Value,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(value).unwrap_or_default(),
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// `GET /v1/models`: every id the default translator accepts, from the one model
/// table it is built from (`aperture-models`).
pub fn models(request_id: &str) -> Response<Full<Bytes>> {
    let data: Vec<_> = aperture_models::MODELS
        .iter()
        .map(|m| json!({"id": m.id, "object": "model", "created": 0, "owned_by": "google"}))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data}),
        request_id,
    )
}
