//! Blob splicing: `blobs::splice` on arbitrary translator output (raw text, or JSON in the
//! shape of an Images response) and arbitrary image data. It must never panic, and must
//! never change anything but `data[i].b64_json` (a whole token) and `data[i].url` (a
//! `data:` URI ending in a token), each replaced by exactly the named image.
#![no_main]

use aperture::policy::blobs::{self, BlobError, SpliceError};
use aperture_fuzz::{diff, json::Gen};
use arbitrary::{Arbitrary, Result, Unstructured};
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
];

struct Input {
    json: String,
    images: Vec<String>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "json={} images={:?}", self.json, self.images)
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
                Value::Object(top).to_string()
            }
        };
        let mut images = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            images.push(if u.ratio(1, 2)? {
                gen.string(u)?
            } else {
                u.arbitrary()?
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
    let result = blobs::splice(&input.json, &input.images);
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
                    Some(input.images[id].as_str())
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
                    Some(format!("{head}base64,{}", input.images[id]).as_str())
                );
            }
            other => panic!("splice changed {other:?}: {input:?}"),
        }
    }
});
