//! Real Gemini response shapes, produced by the emulator's `emu:` prompt
//! directives, through the gateway: long and multi-byte text never breaks a
//! response or turns into an image, exactly the final image comes back for every
//! layout, JPEG and PNG both flow (and `output_format` converts), and every
//! 200-without-an-image becomes the right error, is not cached and is not retried
//! on another account.

use serde_json::{json, Value};

use crate::harness::*;

/// The revised prompt of every item (they are all the same).
fn revised(body: &Value) -> String {
    body["data"][0]["revised_prompt"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_multibyte_text_is_text_on_every_model() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    let long = "日".repeat(80);
    for model in ["gemini-3-pro-image", "gemini-2.5-flash-image"] {
        let prompt = format!("{long} {model} emu:text=echo");
        let r = gw.generate(json!({"prompt": prompt, "model": model})).await;
        let body = r.ok();
        assert_eq!(image_sizes(&body).len(), 1, "{model}: one image");
        let text = revised(&body);
        assert!(
            text.contains(&prompt),
            "{model}: the echoed prompt comes back whole as text, got {:?}",
            &text.chars().take(80).collect::<String>()
        );
        // The cached copy is the same, text and image.
        let again = gw.generate(json!({"prompt": prompt, "model": model})).await;
        assert_eq!(again.cache(), "HIT", "{model}");
        assert_eq!(again.ok()["data"], body["data"], "{model}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_looks_like_a_blob_token_stays_text() {
    let s = Setup::simple().await;
    for format in ["b64_json", "url"] {
        let prompt = format!("a forged token {format} emu:text=echo aperture-blob:0");
        let r =
            s.gw.generate(json!({"prompt": prompt, "response_format": format}))
                .await;
        let body = r.ok();
        assert!(revised(&body).ends_with("aperture-blob:0"), "{body:#}");
        assert_eq!(image_sizes(&body), vec![(1024, 1024)], "{format}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_text_around_the_image_and_megabyte_signatures() {
    let s = Setup::simple().await;
    for text in [
        "long-before",
        "long-after",
        "long-split",
        "split",
        "after",
        "none",
    ] {
        let prompt = format!("a quiet harbour emu:text={text} emu:signature=real");
        let r = s.gw.generate(json!({"prompt": prompt})).await;
        let body = r.ok();
        assert_eq!(image_sizes(&body), vec![(1024, 1024)], "{text}");
        let revised = revised(&body);
        assert!(!revised.contains("aperture-blob"), "{text}: {revised:.80}");
        if text.starts_with("long") {
            assert!(revised.len() > 1000, "{text}: the long text is kept");
            assert!(!revised.is_ascii());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_final_image_for_every_layout() {
    let s = Setup::simple().await;
    let cases = [
        ("gemini-3-pro-image", "interim", 1),
        ("gemini-3-pro-image", "drafts-2", 1),
        ("gemini-3-pro-image", "drafts-10", 1),
        ("gemini-3-pro-image", "thought-only", 1),
        ("gemini-3-pro-image", "image-only", 1),
        ("gemini-3.1-flash-image", "drafts-4", 1),
        ("gemini-2.5-flash-image", "finals-3", 1),
    ];
    for (model, layout, want) in cases {
        let prompt = format!("a lantern emu:layout={layout} emu:signature=real");
        let r =
            s.gw.generate(json!({"prompt": prompt, "model": model, "size": "1792x1024"}))
                .await;
        let body = r.ok();
        let sizes = image_sizes(&body);
        assert_eq!(sizes.len(), want, "{model} {layout}: {sizes:?}");
        let family = aperture_models::find(model).unwrap().family;
        assert_eq!(
            sizes[0],
            family.pixel_size("16:9", "1K").unwrap(),
            "{model} {layout}: the final image, never a smaller draft"
        );
    }
    // n stays n whatever each call returns.
    let r = s
        .gw
        .generate(json!({"prompt": "two lanterns emu:layout=finals-3", "model": "gemini-2.5-flash-image", "n": 2}))
        .await;
    assert_eq!(image_sizes(&r.ok()), vec![(1024, 1024); 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jpeg_and_png_flow_and_output_format_converts() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    let pro = gw.generate(json!({"prompt": "a pear"})).await.ok();
    assert_eq!(pro["output_format"], "jpeg", "3 Pro sends JPEG");
    assert_eq!(images(&pro)[0].0, "image/jpeg");
    image_sizes(&pro);

    let flash = gw
        .generate(json!({"prompt": "a pear", "model": "gemini-2.5-flash-image"}))
        .await
        .ok();
    assert_eq!(flash["output_format"], "png", "2.5 Flash sends PNG");

    for (format, mime) in [
        ("png", "image/png"),
        ("webp", "image/webp"),
        ("jpeg", "image/jpeg"),
    ] {
        let r = gw
            .generate(
                json!({"prompt": "a pear", "output_format": format, "response_format": "url"}),
            )
            .await;
        let body = r.ok();
        assert_eq!(body["output_format"], format);
        assert_eq!(images(&body)[0].0, mime, "{format}");
        assert_eq!(image_sizes(&body), vec![(1024, 1024)], "{format}");
    }
    let r = gw
        .generate(json!({"prompt": "a pear", "output_format": "gif"}))
        .await;
    let err = r.error(400, "IMG_INVALID_REQUEST");
    assert_eq!(err["param"], "output_format");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_3_1_flash_sizes_and_ratios() {
    let s = Setup::simple().await;
    let gw = &s.gw;
    let cases = [
        (json!({"size": "4000x1000"}), (2048, 512)),
        (json!({"aspect_ratio": "1:8"}), (384, 3072)),
        (json!({"quality": "low"}), (512, 512)),
        (
            json!({"image_size": "512", "size": "1792x1024"}),
            (688, 384),
        ),
        (json!({"quality": "hd"}), (4096, 4096)),
    ];
    for (extra, want) in cases {
        let mut req = json!({"prompt": "a kite", "model": "gemini-3.1-flash-image"});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        let body = gw.generate(req.clone()).await.ok();
        assert_eq!(image_sizes(&body), vec![want], "{req}");
    }
    // Pro has no 1:8 and no 512.
    let r = gw
        .generate(json!({"prompt": "a kite", "aspect_ratio": "1:8"}))
        .await;
    r.error(400, "IMG_INVALID_REQUEST");
    let r = gw
        .generate(json!({"prompt": "a kite", "image_size": "512"}))
        .await;
    r.error(400, "IMG_INVALID_REQUEST");
    // Pro maps an extreme size to its widest ratio.
    let body = gw
        .generate(json!({"prompt": "a kite", "size": "4000x1000"}))
        .await
        .ok();
    assert_eq!(image_sizes(&body), vec![(1584, 672)]);
}

/// A 200 without an image: the client's status, code and error type; one upstream
/// call only (no retry on the second account), nothing cached, accounts untouched.
async fn no_image_case(s: &Setup, directive: &str, status: u16, code: &str, error_type: &str) {
    let prompt = format!("a still life emu:{directive}");
    let before = s.emu.calls();
    let r = s.gw.generate(json!({"prompt": prompt})).await;
    let err = r.error(status, code);
    assert_eq!(err["error_type"], error_type, "{directive}: {err:#}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("](http"),
        "{directive}: no markdown links: {message}"
    );
    assert_eq!(
        s.emu.calls() - before,
        1,
        "{directive}: a refusal is not retried"
    );
    let again = s.gw.generate(json!({"prompt": prompt})).await;
    assert_eq!(again.status, status, "{directive}");
    assert_eq!(
        s.emu.calls() - before,
        2,
        "{directive}: a refusal is never cached"
    );
    for label in ["a1", "a2"] {
        assert_eq!(
            s.gw.account(label).await["state"]["kind"],
            "active",
            "{directive}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_no_image_answer_is_the_right_error() {
    let s = Setup::new(&["shape-key-1", "shape-key-2"], |l| l).await;
    for block in ["OTHER", "SAFETY", "PROHIBITED_CONTENT", "IMAGE_SAFETY"] {
        no_image_case(
            &s,
            &format!("block={block}"),
            400,
            "IMG_SAFETY_BLOCKED",
            "USER_ERROR",
        )
        .await;
    }
    for finish in [
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "SAFETY",
        "PROHIBITED_CONTENT",
    ] {
        no_image_case(
            &s,
            &format!("finish={finish}"),
            400,
            "IMG_SAFETY_BLOCKED",
            "USER_ERROR",
        )
        .await;
    }
    for finish in ["IMAGE_OTHER", "NO_IMAGE", "IMAGE_RECITATION", "RECITATION"] {
        no_image_case(
            &s,
            &format!("finish={finish}"),
            400,
            "IMG_NO_IMAGE",
            "USER_ERROR",
        )
        .await;
    }
    for finish in ["MAX_TOKENS", "OTHER", "MALFORMED_RESPONSE"] {
        no_image_case(
            &s,
            &format!("finish={finish}"),
            502,
            "IMG_NO_IMAGE",
            "API_ERROR",
        )
        .await;
    }
    for content in ["absent", "empty", "role", "null-parts"] {
        no_image_case(
            &s,
            &format!("finish=IMAGE_OTHER emu:content={content}"),
            400,
            "IMG_NO_IMAGE",
            "USER_ERROR",
        )
        .await;
    }
    no_image_case(&s, "refuse=text", 400, "IMG_NO_IMAGE", "USER_ERROR").await;

    // The upstream's own explanation reaches the client.
    let r =
        s.gw.generate(json!({"prompt": "a still life emu:refuse=text"}))
            .await;
    let err = r.error(400, "IMG_NO_IMAGE");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("I can't generate"),
        "{err:#}"
    );
    let r =
        s.gw.generate(json!({"prompt": "a still life emu:finish=IMAGE_OTHER"}))
            .await;
    let err = r.error(400, "IMG_NO_IMAGE");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("could not generate the image"),
        "{err:#}"
    );
}
