//! Refusals at the HTTP level: the limits the gateway checks itself answer in the
//! JSON error shape with `x-request-id`; what hyper refuses before the gateway sees
//! a request (malformed request line, bad `Content-Length`, a head past hyper's
//! buffer) gets hyper's own empty-bodied status, as docs/api.md says, and the
//! gateway keeps serving.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// Send raw bytes on a fresh connection; return what came back until the server
/// closed or 2 s passed.
async fn raw(gw: &Gateway, bytes: &[u8]) -> String {
    let addr = gw.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        stream.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:.200}"))
}

fn json_body(response: &str) -> Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {response:.400}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_limits_answer_in_the_json_shape_and_hyper_refusals_leave_the_gateway_serving() {
    let s = Setup::simple().await;
    let gw = &s.gw;

    let long_path = format!("/v1/models?{}", "a".repeat(10_000));
    let r = raw(
        gw,
        format!("GET {long_path} HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&r), 414, "{r:.300}");
    assert_eq!(json_body(&r)["error"]["code"], "IMG_URI_TOO_LONG");
    assert!(r.to_ascii_lowercase().contains("x-request-id:"), "{r:.300}");

    let big = "b".repeat(40_000);
    let r = raw(
        gw,
        format!("GET /v1/models HTTP/1.1\r\nhost: gw\r\nx-big: {big}\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(status_of(&r), 431, "{r:.300}");
    let err = json_body(&r);
    assert_eq!(err["error"]["code"], "IMG_HEADERS_TOO_LARGE");
    assert_eq!(err["error"]["error_type"], "USER_ERROR");

    // Refused by hyper itself (documented): a status, no crash, the gateway serves on.
    for bytes in [
        b"POST /v1/images/generations HTTP/1.1\r\nhost: gw\r\ncontent-length: abc\r\n\r\n".to_vec(),
        b"THIS IS NOT HTTP\r\n\r\n".to_vec(),
        format!(
            "GET /v1/models HTTP/1.1\r\nhost: gw\r\nx-huge: {}\r\n\r\n",
            "c".repeat(500_000)
        )
        .into_bytes(),
    ] {
        let r = raw(gw, &bytes).await;
        if !r.is_empty() {
            let status = status_of(&r);
            assert!(matches!(status, 400 | 431), "{r:.300}");
        }
        let ok = get(&format!("{}/healthz", gw.url), None).await;
        assert_eq!(ok.status, 200, "the gateway still serves");
    }
}
