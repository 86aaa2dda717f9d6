//! Blob splicing: `blobs::splice` and the gateway's copy-free `gateway::splice::splice` on
//! arbitrary translator output (raw text, or JSON in the shape of an Images response) and
//! arbitrary image data (base64, any text, any bytes). Neither may panic; `blobs::splice`
//! must never change anything but `data[i].b64_json` (a whole token) and `data[i].url` (a
//! `data:` URI ending in a token), each replaced by exactly the named image; the gateway's
//! splice gives the same bytes or the same error, and `NotText` whenever some image data is
//! not UTF-8.
#![no_main]

use aperture::gateway;
use aperture::policy::blobs::{self, BlobError, SpliceError};
use aperture_fuzz::{diff, emit, json::Gen};
use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

const WORDS: &[&str] = &[
    "data",
    "b64_json",
    "url",
    "revised_prompt",
    "created",
    "usage",
    "aperture-blob:0",
    "aperture-blob:1",
    "aperture-blob:2",
    "aperture-blob:01",
    "aperture-blob:",
    "aperture-blob:-1",
    "aperture-blob:4294967296",
    "aperture-blob:999999999",
    "data:image/png;base64,aperture-blob:0",
    "data:base64,aperture-blob:1",
    "data:;base64,base64,aperture-blob:0",
    "base64,",
    "data:",
    "QUJD",
    "@aperture-splice-",
];

struct Input {
    json: String,
    images: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let images: Vec<_> = self
            .images
            .iter()
            .map(|d| String::from_utf8_lossy(d))
            .collect();
        write!(f, "json={} images={images:?}", self.json)
    }
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let gen = Gen {
            words: WORDS,
            max_depth: 3,
        };
        let json = match u.int_in_range(0..=4)? {
            0 => u.arbitrary()?,
            1 => gen.value(u)?.to_string(),
            _ => {
                let mut items = Vec::new();
                for _ in 0..u.int_in_range(0..=4)? {
                    let mut item: Map<String, Value> = if u.ratio(1, 3)? {
                        gen.object(u)?
                    } else {
                        Map::new()
                    };
                    for key in ["b64_json", "url", "revised_prompt"] {
                        if u.ratio(1, 2)? {
                            let v = if u.ratio(4, 5)? {
                                json!(gen.string(u)?)
                            } else {
                                gen.value(u)?
                            };
                            item.insert(key.into(), v);
                        }
                    }
                    items.push(if u.ratio(1, 10)? {
                        gen.value(u)?
                    } else {
                        Value::Object(item)
                    });
                }
                let mut top = if u.ratio(1, 4)? {
                    gen.object(u)?
                } else {
                    Map::new()
                };
                top.insert("data".into(), Value::Array(items));
                // Spelled any way JSON may be (escapes, repeated keys, spacing).
                String::from_utf8_lossy(&emit::json(&Value::Object(top), u)?).into_owned()
            }
        };
        let mut images = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            images.push(match u.int_in_range(0..=5)? {
                // Base64 (what the gateway sends without a copy), now and then empty.
                0..=2 => {
                    const B64: &[u8] =
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_";
                    let len = u.int_in_range(0..=600)?;
                    let seed = u.arbitrary::<u8>()? as usize;
                    (0..len).map(|i| B64[(seed + i * 5) % B64.len()]).collect()
                }
                3 => gen.string(u)?.into_bytes(),
                4 => u.arbitrary::<String>()?.into_bytes(),
                _ => u.arbitrary::<Vec<u8>>()?,
            });
        }
        Ok(Input { json, images })
    }
}

fn token_id(s: &str) -> Option<usize> {
    let digits = s.strip_prefix(blobs::TOKEN_PREFIX)?;
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fuzz_target!(|input: Input| {
    let shared: Vec<Bytes> = input
        .images
        .iter()
        .map(|d| Bytes::copy_from_slice(d))
        .collect();
    let pieces = gateway::splice::splice(&input.json, &shared);
    let Ok(images) = input
        .images
        .iter()
        .map(|d| std::str::from_utf8(d))
        .collect::<Result<Vec<&str>, _>>()
    else {
        assert_eq!(pieces.unwrap_err(), SpliceError::NotText, "{input:?}");
        return;
    };
    let result = blobs::splice(&input.json, &images);
    match (&pieces, &result) {
        (Ok(pieces), Ok(general)) => {
            let bytes = pieces.to_bytes();
            assert_eq!(pieces.len(), bytes.len() as u64);
            assert_eq!(bytes, general.as_bytes(), "{input:?}");
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "{input:?}"),
        (a, b) => panic!("gateway splice {a:?}, general {b:?}: {input:?}"),
    }
    let Ok(before) = serde_json::from_str::<Value>(&input.json) else {
        assert_eq!(result, Err(SpliceError::NotJson), "{input:?}");
        return;
    };
    let out = match result {
        Ok(out) => out,
        Err(SpliceError::Blob(BlobError::Unknown(id))) => {
            assert!(id as usize >= input.images.len(), "{input:?}");
            return;
        }
        Err(e) => panic!("{e} for {input:?}"),
    };
    let after: Value = serde_json::from_str(&out).expect("splice output is JSON");
    for path in diff::paths(&before, &after) {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        match p.as_slice() {
            ["data", i, "b64_json"] => {
                let old = before["data"][i.parse::<usize>().unwrap()]["b64_json"]
                    .as_str()
                    .expect("a string");
                let id = token_id(old)
                    .unwrap_or_else(|| panic!("spliced a non-token {old:?}: {input:?}"));
                assert_eq!(
                    after["data"][i.parse::<usize>().unwrap()]["b64_json"].as_str(),
                    Some(images[id])
                );
            }
            ["data", i, "url"] => {
                let i = i.parse::<usize>().unwrap();
                let old = before["data"][i]["url"].as_str().expect("a string");
                let (head, tail) = old.rsplit_once("base64,").expect("a data URI");
                assert!(head.starts_with("data:"), "{old:?}");
                let id = token_id(tail)
                    .unwrap_or_else(|| panic!("spliced a non-token {old:?}: {input:?}"));
                assert_eq!(
                    after["data"][i]["url"].as_str(),
                    Some(format!("{head}base64,{}", images[id]).as_str())
                );
            }
            other => panic!("splice changed {other:?}: {input:?}"),
        }
    }
});
