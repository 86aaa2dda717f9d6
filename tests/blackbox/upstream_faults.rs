//! A hostile upstream: every call answers with the same error, echoing the
//! account key and the prompt it was sent. One request must not disable every
//! account, and the echoed secrets must reach neither the client, the log nor an
//! account's disable reason.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::*;

/// Start an upstream on 127.0.0.1:0 answering every call with `status` and an
/// error body built by `body(key, prompt)`. Returns its base URL.
async fn echoing_upstream(status: u16, body: fn(&str, &str) -> Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                loop {
                    // Read one request: headers, then content-length bytes.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 65536];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.trim()
                                    .eq_ignore_ascii_case(name)
                                    .then(|| v.trim().to_string())
                            })
                            .unwrap_or_default()
                    };
                    let len: usize = header("content-length").parse().unwrap_or(0);
                    while buf.len() < head_end + len {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let request: Value =
                        serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or_default();
                    let prompt = request["contents"][0]["parts"][0]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let answer = body(&header("x-goog-api-key"), &prompt).to_string();
                    let reply = format!(
                        "HTTP/1.1 {status} Error\r\ncontent-type: application/json; charset=UTF-8\r\n\
                         content-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

const KEYS: [&str; 3] = [
    "AIzaSy-fault-key-number-one-1111",
    "AIzaSy-fault-key-number-two-2222",
    "AIzaSy-fault-key-number-three-33",
];

async fn gateway_on(url: String) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        Launch {
            upstream: Some(url),
            ..Launch::default()
        },
    )
    .await;
    for (i, key) in KEYS.iter().enumerate() {
        gw.add_account(&format!("f{i}"), &format!("f{i}@test.example"), key)
            .await;
    }
    (gw, dir)
}

fn assert_no_secrets(what: &str, text: &str, prompt: &str) {
    for key in KEYS {
        assert!(!text.contains(key), "{what} leaks an account key: {text}");
    }
    assert!(!text.contains(prompt), "{what} leaks the prompt: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_403_on_every_account_disables_none_and_leaks_nothing() {
    let url = echoing_upstream(403, |key, prompt| {
        json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
            "message": format!("Permission denied for {key} while generating '{prompt}'.")}})
    })
    .await;
    let (gw, _dir) = gateway_on(url).await;
    let prompt = "a confidential product launch poster";
    let r = gw.generate(json!({"prompt": prompt})).await;
    assert!(r.status >= 500, "{}", r.brief());
    assert_no_secrets("the client body", &String::from_utf8_lossy(&r.body), prompt);
    assert_no_secrets("the log", &gw.log(), prompt);
    let (accounts, _) = gw.list_accounts().await;
    for a in &accounts {
        assert_ne!(a["state"]["kind"], "disabled", "{a:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_specific_error_on_every_account_disables_one_and_keeps_the_pool() {
    let url = echoing_upstream(403, |key, prompt| {
        json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
            "message": format!("Permission denied: Consumer 'api_key:{key}' has been suspended ('{prompt}')."),
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "CONSUMER_SUSPENDED", "domain": "googleapis.com"}]}})
    })
    .await;
    let (gw, _dir) = gateway_on(url).await;
    let prompt = "a suspended account's last request";
    let r = gw.generate(json!({"prompt": prompt})).await;
    assert!(r.status >= 400, "{}", r.brief());
    assert_no_secrets("the client body", &String::from_utf8_lossy(&r.body), prompt);
    let (accounts, _) = gw.list_accounts().await;
    let disabled: Vec<&Value> = accounts
        .iter()
        .filter(|a| a["state"]["kind"] == "disabled")
        .collect();
    assert_eq!(
        disabled.len(),
        1,
        "one request disables one account: {accounts:#?}"
    );
    assert_no_secrets(
        "the disable reason",
        &disabled[0]["state"]["reason"].to_string(),
        prompt,
    );
    assert!(
        gw.log().contains("alert=suspect_disable"),
        "the refused disables are alerted in the log"
    );
    assert_no_secrets("the log", &gw.log(), prompt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_request_deadline_and_load_shedding_past_the_call_queue() {
    let s = Setup::new(&["deadline-key-1"], |l| {
        l.config("[upstream]\nrequest_deadline_ms = 700\nmax_concurrent_calls = 1\nmax_queued_calls = 0\n")
    })
    .await;
    s.emu.set_latency(std::time::Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let r = s.gw.generate(json!({"prompt": "a slow sunrise"})).await;
    let err = r.error(504, "IMG_UPSTREAM_TIMEOUT");
    assert_eq!(err["error_type"], "NETWORK_ERROR");
    assert!(started.elapsed() < std::time::Duration::from_millis(1400));

    // One call in flight, no queue: a second request at the same time is shed.
    let (a, b) = tokio::join!(
        s.gw.generate(json!({"prompt": "a slow sunset, first"})),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            s.gw.generate(json!({"prompt": "a slow sunset, second"}))
                .await
        }
    );
    assert_eq!(a.status, 504, "{}", a.brief());
    b.error(503, "IMG_OVERLOADED");
    assert!(b.retry_after() >= 1);
}
