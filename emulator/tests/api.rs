//! Black-box tests of the emulator over real TCP: a raw HTTP/1.1 client against `Emulator::bind` on port 0.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aperture_emulator::{pixel_size, Emulator, EmulatorConfig, KeySpec, QuotaWindow};
use std::io::Read;

use base64::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MODEL: &str = "gemini-3-pro-image-preview";
const KEY: &str = "test-key";

struct Reply {
    status: u16,
    /// Lower-cased response head (status line and headers).
    head: String,
    /// The body, de-chunked and (if gzip) decompressed.
    body: Vec<u8>,
    /// The body as it came, de-chunked but still compressed, and its chunk sizes.
    chunks: Vec<Vec<u8>>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            line.split_once(':')
                .filter(|(n, _)| n.trim() == name)
                .map(|(_, v)| v.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// Splits a chunked body into its chunks.
fn dechunk(mut raw: &[u8]) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&raw[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("hex chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return chunks;
        }
        chunks.push(raw[..size].to_vec());
        assert_eq!(&raw[size..size + 2], b"\r\n", "chunk trailer");
        raw = &raw[size + 2..];
    }
}

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let rest = &raw[split + 4..];
    let chunks = if head.contains("transfer-encoding: chunked") {
        assert!(!head.contains("content-length"), "{head}");
        dechunk(rest)
    } else {
        vec![rest.to_vec()]
    };
    let mut body = chunks.concat();
    if head.contains("content-encoding: gzip") {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_end(&mut plain)
            .expect("gzip body");
        body = plain;
    }
    Reply {
        status,
        head,
        body,
        chunks,
    }
}

fn generate_path(model: &str) -> String {
    format!("/v1beta/models/{model}:generateContent")
}

async fn generate_with(emu: &Emulator, key: Option<&str>, model: &str, body: &Value) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("x-goog-api-key", k)).into_iter().collect();
    http(
        emu.addr(),
        "POST",
        &generate_path(model),
        &headers,
        body.to_string().as_bytes(),
    )
    .await
}

async fn generate(emu: &Emulator, body: &Value) -> Reply {
    generate_with(emu, Some(KEY), MODEL, body).await
}

fn request(prompt: &str, ratio: Option<&str>, size: Option<&str>) -> Value {
    let mut image_config = json!({});
    if let Some(r) = ratio {
        image_config["aspectRatio"] = json!(r);
    }
    if let Some(s) = size {
        image_config["imageSize"] = json!(s);
    }
    json!({
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": image_config},
    })
}

fn with_safety(prompt: &str, threshold: &str) -> Value {
    let mut body = request(prompt, None, None);
    body["safetySettings"] = json!([
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": threshold},
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
    ]);
    body
}

async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("bind")
}

fn png_size(b64: &str) -> (u32, u32) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let decoder = png::Decoder::new(bytes.as_slice());
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG data");
    (info.width, info.height)
}

/// A baseline JPEG's size from its SOF0 marker (and that it has one: progressive files use SOF2).
fn jpeg_sof0_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], "JPEG magic");
    let mut i = 2;
    while i + 9 < bytes.len() {
        assert_eq!(bytes[i], 0xFF, "marker at {i}");
        let marker = bytes[i + 1];
        let length = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if marker == 0xC0 {
            let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]);
            let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]);
            return (u32::from(w), u32::from(h));
        }
        assert!(marker != 0xC2, "progressive JPEG");
        i += 2 + length;
    }
    panic!("no SOF0 marker");
}

/// The pixel size of a base64 JPEG (checked by SOF0 and, for small ones, by decoding) or PNG.
fn image_size(mime: &str, b64: &str) -> (u32, u32) {
    match mime {
        "image/png" => png_size(b64),
        "image/jpeg" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64");
            let size = jpeg_sof0_size(&bytes);
            if size.0 * size.1 <= 1600 * 1600 {
                let mut decoder = jpeg_decoder::Decoder::new(bytes.as_slice());
                let pixels = decoder.decode().expect("decodable JPEG");
                assert_eq!(pixels.len() as u32, size.0 * size.1 * 3);
            }
            size
        }
        other => panic!("unexpected MIME type {other}"),
    }
}

fn parts_of(v: &Value) -> Vec<Value> {
    v["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap_or_else(|| panic!("no parts in {v}"))
        .clone()
}

fn is_thought(p: &Value) -> bool {
    p["thought"] == json!(true)
}

/// The non-thought image of a successful answer.
fn final_image(v: &Value) -> String {
    final_image_with_mime(v).1
}

/// The MIME type and data of the one non-thought image.
fn final_image_with_mime(v: &Value) -> (String, String) {
    let parts = parts_of(v);
    let images: Vec<&Value> = parts
        .iter()
        .filter(|p| !is_thought(p) && p.get("inlineData").is_some())
        .collect();
    assert_eq!(images.len(), 1, "one final image in {parts:?}");
    let blob = &images[0]["inlineData"];
    (
        blob["mimeType"].as_str().unwrap().to_string(),
        blob["data"].as_str().unwrap().to_string(),
    )
}

fn error_of(reply: &Reply) -> Value {
    reply.json()["error"].clone()
}

#[tokio::test]
async fn images_have_the_documented_pixel_sizes() {
    let emu = emulator(EmulatorConfig::default()).await;
    for (ratio, size) in [
        (Some("16:9"), Some("1K")),
        (Some("2:3"), Some("2K")),
        (Some("21:9"), Some("4K")),
        (None, None),
    ] {
        let started = Instant::now();
        let reply = generate(&emu, &request("a red fox in snow", ratio, size)).await;
        eprintln!("{ratio:?} {size:?}: {:?} end to end", started.elapsed());
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let v = reply.json();
        let (ratio, size) = (ratio.unwrap_or("1:1"), size.unwrap_or("1K"));
        let (mime, data) = final_image_with_mime(&v);
        assert_eq!(mime, "image/jpeg", "3 Pro answers with JPEG by default");
        assert_eq!(image_size(&mime, &data), pixel_size(ratio, size).unwrap());
        assert_eq!(v["candidates"][0]["finishReason"], "STOP");
        assert_eq!(v["modelVersion"], MODEL);
        let usage = &v["usageMetadata"];
        let image_tokens = if size == "4K" { 2000 } else { 1120 };
        // Text tokens are counted but not listed in the details.
        assert!(usage["candidatesTokenCount"].as_u64().unwrap() > image_tokens);
        if let Some(details) = usage.get("candidatesTokensDetails") {
            assert_eq!(
                details,
                &json!([{"modality": "IMAGE", "tokenCount": image_tokens}])
            );
        }
        assert_eq!(usage["serviceTier"], "standard");
        let sum = [
            "promptTokenCount",
            "candidatesTokenCount",
            "thoughtsTokenCount",
        ]
        .iter()
        .map(|k| usage[k].as_u64().unwrap())
        .sum::<u64>();
        assert_eq!(usage["totalTokenCount"].as_u64(), Some(sum));
        assert!(v["responseId"].as_str().is_some_and(|id| !id.is_empty()));
    }
}

#[tokio::test]
async fn thought_parts_come_before_the_final_image() {
    let emu = emulator(EmulatorConfig::default()).await;
    let v = generate(&emu, &request("a lighthouse", Some("16:9"), Some("1K")))
        .await
        .json();
    let content = &v["candidates"][0]["content"];
    assert_eq!(content["role"], "model");
    let parts = content["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[0]["thought"], true);
    assert!(parts[0]["text"].as_str().is_some());
    assert_eq!(parts[1]["thought"], true);
    assert_eq!(parts[1]["inlineData"]["mimeType"], "image/jpeg");
    assert!(parts[2].get("thought").is_none());
    assert!(parts[2]["text"]
        .as_str()
        .unwrap()
        .starts_with("Here is the image"));
    // The first non-thought part and the image carry signatures.
    assert_eq!(
        parts[2]["thoughtSignature"].as_str().map(str::len),
        Some(88)
    );
    assert_eq!(parts[3]["inlineData"]["mimeType"], "image/jpeg");
    assert_eq!(
        parts[3]["thoughtSignature"].as_str().map(str::len),
        Some(88)
    );
    let interim = parts[1]["inlineData"]["data"].as_str().unwrap();
    let fin = parts[3]["inlineData"]["data"].as_str().unwrap();
    assert_ne!(interim, fin);
    assert_eq!(image_size("image/jpeg", interim), (256, 142));

    // responseModalities IMAGE only: no answer text, still thoughts and the image.
    let mut body = request("a lighthouse", None, None);
    body["generationConfig"]["responseModalities"] = json!(["IMAGE"]);
    let v = generate(&emu, &body).await.json();
    let parts = v["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert!(parts
        .iter()
        .all(|p| p.get("text").is_none() || p["thought"] == true));
    final_image(&v);
}

#[tokio::test]
async fn images_are_deterministic_per_prompt() {
    let emu = emulator(EmulatorConfig::default()).await;
    let body = request("a blue whale", Some("4:3"), Some("1K"));
    let a = final_image(&generate(&emu, &body).await.json());
    let b = final_image(&generate(&emu, &body).await.json());
    assert_eq!(a, b);
    // A fresh emulator (no cache) renders the same bytes.
    let other = emulator(EmulatorConfig::default()).await;
    assert_eq!(a, final_image(&generate(&other, &body).await.json()));
    let c = final_image(
        &generate(&emu, &request("a green whale", Some("4:3"), Some("1K")))
            .await
            .json(),
    );
    assert_ne!(a, c);
}

#[tokio::test]
async fn trigger_words_produce_each_safety_outcome() {
    let emu = emulator(EmulatorConfig::default()).await;

    let v = generate(&emu, &request("a Prohibited-Test scene", None, None)).await;
    assert_eq!(v.status, 200);
    let v = v.json();
    assert_eq!(v["promptFeedback"]["blockReason"], "PROHIBITED_CONTENT");
    assert!(v.get("candidates").is_none());
    assert!(v["usageMetadata"]["promptTokenCount"].as_u64().is_some());

    let v = generate(&emu, &request("unsafe-image-test", None, None))
        .await
        .json();
    let candidate = &v["candidates"][0];
    assert_eq!(candidate["finishReason"], "IMAGE_SAFETY");
    assert!(candidate.get("content").is_none());

    // "violent" is MEDIUM: passes BLOCK_ONLY_HIGH, blocked at BLOCK_LOW_AND_ABOVE and by default.
    let v = generate(&emu, &with_safety("a violent storm", "BLOCK_ONLY_HIGH"))
        .await
        .json();
    let candidate = &v["candidates"][0];
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(
        candidate["safetyRatings"],
        json!([{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "MEDIUM", "blocked": false}])
    );
    final_image(&v);

    for body in [
        with_safety("a violent storm", "BLOCK_LOW_AND_ABOVE"),
        request("a violent storm", None, None),
        with_safety("gore", "BLOCK_ONLY_HIGH"),
    ] {
        let v = generate(&emu, &body).await.json();
        let candidate = &v["candidates"][0];
        assert_eq!(candidate["finishReason"], "SAFETY", "{body}");
        assert!(candidate.get("content").is_none());
        let ratings = candidate["safetyRatings"].as_array().unwrap();
        assert!(ratings
            .iter()
            .any(|r| r["blocked"] == true && r["category"] == "HARM_CATEGORY_DANGEROUS_CONTENT"));
    }
    let v = generate(&emu, &with_safety("gore", "OFF")).await.json();
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
}

fn retry_delay(error: &Value) -> String {
    error["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .expect("RetryInfo")["retryDelay"]
        .as_str()
        .unwrap()
        .to_string()
}

fn seconds(delay: &str) -> f64 {
    delay.strip_suffix('s').unwrap().parse().unwrap()
}

#[tokio::test]
async fn quotas_answer_the_real_429() {
    let config = EmulatorConfig {
        keys: vec![
            KeySpec::with_quota("limited", 2, QuotaWindow::Minute),
            KeySpec::new(KEY),
        ],
        ..EmulatorConfig::default()
    };
    let emu = emulator(config).await;
    let body = request("a cat", None, None);
    for _ in 0..2 {
        assert_eq!(
            generate_with(&emu, Some("limited"), MODEL, &body)
                .await
                .status,
            200
        );
    }
    let reply = generate_with(&emu, Some("limited"), MODEL, &body).await;
    assert_eq!(reply.status, 429);
    let error = error_of(&reply);
    assert_eq!(error["code"], 429);
    assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
    let details = error["details"].as_array().unwrap();
    assert_eq!(details.len(), 3);
    assert_eq!(
        details[0]["@type"],
        "type.googleapis.com/google.rpc.QuotaFailure"
    );
    assert_eq!(
        details[0]["violations"][0],
        json!({
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            "quotaDimensions": {"location": "global", "model": "gemini-3-pro-image"},
            "quotaValue": "2"
        })
    );
    assert_eq!(details[1]["@type"], "type.googleapis.com/google.rpc.Help");
    assert_eq!(
        details[1]["links"][0]["url"],
        "https://ai.google.dev/gemini-api/docs/rate-limits"
    );
    // RetryInfo has whole seconds; the message keeps nanoseconds, as production does.
    let delay = retry_delay(&error);
    assert!(
        delay.strip_suffix('s').unwrap().parse::<u64>().is_ok(),
        "{delay}"
    );
    assert!(seconds(&delay) >= 0.0 && seconds(&delay) <= 60.0);
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("You exceeded your current quota"));
    assert!(message.contains("limit: 2, model: gemini-3-pro-image\n"));
    let in_message = message
        .rsplit_once("Please retry in ")
        .unwrap()
        .1
        .strip_suffix("s.")
        .unwrap();
    let (whole, fraction) = in_message.split_once('.').expect("fractional");
    assert_eq!(fraction.len(), 9, "{message}");
    assert_eq!(format!("{whole}s"), delay);
    // Other keys are unaffected.
    assert_eq!(generate(&emu, &body).await.status, 200);

    emu.exhaust_key(KEY, QuotaWindow::Day);
    let reply = generate(&emu, &body).await;
    assert_eq!(reply.status, 429);
    let error = error_of(&reply);
    assert_eq!(
        error["details"][0]["violations"][0]["quotaId"],
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    );
    assert!(seconds(&retry_delay(&error)) > 3600.0);
    // Still exhausted later; replacing the key restores it.
    assert_eq!(generate(&emu, &body).await.status, 429);
    emu.add_key(KeySpec::new(KEY));
    assert_eq!(generate(&emu, &body).await.status, 200);

    emu.exhaust_key(KEY, QuotaWindow::Minute);
    let error = error_of(&generate(&emu, &body).await);
    assert_eq!(
        error["details"][0]["violations"][0]["quotaId"],
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    );
    assert!(seconds(&retry_delay(&error)) <= 60.0);
}

#[tokio::test]
async fn keys_are_checked_like_the_real_api() {
    let emu = emulator(EmulatorConfig::demo(vec![KEY.to_string()])).await;
    let body = request("a cat", None, None);

    let reply = generate_with(&emu, Some("wrong"), MODEL, &body).await;
    assert_eq!(reply.status, 400);
    let message = "API key not valid. Please pass a valid API key.";
    assert_eq!(
        reply.json(),
        json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT", "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message}
        ]}})
    );

    let reply = generate_with(&emu, None, MODEL, &body).await;
    assert_eq!(reply.status, 403);
    let error = error_of(&reply);
    assert_eq!(error["status"], "PERMISSION_DENIED");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .starts_with("Method doesn't allow unregistered callers"));

    // The key may also come in the query string.
    let reply = http(
        emu.addr(),
        "POST",
        &format!("{}?key={KEY}", generate_path(MODEL)),
        &[],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200);

    emu.add_key(KeySpec::new("added"));
    assert_eq!(
        generate_with(&emu, Some("added"), MODEL, &body)
            .await
            .status,
        200
    );
    assert_eq!(emu.calls_for_key("wrong"), 1);
    assert_eq!(emu.calls_for_key(KEY), 1);
    assert_eq!(emu.calls(), 4);

    // With no key list any key is accepted except invalid*.
    let open = emulator(EmulatorConfig::default()).await;
    assert_eq!(
        generate_with(&open, Some("anything"), MODEL, &body)
            .await
            .status,
        200
    );
    assert_eq!(
        generate_with(&open, Some("invalid-key"), MODEL, &body)
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn bad_requests_are_rejected_like_the_real_api() {
    let emu = emulator(EmulatorConfig::default()).await;
    let invalid = |reply: Reply| {
        assert_eq!(
            reply.status,
            400,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let error = error_of(&reply);
        assert_eq!(error["status"], "INVALID_ARGUMENT");
        error["message"].as_str().unwrap().to_string()
    };

    let mut body = request("a cat", None, None);
    body["generationConfig"]["candidateCount"] = json!(2);
    assert_eq!(
        invalid(generate(&emu, &body).await),
        "Multiple candidates is not enabled for this model"
    );
    assert!(
        invalid(generate(&emu, &request("a cat", Some("7:3"), None)).await)
            .contains("aspect_ratio must be one of '1:1', '2:3'")
    );
    assert_eq!(
        invalid(generate(&emu, &request("a cat", None, Some("3K"))).await),
        "Request contains an invalid argument."
    );
    assert!(invalid(generate(&emu, &json!({"contents": []})).await)
        .contains("contents is not specified"));
    let mut body = request("a cat", None, None);
    body["safetySettings"] =
        json!([{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "SOMETIMES"}]);
    assert!(invalid(generate(&emu, &body).await).contains("HarmBlockThreshold"));
    let reply = http(
        emu.addr(),
        "POST",
        &generate_path(MODEL),
        &[("x-goog-api-key", KEY)],
        b"{not json",
    )
    .await;
    assert!(invalid(reply).starts_with("Invalid JSON payload received."));

    let reply = generate_with(&emu, Some(KEY), "gemini-1.0-pro", &request("x", None, None)).await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.json(),
        json!({"error": {"code": 404, "status": "NOT_FOUND", "message":
            "models/gemini-1.0-pro is not found for API version v1beta, or is not supported for generateContent. \
             Call ListModels to see the list of available models and their supported methods."}})
    );
    // The alias and the flash models are served.
    for model in [
        "gemini-3-pro-image",
        "gemini-3.1-flash-image",
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-image-preview",
    ] {
        let reply = generate_with(&emu, Some(KEY), model, &request("x", None, None)).await;
        assert_eq!(reply.status, 200, "{model}");
    }
}

#[tokio::test]
async fn models_are_listed() {
    let emu = emulator(EmulatorConfig::default()).await;
    let reply = http(
        emu.addr(),
        "GET",
        "/v1beta/models",
        &[("x-goog-api-key", KEY)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    let names: Vec<String> = reply.json()["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "models/gemini-3-pro-image-preview",
            "models/gemini-3.1-flash-image",
            "models/gemini-2.5-flash-image",
            "models/gemini-2.5-flash-image-preview"
        ]
    );
    let reply = http(emu.addr(), "GET", "/v1beta/models", &[], b"").await;
    assert_eq!(reply.status, 403);
}

#[tokio::test]
async fn injected_failures_then_success() {
    let emu = emulator(EmulatorConfig::default()).await;
    let body = request("a cat", None, None);
    emu.fail_next(&[503, 500]);
    let reply = generate(&emu, &body).await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.json(),
        json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                         "status": "UNAVAILABLE"}})
    );
    let reply = generate(&emu, &body).await;
    assert_eq!(reply.status, 500);
    assert_eq!(error_of(&reply)["status"], "INTERNAL");
    assert_eq!(generate(&emu, &body).await.status, 200);
    assert_eq!(emu.calls(), 3);

    // The same over HTTP, for the standalone emulator.
    let reply = http(
        emu.addr(),
        "POST",
        "/_emulator/fail-next",
        &[],
        br#"{"statuses":[504, 429]}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = generate(&emu, &body).await;
    assert_eq!(
        (reply.status, error_of(&reply)["status"].clone()),
        (504, json!("DEADLINE_EXCEEDED"))
    );
    let reply = generate(&emu, &body).await;
    assert_eq!(reply.status, 429);
    assert!(retry_delay(&error_of(&reply)).ends_with('s'));
    let stats = http(emu.addr(), "GET", "/_emulator/stats", &[], b"")
        .await
        .json();
    assert_eq!(stats["calls"], 5);
    assert_eq!(stats["calls_by_key"][KEY], 5);
    let reply = http(emu.addr(), "POST", "/_emulator/fail-next", &[], b"[]").await;
    assert_eq!(reply.status, 400);
    let reply = http(
        emu.addr(),
        "POST",
        "/_emulator/exhaust-key",
        &[],
        br#"{"key":"test-key","per":"day"}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(generate(&emu, &body).await.status, 429);
}

#[tokio::test]
async fn latency_is_added_before_answering() {
    let emu = emulator(EmulatorConfig::default()).await;
    let body = request("a cat", None, None);
    emu.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(generate(&emu, &body).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let reply = http(
        emu.addr(),
        "POST",
        "/_emulator/latency",
        &[],
        br#"{"ms":0}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    let stats = http(emu.addr(), "GET", "/_emulator/stats", &[], b"")
        .await
        .json();
    assert_eq!(stats["latency_ms"], 0);
}

#[tokio::test]
async fn shutdown_refuses_new_connections_and_drops_open_ones() {
    let emu = emulator(EmulatorConfig::default()).await;
    assert_eq!(
        generate(&emu, &request("a cat", None, None)).await.status,
        200
    );
    let mut idle = TcpStream::connect(emu.addr()).await.unwrap();
    // Let the server pick the idle connection up before shutting down.
    tokio::time::sleep(Duration::from_millis(50)).await;
    emu.shutdown();
    let err = TcpStream::connect(emu.addr()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("the idle connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)));
}

#[tokio::test]
async fn base_url_dials_the_bound_port() {
    let emu = emulator(EmulatorConfig::default()).await;
    assert_eq!(
        emu.base_url(),
        format!("http://127.0.0.1:{}", emu.addr().port())
    );
    let wildcard = Emulator::bind("0.0.0.0:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    assert!(wildcard.base_url().starts_with("http://127.0.0.1:"));
}

// ---- Answer shapes: per-call `emu:` directives, the instance-wide shape, named errors, wire format. ----

/// A request whose prompt carries directives.
fn directed(prompt: &str) -> Value {
    request(prompt, Some("16:9"), Some("1K"))
}

async fn ok_json(emu: &Emulator, model: &str, body: &Value) -> Value {
    let reply = generate_with(emu, Some(KEY), model, body).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// The images of an answer: (thought, mime, data, signature length).
fn images_of(v: &Value) -> Vec<(bool, String, String, Option<usize>)> {
    parts_of(v)
        .iter()
        .filter(|p| p.get("inlineData").is_some())
        .map(|p| {
            (
                is_thought(p),
                p["inlineData"]["mimeType"].as_str().unwrap().to_string(),
                p["inlineData"]["data"].as_str().unwrap().to_string(),
                p["thoughtSignature"].as_str().map(str::len),
            )
        })
        .collect()
}

#[tokio::test]
async fn layouts_produce_every_real_arrangement() {
    let emu = emulator(EmulatorConfig::default()).await;
    let full = pixel_size("16:9", "1K").unwrap();

    // drafts-N: N unflagged images, each signed, smaller drafts then the final one.
    let v = ok_json(&emu, MODEL, &directed("a harbour emu:layout=drafts-4")).await;
    let images = images_of(&v);
    assert_eq!(images.len(), 4);
    for (i, (thought, mime, data, sig)) in images.iter().enumerate() {
        assert!(!thought);
        assert_eq!(sig, &Some(88));
        let size = image_size(mime, data);
        if i == 3 {
            assert_eq!(size, full);
        } else {
            assert_eq!(size, (256, 142));
        }
    }
    let distinct: std::collections::HashSet<&String> = images.iter().map(|i| &i.2).collect();
    assert_eq!(distinct.len(), 4, "drafts differ");

    // thought-only: the sole image is flagged as a thought.
    let v = ok_json(&emu, MODEL, &directed("a harbour emu:layout=thought-only")).await;
    let images = images_of(&v);
    assert_eq!(images.len(), 1);
    assert!(images[0].0);
    assert_eq!(image_size(&images[0].1, &images[0].2), full);

    // finals-N on 2.5 Flash: N unflagged images, no signatures, 2.5's own pixel size, PNG.
    let v = ok_json(
        &emu,
        "gemini-2.5-flash-image",
        &directed("a harbour emu:layout=finals-3"),
    )
    .await;
    let images = images_of(&v);
    assert_eq!(images.len(), 3);
    for (thought, mime, data, sig) in &images {
        assert!(!thought && sig.is_none());
        assert_eq!(mime, "image/png");
        assert_eq!(image_size(mime, data), (1344, 768));
    }
    assert!(parts_of(&v).iter().all(|p| !is_thought(p)));
    assert!(v["usageMetadata"].get("thoughtsTokenCount").is_none());

    // image-only: exactly one part.
    let v = ok_json(&emu, MODEL, &directed("a harbour emu:layout=image-only")).await;
    let parts = parts_of(&v);
    assert_eq!(parts.len(), 1);
    assert!(parts[0].get("inlineData").is_some());

    // 2.5 Flash by default: text then one PNG, no thoughts; with emu:layout=interim a thought image too.
    let v = ok_json(&emu, "gemini-2.5-flash-image", &directed("a harbour")).await;
    let parts = parts_of(&v);
    assert_eq!(parts.len(), 2);
    assert!(parts[0]["text"].is_string() && parts[0].get("thoughtSignature").is_none());
    assert_eq!(images_of(&v)[0].1, "image/png");
    let v = ok_json(
        &emu,
        "gemini-2.5-flash-image",
        &directed("a harbour emu:layout=interim"),
    )
    .await;
    assert!(images_of(&v)[0].0, "interim image flagged");

    // Bad layouts fail loudly.
    for bad in ["drafts-1", "drafts-11", "finals-5", "sideways"] {
        let reply = generate(&emu, &directed(&format!("x emu:layout={bad}"))).await;
        assert_eq!(reply.status, 400);
        assert!(error_of(&reply)["message"].as_str().unwrap().contains(bad));
    }
}

#[tokio::test]
async fn text_modes_place_text_around_the_image() {
    let emu = emulator(EmulatorConfig::default()).await;
    // (mode, text before?, text after?, long?)
    for (mode, before, after, long) in [
        ("none", false, false, false),
        ("before", true, false, false),
        ("after", false, true, false),
        ("split", true, true, false),
        ("long-before", true, false, true),
        ("long-after", false, true, true),
        ("long-split", true, true, true),
    ] {
        let v = ok_json(&emu, MODEL, &directed(&format!("a fox emu:text={mode}"))).await;
        let parts: Vec<Value> = parts_of(&v)
            .into_iter()
            .filter(|p| !is_thought(p))
            .collect();
        let image_at = parts
            .iter()
            .position(|p| p.get("inlineData").is_some())
            .unwrap();
        let texts_before = parts[..image_at]
            .iter()
            .filter(|p| p["text"].is_string())
            .count();
        let texts_after = parts[image_at + 1..]
            .iter()
            .filter(|p| p["text"].is_string())
            .count();
        assert_eq!(
            (texts_before > 0, texts_after > 0),
            (before, after),
            "{mode}"
        );
        for p in parts.iter().filter(|p| p["text"].is_string()) {
            let text = p["text"].as_str().unwrap();
            if long {
                assert!(
                    (3000..=6500).contains(&text.len()),
                    "{mode}: {}",
                    text.len()
                );
                assert!(text.contains("日本語") && text.contains('🌅') && text.contains("café"));
            } else {
                assert!(text.len() < 400, "{mode}");
            }
        }
    }
}

#[tokio::test]
async fn echo_repeats_the_whole_prompt_unabridged() {
    let emu = emulator(EmulatorConfig::default()).await;
    let prompt = format!(
        "{} 日本語のプロンプト 🎨 crème brûlée emu:text=echo {}",
        "a very long prompt ".repeat(20),
        "ending here ✓"
    );
    assert!(prompt.chars().count() > 120);
    let v = ok_json(&emu, MODEL, &directed(&prompt)).await;
    let parts = parts_of(&v);
    let last = parts.last().unwrap();
    assert_eq!(last["text"].as_str(), Some(prompt.as_str()));
    let image_at = parts
        .iter()
        .position(|p| p.get("inlineData").is_some() && !is_thought(p));
    assert!(
        image_at.unwrap() < parts.len() - 1,
        "echo comes after the image"
    );
}

#[tokio::test]
async fn mime_follows_the_model_unless_asked() {
    let emu = emulator(EmulatorConfig::default()).await;
    for (model, prompt, mime) in [
        (MODEL, "a cat", "image/jpeg"),
        ("gemini-3.1-flash-image", "a cat", "image/jpeg"),
        ("gemini-2.5-flash-image", "a cat", "image/png"),
        (MODEL, "a cat emu:mime=png", "image/png"),
        (
            "gemini-2.5-flash-image",
            "a cat emu:mime=jpeg",
            "image/jpeg",
        ),
    ] {
        let v = ok_json(&emu, model, &directed(prompt)).await;
        let (got, data) = final_image_with_mime(&v);
        assert_eq!(got, mime, "{model} {prompt}");
        let expected = aperture_emulator::pixel_size_for(model, "16:9", "1K").unwrap();
        assert_eq!(image_size(&got, &data), expected, "{model} {prompt}");
    }
    // 3.1 Flash: 512 and the extreme ratios.
    let v = ok_json(
        &emu,
        "gemini-3.1-flash-image",
        &request("a tower", Some("1:8"), Some("512")),
    )
    .await;
    let (mime, data) = final_image_with_mime(&v);
    assert_eq!(image_size(&mime, &data), (192, 1536));
    let tokens = v["usageMetadata"]["candidatesTokenCount"].as_u64().unwrap();
    assert!(tokens > 747);
}

#[tokio::test]
async fn real_signatures_are_production_sized() {
    let emu = emulator(EmulatorConfig::default()).await;
    let v = ok_json(&emu, MODEL, &directed("a cat emu:signature=real")).await;
    let parts = parts_of(&v);
    let image = parts
        .iter()
        .find(|p| p.get("inlineData").is_some() && !is_thought(p))
        .unwrap();
    let signature = image["thoughtSignature"].as_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .unwrap();
    assert_eq!(decoded.len(), 1_087_904 + 4);
    assert!(signature.starts_with("EqCzQg"));
    let text = parts
        .iter()
        .find(|p| p["text"].is_string() && !is_thought(p))
        .unwrap();
    let len = text["thoughtSignature"].as_str().unwrap().len();
    assert!((200..=8192).contains(&len), "{len}");
    // Deterministic per prompt.
    let again = ok_json(&emu, MODEL, &directed("a cat emu:signature=real")).await;
    assert_eq!(parts_of(&again), parts);

    // Text only: the first non-thought text part carries a 0.2-8 KB signature.
    let mut body = directed("a cat emu:signature=real");
    body["generationConfig"]["responseModalities"] = json!(["TEXT"]);
    let v = ok_json(&emu, MODEL, &body).await;
    let first = parts_of(&v).into_iter().find(|p| !is_thought(p)).unwrap();
    let len = first["thoughtSignature"].as_str().unwrap().len();
    assert!((200..=8192).contains(&len), "{len}");
    assert!(images_of(&v).is_empty());
}

#[tokio::test]
async fn finish_reasons_without_an_image() {
    let emu = emulator(EmulatorConfig::default()).await;
    let image_safety = "Unable to show the generated image. The image was filtered out because it violated \
        Google's [Generative AI Prohibited Use policy](https://policies.google.com/terms/generative-ai/use-policy). \
        You will not be charged for blocked images. Try rephrasing the prompt. If you think this was an error, \
        [send feedback](https://ai.google.dev/gemini-api/docs/troubleshooting).";
    let image_other =
        "Unable to show the generated image. The model could not generate the image based on the \
        prompt provided. You will not be charged for this request. Try rephrasing the prompt.";
    for (reason, content) in [
        ("IMAGE_SAFETY", Some(json!({"parts": null}))),
        ("IMAGE_OTHER", Some(json!({}))),
        ("IMAGE_PROHIBITED_CONTENT", Some(json!({"role": "model"}))),
        ("IMAGE_RECITATION", None),
        ("NO_IMAGE", None),
        ("RECITATION", None),
        ("MAX_TOKENS", None),
        ("OTHER", None),
        ("SAFETY", None),
        ("PROHIBITED_CONTENT", None),
        ("MALFORMED_RESPONSE", None),
    ] {
        let v = ok_json(
            &emu,
            MODEL,
            &directed(&format!("a cat emu:finish={reason}")),
        )
        .await;
        let candidates = v["candidates"].as_array().unwrap();
        assert_eq!(candidates.len(), 1);
        let c = &candidates[0];
        assert_eq!(c["finishReason"], reason);
        assert_eq!(c.get("content").cloned(), content, "{reason}");
        let message = c["finishMessage"].as_str().unwrap();
        match reason {
            "IMAGE_SAFETY" => assert_eq!(message, image_safety),
            "IMAGE_OTHER" => assert_eq!(message, image_other),
            "IMAGE_PROHIBITED_CONTENT" => assert!(message.starts_with(
                "Unable to show the generated image due to interests of third-party content providers. \
                 Please edit your prompt and try again. If you think this was an error, send feedback. \
                 Support code: 355"
            )),
            _ => assert!(!message.is_empty()),
        }
        let usage = &v["usageMetadata"];
        let thoughts = usage["thoughtsTokenCount"].as_u64().unwrap();
        let candidates = usage["candidatesTokenCount"].as_u64().unwrap();
        assert!(candidates == 0 || candidates == thoughts, "{usage}");
        assert_eq!(
            usage["totalTokenCount"].as_u64().unwrap(),
            usage["promptTokenCount"].as_u64().unwrap() + thoughts
        );
    }
    // Content shapes can be chosen.
    for (name, content) in [
        ("absent", None),
        ("empty", Some(json!({}))),
        ("role", Some(json!({"role": "model"}))),
        ("null-parts", Some(json!({"parts": null}))),
    ] {
        let v = ok_json(
            &emu,
            MODEL,
            &directed(&format!("a cat emu:finish=IMAGE_OTHER emu:content={name}")),
        )
        .await;
        assert_eq!(
            v["candidates"][0].get("content").cloned(),
            content,
            "{name}"
        );
    }
}

#[tokio::test]
async fn prompt_blocks_and_text_refusals() {
    let emu = emulator(EmulatorConfig::default()).await;
    for reason in ["OTHER", "SAFETY", "PROHIBITED_CONTENT", "IMAGE_SAFETY"] {
        let v = ok_json(&emu, MODEL, &directed(&format!("a cat emu:block={reason}"))).await;
        assert_eq!(v["promptFeedback"]["blockReason"], reason);
        assert!(v.get("candidates").is_none());
        assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 0);
        assert!(v["usageMetadata"]["promptTokenCount"].as_u64().unwrap() > 0);
        assert_eq!(v["modelVersion"], MODEL);
    }
    let v = ok_json(&emu, MODEL, &directed("a cat emu:refuse=text")).await;
    let c = &v["candidates"][0];
    assert_eq!(c["finishReason"], "STOP");
    let parts = parts_of(&v);
    assert_eq!(parts.len(), 1);
    assert_eq!(
        parts[0]["text"],
        "I can't generate images that are sexually explicit."
    );
    assert!(parts[0]["thoughtSignature"].is_string());
}

#[tokio::test]
async fn named_errors_have_the_real_bodies() {
    let emu = emulator(EmulatorConfig::default()).await;
    let named = |reply: &Reply| error_of(reply);
    for (name, status, grpc) in [
        ("400-unknown-fields", 400, "INVALID_ARGUMENT"),
        ("400-aspect", 400, "INVALID_ARGUMENT"),
        ("400-image-size", 400, "INVALID_ARGUMENT"),
        ("400-multiple-candidates", 400, "INVALID_ARGUMENT"),
        ("400-thinking", 400, "INVALID_ARGUMENT"),
        ("400-invalid-image", 400, "INVALID_ARGUMENT"),
        ("400-mime", 400, "INVALID_ARGUMENT"),
        ("400-payload", 400, "INVALID_ARGUMENT"),
        ("400-location", 400, "FAILED_PRECONDITION"),
        ("403-suspended", 403, "PERMISSION_DENIED"),
        ("403-service-blocked", 403, "PERMISSION_DENIED"),
        ("403-permission", 403, "PERMISSION_DENIED"),
        ("403-billing", 403, "PERMISSION_DENIED"),
        ("404-model", 404, "NOT_FOUND"),
        ("429-multi", 429, "RESOURCE_EXHAUSTED"),
        ("429-limit0", 429, "RESOURCE_EXHAUSTED"),
        ("429-paid-daily", 429, "RESOURCE_EXHAUSTED"),
        ("429-bare", 429, "RESOURCE_EXHAUSTED"),
        ("429-help-only", 429, "RESOURCE_EXHAUSTED"),
        ("500-internal", 500, "INTERNAL"),
        ("503-overloaded", 503, "UNAVAILABLE"),
        ("503-deadline", 503, "UNAVAILABLE"),
        ("504", 504, "DEADLINE_EXCEEDED"),
    ] {
        let reply = generate(&emu, &directed(&format!("a cat emu:error={name}"))).await;
        assert_eq!(reply.status, status, "{name}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        let e = named(&reply);
        assert_eq!(e["code"], status, "{name}");
        assert_eq!(e["status"], grpc, "{name}");
        // Pretty-printed with two spaces, like Google.
        assert!(
            reply.text().starts_with("{\n  \"error\": {\n    \""),
            "{name}"
        );
    }

    let e = named(&generate(&emu, &directed("x emu:error=400-unknown-fields")).await);
    assert_eq!(e["message"].as_str().unwrap().lines().count(), 2);
    assert_eq!(
        e["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    let e = named(
        &generate_with(
            &emu,
            Some(KEY),
            "gemini-3.1-flash-image",
            &directed("x emu:error=400-aspect"),
        )
        .await,
    );
    assert_eq!(
        e["message"],
        "* GenerateContentRequest.generation_config.image_config.aspect_ratio: aspect_ratio must be one of '1:1', \
         '1:4', '1:8', '2:3', '3:2', '3:4', '4:1', '4:3', '4:5', '5:4', '8:1', '9:16', '16:9', or '21:9'.\n"
    );
    let e = named(&generate(&emu, &directed("x emu:error=403-suspended")).await);
    assert_eq!(
        e["message"],
        format!("Permission denied: Consumer 'api_key:{KEY}' has been suspended.")
    );
    assert_eq!(e["details"][0]["reason"], "CONSUMER_SUSPENDED");
    let e = named(&generate(&emu, &directed("x emu:error=403-service-blocked")).await);
    assert_eq!(e["details"][0]["reason"], "API_KEY_SERVICE_BLOCKED");
    assert!(
        named(&generate(&emu, &directed("x emu:error=403-billing")).await)["message"]
            .as_str()
            .unwrap()
            .starts_with("Lightning dunning decision is deny")
    );

    let e = named(
        &generate_with(
            &emu,
            Some(KEY),
            "gemini-2.5-flash-image",
            &directed("x emu:error=429-limit0"),
        )
        .await,
    );
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("limit: 0, model: gemini-2.5-flash-preview-image"),
        "{message}"
    );
    assert_eq!(
        e["details"][0]["violations"][0]["quotaDimensions"]["model"],
        "gemini-2.5-flash-preview-image"
    );
    let e = named(&generate(&emu, &directed("x emu:error=429-multi")).await);
    let ids: Vec<&str> = e["details"][0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["quotaId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter().any(|i| i.contains("PerMinute")) && ids.iter().any(|i| i.contains("PerDay"))
    );
    let e = named(&generate(&emu, &directed("x emu:error=429-paid-daily")).await);
    assert_eq!(
        e["details"][0]["violations"][0]["quotaId"],
        "GenerateRequestsPerDayPerProjectPerModel"
    );
    assert!(e["message"]
        .as_str()
        .unwrap()
        .ends_with("Please retry in 1h52m56.409571576s."));
    assert_eq!(retry_delay(&e), "6776s");
    let e = named(&generate(&emu, &directed("x emu:error=429-bare")).await);
    assert_eq!(
        e["message"],
        "Resource has been exhausted (e.g. check quota)."
    );
    assert!(e.get("details").is_none());
    let e = named(&generate(&emu, &directed("x emu:error=429-help-only")).await);
    let details = e["details"].as_array().unwrap();
    assert_eq!(details.len(), 1);
    assert_eq!(details[0]["@type"], "type.googleapis.com/google.rpc.Help");
    let e = named(&generate(&emu, &directed("x emu:error=503-deadline")).await);
    assert_eq!(
        e["message"],
        "Deadline expired before operation could complete."
    );

    for (name, status, title) in [
        ("413-html", 413, "Error 413 (Request Entity Too Large)!!1"),
        ("502-html", 502, "Error 502 (Server Error)!!1"),
    ] {
        let reply = generate(&emu, &directed(&format!("x emu:error={name}"))).await;
        assert_eq!(reply.status, status);
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(reply.text().contains(title));
    }

    // Unknown names and values name themselves.
    for (prompt, named_part) in [
        ("x emu:error=418-teapot", "418-teapot"),
        ("x emu:colour=red", "colour"),
        ("x emu:finish=STOP", "STOP"),
        ("x emu:mime=gif", "gif"),
    ] {
        let reply = generate(&emu, &directed(prompt)).await;
        assert_eq!(reply.status, 400, "{prompt}");
        let e = error_of(&reply);
        assert_eq!(e["status"], "INVALID_ARGUMENT");
        assert!(e["message"].as_str().unwrap().contains(named_part), "{e}");
    }
}

#[tokio::test]
async fn named_failures_queue_for_everyone_or_one_key() {
    let emu = emulator(EmulatorConfig::default()).await;
    let body = request("a cat", None, None);
    emu.fail_next_named(&["429-limit0", "503-overloaded"])
        .unwrap();
    assert!(emu.fail_next_named(&["nope"]).is_err());
    let first = generate(&emu, &body).await;
    assert_eq!(first.status, 429);
    assert!(error_of(&first)["message"]
        .as_str()
        .unwrap()
        .contains("limit: 0"));
    assert_eq!(generate(&emu, &body).await.status, 503);
    assert_eq!(generate(&emu, &body).await.status, 200);

    // Over HTTP, only for one key: other keys are unaffected.
    let reply = http(
        emu.addr(),
        "POST",
        "/_emulator/fail-next",
        &[],
        br#"{"errors": ["429-limit0", "502-html"], "statuses": [500], "key": "account-b"}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(generate(&emu, &body).await.status, 200);
    let b = |emu: &Emulator| {
        let emu = emu.clone();
        let body = body.clone();
        async move {
            generate_with(&emu, Some("account-b"), MODEL, &body)
                .await
                .status
        }
    };
    assert_eq!(b(&emu).await, 500);
    assert_eq!(b(&emu).await, 429);
    assert_eq!(b(&emu).await, 502);
    assert_eq!(b(&emu).await, 200);
    let reply = http(
        emu.addr(),
        "POST",
        "/_emulator/fail-next",
        &[],
        br#"{"errors": ["429-nope"]}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(error_of(&reply)["message"]
        .as_str()
        .unwrap()
        .contains("429-nope"));
}

#[tokio::test]
async fn the_instance_shape_is_the_default_and_directives_override_it() {
    let emu = emulator(EmulatorConfig {
        shape: aperture_emulator::Shape::from_pairs([("mime", "png"), ("text", "none")]).unwrap(),
        ..EmulatorConfig::default()
    })
    .await;
    let v = ok_json(&emu, MODEL, &directed("a cat")).await;
    assert_eq!(final_image_with_mime(&v).0, "image/png");
    assert!(parts_of(&v)
        .iter()
        .all(|p| is_thought(p) || p.get("inlineData").is_some()));
    let v = ok_json(&emu, MODEL, &directed("a cat emu:mime=jpeg")).await;
    assert_eq!(final_image_with_mime(&v).0, "image/jpeg");

    let reply = http(
        emu.addr(),
        "POST",
        "/_emulator/shape",
        &[],
        br#"{"layout": "finals-2", "error": null, "delay-ms": 0}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let shown = http(emu.addr(), "GET", "/_emulator/shape", &[], b"")
        .await
        .json();
    assert_eq!(shown, json!({"layout": "finals-2", "delay-ms": 0}));
    let v = ok_json(&emu, MODEL, &directed("a cat")).await;
    assert_eq!(images_of(&v).len(), 2);
    let reply = http(
        emu.addr(),
        "POST",
        "/_emulator/shape",
        &[],
        br#"{"layout": "diagonal"}"#,
    )
    .await;
    assert_eq!(reply.status, 400);

    emu.set_shape(aperture_emulator::Shape::from_pairs([("error", "503-overloaded")]).unwrap());
    assert_eq!(generate(&emu, &directed("a cat")).await.status, 503);
    emu.set_shape(aperture_emulator::Shape::default());
    assert_eq!(generate(&emu, &directed("a cat")).await.status, 200);
}

#[tokio::test]
async fn delay_directive_waits_before_answering() {
    let emu = emulator(EmulatorConfig::default()).await;
    let started = Instant::now();
    let reply = generate(
        &emu,
        &directed("a cat emu:delay-ms=200 emu:error=500-internal"),
    )
    .await;
    assert_eq!(reply.status, 500);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        generate(&emu, &directed("a cat emu:delay-ms=120001"))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn wire_format_is_googles() {
    let emu = emulator(EmulatorConfig::default()).await;
    let body = directed("a cat").to_string();
    let path = generate_path(MODEL);
    let plain = http(
        emu.addr(),
        "POST",
        &path,
        &[("x-goog-api-key", KEY)],
        body.as_bytes(),
    )
    .await;
    assert!(plain.head.contains("transfer-encoding: chunked"));
    assert_eq!(plain.header("server"), Some("scaffolding on httpserver2"));
    assert_eq!(
        plain.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(plain.header("content-encoding").is_none());
    assert!(plain.text().starts_with("{\n  \"candidates\": [\n"));

    let gz = http(
        emu.addr(),
        "POST",
        &path,
        &[
            ("x-goog-api-key", KEY),
            ("accept-encoding", "gzip, deflate"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(&gz.chunks[0][..2], &[0x1f, 0x8b], "gzip magic");
    // The same answer after decompression (only the per-call responseId differs).
    let without_id = |r: &Reply| {
        let mut v = r.json();
        v["responseId"] = Value::Null;
        v
    };
    assert!(without_id(&gz) == without_id(&plain));
    // Errors too.
    let e = http(
        emu.addr(),
        "POST",
        &path,
        &[("x-goog-api-key", KEY), ("accept-encoding", "gzip")],
        directed("x emu:error=503-overloaded")
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(
        (e.status, e.header("content-encoding")),
        (503, Some("gzip"))
    );
    assert_eq!(error_of(&e)["status"], "UNAVAILABLE");

    // Gzip can be turned off.
    let off = emulator(EmulatorConfig {
        gzip: false,
        ..EmulatorConfig::default()
    })
    .await;
    let r = http(
        off.addr(),
        "POST",
        &path,
        &[("x-goog-api-key", KEY), ("accept-encoding", "gzip")],
        body.as_bytes(),
    )
    .await;
    assert!(r.header("content-encoding").is_none());
}

#[tokio::test]
async fn streaming_sends_thoughts_first_and_finishes_last() {
    let emu = emulator(EmulatorConfig::default()).await;
    let body = directed("a cat emu:text=long-split").to_string();
    let sse = http(
        emu.addr(),
        "POST",
        &format!("/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"),
        &[("x-goog-api-key", KEY)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    let text = sse.text();
    assert!(text.ends_with("\r\n\r\n"));
    let events: Vec<Value> = text
        .split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e.strip_prefix("data: ").expect("data: prefix");
            assert!(!data.contains('\n'), "one line per event");
            serde_json::from_str(data).unwrap()
        })
        .collect();
    assert!(events.len() >= 6, "{}", events.len());
    let first = &events[0]["candidates"][0]["content"]["parts"][0];
    assert!(is_thought(first));
    for e in &events[..events.len() - 1] {
        assert!(e["candidates"][0].get("finishReason").is_none());
        assert_eq!(
            e["candidates"][0]["content"]["parts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    let last = events.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["candidates"][0]["content"]["parts"][0]["text"], "");
    assert!(last["candidates"][0]["content"]["parts"][0]["thoughtSignature"].is_string());
    let counts: Vec<u64> = events
        .iter()
        .map(|e| e["usageMetadata"]["candidatesTokenCount"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    // Each image whole in one event, and the same answer as generateContent.
    let whole = ok_json(&emu, MODEL, &directed("a cat emu:text=long-split")).await;
    let (_, image) = final_image_with_mime(&whole);
    assert!(events.iter().any(
        |e| e["candidates"][0]["content"]["parts"][0]["inlineData"]["data"] == image.as_str()
    ));
    let streamed_text: String = events
        .iter()
        .map(|e| &e["candidates"][0]["content"]["parts"][0])
        .filter(|p| !is_thought(p))
        .filter_map(|p| p["text"].as_str())
        .collect();
    let whole_text: String = parts_of(&whole)
        .iter()
        .filter(|p| !is_thought(p))
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(streamed_text, whole_text);
    assert_eq!(last["usageMetadata"], whole["usageMetadata"]);

    // Without alt=sse: one JSON array, sent in several chunks.
    let array = http(
        emu.addr(),
        "POST",
        &format!("/v1beta/models/{MODEL}:streamGenerateContent"),
        &[("x-goog-api-key", KEY)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        array.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(array.chunks.len() >= 3);
    let items = array.json();
    assert_eq!(items.as_array().unwrap().len(), events.len());
    // Directives apply to streams too.
    let blocked = http(
        emu.addr(),
        "POST",
        &format!("/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"),
        &[("x-goog-api-key", KEY)],
        directed("x emu:error=429-bare").to_string().as_bytes(),
    )
    .await;
    assert_eq!(blocked.status, 429);
}

#[tokio::test]
async fn model_specific_validation() {
    let emu = emulator(EmulatorConfig::default()).await;
    let flash31 = "gemini-3.1-flash-image";
    let history = json!({"contents": [
        {"role": "user", "parts": [{"text": "a cat"}]},
        {"role": "model", "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]},
        {"role": "user", "parts": [{"text": "in a hat"}]}
    ]});
    let reply = generate_with(&emu, Some(KEY), flash31, &history).await;
    assert_eq!(reply.status, 400);
    assert!(error_of(&reply)["message"].as_str().unwrap().starts_with(
        "Image part is missing a thought_signature in content position 2, part position 1"
    ));
    assert_eq!(
        generate_with(&emu, Some(KEY), MODEL, &history).await.status,
        200
    );

    let mut thinking = request("x", None, None);
    thinking["generationConfig"]["thinkingConfig"] = json!({"thinkingLevel": "MINIMAL"});
    let reply = generate_with(&emu, Some(KEY), "gemini-2.5-flash-image", &thinking).await;
    assert_eq!(
        error_of(&reply)["message"],
        "Thinking is not enabled for models/gemini-2.5-flash-image"
    );
    let v = ok_json(&emu, flash31, &thinking).await;
    assert!(v["usageMetadata"].get("thoughtsTokenCount").is_none());

    let mut unknown = request("x", None, None);
    unknown["generationConfig"]["imageConfig"]["outputMimeType"] = json!("image/png");
    unknown["n"] = json!(2);
    let e = error_of(&generate(&emu, &unknown).await);
    assert_eq!(e["message"].as_str().unwrap().split('\n').count(), 2, "{e}");
    assert_eq!(
        e["details"][0]["fieldViolations"].as_array().unwrap().len(),
        2
    );

    let image = |mime: &str, data: &str| json!({"contents": [{"parts": [{"text": "edit"}, {"inlineData": {"mimeType": mime, "data": data}}]}]});
    let e = error_of(&generate(&emu, &image("image/png", "aGVsbG8=")).await);
    assert_eq!(e["message"], "Provided image is not valid");
    let e = error_of(&generate(&emu, &image("video/mp4", "AAAA")).await);
    assert_eq!(e["message"], "Unsupported MIME type: video/mp4");

    let big = vec![b' '; 20 * 1024 * 1024 + 1];
    let reply = http(
        emu.addr(),
        "POST",
        &generate_path(MODEL),
        &[("x-goog-api-key", KEY)],
        &big,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        error_of(&reply)["message"],
        "Request payload size exceeds the limit: 20971520 bytes."
    );
}
