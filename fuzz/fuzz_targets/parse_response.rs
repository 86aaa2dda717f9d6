//! Upstream response interpretation, as the host runs it: the host's blob extraction
//! (`policy::blobs::extract_body`, and `extract` it must agree with), the translator's
//! `parse_response` on the result, the safety policy's `review` of a no-image verdict, and
//! for images the translator's `build_response` and the host's two splices. Bodies are raw
//! bytes or built in the shape of Gemini answers (large image data in both spellings, odd
//! shapes), written out the many ways JSON can be spelled. Nothing may panic;
//! `extract_body` (and its fast path whenever it is taken) gives exactly what parsing and
//! `extract` give; extraction may change only image data and thought signatures; every
//! image the translator names is image data the host can take exactly once; the spliced
//! response carries exactly those images, the same bytes from both splices.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use aperture::gateway;
use aperture::policy::blobs::{self, Blobs};
use aperture_fuzz::{diff, emit, json::Gen};
use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::Bytes;
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
    "@aperture-slice-",
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

/// Image data `extract_body` takes from the body without a copy from 256 bytes on
/// (its `SLICE_AT_LEAST`).
const LARGE: usize = 256;

/// Base64-looking image data around the size where `extract_body` starts slicing, now
/// and then with a character base64 never has (which JSON may have to escape).
fn image_data(u: &mut Unstructured) -> Result<String> {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let len = match u.int_in_range(0..=7)? {
        0 => LARGE - 1,
        1 => LARGE,
        2 => LARGE + 1,
        3 => u.int_in_range(1..=64)?,
        4 => u.int_in_range(LARGE..=4096)?,
        5 => u.int_in_range(LARGE..=70_000)?,
        _ => u.int_in_range(200..=600)?,
    };
    let seed = u.arbitrary::<u16>()? as usize;
    let mut data: String = (0..len)
        .map(|i| B64[(seed + i * 7 + i / 5) % 64] as char)
        .collect();
    if u.ratio(1, 3)? {
        data.push_str(u.choose(&["=", "=="])?);
    }
    if aperture_fuzz::one_in(u, 8)? {
        let odd = *u.choose(&['"', '\\', '\n', '\0', 'é', '日', '😀', '\u{7f}', '@'])?;
        let at = u.int_in_range(0..=data.len())?;
        data.insert(at, odd);
    }
    Ok(data)
}

/// A value where image data goes: mostly image data, sometimes anything.
fn data_value(gen: &Gen, u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=9)? {
        0..=5 => json!(image_data(u)?),
        6 | 7 => json!(gen.string(u)?),
        8 => gen.value(u)?,
        _ => json!(""),
    })
}

/// An `inlineData` object (or, now and then, something else in its place).
fn inline(gen: &Gen, u: &mut Unstructured, odd: bool, snake: bool) -> Result<Value> {
    let data = data_value(gen, u)?;
    // Without `odd`, only the object shape (and null).
    let first = if odd { 0 } else { 2 };
    Ok(match u.int_in_range(first..=11)? {
        // The shapes serde reads as a struct too, which `extract` does not look into.
        0 => json!([data]),
        1 => data,
        2 => Value::Null,
        _ => {
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
            if u.ratio(15, 16)? {
                inline.insert("data".into(), data);
            }
            Value::Object(inline)
        }
    })
}

/// One `parts[]` entry in the shape Gemini sends, with arbitrary deviations.
fn part(gen: &Gen, u: &mut Unstructured, odd: bool) -> Result<Value> {
    let mut p = Map::new();
    let snake = u.ratio(1, 3)?;
    match u.int_in_range(0..=7)? {
        0 => {
            p.insert("text".into(), json!(gen.string(u)?));
        }
        1..=4 => {
            p.insert(
                if snake { "inline_data" } else { "inlineData" }.into(),
                inline(gen, u, odd, snake)?,
            );
        }
        5 => {
            // Both spellings: the camel one is the image data, whatever it holds.
            p.insert("inlineData".into(), inline(gen, u, odd, false)?);
            p.insert("inline_data".into(), inline(gen, u, odd, true)?);
        }
        6 if odd => {
            // A part written as an array, which serde reads as a struct.
            return Ok(json!([
                inline(gen, u, odd, false)?,
                inline(gen, u, odd, true)?
            ]));
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
        let sig = match u.int_in_range(0..=7)? {
            0..=3 => json!(gen.string(u)?),
            4..=6 => json!(image_data(u)?),
            _ => gen.value(u)?,
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

fn candidate(gen: &Gen, u: &mut Unstructured, odd: bool) -> Result<Value> {
    let mut c = Map::new();
    match u.int_in_range(0..=7)? {
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
        4 if odd => {
            // Content written as an array.
            return Ok(json!([[part(gen, u, odd)?]]));
        }
        _ => {
            let mut parts = Vec::new();
            for _ in 0..u.int_in_range(0..=6)? {
                parts.push(part(gen, u, odd)?);
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

/// A body; with `odd`, now and then in shapes serde reads as a struct but `extract` does
/// not look into (arrays where objects go, image data where `inlineData` goes).
fn value(gen: &Gen, u: &mut Unstructured, odd: bool) -> Result<Value> {
    let mut body = Map::new();
    if u.ratio(7, 8)? {
        let mut candidates = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            candidates.push(candidate(gen, u, odd)?);
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
    if odd && aperture_fuzz::one_in(u, 16)? {
        // The whole body written as an array (serde reads it as the struct).
        return Ok(json!([body.remove("candidates").unwrap_or(Value::Null)]));
    }
    Ok(Value::Object(body))
}

impl<'a> Arbitrary<'a> for Body {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        if u.ratio(1, 8)? {
            return Ok(Body(u.arbitrary::<Vec<u8>>()?));
        }
        let gen = Gen {
            words: WORDS,
            max_depth: 3,
        };
        let odd = aperture_fuzz::one_in(u, 3)?;
        let mut text = emit::json(&value(&gen, u, odd)?, u)?;
        if aperture_fuzz::one_in(u, 32)? {
            // Damaged in transit: cut short, or a byte changed.
            let at = u.choose_index(text.len())?;
            if u.arbitrary()? {
                text.truncate(at);
            } else {
                text[at] = u.arbitrary()?;
            }
        }
        Ok(Body(text))
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

/// Bodies seen that are JSON, those with image data large enough to slice, and those the
/// fast path took (printed every 2^14 JSON bodies when `APERTURE_FUZZ_STATS` is set, to
/// see that the generator reaches the fast path).
static JSON: AtomicU64 = AtomicU64::new(0);
static LARGE_IMAGES: AtomicU64 = AtomicU64::new(0);
static SLICED: AtomicU64 = AtomicU64::new(0);

fn count(large: bool, sliced: bool) {
    let json = JSON.fetch_add(1, Ordering::Relaxed) + 1;
    let large = LARGE_IMAGES.fetch_add(large as u64, Ordering::Relaxed) + large as u64;
    let sliced = SLICED.fetch_add(sliced as u64, Ordering::Relaxed) + sliced as u64;
    if json % (1 << 14) == 0 && std::env::var_os("APERTURE_FUZZ_STATS").is_some() {
        eprintln!(
            "parse_response: {json} JSON bodies, {large} with large image data, {sliced} sliced"
        );
    }
}

/// `got` is what parsing `body` and calling `extract` give (`want`, a fresh extraction):
/// the same value, the same blobs, and each blob taken the same way. With `shared`, the
/// large image data is a slice of `body` and the small is not.
fn same(
    got: (Value, Blobs),
    want: &Value,
    mut blobs: Blobs,
    body: &Bytes,
    shared: bool,
    what: &str,
) {
    let (value, mut got) = got;
    assert_eq!(&value, want, "{what}: value of {:?}", Body(body.to_vec()));
    assert_eq!(
        got.len(),
        blobs.len(),
        "{what}: blobs of {:?}",
        Body(body.to_vec())
    );
    let inside = |d: &Bytes| {
        let (start, at) = (body.as_ptr() as usize, d.as_ptr() as usize);
        at >= start && at < start + body.len()
    };
    for id in 0..=got.len() as u32 {
        let (a, b) = (got.take_image(id), blobs.take_image(id));
        assert_eq!(a, b, "{what}: blob {id} of {:?}", Body(body.to_vec()));
        if let (true, Ok(data)) = (shared, &a) {
            assert_eq!(
                inside(data),
                data.len() >= LARGE,
                "{what}: blob {id} ({} bytes) shared or copied wrongly from {:?}",
                data.len(),
                Body(body.to_vec())
            );
        }
        assert_eq!(got.take_image(id), blobs.take_image(id));
    }
}

fuzz_target!(|body: Body| {
    let raw = Bytes::copy_from_slice(&body.0);
    let whole = blobs::extract_body(&raw);
    let fast = blobs::extract_body_sliced(&raw);
    // The host answers 502 IMG_UPSTREAM_MALFORMED to a body that is not JSON.
    let Ok(original) = serde_json::from_slice::<Value>(&body.0) else {
        assert!(
            whole.is_err(),
            "extract_body took a body that is not JSON: {body:?}"
        );
        assert!(
            fast.is_none(),
            "the fast path took a body that is not JSON: {body:?}"
        );
        return;
    };
    let fresh = || {
        let mut value = original.clone();
        let blobs = blobs::extract(&mut value);
        (value, blobs)
    };
    let (value, mut taken) = fresh();
    let large = {
        let (_, mut b) = fresh();
        (0..b.len() as u32).any(|id| b.take_image(id).is_ok_and(|d| d.len() >= LARGE))
    };
    count(large, fast.is_some());
    let whole = whole.unwrap_or_else(|e| panic!("extract_body refused JSON ({e}): {body:?}"));
    let (_, want) = fresh();
    same(whole, &value, want, &raw, false, "extract_body");
    if let Some(fast) = fast {
        let (_, want) = fresh();
        same(fast, &value, want, &raw, true, "fast path");
    }
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
            // Image data comes out of JSON strings: always text.
            let text: Vec<&str> = data
                .iter()
                .map(|d| std::str::from_utf8(d).expect("image data is text"))
                .collect();
            let rendered = Generation {
                images,
                ..generation
            };
            for format in [ResponseFormat::B64Json, ResponseFormat::Url] {
                let json = build_response(&rendered, format, 1);
                let spliced = blobs::splice(&json, &text)
                    .unwrap_or_else(|e| panic!("splice failed: {e} ({body:?})"));
                let pieces = gateway::splice::splice(&json, &data)
                    .unwrap_or_else(|e| panic!("gateway splice failed: {e} ({body:?})"));
                assert_eq!(pieces.to_bytes(), spliced.as_bytes(), "{body:?}");
                let out: Value = serde_json::from_str(&spliced).expect("spliced response is JSON");
                let items = out["data"].as_array().expect("data is an array");
                assert_eq!(items.len(), data.len());
                for (item, b64) in items.iter().zip(&text) {
                    match format {
                        ResponseFormat::B64Json => {
                            assert_eq!(item["b64_json"].as_str(), Some(*b64))
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
