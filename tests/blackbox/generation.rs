//! Successful generation: the OpenAI response shape, pixel sizes for size and
//! quality, `n`, response formats, the other endpoints, and demo mode.

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_has_openai_shape_and_right_pixel_sizes() {
    let s = Setup::simple().await;
    let gw = &s.gw;

    // Default: 1:1 at 1K.
    let r = gw
        .generate(json!({"prompt": "a red fox in the snow"}))
        .await;
    let body = r.ok();
    assert!(
        body["created"].as_u64().is_some_and(|c| c > 1_600_000_000),
        "created: {body:#}"
    );
    let data = body["data"].as_array().expect("data[]");
    assert_eq!(data.len(), 1);
    assert!(data[0]["b64_json"].is_string());
    assert!(
        data[0]["revised_prompt"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "revised_prompt: {:#}",
        data[0]["revised_prompt"]
    );
    assert!(!r.request_id().is_empty());
    assert_eq!(image_sizes(&body), vec![(1024, 1024)]);

    let cases = [
        (
            json!({"prompt": "a lighthouse", "size": "1792x1024"}),
            (1376, 768),
        ),
        (
            json!({"prompt": "a lighthouse", "size": "1024x1792"}),
            (768, 1376),
        ),
        (
            json!({"prompt": "a lighthouse", "quality": "hd"}),
            (4096, 4096),
        ),
        (
            json!({"prompt": "a lighthouse", "quality": "high"}),
            (4096, 4096),
        ),
        (
            json!({"prompt": "a lighthouse", "quality": "medium"}),
            (2048, 2048),
        ),
        (
            json!({"prompt": "a lighthouse", "quality": "low", "image_size": "2K"}),
            (2048, 2048),
        ),
    ];
    for (req, want) in cases {
        let r = gw.generate(req.clone()).await;
        let body = r.ok();
        assert_eq!(image_sizes(&body), vec![want], "{req}");
        assert!(r.header("x-request-id").is_some(), "{req}");
    }

    // response_format url -> a data: URI that decodes.
    let r = gw
        .generate(json!({"prompt": "a harbour at dusk", "response_format": "url"}))
        .await;
    let body = r.ok();
    let url = body["data"][0]["url"].as_str().expect("data[0].url");
    assert!(
        url.starts_with("data:image/jpeg;base64,"),
        "{}",
        &url[..40.min(url.len())]
    );
    assert!(body["data"][0].get("b64_json").is_none_or(|v| v.is_null()));
    assert_eq!(image_sizes(&body), vec![(1024, 1024)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_returns_three_images_from_three_upstream_calls() {
    let s = Setup::simple().await;
    let before = s.emu.calls();
    let r =
        s.gw.generate(json!({"prompt": "three kittens", "n": 3}))
            .await;
    let body = r.ok();
    assert_eq!(image_sizes(&body), vec![(1024, 1024); 3]);
    assert_eq!(s.emu.calls() - before, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_and_healthz() {
    let s = Setup::simple().await;
    let r = get(&format!("{}/v1/models", s.gw.url), Some(API_KEY)).await;
    let body = r.ok();
    let ids: Vec<&str> = body["data"]
        .as_array()
        .expect("data[]")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    // One source of truth: exactly the ids the translator accepts.
    let accepted: Vec<&str> = aperture_models::MODELS.iter().map(|m| m.id).collect();
    assert_eq!(ids, accepted, "{body:#}");
    assert!(ids.contains(&"gemini-3.1-flash-image"), "{body:#}");
    for id in &ids {
        let r =
            s.gw.generate(json!({"prompt": "a model check", "model": id}))
                .await;
        assert_eq!(
            r.status,
            200,
            "every listed model generates: {id}: {}",
            r.brief()
        );
    }

    let r = get(&format!("{}/v1/models", s.gw.url), None).await;
    r.error(401, "IMG_UNAUTHORIZED");

    let r = get(&format!("{}/healthz", s.gw.url), None).await;
    assert_eq!(r.status, 200, "{}", r.brief());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_needs_no_setup() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        Launch {
            demo: true,
            ..Launch::default()
        },
    )
    .await;
    let key = gw
        .stdout_lines
        .iter()
        .find_map(|l| l.strip_prefix("Demo client key (APERTURE_API_KEY): "))
        .unwrap_or_else(|| panic!("no demo client key line in {:?}", gw.stdout_lines))
        .trim()
        .to_string();
    assert!(key.len() >= 8);
    let auth = format!("Bearer {key}");
    let r = request(
        "POST",
        &format!("{}/v1/images/generations", gw.url),
        &[("authorization", &auth)],
        json!({"prompt": "a demo sunrise"}).to_string().into_bytes(),
    )
    .await;
    let body = r.ok();
    assert_eq!(image_sizes(&body), vec![(1024, 1024)]);
}
