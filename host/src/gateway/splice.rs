//! Splicing image data into the translator's rendered response with ONE copy of the megabytes: the
//! blob tokens are swapped for unguessable markers, the (small) JSON is serialised, and the output is
//! written once, straight into a buffer of the exact size, with each image's base64 copied into its
//! marker's place. Same rules and same bytes as `policy::blobs::splice` (images only where they are
//! rendered: `data[i].b64_json` and the tail of a `data[i].url` data URI), which remains the fallback for
//! image data that would need JSON escaping (never true of base64).

use serde_json::Value;

use crate::policy::blobs::{self, BlobError, SpliceError, TOKEN_PREFIX};

/// Characters base64 (standard or URL-safe) may contain: none needs escaping in a JSON string.
fn plain(data: &str) -> bool {
    data.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

fn token_id(s: &str) -> Option<u32> {
    let digits = s.strip_prefix(TOKEN_PREFIX)?;
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The response `json` (with blob tokens) with `images[id]` spliced in, as bytes.
pub fn splice(json: &str, images: &[&str]) -> Result<Vec<u8>, SpliceError> {
    if !images.iter().all(|d| plain(d)) {
        return blobs::splice(json, images).map(String::into_bytes);
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
    let mut spliced = 0usize;
    if let Some(items) = value.get_mut("data").and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::String(b64)) = item.get_mut("b64_json") {
                if let Some(id) = token_id(b64) {
                    let id = check(id)?;
                    *b64 = format!("{marker}{id}@");
                    spliced += images[id as usize].len();
                }
            }
            if let Some(Value::String(url)) = item.get_mut("url") {
                if let Some((head, tail)) = url.rsplit_once("base64,") {
                    if let (true, Some(id)) = (head.starts_with("data:"), token_id(tail)) {
                        let id = check(id)?;
                        *url = format!("{head}base64,{marker}{id}@");
                        spliced += images[id as usize].len();
                    }
                }
            }
        }
    }
    let text = serde_json::to_string(&value).map_err(|_| SpliceError::NotJson)?;
    let mut out = Vec::with_capacity(text.len() + spliced);
    let mut rest = text.as_str();
    while let Some(at) = rest.find(&marker) {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let after = &rest[at + marker.len()..];
        let end = after.find('@').ok_or(SpliceError::NotJson)?;
        let id: usize = after[..end].parse().map_err(|_| SpliceError::NotJson)?;
        out.extend_from_slice(images[id].as_bytes());
        rest = &after[end + 1..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
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
        for json in cases {
            let general = blobs::splice(json, &images).unwrap();
            let once = String::from_utf8(splice(json, &images).unwrap()).unwrap();
            assert_eq!(once, general);
        }
        // Data that would need escaping takes the general path, with the same result.
        let odd = ["a\"b\n"];
        let json = r#"{"data":[{"b64_json":"aperture-blob:0"}]}"#;
        assert_eq!(
            String::from_utf8(splice(json, &odd).unwrap()).unwrap(),
            blobs::splice(json, &odd).unwrap()
        );
    }

    #[test]
    fn unknown_blobs_and_bad_json_are_errors() {
        assert_eq!(
            splice(r#"{"data":[{"b64_json":"aperture-blob:2"}]}"#, &["QQ=="]),
            Err(SpliceError::Blob(BlobError::Unknown(2)))
        );
        assert_eq!(splice("not json", &["QQ=="]), Err(SpliceError::NotJson));
    }
}
