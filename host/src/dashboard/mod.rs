//! `/dashboard`: the built-in view for operators who run no monitoring stack — the runbook's real-time,
//! historical and performance dashboards over the traffic rollups, and a playground for trying the gateway.
//! Plain HTML, CSS and JS with uPlot (MIT) for the charts, all embedded in the binary (works offline). It is
//! served where the admin API is, and guarded by the admin key: a person signs in through the page's form
//! (a POST, never the key in a URL) and gets a session cookie (see [`session`]).

pub mod session;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;

use crate::app::{now_ms, App};
use crate::errors::GatewayError;
use crate::server::{json_response, read_body, Role};

/// The largest sign-in form accepted.
const MAX_FORM_BYTES: usize = 4096;

/// The dashboard's state: sessions, and the demo client key offered to the playground in demo mode.
#[derive(Default)]
pub struct Dashboard {
    /// Signed-in sessions.
    pub sessions: session::Sessions,
    demo_key: OnceLock<Option<String>>,
}

impl Dashboard {
    /// In demo mode: the client key the playground fills in.
    pub fn set_demo_key(&self, key: Option<String>) {
        let _ = self.demo_key.set(key);
    }

    fn demo_key(&self) -> Option<&str> {
        self.demo_key.get().and_then(|k| k.as_deref())
    }
}

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/uplot/uPlot.min.css"),
    },
    Asset {
        name: "uPlot.LICENSE.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../../assets/uplot/LICENSE"),
    },
    Asset {
        name: "dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/dashboard/dashboard.js"),
    },
    Asset {
        name: "dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/dashboard/dashboard.css"),
    },
];

const PAGE: &str = include_str!("../../assets/dashboard/index.html");
const SIGN_IN: &str = include_str!("../../assets/dashboard/login.html");

/// Headers every dashboard answer carries: no caching, no framing, scripts and styles only from here.
fn secure(mut response: Response<Full<Bytes>>, request_id: &str) -> Response<Full<Bytes>> {
    let h = response.headers_mut();
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    response
}

fn html(status: StatusCode, body: String, request_id: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(r, request_id)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn sign_in_page(status: StatusCode, message: &str, request_id: &str) -> Response<Full<Bytes>> {
    let note = if message.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"error\" id=\"signin-error\">{}</p>",
            escape(message)
        )
    };
    html(status, SIGN_IN.replace("<!--MESSAGE-->", &note), request_id)
}

fn redirect(location: &'static str, cookie: String, request_id: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut()
        .insert(http::header::LOCATION, HeaderValue::from_static(location));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    secure(r, request_id)
}

/// The `key` field of an `application/x-www-form-urlencoded` body.
fn form_key(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "key").then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .trim()
                .to_string()
        })
    })
}

fn signed_in(app: &App, req: &Request<Incoming>) -> bool {
    session::token_of(req.headers()).is_some_and(|t| app.dashboard.sessions.valid(&t, now_ms()))
}

fn not_signed_in() -> GatewayError {
    GatewayError::AdminUnauthorized("sign in to the dashboard first (open /dashboard)")
}

/// Route one `/dashboard…` request.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    id: String,
    peer: IpAddr,
    role: Role,
) -> Response<Full<Bytes>> {
    match route(&app, req, &id, peer, role).await {
        Ok(r) => r,
        Err(e) => secure(e.render(&id), &id),
    }
}

async fn route(
    app: &Arc<App>,
    req: Request<Incoming>,
    id: &str,
    peer: IpAddr,
    role: Role,
) -> Result<Response<Full<Bytes>>, GatewayError> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let not_allowed = |allowed| GatewayError::MethodNotAllowed {
        method: method.to_string(),
        path: path.clone(),
        allowed,
    };
    if let Some(name) = path.strip_prefix("/dashboard/assets/") {
        if method != Method::GET {
            return Err(not_allowed("GET"));
        }
        let asset = ASSETS
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| GatewayError::NotFound(path.clone()))?;
        let mut r = Response::new(Full::new(Bytes::from_static(asset.body)));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        return Ok(secure(r, id));
    }
    if app.admin_key.is_none() {
        return Ok(sign_in_page(
            StatusCode::FORBIDDEN,
            "The dashboard is off because the admin API is off: start the gateway with APERTURE_ADMIN_KEY set.",
            id,
        ));
    }
    match path.trim_end_matches('/') {
        "/dashboard" => match method {
            Method::GET if signed_in(app, &req) => Ok(html(StatusCode::OK, PAGE.to_string(), id)),
            Method::GET => Ok(sign_in_page(StatusCode::OK, "", id)),
            _ => Err(not_allowed("GET")),
        },
        "/dashboard/login" => {
            if method != Method::POST {
                return Err(not_allowed("POST"));
            }
            if let Err(e) = app.auth_throttle.check(peer, now_ms()) {
                let e = GatewayError::from(e);
                return Ok(sign_in_page(e.status(), &e.to_string(), id));
            }
            let (parts, body) = req.into_parts();
            let body = read_body(
                body,
                &parts.headers,
                MAX_FORM_BYTES,
                app.live.load().body_timeout,
            )
            .await?;
            match form_key(&body) {
                Some(key) if app.is_admin(&key) => {
                    let token = app.dashboard.sessions.create(now_ms());
                    tracing::info!(client_addr = %peer, "Dashboard sign-in");
                    Ok(redirect("/dashboard", session::set_cookie(&token), id))
                }
                _ => {
                    app.auth_throttle.failed(peer, now_ms());
                    tracing::warn!(client_addr = %peer, "Dashboard sign-in refused: wrong admin key");
                    Ok(sign_in_page(
                        StatusCode::UNAUTHORIZED,
                        "That is not the admin key (APERTURE_ADMIN_KEY). Try again.",
                        id,
                    ))
                }
            }
        }
        "/dashboard/logout" => {
            if method != Method::POST {
                return Err(not_allowed("POST"));
            }
            if let Some(t) = session::token_of(req.headers()) {
                app.dashboard.sessions.end(&t);
            }
            Ok(redirect("/dashboard", session::clear_cookie(), id))
        }
        "/dashboard/api/stats" => {
            if method != Method::GET {
                return Err(not_allowed("GET"));
            }
            if !signed_in(app, &req) {
                return Err(not_signed_in());
            }
            let query = crate::stats::report::Query::parse(req.uri().query())?;
            let report = crate::stats::report::build(app, &query).await?;
            Ok(secure(json_response(StatusCode::OK, &report, id), id))
        }
        "/dashboard/api/config" => {
            if method != Method::GET {
                return Err(not_allowed("GET"));
            }
            if !signed_in(app, &req) {
                return Err(not_signed_in());
            }
            let models: Vec<_> = aperture_models::MODELS.iter().map(|m| m.id).collect();
            let body = json!({
                "demo_key": app.dashboard.demo_key(),
                // The playground calls the client API on this origin; an admin-only listener has none.
                "playground_url": (role == Role::Public).then_some("/v1/images/generations"),
                "models": models,
                "default_model": aperture_models::DEFAULT_MODEL,
                "sizes": ["1024x1024", "1792x1024", "1024x1792", "1536x1024", "1024x1536", "auto"],
                "qualities": ["auto", "standard", "low", "medium", "high", "hd"],
                "thresholds": ["OFF", "LOW", "MEDIUM", "HIGH"],
                "safety_threshold": crate::config::threshold_name(app.config.safety.threshold),
            });
            Ok(secure(json_response(StatusCode::OK, &body, id), id))
        }
        _ => Err(GatewayError::NotFound(path.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_key_is_decoded() {
        assert_eq!(form_key(b"key=ab%2Bc+d").as_deref(), Some("ab+c d"));
        assert_eq!(form_key(b"other=1&key=x").as_deref(), Some("x"));
        assert_eq!(form_key(b"nokey"), None);
    }

    #[test]
    fn messages_are_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
