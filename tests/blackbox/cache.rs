//! The image cache: MISS then HIT, bypass, what is and is not in the key, the
//! `none` backend, persistence across restarts, LRU eviction under a byte cap,
//! coalescing of identical concurrent requests, and the hot cache in front of redb.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_then_hit_and_bypass() {
    let s = Setup::simple().await;
    let (gw, emu) = (&s.gw, &s.emu);
    let req = json!({"prompt": "a cached teapot"});

    let first = gw.generate(req.clone()).await;
    let first_body = first.ok();
    assert_eq!(first.cache(), "MISS");
    assert_eq!(emu.calls(), 1);

    let second = gw.generate(req.clone()).await;
    let second_body = second.ok();
    assert_eq!(second.cache(), "HIT");
    assert_eq!(emu.calls(), 1, "a hit makes no upstream call");
    assert_eq!(
        first_body["data"][0]["b64_json"], second_body["data"][0]["b64_json"],
        "a hit serves the same image"
    );

    // Cache-Control: no-cache skips the read and goes upstream.
    let fresh = gw
        .generate_with(req.clone(), &[("cache-control", "no-cache")])
        .await;
    fresh.ok();
    assert_eq!(fresh.cache(), "BYPASS");
    assert_eq!(emu.calls(), 2, "a bypass goes upstream");

    // Another size is another image.
    let wide = gw
        .generate(json!({"prompt": "a cached teapot", "size": "1792x1024"}))
        .await;
    assert_eq!(image_sizes(&wide.ok()), vec![(1376, 768)]);
    assert_eq!(wide.cache(), "MISS");
    assert_eq!(emu.calls(), 3);

    // The response format is not part of the key.
    let as_url = gw
        .generate(json!({"prompt": "a cached teapot", "response_format": "url"}))
        .await;
    let body = as_url.ok();
    assert_eq!(as_url.cache(), "HIT");
    assert!(body["data"][0]["url"]
        .as_str()
        .is_some_and(|u| u.starts_with("data:image/jpeg;base64,")));
    assert_eq!(emu.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_none_bypasses_every_time() {
    let s = Setup::new(&["bb-gemini-key-1"], |l| l.env("CACHE_BACKEND", "none")).await;
    for i in 1..=2 {
        let r = s.gw.generate(json!({"prompt": "an uncached kettle"})).await;
        r.ok();
        assert_eq!(r.cache(), "BYPASS");
        assert_eq!(s.emu.calls(), i);
    }
    assert!(s.gw.log().contains("Cache backend: none"), "{}", s.gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_survives_a_restart() {
    let s = Setup::simple().await;
    let req = json!({"prompt": "a persistent lantern"});
    let r = s.gw.generate(req.clone()).await;
    let before = r.ok();
    assert_eq!(r.cache(), "MISS");
    assert_eq!(s.emu.calls(), 1);

    let Setup { emu, gw, dir } = s;
    gw.stop().await;
    let gw = Gateway::start(dir.path(), Launch::to(&emu)).await;
    let r = gw.generate(req).await;
    let after = r.ok();
    assert_eq!(r.cache(), "HIT", "the cache is on disk");
    assert_eq!(emu.calls(), 1, "no upstream call after the restart");
    assert_eq!(before["data"][0]["b64_json"], after["data"][0]["b64_json"]);
    drop(gw);
    emu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lru_eviction_under_a_small_byte_cap() {
    // 1K images are ~90-130 KB: 0.3 MB holds two or three, never four.
    let s = Setup::new(&["bb-gemini-key-1"], |l| l.env("CACHE_MAX_SIZE_MB", "0.3")).await;
    let gw = &s.gw;
    let prompts = ["evict one", "evict two", "evict three", "evict four"];
    for p in prompts {
        let r = gw.generate(json!({ "prompt": p })).await;
        r.ok();
        assert_eq!(r.cache(), "MISS", "{p}");
    }
    assert!(gw.log().contains("Cache eviction"), "{}", gw.log());
    let calls = s.emu.calls();

    // The most recent entry is still there...
    let r = gw.generate(json!({"prompt": "evict four"})).await;
    r.ok();
    assert_eq!(r.cache(), "HIT");
    assert_eq!(s.emu.calls(), calls);
    // ...the oldest was evicted.
    let r = gw.generate(json!({"prompt": "evict one"})).await;
    r.ok();
    assert_eq!(r.cache(), "MISS");
    assert_eq!(s.emu.calls(), calls + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_requests_share_one_upstream_call() {
    let s = Setup::simple().await;
    s.emu.set_latency(Duration::from_millis(300));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let url = s.gw.url.clone();
        tasks.push(tokio::spawn(async move {
            let auth = format!("Bearer {API_KEY}");
            request(
                "POST",
                &format!("{url}/v1/images/generations"),
                &[("authorization", &auth)],
                json!({"prompt": "a crowd asks for one owl"})
                    .to_string()
                    .into_bytes(),
            )
            .await
        }));
    }
    let mut images = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        images.push(r.ok()["data"][0]["b64_json"].clone());
    }
    assert_eq!(
        s.emu.calls(),
        1,
        "five identical requests, one upstream call"
    );
    assert!(images.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_failed_n_request_keeps_its_images_for_the_retry() {
    let s = Setup::simple().await;
    let req = json!({"prompt": "three partial kites", "n": 3});
    // One of the three calls fails for good; the other two images are paid for.
    s.emu.fail_next_named(&["404-model"]).unwrap();
    let failed = s.gw.generate(req.clone()).await;
    failed.error(502, "IMG_UNSUPPORTED_MODEL");
    assert_eq!(s.emu.calls(), 3);

    // The retry generates only the missing image.
    let retry = s.gw.generate(req.clone()).await;
    let body = retry.ok();
    assert_eq!(image_sizes(&body).len(), 3);
    assert_eq!(
        s.emu.calls(),
        4,
        "only the missing image is generated again"
    );
    assert!(
        s.gw.log().contains("msg=\"Partial result reused\""),
        "the reuse is logged"
    );

    // And the whole result is now cached as usual.
    let hit = s.gw.generate(req).await;
    assert_eq!(hit.cache(), "HIT");
    assert_eq!(hit.ok()["data"], body["data"]);
    assert_eq!(s.emu.calls(), 4);
}

/// Serve `req` until a hit comes from the hot cache (the first hit reads redb and keeps the body).
async fn until_hot(gw: &Gateway, req: &serde_json::Value) -> serde_json::Value {
    for _ in 0..50 {
        let r = gw.generate(req.clone()).await;
        let body = r.ok();
        let line = gw.request_line(&r.request_id());
        if r.cache() == "HIT"
            && gw.log().lines().any(|l| {
                l.contains("Cache hit") && l.contains(&r.request_id()) && l.contains("hot=true")
            })
        {
            assert!(line.contains("cache=HIT"), "{line}");
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never served from the hot cache:\n{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hot_copy_never_outlives_the_stored_entry() {
    // Clear: the next request is a miss, not the body kept in memory.
    let s = Setup::simple().await;
    let req = json!({"prompt": "a hot kettle"});
    let first = s.gw.generate(req.clone()).await;
    let first = first.ok();
    let hot = until_hot(&s.gw, &req).await;
    assert_eq!(first["data"][0]["b64_json"], hot["data"][0]["b64_json"]);
    assert_eq!(
        hot,
        until_hot(&s.gw, &req).await,
        "a hot hit serves the same body every time"
    );
    let calls = s.emu.calls();
    let out = s.gw.cli(&["cache", "clear"]).await;
    assert!(out.ok, "{out:?}");
    let r = s.gw.generate(req.clone()).await;
    r.ok();
    assert_eq!(r.cache(), "MISS", "cleared: not served from memory");
    assert_eq!(s.emu.calls(), calls + 1);
    // Another response format of a hot entry is rendered anew, and is kept too.
    let url = json!({"prompt": "a hot kettle", "response_format": "url"});
    let body = until_hot(&s.gw, &url).await;
    assert!(body["data"][0]["url"]
        .as_str()
        .is_some_and(|u| u.starts_with("data:image/")));

    // LRU eviction in the store drops the hot copy.
    let s = Setup::new(&["bb-gemini-key-1"], |l| l.env("CACHE_MAX_SIZE_MB", "0.3")).await;
    let req = json!({"prompt": "hot then evicted"});
    s.gw.generate(req.clone()).await.ok();
    until_hot(&s.gw, &req).await;
    for p in ["push one", "push two", "push three", "push four"] {
        s.gw.generate(json!({ "prompt": p })).await.ok();
    }
    // Wait for the writes (they land after the responses).
    for _ in 0..100 {
        if s.gw.log().matches("Cache store").count() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = s.emu.calls();
    let r = s.gw.generate(req.clone()).await;
    r.ok();
    assert_eq!(
        r.cache(),
        "MISS",
        "evicted from the store: not served from memory"
    );
    assert_eq!(s.emu.calls(), calls + 1);

    // TTL: the hot copy expires with the stored entry.
    let s = Setup::new(&["bb-gemini-key-1"], |l| l.env("CACHE_TTL_SECONDS", "1")).await;
    let req = json!({"prompt": "hot then expired"});
    s.gw.generate(req.clone()).await.ok();
    until_hot(&s.gw, &req).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let r = s.gw.generate(req.clone()).await;
    r.ok();
    assert_eq!(r.cache(), "MISS", "expired: not served from memory");
}
