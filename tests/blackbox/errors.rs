//! Failures a client sees: upstream 5xx (retried, then 503), upstream down and
//! slow (NETWORK_ERROR), and malformed requests, each with its status and code
//! and without any upstream call.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_503_is_retried() {
    let s = Setup::simple().await;
    s.emu.fail_next(&[503]);
    let r = s.gw.generate(json!({"prompt": "after a hiccup"})).await;
    assert_eq!(image_sizes(&r.ok()), vec![(1024, 1024)]);
    assert_eq!(s.emu.calls(), 2, "one failed call, one retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_503_gives_503_with_retry_after() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.config("[upstream]\nmax_attempts = 2\n")
    })
    .await;
    s.emu.fail_next(&[503, 503, 503]);
    let r = s.gw.generate(json!({"prompt": "a stormy upstream"})).await;
    let e = r.error(503, "IMG_UPSTREAM_UNAVAILABLE");
    assert_eq!(e["error_type"], "API_ERROR");
    r.retry_after();
    assert_eq!(s.emu.calls(), 2, "max_attempts calls, no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_a_network_error() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.config("[upstream]\nmax_attempts = 2\n")
    })
    .await;
    // Warm the connection pool first, then take the upstream away.
    s.gw.generate(json!({"prompt": "before the outage"}))
        .await
        .ok();
    s.emu.shutdown();
    let r = s.gw.generate(json!({"prompt": "during the outage"})).await;
    let e = r.error(502, "IMG_NETWORK_ERROR");
    assert_eq!(e["error_type"], "NETWORK_ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_on_a_closed_port_is_a_network_error() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        Launch {
            upstream: Some(closed_port_url()),
            ..Launch::default()
        }
        .config("[upstream]\nmax_attempts = 1\nconnect_timeout_ms = 2000\n"),
    )
    .await;
    gw.add_account("a1", "a1@test.example", "bb-gemini-key-1")
        .await;
    let r = gw.generate(json!({"prompt": "nobody home"})).await;
    let e = r.error(502, "IMG_NETWORK_ERROR");
    assert_eq!(e["error_type"], "NETWORK_ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_is_a_timeout() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.config("[upstream]\nmax_attempts = 1\nrequest_timeout_ms = 300\n")
    })
    .await;
    s.emu.set_latency(Duration::from_secs(3));
    let r = s.gw.generate(json!({"prompt": "a slow painter"})).await;
    let e = r.error(504, "IMG_UPSTREAM_TIMEOUT");
    assert_eq!(e["error_type"], "NETWORK_ERROR");
}

/// POST raw bytes to the generations path with the test key.
async fn post_raw(gw: &Gateway, body: &[u8]) -> Resp {
    let auth = format!("Bearer {API_KEY}");
    request(
        "POST",
        &format!("{}/v1/images/generations", gw.url),
        &[("authorization", &auth)],
        body.to_vec(),
    )
    .await
}

fn user_error(r: &Resp, status: u16, code: &str, param: Option<&str>) {
    let e = r.error(status, code);
    assert_eq!(e["error_type"], "USER_ERROR", "{}", r.brief());
    if let Some(p) = param {
        assert_eq!(e["param"], p, "{}", r.brief());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_the_right_status_and_code() {
    let s = Setup::simple().await;
    let gw = &s.gw;

    let r = post_raw(gw, b"this is not json").await;
    user_error(&r, 400, "IMG_INVALID_REQUEST", None);
    let r = post_raw(gw, b"[1, 2, 3]").await;
    user_error(&r, 400, "IMG_INVALID_REQUEST", None);

    let cases = [
        (json!({}), "prompt"),
        (json!({"size": "1024x1024"}), "prompt"),
        (json!({"prompt": ""}), "prompt"),
        (json!({"prompt": "x", "n": 0}), "n"),
        (json!({"prompt": "x", "n": 11}), "n"),
        (json!({"prompt": "x", "n": "3"}), "n"),
        (json!({"prompt": "x", "n": 1.5}), "n"),
        (json!({"prompt": 5}), "prompt"),
        (json!({"prompt": "x", "size": 123}), "size"),
        (json!({"prompt": "x", "size": "huge"}), "size"),
        (json!({"prompt": "x", "quality": 4}), "quality"),
        (
            json!({"prompt": "x", "response_format": "gif"}),
            "response_format",
        ),
        (
            json!({"prompt": "x", "safety_threshold": "EXTREME"}),
            "safety_threshold",
        ),
        (json!({"prompt": "x", "image_size": "8K"}), "image_size"),
    ];
    for (body, param) in cases {
        let r = gw.generate(body.clone()).await;
        let e = r.error(400, "IMG_INVALID_REQUEST");
        assert_eq!(e["param"], param, "{body}: {}", r.brief());
        assert_eq!(e["error_type"], "USER_ERROR");
        assert!(
            e["message"].as_str().unwrap().contains(param),
            "the message names the field: {body}: {}",
            r.brief()
        );
    }
    // Unknown fields are ignored.
    let r = gw
        .generate(json!({"prompt": "an ignored extra", "user": "u-1", "foo": {"bar": 1}}))
        .await;
    r.ok();
    let calls_after_valid = s.emu.calls();
    assert_eq!(calls_after_valid, 1);

    // 2 MB body -> 413.
    let big = json!({"prompt": "x".repeat(2 << 20)}).to_string();
    let r = post_raw(gw, big.as_bytes()).await;
    user_error(&r, 413, "IMG_PAYLOAD_TOO_LARGE", None);

    // No key, wrong key.
    let body = json!({"prompt": "a locked door"}).to_string().into_bytes();
    let url = format!("{}/v1/images/generations", gw.url);
    let r = request("POST", &url, &[], body.clone()).await;
    r.error(401, "IMG_UNAUTHORIZED");
    let r = request(
        "POST",
        &url,
        &[("authorization", "Bearer wrong-key-123456")],
        body.clone(),
    )
    .await;
    r.error(401, "IMG_UNAUTHORIZED");

    // Unknown path, wrong method.
    let r = get(&format!("{}/v1/nothing-here", gw.url), Some(API_KEY)).await;
    r.error(404, "IMG_NOT_FOUND");
    let r = get(&url, Some(API_KEY)).await;
    r.error(405, "IMG_METHOD_NOT_ALLOWED");

    assert_eq!(
        s.emu.calls(),
        calls_after_valid,
        "no bad input reached upstream"
    );
}

/// A body sent without Content-Length (chunked) over the limit is refused too,
/// while the client is still sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_chunked_body_is_refused() {
    let s = Setup::simple().await;
    let addr = s.gw.addr();
    let status = tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n\
             Content-Type: application/json\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        sock.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b'a'; 64 << 10];
        for _ in 0..40 {
            let framed = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk.clone(),
                b"\r\n".to_vec(),
            ]
            .concat();
            if sock.write_all(&framed).is_err() {
                break;
            }
        }
        let _ = sock.write_all(b"0\r\n\r\n");
        let mut buf = Vec::new();
        let _ = sock.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf).into_owned();
        text.split(' ').nth(1).unwrap_or("").to_string()
    })
    .await
    .unwrap();
    assert_eq!(status, "413");
    assert_eq!(s.emu.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_is_spoken_to_over_tls() {
    // The emulator speaks plain HTTP: an https:// base URL pointing at it must fail
    // in the TLS handshake (proof the client really uses TLS), as a NETWORK_ERROR.
    let s = Setup::new(&["bb-gemini-key-1"], |mut l| {
        l.upstream = l.upstream.map(|u| u.replace("http://", "https://"));
        l.config("[upstream]\nmax_attempts = 1\n")
    })
    .await;
    let r = s.gw.generate(json!({"prompt": "over tls"})).await;
    let e = r.error(502, "IMG_NETWORK_ERROR");
    assert_eq!(e["error_type"], "NETWORK_ERROR");
    assert_eq!(s.emu.calls(), 0, "no generateContent call got through");
    assert!(s.gw.log().contains("TLS"), "the log names the TLS failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| {
        l.config("[server]\nbody_timeout_ms = 300\n")
    })
    .await;
    let addr = s.gw.addr();
    let answer = tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // Promise 100 bytes, send 10, then stall.
        let head = format!(
            "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"prompt\":"
        );
        sock.write_all(head.as_bytes()).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = sock.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("IMG_REQUEST_TIMEOUT"), "{answer}");
    assert_eq!(s.emu.calls(), 0);
}
