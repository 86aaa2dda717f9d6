//! The HTTP client to Gemini: `POST {base}/v1beta/models/{model}:generateContent`
//! with `x-goog-api-key`, over rustls for `https` bases, with a connect timeout and
//! a total timeout per call. It reports what happened; it does not judge it (the
//! error-classifier component does).

mod body;
mod limit;

pub use limit::{CallLimit, Overloaded};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::Upstream as UpstreamConfig;

/// Upstream bodies larger than this are refused (a 4K PNG in base64 is ~30 MB).
pub const MAX_UPSTREAM_BODY: usize = 192 << 20;

/// An HTTP answer from the upstream, whatever its status.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Bytes,
}

/// A call that produced no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made.
    #[error("could not connect to the upstream: {0}")]
    Connect(String),
    /// The connect or total timeout elapsed.
    #[error("the upstream did not answer in time ({0})")]
    Timeout(String),
    /// The TLS handshake failed.
    #[error("TLS with the upstream failed: {0}")]
    Tls(String),
    /// The connection broke or the answer was not HTTP.
    #[error("the upstream connection failed: {0}")]
    Protocol(String),
}

/// The Gemini client, shared by all requests (it pools connections).
#[derive(Clone)]
pub struct Gemini {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base_url: String,
    /// Budget of one call in milliseconds; shared by clones, changed by a config reload.
    request_timeout_ms: Arc<AtomicU64>,
}

impl Gemini {
    /// A client for `config.base_url`.
    pub fn new(config: &UpstreamConfig) -> Gemini {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            // hyper's read buffer grows to ~400 KiB on megabyte answers and stays that size on every
            // pooled connection (64 of them after a burst: ~25 MB held for nothing); the body is copied
            // out chunk by chunk anyway (`body.rs`), so small reads cost nothing measurable.
            .http1_max_buf_size(64 * 1024)
            .build(https);
        Gemini {
            client,
            base_url: config.base_url.clone(),
            request_timeout_ms: Arc::new(AtomicU64::new(config.request_timeout.as_millis() as u64)),
        }
    }

    /// Change the budget of the calls that start from now on (a config reload).
    pub fn set_request_timeout(&self, timeout: Duration) {
        self.request_timeout_ms
            .store(timeout.as_millis() as u64, Ordering::Relaxed);
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Call `generateContent` for `model` with `api_key`.
    pub async fn generate_content(
        &self,
        model: &str,
        api_key: &str,
        body: String,
    ) -> Result<Reply, TransportError> {
        let uri = format!("{}/v1beta/models/{model}:generateContent", self.base_url);
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/json")
            .header("x-goog-api-key", api_key)
            // Google gzips its (pretty-printed, megabyte) answers when asked.
            .header("accept-encoding", "gzip")
            .header(
                "user-agent",
                concat!("aperture/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| TransportError::Protocol(format!("building the request: {e}")))?;
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(classify_transport)?;
            let status = response.status().as_u16();
            let gzipped = response
                .headers()
                .get(http::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = body::read(response.into_body(), gzipped, MAX_UPSTREAM_BODY).await?;
            Ok(Reply {
                status,
                headers,
                body,
            })
        };
        let request_timeout =
            Duration::from_millis(self.request_timeout_ms.load(Ordering::Relaxed));
        match tokio::time::timeout(request_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout(format!(
                "request timeout of {request_timeout:?}"
            ))),
        }
    }
}

/// Sort a client error by what is in its source chain: a rustls error is TLS, an
/// I/O timeout is a timeout, anything before a connection exists is a connect error.
fn classify_transport(e: hyper_util::client::legacy::Error) -> TransportError {
    let chain = error_chain(&e);
    // Walk the sources, and inside each io::Error its wrapped error (connectors wrap
    // rustls errors in io::Errors, sometimes twice, which `source()` skips over).
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![&e];
    while let Some(err) = pending.pop() {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return TransportError::Tls(chain);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return TransportError::Timeout(chain);
            }
            if let Some(inner) = io.get_ref() {
                pending.push(inner);
            }
        }
        pending.extend(err.source());
    }
    if e.is_connect() {
        // hyper-util reports its connect timeout as a plain message.
        if chain.contains("timed out") {
            return TransportError::Timeout(chain);
        }
        TransportError::Connect(chain)
    } else {
        TransportError::Protocol(chain)
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
