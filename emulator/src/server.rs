//! HTTP serving: the accept loop (which shutdown stops by closing the listener), one hyper connection task per
//! client, and routing of the Gemini paths (`generateContent`, `streamGenerateContent`, models, control),
//! API-key extraction and body limits.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::control;
use crate::errors::ApiError;
use crate::generate::{generate_content, Call};
use crate::models;
use crate::reply::Reply;
use crate::state::{KeyCheck, Shared};
use crate::stream::Framing;
use crate::wire::{self, ChunkedBody};

/// The real API refuses request bodies over 20 MiB.
const MAX_BODY: usize = 20 * 1024 * 1024;

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(shared: Arc<Shared>) {
    let mut stop = shared.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            accepted = std::future::poll_fn(|cx| shared.poll_accept(cx)) => accepted,
            _ = stop.wait_for(|stopped| *stopped) => None,
        };
        match accepted {
            None => break,
            Some(Ok((stream, peer))) => {
                tracing::trace!(%peer, "connection accepted");
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(shared.clone(), stream));
            }
            Some(Err(e)) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    tracing::info!(addr = %shared.addr, "Gemini emulator stopped");
}

/// Serves one connection until the client closes it or the emulator shuts down (which drops it at once).
async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let mut stop = shared.shutdown_signal();
    let service = {
        let shared = shared.clone();
        service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(route(&shared, req).await) }
        })
    };
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<ChunkedBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let key = api_key(&parts);
    let gzip = shared.gzip
        && wire::accepts_gzip(
            parts
                .headers
                .get(http::header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok()),
        );
    let to_response = |reply: Reply| wire::to_response(reply, gzip);
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let message = if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                format!("Request payload size exceeds the limit: {MAX_BODY} bytes.")
            } else {
                format!("Could not read the request body: {e}")
            };
            return to_response(ApiError::invalid_argument(message).into());
        }
    };
    let method = parts.method.clone();
    let reply = if let Some(rest) = path.strip_prefix("/_emulator/") {
        control::handle(shared, &method, rest, &body)
    } else if path == "/v1beta/models" {
        if method == Method::GET {
            authenticated(shared, key.as_deref(), || {
                Reply::json(200, &models::list_json())
            })
        } else {
            ApiError::method_not_allowed(method.as_str(), &path).into()
        }
    } else if let Some(rest) = path.strip_prefix("/v1beta/models/") {
        let rest = rest.replace("%3A", ":").replace("%3a", ":");
        match rest.split_once(':') {
            Some((model, action @ ("generateContent" | "streamGenerateContent")))
                if method == Method::POST =>
            {
                let stream = (action == "streamGenerateContent").then(|| {
                    if query_param(&parts, "alt").is_some_and(|alt| alt.eq_ignore_ascii_case("sse"))
                    {
                        Framing::Sse
                    } else {
                        Framing::JsonArray
                    }
                });
                let call = Call {
                    model_id: model,
                    key: key.as_deref(),
                    body: &body,
                    stream,
                };
                generate_content(shared, call).await
            }
            Some((_, "generateContent" | "streamGenerateContent")) => {
                ApiError::method_not_allowed(method.as_str(), &path).into()
            }
            Some(_) => ApiError::path_not_found(&path).into(),
            None if method == Method::GET => {
                authenticated(shared, key.as_deref(), || match models::find(&rest) {
                    Some(model) => Reply::json(200, &model.to_json()),
                    None => ApiError::model_not_found(&rest).into(),
                })
            }
            None => ApiError::method_not_allowed(method.as_str(), &path).into(),
        }
    } else {
        ApiError::path_not_found(&path).into()
    };
    to_response(reply)
}

/// Runs `f` for a valid key, answering 403 / 400 like the real API otherwise.
fn authenticated(shared: &Shared, key: Option<&str>, f: impl FnOnce() -> Reply) -> Reply {
    match key.map(|k| shared.check_key(k)) {
        None => ApiError::unregistered_caller().into(),
        Some(KeyCheck::Invalid) => ApiError::api_key_invalid().into(),
        Some(KeyCheck::Valid(_)) => f(),
    }
}

/// The API key from `x-goog-api-key` or the `key` query parameter; empty counts as absent.
fn api_key(parts: &http::request::Parts) -> Option<String> {
    let from_header = parts
        .headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string());
    let from_query = || query_param(parts, "key");
    from_header
        .filter(|k| !k.is_empty())
        .or_else(from_query)
        .filter(|k| !k.is_empty())
}

/// A query parameter, percent-decoded.
fn query_param(parts: &http::request::Parts, name: &str) -> Option<String> {
    parts.uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, value)| percent_decode(value))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("AIza%2Bx"), "AIza+x");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("plain"), "plain");
    }
}
