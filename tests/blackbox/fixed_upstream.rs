//! Answers the emulator never sends, from an upstream that answers every call with
//! one fixed body: found by the parse_response fuzz target, checked end to end.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::json;

use crate::harness::*;

/// An HTTP/1.1 upstream on 127.0.0.1:0 answering every request with 200 and `body`;
/// returns its base URL and the number of calls it has answered.
fn fixed_upstream(body: String) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            // Read the head and the Content-Length body, then answer and close.
            let mut request = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                let Ok(n) = stream.read(&mut buf) else { break };
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, calls)
}

/// Found by the parse_response fuzz target: an image part with empty data became a
/// blob the host then called "taken twice", and the client got 500
/// IMG_POLICY_FAILURE. It is a malformed upstream answer: 502
/// IMG_UPSTREAM_MALFORMED, retried up to `max_attempts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_image_data_is_a_malformed_answer() {
    let body = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": ""}}
    ]}, "finishReason": "STOP"}]});
    let (url, calls) = fixed_upstream(body.to_string());
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch {
        upstream: Some(url),
        ..Launch::default()
    }
    .config("[upstream]\nmax_attempts = 2\n");
    let gw = Gateway::start(dir.path(), launch).await;
    gw.add_account("a1", "a1@test.example", "bb-gemini-key-1")
        .await;
    let r = gw.generate(json!({"prompt": "an empty answer"})).await;
    let e = r.error(502, "IMG_UPSTREAM_MALFORMED");
    assert_eq!(e["error_type"], "API_ERROR");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "retried up to max_attempts"
    );
}
