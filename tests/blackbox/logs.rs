//! The request log (`<data dir>/logs/aperture.log`): one logfmt line per request
//! with the fields operators grep, no prompt text and no secrets.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::harness::*;

const SECRET: &str = "AIzaSy-bb-log-secret-key-4242";

fn prompt_hash(prompt: &str) -> String {
    Sha256::digest(prompt.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..16]
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_per_request_with_the_fields_and_no_secrets() {
    let s = Setup::new(&[SECRET], |l| l).await;
    let gw = &s.gw;
    let ok_prompt = "a secret garden of glass orchids";
    let blocked_prompt = "a prohibited-test garden of iron thorns";

    let ok = gw
        .generate(json!({"prompt": ok_prompt, "size": "1792x1024", "quality": "medium"}))
        .await;
    ok.ok();
    let failed = gw.generate(json!({"prompt": blocked_prompt})).await;
    failed.error(400, "IMG_SAFETY_BLOCKED");
    let invalid = gw.generate(json!({"prompt": "x", "n": 0})).await;
    invalid.error(400, "IMG_INVALID_REQUEST");

    let lines = gw.wait_request_lines(3);
    assert_eq!(
        lines.len(),
        3,
        "one line per request:\n{}",
        lines.join("\n")
    );

    let line = gw.request_line(&ok.request_id());
    assert!(line.contains("msg=\"image request completed\""), "{line}");
    let want = [
        ("model", "gemini-3-pro-image".to_string()),
        ("client", "config:1".to_string()),
        ("prompt_hash", prompt_hash(ok_prompt)),
        ("account_email", "a1@test.example".to_string()),
        ("cache", "MISS".to_string()),
        ("status", "200".to_string()),
        ("n", "1".to_string()),
        ("aspect_ratio", "16:9".to_string()),
        ("image_size", "2K".to_string()),
        ("safety_threshold", "MEDIUM".to_string()),
    ];
    for (k, v) in &want {
        assert_eq!(field(&line, k), Some(v.as_str()), "{k} in {line}");
    }
    let ms = field(&line, "generation_time_ms").unwrap_or_else(|| panic!("{line}"));
    assert!(ms.parse::<u64>().is_ok(), "generation_time_ms={ms}");
    assert!(field(&line, "error_type").is_none(), "{line}");

    let line = gw.request_line(&failed.request_id());
    assert!(line.contains("msg=\"image request failed\""), "{line}");
    let hash = field(&line, "prompt_hash").unwrap_or_else(|| panic!("{line}"));
    assert_eq!(hash, prompt_hash(blocked_prompt));
    assert!(hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(field(&line, "status"), Some("400"), "{line}");
    assert_eq!(field(&line, "error_type"), Some("USER_ERROR"), "{line}");
    assert_eq!(
        field(&line, "error_code"),
        Some("IMG_SAFETY_BLOCKED"),
        "{line}"
    );
    assert!(field(&line, "generation_time_ms").is_some_and(|v| v.parse::<u64>().is_ok()));

    let line = gw.request_line(&invalid.request_id());
    assert_eq!(
        field(&line, "error_code"),
        Some("IMG_INVALID_REQUEST"),
        "{line}"
    );

    // `grep error_type` finds exactly the failed requests.
    let log = gw.log();
    let with_error_type: Vec<&str> = log.lines().filter(|l| l.contains("error_type")).collect();
    assert_eq!(with_error_type.len(), 2, "{}", with_error_type.join("\n"));
    assert!(with_error_type
        .iter()
        .all(|l| l.contains(&failed.request_id()) || l.contains(&invalid.request_id())));

    // Lifecycle lines.
    assert!(log.contains("Proxy server started on http://"), "{log}");
    assert!(log.contains("Cache backend: "), "{log}");
    assert!(log.contains("Cache miss"), "{log}");

    // No prompt text, no secrets, in the file or on stderr.
    let stderr = gw.stderr();
    for text in [&log, &stderr] {
        for secret in [
            ok_prompt,
            blocked_prompt,
            "glass orchids",
            SECRET,
            API_KEY,
            ADMIN_KEY,
        ] {
            assert!(!text.contains(secret), "{secret:?} was logged");
        }
    }

    // A hit is logged too.
    let hit = gw
        .generate(json!({"prompt": ok_prompt, "size": "1792x1024", "quality": "medium"}))
        .await;
    hit.ok();
    let line = gw.request_line(&hit.request_id());
    assert_eq!(field(&line, "cache"), Some("HIT"), "{line}");
    assert!(gw.log().contains("Cache hit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_generation_is_logged_and_its_images_kept() {
    use tokio::io::AsyncWriteExt;
    let s = Setup::simple().await;
    s.emu.set_latency(std::time::Duration::from_millis(800));
    let body = json!({"prompt": "a lighthouse the client gave up on"}).to_string();
    let raw = format!(
        "POST /v1/images/generations HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {API_KEY}\r\n\
         content-type: application/json\r\nx-request-id: gone-client-1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let addr = s.gw.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(stream);

    // The generation goes on; its line says 499 once it is done.
    let mut line = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if s.gw
            .request_lines()
            .iter()
            .any(|l| l.contains("request_id=gone-client-1"))
        {
            line = Some(s.gw.request_line("gone-client-1"));
            break;
        }
    }
    let line = line.expect("a request line for the client that left");
    assert_eq!(field(&line, "status"), Some("499"), "{line}");
    assert_eq!(field(&line, "error_type"), Some("USER_ERROR"), "{line}");
    assert_eq!(
        field(&line, "error_code"),
        Some("IMG_CLIENT_CLOSED"),
        "{line}"
    );
    assert_eq!(s.emu.calls(), 1);

    // The client's retry is served from the cache: no second upstream call.
    s.emu.set_latency(std::time::Duration::ZERO);
    let retry =
        s.gw.generate(json!({"prompt": "a lighthouse the client gave up on"}))
            .await;
    retry.ok();
    assert_eq!(retry.cache(), "HIT");
    assert_eq!(s.emu.calls(), 1);
}
