//! Blob tokens: image bytes never cross into components. Long strings in an
//! upstream body are swapped for `aperture-blob:<id>` before a component sees it,
//! and spliced back into whatever JSON a component produces.

use serde_json::Value;

/// The token prefix (see `wit/types.wit`).
pub const TOKEN_PREFIX: &str = "aperture-blob:";

/// Strings at least this long are moved out of bodies handed to components.
pub const MIN_BLOB_LEN: usize = 256;

/// The token for blob `id`.
pub fn token(id: usize) -> String {
    format!("{TOKEN_PREFIX}{id}")
}

/// Replace every string of at least [`MIN_BLOB_LEN`] bytes in `value` by a token,
/// appending the string to `blobs` (ids continue from `blobs.len()`).
pub fn extract(value: &mut Value, blobs: &mut Vec<String>) {
    match value {
        Value::String(s) if s.len() >= MIN_BLOB_LEN => {
            let id = blobs.len();
            blobs.push(std::mem::replace(s, token(id)));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| extract(v, blobs)),
        Value::Object(map) => map.values_mut().for_each(|v| extract(v, blobs)),
        _ => {}
    }
}

/// A token in component output that names no blob.
#[derive(Debug, thiserror::Error)]
#[error("component output refers to blob {0}, which does not exist")]
pub struct UnknownBlob(pub usize);

/// Splice blobs into `json` (component output): a token is replaced where it is a
/// whole JSON string (`"aperture-blob:3"`) or ends a data URI (`"data:...;base64,aperture-blob:3"`).
/// Blob contents are base64, which needs no JSON escaping.
pub fn splice<S: AsRef<str>>(json: &str, blobs: &[S]) -> Result<String, UnknownBlob> {
    let extra: usize = blobs.iter().map(|b| b.as_ref().len()).sum();
    let mut out = String::with_capacity(json.len() + extra);
    let mut rest = json;
    while let Some(at) = rest.find(TOKEN_PREFIX) {
        let (before, after) = rest.split_at(at);
        let digits = after[TOKEN_PREFIX.len()..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let end = TOKEN_PREFIX.len() + digits;
        let closed = after[end..].starts_with('"');
        let opened = before.ends_with('"') || before.ends_with("base64,");
        match (digits > 0 && closed && opened)
            .then(|| after[TOKEN_PREFIX.len()..end].parse::<usize>().ok())
            .flatten()
        {
            Some(id) => {
                let blob = blobs.get(id).ok_or(UnknownBlob(id))?;
                out.push_str(before);
                out.push_str(blob.as_ref());
                rest = &after[end..];
            }
            None => {
                out.push_str(before);
                out.push_str(TOKEN_PREFIX);
                rest = &after[TOKEN_PREFIX.len()..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_become_tokens_and_short_ones_stay() {
        let long = "A".repeat(MIN_BLOB_LEN);
        let mut v =
            serde_json::json!({"parts": [{"text": "hi"}, {"inlineData": {"data": long.clone()}}]});
        let mut blobs = vec!["earlier".to_string()];
        extract(&mut v, &mut blobs);
        assert_eq!(v["parts"][1]["inlineData"]["data"], "aperture-blob:1");
        assert_eq!(v["parts"][0]["text"], "hi");
        assert_eq!(blobs, vec!["earlier".to_string(), long]);
    }

    #[test]
    fn splice_replaces_whole_values_and_data_uri_tails_only() {
        let blobs = ["QUJD", "REVG"];
        let json = r#"{"a":"aperture-blob:0","b":"data:image/png;base64,aperture-blob:1","c":"see aperture-blob:0 here"}"#;
        let out = splice(json, &blobs).unwrap();
        assert_eq!(
            out,
            r#"{"a":"QUJD","b":"data:image/png;base64,REVG","c":"see aperture-blob:0 here"}"#
        );
    }

    #[test]
    fn splice_rejects_unknown_blob_ids() {
        assert!(splice(r#"{"a":"aperture-blob:7"}"#, &["x"]).is_err());
    }
}
