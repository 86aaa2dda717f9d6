//! Upstream response interpretation, as the host runs it: the host's blob extraction
//! (`policy::blobs::extract`), the translator's `parse_response` on the result, the safety
//! policy's `review` of a no-image verdict, and for images the translator's
//! `build_response` and the host's `blobs::splice`. Bodies are raw bytes or built in the
//! shape of Gemini answers. Nothing may panic; extraction may change only image data and
//! thought signatures; every image the translator names must be image data the host can
//! take exactly once; the spliced response carries exactly those images.
#![no_main]

use aperture::policy::blobs;
use aperture_fuzz::{diff, json::Gen};
use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use request_translator::response::{build_response, parse_response};
use request_translator::types::{Generation, Image, ResponseFormat, UpstreamOutcome};
use safety_policy::types::ReviewOutcome;
use serde_json::{json, Map, Value};

const WORDS: &[&str] = &[
    "candidates",
    "content",
    "parts",
    "text",
    "inlineData",
    "inline_data",
    "data",
    "mimeType",
    "mime_type",
    "thought",
    "thoughtSignature",
    "thought_signature",
    "finishReason",
    "finish_reason",
    "finishMessage",
    "promptFeedback",
    "blockReason",
    "safetyRatings",
    "category",
    "probability",
    "blocked",
    "usageMetadata",
    "promptTokenCount",
    "error",
    "aperture-blob:0",
    "aperture-blob:1",
    "aperture-blob:4294967295",
    "image/png",
    "image/jpeg",
    "base64,",
    "data:",
    "STOP",
    "IMAGE_SAFETY",
    "SAFETY",
    "OTHER",
    "NO_IMAGE",
    "RECITATION",
    "MAX_TOKENS",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HIGH",
    "日本語",
    "",
];

const FINISH: &[&str] = &[
    "STOP",
    "IMAGE_SAFETY",
    "IMAGE_OTHER",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "NO_IMAGE",
    "RECITATION",
    "MAX_TOKENS",
    "OTHER",
    "SAFETY",
    "PROHIBITED_CONTENT",
    "MALFORMED_RESPONSE",
    "SPII",
    "BLOCKLIST",
    "",
    " stop ",
];

struct Body(Vec<u8>);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.0))
    }
}

/// One `parts[]` entry in the shape Gemini sends, with arbitrary deviations.
fn part(gen: &Gen, u: &mut Unstructured) -> Result<Value> {
    let mut p = Map::new();
    let snake = u.ratio(1, 5)?;
    match u.int_in_range(0..=3)? {
        0 => {
            p.insert("text".into(), json!(gen.string(u)?));
        }
        1 | 2 => {
            let mut inline = Map::new();
            if u.ratio(7, 8)? {
                let mime = if u.ratio(3, 4)? {
                    u.choose(&["image/png", "image/jpeg", "image/webp"])?
                        .to_string()
                } else {
                    gen.string(u)?
                };
                inline.insert(
                    if snake { "mime_type" } else { "mimeType" }.into(),
                    json!(mime),
                );
            }
            let data = if u.ratio(7, 8)? {
                json!(gen.string(u)?)
            } else {
                gen.value(u)?
            };
            inline.insert("data".into(), data);
            p.insert(
                if snake { "inline_data" } else { "inlineData" }.into(),
                Value::Object(inline),
            );
        }
        _ => {
            p = gen.object(u)?;
        }
    }
    if u.ratio(1, 3)? {
        p.insert(
            "thought".into(),
            if u.ratio(7, 8)? {
                json!(u.arbitrary::<bool>()?)
            } else {
                gen.value(u)?
            },
        );
    }
    if u.ratio(1, 3)? {
        let sig = if u.ratio(7, 8)? {
            json!(gen.string(u)?)
        } else {
            gen.value(u)?
        };
        p.insert(
            if snake {
                "thought_signature"
            } else {
                "thoughtSignature"
            }
            .into(),
            sig,
        );
    }
    Ok(Value::Object(p))
}

fn candidate(gen: &Gen, u: &mut Unstructured) -> Result<Value> {
    let mut c = Map::new();
    match u.int_in_range(0..=5)? {
        0 => {}
        1 => {
            c.insert("content".into(), json!({}));
        }
        2 => {
            c.insert("content".into(), json!({"parts": null}));
        }
        3 => {
            c.insert("content".into(), gen.value(u)?);
        }
        _ => {
            let mut parts = Vec::new();
            for _ in 0..u.int_in_range(0..=6)? {
                parts.push(part(gen, u)?);
            }
            c.insert("content".into(), json!({"role": "model", "parts": parts}));
        }
    }
    if u.ratio(2, 3)? {
        c.insert("finishReason".into(), json!(u.choose(FINISH)?));
    }
    if u.ratio(1, 4)? {
        c.insert("finishMessage".into(), json!(gen.string(u)?));
    }
    if u.ratio(1, 4)? {
        c.insert("safetyRatings".into(), json!([{"category": gen.string(u)?, "probability": "HIGH", "blocked": u.arbitrary::<bool>()?}]));
    }
    Ok(Value::Object(c))
}

impl<'a> Arbitrary<'a> for Body {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        if u.ratio(1, 4)? {
            return Ok(Body(u.arbitrary::<Vec<u8>>()?));
        }
        let gen = Gen {
            words: WORDS,
            max_depth: 3,
        };
        let mut body = Map::new();
        if u.ratio(7, 8)? {
            let mut candidates = Vec::new();
            for _ in 0..u.int_in_range(0..=3)? {
                candidates.push(candidate(&gen, u)?);
            }
            body.insert("candidates".into(), Value::Array(candidates));
        }
        if u.ratio(1, 4)? {
            body.insert(
                "promptFeedback".into(),
                json!({"blockReason": u.choose(FINISH)?}),
            );
        }
        if u.ratio(1, 2)? {
            body.insert("usageMetadata".into(), json!({
                "promptTokenCount": gen.value(u)?, "candidatesTokenCount": u.arbitrary::<u64>()?,
                "thoughtsTokenCount": u.arbitrary::<u32>()?, "totalTokenCount": u.arbitrary::<u32>()?,
            }));
        }
        if u.ratio(1, 8)? {
            let (k, v) = (gen.string(u)?, gen.value(u)?);
            body.insert(k, v);
        }
        Ok(Body(Value::Object(body).to_string().into_bytes()))
    }
}

/// Whether `path` is a place extraction may change: `candidates.N.content.parts.N.`
/// `inlineData.data` / `inline_data.data` / `thoughtSignature` / `thought_signature`.
fn extractable(path: &[String]) -> bool {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    matches!(
        p.as_slice(),
        [
            "candidates",
            _,
            "content",
            "parts",
            _,
            "inlineData" | "inline_data",
            "data"
        ] | [
            "candidates",
            _,
            "content",
            "parts",
            _,
            "thoughtSignature" | "thought_signature"
        ]
    )
}

fuzz_target!(|body: Body| {
    // The host answers 502 IMG_UPSTREAM_MALFORMED to a body that is not JSON.
    let Ok(original) = serde_json::from_slice::<Value>(&body.0) else {
        return;
    };
    let mut value = original.clone();
    let mut taken = blobs::extract(&mut value);
    for path in diff::paths(&original, &value) {
        assert!(
            extractable(&path),
            "extraction changed {path:?} of {body:?}"
        );
    }
    let outcome = match parse_response(&value.to_string()) {
        Ok(outcome) => outcome,
        Err(message) => {
            assert!(!message.is_empty());
            return;
        }
    };
    match outcome {
        UpstreamOutcome::Images(generation) => {
            assert!(!generation.images.is_empty());
            let mut data = Vec::new();
            let mut images = Vec::new();
            for (i, image) in generation.images.iter().enumerate() {
                let b64 = taken.take_image(image.blob).unwrap_or_else(|e| {
                    panic!("translator named blob {}: {e} ({body:?})", image.blob)
                });
                data.push(b64);
                images.push(Image {
                    blob: i as u32,
                    mime_type: image.mime_type.clone(),
                });
            }
            let rendered = Generation {
                images,
                ..generation
            };
            for format in [ResponseFormat::B64Json, ResponseFormat::Url] {
                let json = build_response(&rendered, format, 1);
                let spliced = blobs::splice(&json, &data)
                    .unwrap_or_else(|e| panic!("splice failed: {e} ({body:?})"));
                let out: Value = serde_json::from_str(&spliced).expect("spliced response is JSON");
                let items = out["data"].as_array().expect("data is an array");
                assert_eq!(items.len(), data.len());
                for (item, b64) in items.iter().zip(&data) {
                    match format {
                        ResponseFormat::B64Json => {
                            assert_eq!(item["b64_json"].as_str(), Some(b64.as_str()))
                        }
                        ResponseFormat::Url => {
                            let url = item["url"].as_str().expect("url");
                            assert!(
                                url.starts_with("data:") && url.ends_with(&format!("base64,{b64}")),
                                "{url}"
                            );
                        }
                    }
                }
            }
        }
        UpstreamOutcome::NoImage(verdict) => match safety_policy::policy::review(&verdict) {
            ReviewOutcome::Pass => {}
            ReviewOutcome::Blocked(block) => {
                assert!(!block.reason.is_empty() && block.code.starts_with("IMG_"))
            }
            ReviewOutcome::NoImage(refusal) => {
                assert!(!refusal.message.is_empty() && refusal.code.starts_with("IMG_"));
                assert!(
                    refusal.status == 400 || refusal.status == 502,
                    "status {}",
                    refusal.status
                );
            }
        },
    }
});
