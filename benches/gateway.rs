//! Benchmarks (not tests): one component call, a cache hit end to end for a ~1 MB
//! image, and the gateway's overhead on a miss against a zero-latency emulator.
//!
//! Run: `cargo bench -p aperture --bench gateway` (prints medians and p95s).
//! `BENCH_NO_CACHE=1` runs the miss measurement with the cache off (no cache write);
//! `BENCH_ONLY=component` runs the component call alone; `BENCH_TRANSLATOR=file.wasm` times that translator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aperture::app::App;
use aperture::config::{Config, RawConfig};
use aperture::policy::{CallLimits, Lookup, Policies, Sources};
use aperture_emulator::{Emulator, EmulatorConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const CLIENT_KEY: &str = "bench-client-key";

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<52} n={:<5} median={:>10.1?} p95={:>10.1?} min={:>10.1?}",
        samples.len(),
        pick(0.5),
        pick(0.95),
        samples[0]
    );
}

fn bench_component_call() {
    // `BENCH_TRANSLATOR=path.wasm`: time another build of the translator (e.g. an older one) instead.
    let sources = Sources {
        translator: std::env::var_os("BENCH_TRANSLATOR").map(Into::into),
        ..Sources::default()
    };
    let policies = Policies::load(&sources, CallLimits::default()).expect("components load");
    let body = r#"{"model":"gemini-3-pro-image","prompt":"A serene lake at dawn","size":"1792x1024","quality":"hd","n":2}"#;
    let pin = policies.pin("bench");
    // `parse_request` is always a real call (fresh instance, deadline, memory cap):
    // the gateway's memo sits in front of it (`parse_lookup`), never inside it.
    for _ in 0..200 {
        policies
            .parse_request(&pin, body)
            .expect("call")
            .expect("valid");
    }
    let samples = (0..5000)
        .map(|_| {
            let t = Instant::now();
            let _ = policies.parse_request(&pin, body).expect("call");
            t.elapsed()
        })
        .collect();
    summary("component call: translator.parse-request", samples);
    // The same request answered from the host's memo (what a repeated request costs).
    policies
        .parse_request_memoized(&pin, body)
        .expect("call")
        .expect("valid");
    let samples = (0..5000)
        .map(|_| {
            let t = Instant::now();
            let hit = policies.parse_lookup(&pin, body);
            let elapsed = t.elapsed();
            assert!(matches!(hit, Lookup::Hit(Ok(_))));
            elapsed
        })
        .collect();
    summary("memo hit: translator.parse-request", samples);
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn post(
    client: &HttpClient,
    url: &str,
    key: Option<&str>,
    body: String,
) -> (u16, Bytes, Option<String>) {
    let mut req = http::Request::post(url).header("content-type", "application/json");
    if let Some(k) = key {
        req = req
            .header("authorization", format!("Bearer {k}"))
            .header("x-goog-api-key", k);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("x-aperture-cache")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (
        status,
        resp.into_body().collect().await.expect("body").to_bytes(),
        cache,
    )
}

async fn bench_gateway() {
    let emulator = Emulator::bind(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorConfig::demo(vec!["bench-upstream-key".into()]),
    )
    .await
    .expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().to_path_buf()),
        ..RawConfig::default()
    };
    raw.upstream.base_url = Some(emulator.base_url());
    raw.auth.api_keys = Some(vec![CLIENT_KEY.into()]);
    raw.cache.max_size_mb = Some(2048.0);
    if std::env::var("BENCH_NO_CACHE").is_ok() {
        raw.cache.backend = Some("none".into());
    }
    let config = Config::validate(raw, vec![]).expect("config");
    let app = Arc::new(
        tokio::task::spawn_blocking(move || App::build(config))
            .await
            .unwrap()
            .expect("app"),
    );
    app.accounts
        .add("bench", None, "bench-upstream-key", aperture::app::now_ms())
        .expect("account");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(aperture::server::serve(
        app.clone(),
        listener,
        std::future::pending(),
    ));
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let gateway = format!("http://{addr}/v1/images/generations");

    if std::env::var("BENCH_NO_CACHE").is_err() {
        bench_hit(&client, &gateway).await;
    }
    bench_miss(&client, &gateway, &emulator).await;
}

async fn bench_hit(client: &HttpClient, gateway: &str) {
    // Cache hit, end to end, for a ~1 MB image (a 4K PNG from the emulator).
    let (client, gateway) = (client.clone(), gateway.to_string());
    let hit_body = r#"{"prompt":"A serene lake at dawn, 4K","quality":"hd"}"#.to_string();
    let (status, bytes, cache) = post(&client, &gateway, Some(CLIENT_KEY), hit_body.clone()).await;
    assert_eq!(status, 200, "status {status}, {} bytes", bytes.len());
    assert_eq!(cache.as_deref(), Some("MISS"));
    let mut samples = Vec::new();
    for i in 0..600 {
        let t = Instant::now();
        let (status, bytes, cache) =
            post(&client, &gateway, Some(CLIENT_KEY), hit_body.clone()).await;
        let elapsed = t.elapsed();
        assert!(status == 200 && cache.as_deref() == Some("HIT"));
        if i >= 100 {
            samples.push(elapsed);
        }
        if i == 0 {
            println!("cache-hit response size: {} bytes", bytes.len());
        }
    }
    summary("cache hit end to end (~1 MB image, HTTP)", samples);
}

async fn bench_miss(client: &HttpClient, gateway: &str, emulator: &Emulator) {
    // Miss overhead: the same fresh request straight to the emulator vs through the gateway.
    let upstream = format!(
        "{}/v1beta/models/gemini-3-pro-image-preview:generateContent",
        emulator.base_url()
    );
    let mut direct = Vec::new();
    let mut through = Vec::new();
    for i in 0..300 {
        let prompt = format!("bench miss prompt {i}");
        let gemini_body = serde_json::json!({
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "1:1", "imageSize": "1K"}}
        })
        .to_string();
        let t = Instant::now();
        let (status, _, _) = post(client, &upstream, Some("bench-upstream-key"), gemini_body).await;
        direct.push(t.elapsed());
        assert_eq!(status, 200);
        let t = Instant::now();
        let (status, body, cache) = post(
            client,
            gateway,
            Some(CLIENT_KEY),
            serde_json::json!({"prompt": format!("{prompt} via gateway")}).to_string(),
        )
        .await;
        through.push(t.elapsed());
        assert!(
            status == 200 && matches!(cache.as_deref(), Some("MISS" | "BYPASS")),
            "status {status}, {} bytes",
            body.len()
        );
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (d, g) = (median(&mut direct.clone()), median(&mut through.clone()));
    summary("miss: emulator generateContent direct (1K image)", direct);
    summary("miss: through the gateway (1K image)", through);
    println!(
        "{:<52} median overhead={:?}",
        "gateway overhead on a miss",
        g.saturating_sub(d)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` runs benches with no such flag: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    bench_component_call();
    // `BENCH_ONLY=component`: the per-call number alone (benches/compare.sh uses it).
    if std::env::var("BENCH_ONLY").as_deref() == Ok("component") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench_gateway());
}
