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
