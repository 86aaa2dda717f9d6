//! `GET /metrics`: the key check (when `[metrics] require_key`), content
//! negotiation (OpenMetrics when the `Accept` header asks for it, else the
//! Prometheus text format 0.0.4) and the encoding.
//!
//! prometheus-client encodes OpenMetrics text only; [`to_prometheus_text`] turns
//! that into the classic format (counter families named with `_total`, `info` as a
//! gauge named `_info`, no `# UNIT` / `# EOF`), which every Prometheus and
//! scraper understands.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::{blocking, App};
use crate::errors::GatewayError;

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the client asked for OpenMetrics (`Accept: application/openmetrics-text`, not refused with q=0).
pub fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("");
            media.eq_ignore_ascii_case("application/openmetrics-text")
                && !params.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                })
        })
}

/// Whether `presented` opens `/metrics`.
fn key_ok(app: &App, presented: Option<&str>) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    if app.is_admin(presented) {
        return true;
    }
    match &app.config.metrics.key {
        Some(key) => {
            let a: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
            let b: [u8; 32] = Sha256::digest(key.as_bytes()).into();
            bool::from(a.ct_eq(&b))
        }
        None => false,
    }
}

/// Answer `GET /metrics`.
pub async fn handle(
    app: &Arc<App>,
    headers: &HeaderMap,
    peer: std::net::IpAddr,
    request_id: &str,
) -> Result<Response<Full<Bytes>>, GatewayError> {
    if app.config.metrics.require_key {
        app.auth_throttle.check(peer, crate::app::now_ms())?;
        if !key_ok(app, crate::gateway::authenticate::presented_key(headers)) {
            app.auth_throttle.failed(peer, crate::app::now_ms());
            return Err(GatewayError::AdminUnauthorized(
                "missing or invalid metrics key: send `Authorization: Bearer $APERTURE_METRICS_KEY` (or the admin key)",
            ));
        }
    }
    let openmetrics = wants_openmetrics(headers);
    let app2 = app.clone();
    let body = blocking(move || {
        super::refresh(&app2);
        let mut out = String::with_capacity(16 * 1024);
        if let Some(m) = super::get() {
            prometheus_client::encoding::text::encode(&mut out, m.registry())
                .map_err(|e| GatewayError::Internal(format!("encoding the metrics: {e}")))?;
        }
        Ok::<_, GatewayError>(if openmetrics {
            out
        } else {
            to_prometheus_text(&out)
        })
    })
    .await??;
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(if openmetrics {
            OPENMETRICS
        } else {
            PROMETHEUS_TEXT
        }),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    Ok(response)
}

/// OpenMetrics text (as prometheus-client writes it) to the Prometheus text format 0.0.4.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gaugehistogram" => (name.to_string(), "histogram"),
                "stateset" => (name.to_string(), "gauge"),
                "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            if let Some((help_name, help)) = pending_help.take() {
                if let Some(suffix) = name.strip_prefix(help_name) {
                    out.push_str(&format!("# HELP {help_name}{suffix} {help}\n"));
                }
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        // A sample: drop an OpenMetrics exemplar (` # {...} v`), keep the rest.
        let sample = match line.find(" # ") {
            Some(i) if !line.starts_with('#') => &line[..i],
            _ => line,
        };
        out.push_str(sample);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{code=\"x\"} 3\n\
                  # HELP a_build Build.\n# TYPE a_build info\na_build_info{version=\"1\"} 1\n\
                  # HELP a_bytes Bytes.\n# TYPE a_bytes gauge\n# UNIT a_bytes bytes\na_bytes 7\n# EOF\n";
        let text = to_prometheus_text(om);
        assert_eq!(
            text,
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total{code=\"x\"} 3\n\
             # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n\
             # HELP a_bytes Bytes.\n# TYPE a_bytes gauge\na_bytes 7\n"
        );
    }

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!wants_openmetrics(&h));
        h.insert(
            http::header::ACCEPT,
            HeaderValue::from_static(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            ),
        );
        assert!(wants_openmetrics(&h));
        h.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/openmetrics-text;q=0, text/plain"),
        );
        assert!(!wants_openmetrics(&h));
    }
}
