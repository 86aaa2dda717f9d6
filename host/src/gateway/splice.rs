//! Splicing image data into the translator's rendered response with NO copy of the megabytes: the blob
//! tokens are swapped for unguessable markers, the (small) JSON is serialised, and the body is the pieces
//! of that text between the markers with each image's base64 — the shared buffer it arrived in — in its
//! marker's place ([`Chunks`]). Same rules and same bytes as `policy::blobs::splice` (images only where
//! they are rendered: `data[i].b64_json` and the tail of a `data[i].url` data URI), which remains the
//! fallback for image data that would need JSON escaping (never true of base64).

use bytes::Bytes;
use serde_json::Value;

use super::body::Chunks;
use crate::generated::plain_base64;
use crate::policy::blobs::{self, BlobError, SpliceError, TOKEN_PREFIX};

fn token_id(s: &str) -> Option<u32> {
    let digits = s.strip_prefix(TOKEN_PREFIX)?;
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The response `json` (with blob tokens) with `images[id]` spliced in.
pub fn splice(json: &str, images: &[Bytes]) -> Result<Chunks, SpliceError> {
    if !images.iter().all(|d| plain_base64(d)) {
        let text: Vec<&str> = images
            .iter()
            .map(|d| std::str::from_utf8(d).map_err(|_| SpliceError::NotText))
            .collect::<Result<_, _>>()?;
        return blobs::splice(json, &text).map(|s| Chunks::from(Bytes::from(s)));
    }
    let mut value: Value = serde_json::from_str(json).map_err(|_| SpliceError::NotJson)?;
    // A marker no text can contain: 128 random bits, fresh for every call.
    let marker = format!("@aperture-splice-{:032x}#", rand::random::<u128>());
    let check = |id: u32| -> Result<u32, SpliceError> {
        if (id as usize) < images.len() {
            Ok(id)
        } else {
            Err(SpliceError::Blob(BlobError::Unknown(id)))
        }
    };
    if let Some(items) = value.get_mut("data").and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::String(b64)) = item.get_mut("b64_json") {
                if let Some(id) = token_id(b64) {
                    *b64 = format!("{marker}{}@", check(id)?);
                }
            }
            if let Some(Value::String(url)) = item.get_mut("url") {
                if let Some((head, tail)) = url.rsplit_once("base64,") {
                    if let (true, Some(id)) = (head.starts_with("data:"), token_id(tail)) {
                        *url = format!("{head}base64,{marker}{}@", check(id)?);
                    }
                }
            }
        }
    }
    let text = Bytes::from(serde_json::to_string(&value).map_err(|_| SpliceError::NotJson)?);
    let mut parts = Vec::new();
    let mut at = 0;
    while let Some(found) = find(&text[at..], marker.as_bytes()) {
        let start = at + found;
        parts.push(text.slice(at..start));
        let after = start + marker.len();
        let end = after + find(&text[after..], b"@").ok_or(SpliceError::NotJson)?;
        let id: usize = std::str::from_utf8(&text[after..end])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or(SpliceError::NotJson)?;
        parts.push(images[id].clone());
        at = end + 1;
    }
    parts.push(text.slice(at..));
    Ok(Chunks::new(parts))
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_as_the_general_splice() {
        let cases = [
            r#"{"created":1,"data":[{"b64_json":"aperture-blob:0","revised_prompt":"aperture-blob:1"},
            {"url":"data:image/jpeg;base64,aperture-blob:1","revised_prompt":"see aperture-blob:0 @aperture-splice-"}],
            "note":"aperture-blob:0","n":1.0000000000000002}"#,
            r#"{"data":[]}"#,
            r#"{"data":[{"url":"https://x/base64,aperture-blob:0"},{"b64_json":"aperture-blob:00"}]}"#,
        ];
        let images = ["QUJD+/==", "REVG-_"];
        let shared = images.map(|s| Bytes::from_static(s.as_bytes()));
        for json in cases {
            let general = blobs::splice(json, &images).unwrap();
            let once = splice(json, &shared).unwrap().to_bytes();
            assert_eq!(once, general);
        }
        // Data that would need escaping takes the general path, with the same result.
        let odd = ["a\"b\n"];
        let json = r#"{"data":[{"b64_json":"aperture-blob:0"}]}"#;
        assert_eq!(
            splice(json, &odd.map(|s| Bytes::from_static(s.as_bytes())))
                .unwrap()
                .to_bytes(),
            blobs::splice(json, &odd).unwrap()
        );
        // ... and data that is not even text is refused, not sent.
        let binary = [Bytes::from_static(b"\xff\xfe")];
        assert_eq!(splice(json, &binary).unwrap_err(), SpliceError::NotText);
    }

    #[test]
    fn unknown_blobs_and_bad_json_are_errors() {
        assert_eq!(
            splice(
                r#"{"data":[{"b64_json":"aperture-blob:2"}]}"#,
                &[Bytes::from_static(b"QQ==")]
            )
            .unwrap_err(),
            SpliceError::Blob(BlobError::Unknown(2))
        );
        assert_eq!(
            splice("not json", &[Bytes::from_static(b"QQ==")]).unwrap_err(),
            SpliceError::NotJson
        );
    }
}
