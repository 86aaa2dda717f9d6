//! Blob tokens: image bytes never cross into components. Before a component sees an
//! upstream body, the host swaps image data and opaque thought signatures for
//! `aperture-blob:<id>` *by their place in the body* (never by length: text parts
//! can be long too), and after the translator renders the client response it
//! splices image data back *only where images are rendered* (`data[i].b64_json`,
//! the tail of a `data[i].url` data URI). Text that merely looks like a token — a
//! client's prompt echoed by the model, say — is never replaced, so it cannot be
//! forged into an image or into an error.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The token prefix (see `wit/types.wit`).
pub const TOKEN_PREFIX: &str = "aperture-blob:";

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// Base64 image data (`inlineData.data`).
    Image,
    /// An opaque `thoughtSignature` (real ones run to ~1.4 MB of base64).
    Signature,
}

/// The values taken out of one upstream body, indexed by blob id (`None` once taken).
#[derive(Debug, Default)]
pub struct Blobs {
    items: Vec<(BlobKind, Option<Bytes>)>,
}

/// A blob id that a component used where it may not.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlobError {
    /// The id names no blob.
    #[error("component output refers to blob {0}, which does not exist")]
    Unknown(u32),
    /// The id names a thought signature, not image data.
    #[error("component output uses blob {0} as an image, but it is a thought signature")]
    NotAnImage(u32),
    /// The same image was listed twice.
    #[error("component output lists blob {0} twice")]
    Twice(u32),
}

impl Blobs {
    /// Number of blobs taken out.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the body carried no image data or signature.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Move the image data of blob `id` out (no copy of the megabytes). A blob can be
    /// taken once; a signature is never image data.
    pub fn take_image(&mut self, id: u32) -> Result<Bytes, BlobError> {
        let (kind, data) = self
            .items
            .get_mut(id as usize)
            .ok_or(BlobError::Unknown(id))?;
        if *kind != BlobKind::Image {
            return Err(BlobError::NotAnImage(id));
        }
        data.take().ok_or(BlobError::Twice(id))
    }

    fn push(&mut self, kind: BlobKind, slot: &mut String) {
        let id = self.items.len();
        let data = std::mem::replace(slot, token(id));
        self.items.push((kind, Some(Bytes::from(data))));
    }
}

/// The token for blob `id`.
pub fn token(id: usize) -> String {
    format!("{TOKEN_PREFIX}{id}")
}

/// `obj[camel]` or `obj[snake]` (the REST API accepts both spellings).
fn field_mut<'a>(
    obj: &'a mut Map<String, Value>,
    camel: &str,
    snake: &str,
) -> Option<&'a mut Value> {
    if obj.contains_key(camel) {
        obj.get_mut(camel)
    } else {
        obj.get_mut(snake)
    }
}

/// Take image data and thought signatures out of a `generateContent` response by
/// their place: `candidates[*].content.parts[*]` `inlineData.data` (image data) and
/// `thoughtSignature` (signatures), in either spelling. Every other value — text
/// of any length, unexpected fields — stays where it is. Empty image data is no
/// image: it stays in place, and the translator finds the answer malformed.
pub fn extract(body: &mut Value) -> Blobs {
    let mut blobs = Blobs::default();
    let Some(candidates) = body
        .as_object_mut()
        .and_then(|o| o.get_mut("candidates"))
        .and_then(Value::as_array_mut)
    else {
        return blobs;
    };
    for candidate in candidates {
        let Some(parts) = candidate
            .as_object_mut()
            .and_then(|c| c.get_mut("content"))
            .and_then(Value::as_object_mut)
            .and_then(|c| c.get_mut("parts"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for part in parts.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::String(data)) = field_mut(part, "inlineData", "inline_data")
                .and_then(Value::as_object_mut)
                .and_then(|inline| inline.get_mut("data"))
            {
                if !data.is_empty() {
                    blobs.push(BlobKind::Image, data);
                }
            }
            if let Some(Value::String(sig)) =
                field_mut(part, "thoughtSignature", "thought_signature")
            {
                blobs.push(BlobKind::Signature, sig);
            }
        }
    }
    blobs
}

/// Image data shorter than this is taken out by [`extract`] the ordinary way.
const SLICE_AT_LEAST: usize = 256;

/// The parts of a `generateContent` body that can hold image data or signatures, borrowed from the body:
/// only as much as [`extract`] looks at. A body this does not fit (a different type at one
/// of these places, a duplicate key, escaped image data) is taken out the ordinary way.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    candidates: Option<Vec<Candidate<'a>>>,
}

#[derive(Deserialize)]
struct Candidate<'a> {
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, default)]
    parts: Option<Vec<Part<'a>>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default, rename = "inlineData")]
    camel: Option<Inline<'a>>,
    #[serde(borrow, default, rename = "inline_data")]
    snake: Option<Inline<'a>>,
    /// Real signatures on image parts run to ~1.4 MB: sliced like image data, never copied.
    #[serde(borrow, default, rename = "thoughtSignature")]
    signature_camel: Option<&'a str>,
    #[serde(borrow, default, rename = "thought_signature")]
    signature_snake: Option<&'a str>,
}

#[derive(Deserialize)]
struct Inline<'a> {
    #[serde(borrow, default)]
    data: Option<&'a str>,
}

/// [`extract`] on a raw body, with image data and signatures left where they are: each
/// large one is a slice of `body` (no copy of the megabytes; the value the components see is
/// parsed from the body without them). Same blobs, same ids, same value as parsing `body` and calling
/// [`extract`], which is what this falls back to whenever the body is not plain enough.
pub fn extract_body(body: &Bytes) -> Result<(Value, Blobs), serde_json::Error> {
    if let Some(found) = sliced(body) {
        return Ok(found);
    }
    let mut value: Value = serde_json::from_slice(body)?;
    let blobs = extract(&mut value);
    Ok((value, blobs))
}

/// The fast path of [`extract_body`] alone (`None`: the body goes the ordinary way), so
/// the fuzz target can check it on its own. Not for other use.
#[doc(hidden)]
pub fn extract_body_sliced(body: &Bytes) -> Option<(Value, Blobs)> {
    sliced(body)
}

/// The fast path of [`extract_body`]; `None` sends the body the ordinary way.
fn sliced(body: &Bytes) -> Option<(Value, Blobs)> {
    let parsed: Body = serde_json::from_slice(body).ok()?;
    let base = body.as_ptr() as usize;
    // Where each large image's base64 sits in the body, in document order.
    let mut ranges: Vec<std::ops::Range<usize>> = parsed
        .candidates
        .iter()
        .flatten()
        .filter_map(|c| c.content.as_ref()?.parts.as_ref())
        .flatten()
        .flat_map(|p| {
            let data = [&p.camel, &p.snake].map(|inline| inline.as_ref().and_then(|i| i.data));
            data.into_iter()
                .chain([p.signature_camel, p.signature_snake])
        })
        .flatten()
        .filter(|data| data.len() >= SLICE_AT_LEAST)
        .map(|data| {
            let start = data.as_ptr() as usize - base;
            start..start + data.len()
        })
        .collect();
    if ranges.is_empty() {
        return None;
    }
    ranges.sort_by_key(|r| r.start);
    // The body without the image data: each one replaced by a placeholder no text can contain.
    let marker = format!("@aperture-slice-{:032x}-", rand::random::<u128>());
    let mut skeleton = Vec::with_capacity(
        body.len() - ranges.iter().map(|r| r.len()).sum::<usize>() + ranges.len() * 64,
    );
    let mut at = 0;
    for (i, r) in ranges.iter().enumerate() {
        skeleton.extend_from_slice(&body[at..r.start]);
        skeleton.extend_from_slice(format!("{marker}{i}").as_bytes());
        at = r.end;
    }
    skeleton.extend_from_slice(&body[at..]);
    let mut value: Value = serde_json::from_slice(&skeleton).ok()?;
    let mut blobs = extract(&mut value);
    // Every placeholder must have been taken as a blob (else: the ordinary way). The placeholders stand
    // only where `extract` looks, so what it took them as (image data, signature) is what they are.
    let mut placed = 0;
    for (_, data) in &mut blobs.items {
        let Some(i) = data
            .as_deref()
            .and_then(|d| d.strip_prefix(marker.as_bytes()))
            .and_then(|d| std::str::from_utf8(d).ok()?.parse::<usize>().ok())
        else {
            continue;
        };
        *data = Some(body.slice(ranges.get(i)?.clone()));
        placed += 1;
    }
    (placed == ranges.len()).then_some((value, blobs))
}

/// The id in a whole-string token `aperture-blob:<digits>`.
fn token_id(s: &str) -> Option<u32> {
    let digits = s.strip_prefix(TOKEN_PREFIX)?;
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Splice image data into the translator's rendered response: each `data[i]`'s
/// `b64_json`, when it is exactly a token, and its `url`, when it is a `data:` URI
/// whose payload after `base64,` is exactly a token. Nothing else is touched.
/// `images[id]` is the base64 for blob `id`.
pub fn splice<S: AsRef<str>>(json: &str, images: &[S]) -> Result<String, SpliceError> {
    let mut value: Value = serde_json::from_str(json).map_err(|_| SpliceError::NotJson)?;
    let image = |id: u32| -> Result<&str, SpliceError> {
        images
            .get(id as usize)
            .map(AsRef::as_ref)
            .ok_or(SpliceError::Blob(BlobError::Unknown(id)))
    };
    if let Some(items) = value.get_mut("data").and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::String(b64)) = item.get_mut("b64_json") {
                if let Some(id) = token_id(b64) {
                    *b64 = image(id)?.to_string();
                }
            }
            if let Some(Value::String(url)) = item.get_mut("url") {
                if let Some((head, tail)) = url.rsplit_once("base64,") {
                    if let (true, Some(id)) = (head.starts_with("data:"), token_id(tail)) {
                        let data = image(id)?;
                        let mut spliced = String::with_capacity(head.len() + 7 + data.len());
                        spliced.push_str(head);
                        spliced.push_str("base64,");
                        spliced.push_str(data);
                        *url = spliced;
                    }
                }
            }
        }
    }
    serde_json::to_string(&value).map_err(|_| SpliceError::NotJson)
}

/// Why a rendered response could not be completed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpliceError {
    /// The translator's output is not JSON.
    #[error("the translator's response is not JSON")]
    NotJson,
    /// Image data that is not text (a damaged result) cannot go into a JSON response.
    #[error("image data is not text")]
    NotText,
    /// A token names no image.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_data_and_signatures_become_tokens_by_place_and_text_never() {
        let long_text = "日".repeat(400);
        let mut body = json!({"candidates": [{"content": {"parts": [
            {"text": long_text.clone(), "thoughtSignature": "SIG"},
            {"inlineData": {"mimeType": "image/png", "data": "QUJD"}, "thought": true},
            {"inline_data": {"mime_type": "image/jpeg", "data": "REVG"}, "thought_signature": "SIG2"},
            {"text": "aperture-blob:0"}
        ]}}]});
        let mut blobs = extract(&mut body);
        let parts = &body["candidates"][0]["content"]["parts"];
        assert_eq!(parts[0]["text"], long_text.as_str());
        assert_eq!(parts[0]["thoughtSignature"], "aperture-blob:0");
        assert_eq!(parts[1]["inlineData"]["data"], "aperture-blob:1");
        assert_eq!(parts[2]["inline_data"]["data"], "aperture-blob:2");
        assert_eq!(parts[2]["thought_signature"], "aperture-blob:3");
        assert_eq!(parts[3]["text"], "aperture-blob:0");
        assert_eq!(blobs.len(), 4);
        assert_eq!(blobs.take_image(0), Err(BlobError::NotAnImage(0)));
        assert_eq!(blobs.take_image(2).unwrap(), "REVG");
        assert_eq!(blobs.take_image(2), Err(BlobError::Twice(2)));
        assert_eq!(blobs.take_image(9), Err(BlobError::Unknown(9)));
    }

    /// Found by the parse_response fuzz target: an image part with `"data": ""` became
    /// a blob that `take_image` called taken ("lists blob 0 twice"), a 500
    /// IMG_POLICY_FAILURE for what is a malformed upstream answer.
    #[test]
    fn empty_image_data_is_no_image_and_a_blob_is_taken_once() {
        let mut body = json!({"candidates": [{"content": {"parts": [
            {"inlineData": {"mimeType": "image/png", "data": ""}},
            {"inlineData": {"mimeType": "image/png", "data": "QUJD"}}
        ]}}]});
        let mut blobs = extract(&mut body);
        let parts = &body["candidates"][0]["content"]["parts"];
        assert_eq!(parts[0]["inlineData"]["data"], "");
        assert_eq!(parts[1]["inlineData"]["data"], "aperture-blob:0");
        assert_eq!(blobs.len(), 1);
        assert_eq!(blobs.take_image(0).unwrap(), "QUJD");
        assert_eq!(blobs.take_image(0), Err(BlobError::Twice(0)));
    }

    /// `extract_body` gives what parsing and `extract` give, for every shape, and slices the large image
    /// data out of the body instead of copying it whenever the body is plain enough.
    #[test]
    fn extract_body_matches_extract_and_shares_the_image_data() {
        let big = "QUJD".repeat(1000);
        // (body, whether its large image data is shared rather than copied)
        let bodies = [
            // Two images (camel and snake), a thought image, a signature, text that looks like data.
            (json!({"candidates": [{"content": {"parts": [
                {"text": "data: aperture-blob:0 @aperture-slice-", "thoughtSignature": "SIG"},
                {"text": "thinking", "thought_signature": big.clone()},
                {"inlineData": {"mimeType": "image/png", "data": big.clone()}, "thought": true},
                {"inline_data": {"mime_type": "image/jpeg", "data": format!("{big}REVG")}},
                {"inlineData": {"mimeType": "image/png", "data": "c21hbGw="}}
            ]}}], "usageMetadata": {"totalTokenCount": 3}}).to_string(), true),
            // Both spellings in one part: only the camel one is data (the fast path steps aside).
            (json!({"candidates": [{"content": {"parts": [
                {"inlineData": {"data": big.clone()}, "inline_data": {"data": format!("{big}X")}}
            ]}}]}).to_string(), false),
            // Escaped base64 (`\/`), and a shape the typed view does not fit.
            (format!(r#"{{"candidates":[{{"content":{{"parts":[{{"inlineData":{{"data":"{big}\/"}}}}]}}}}]}}"#), false),
            (json!({"candidates": [{"content": "text"}, {"content": {"parts": [{"inlineData": {"data": big.clone()}}]}}]}).to_string(), false),
            (json!({"promptFeedback": {"blockReason": "OTHER"}}).to_string(), false),
        ];
        for (text, shared) in bodies {
            let body = Bytes::from(text.clone());
            let mut expected: Value = serde_json::from_str(&text).unwrap();
            let mut expected_blobs = extract(&mut expected);
            let (value, mut blobs) = extract_body(&body).unwrap();
            assert_eq!(value, expected, "{text:.200}");
            assert_eq!(blobs.len(), expected_blobs.len());
            assert_eq!(blobs.items, expected_blobs.items, "{text:.200}");
            let inside = |d: &Bytes| {
                let (start, at) = (body.as_ptr() as usize, d.as_ptr() as usize);
                at >= start && at < start + body.len()
            };
            // Large signatures are shared too.
            for (kind, data) in &blobs.items {
                let data = data.as_ref().unwrap();
                if *kind == BlobKind::Signature {
                    assert_eq!(inside(data), shared && data.len() >= SLICE_AT_LEAST);
                }
            }
            for id in 0..blobs.len() as u32 {
                let got = blobs.take_image(id);
                assert_eq!(got, expected_blobs.take_image(id), "{text:.200}");
                if let Ok(data) = &got {
                    let large = data.len() >= SLICE_AT_LEAST;
                    assert_eq!(inside(data), shared && large, "blob {id} of {text:.200}");
                }
            }
        }
        assert!(extract_body(&Bytes::from_static(b"{not json")).is_err());
    }

    #[test]
    fn bodies_without_candidates_or_parts_give_no_blobs() {
        for mut body in [
            json!({"promptFeedback": {"blockReason": "OTHER"}}),
            json!({"candidates": [{"content": {}}, {"content": {"parts": null}}, {}]}),
            json!([1, 2]),
        ] {
            assert!(extract(&mut body).is_empty());
        }
    }

    #[test]
    fn splice_replaces_only_rendered_images() {
        let json = r#"{"data":[{"b64_json":"aperture-blob:0","revised_prompt":"aperture-blob:1"},
            {"url":"data:image/jpeg;base64,aperture-blob:1","revised_prompt":"see aperture-blob:0"}],
            "note":"aperture-blob:0"}"#;
        let out: Value = serde_json::from_str(&splice(json, &["QUJD", "REVG"]).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"data": [{"b64_json": "QUJD", "revised_prompt": "aperture-blob:1"},
                {"url": "data:image/jpeg;base64,REVG", "revised_prompt": "see aperture-blob:0"}],
                "note": "aperture-blob:0"})
        );
    }

    /// Found by the splice fuzz target: serde_json's default float parsing is off by
    /// an ulp for some numbers, so splicing changed a float outside `data[i]`; the
    /// host enables serde_json's `float_roundtrip`.
    #[test]
    fn splice_leaves_every_other_value_exactly_as_it_was() {
        for json in [
            "-8.776727066833516e+304",
            r#"{"data":[{"b64_json":"aperture-blob:0","x":-8.776727066833516e+304}],"y":2.2250738585072014e-308}"#,
        ] {
            let before: Value = serde_json::from_str(json).unwrap();
            let mut after: Value = serde_json::from_str(&splice(json, &["QUJD"]).unwrap()).unwrap();
            if let Some(b64) = after.pointer_mut("/data/0/b64_json") {
                *b64 = json!("aperture-blob:0");
            }
            assert_eq!(after, before, "{json}");
        }
    }

    #[test]
    fn splice_rejects_unknown_ids_and_non_json() {
        assert_eq!(
            splice(r#"{"data":[{"b64_json":"aperture-blob:7"}]}"#, &["x"]),
            Err(SpliceError::Blob(BlobError::Unknown(7)))
        );
        assert_eq!(splice("not json", &["x"]), Err(SpliceError::NotJson));
        // A token with trailing text is not a token.
        assert_eq!(
            splice(r#"{"data":[{"b64_json":"aperture-blob:0x"}]}"#, &["x"]).unwrap(),
            r#"{"data":[{"b64_json":"aperture-blob:0x"}]}"#
        );
    }
}
