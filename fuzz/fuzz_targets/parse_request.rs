//! Request parsing: the translator's `parse_request` on arbitrary bodies, raw or built
//! from the OpenAI fields. It must never panic; what it accepts must be canonical (valid
//! for the model, and parsing the canonical request back gives the same request); what it
//! refuses must name a known field and an `IMG_*` code.
#![no_main]

use aperture_fuzz::json::Gen;
use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use request_translator::request::parse_request;
use request_translator::types::{OutputFormat, ResponseFormat, SafetyThreshold};
use serde_json::{json, Value};

const FIELDS: &[&str] = &[
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "response_format",
    "style",
    "safety_threshold",
    "aspect_ratio",
    "image_size",
    "output_format",
];

const WORDS: &[&str] = &[
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "response_format",
    "style",
    "safety_threshold",
    "aspect_ratio",
    "image_size",
    "output_format",
    "user",
    "a red fox",
    " ",
    "",
    "\u{200b}",
    "日本",
    "gemini-3-pro-image",
    "gemini-3-pro-image-preview",
    "gemini-3.1-flash-image",
    "gemini-2.5-flash-image",
    "gemini-2.5-flash-image-preview",
    "dall-e-3",
    "GPT-IMAGE-1",
    "auto",
    "1024x1024",
    "1792x1024",
    "0x0",
    "999999x1",
    "1000000x1",
    "1:1",
    "4:1",
    "1:8",
    "21:9",
    "16:9",
    "3:3",
    "low",
    "standard",
    "medium",
    "high",
    "hd",
    "b64_json",
    "url",
    "vivid",
    "NATURAL",
    "OFF",
    "low",
    "Medium",
    "HIGH",
    "512",
    "1k",
    "2K",
    "4k",
    "png",
    "jpeg",
    "jpg",
    "webp",
    "gif",
];

enum Input {
    Raw(String),
    Fields(Value),
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        if u.ratio(1, 4)? {
            return Ok(Input::Raw(u.arbitrary()?));
        }
        let gen = Gen {
            words: WORDS,
            max_depth: 2,
        };
        let mut obj = gen.object(u)?;
        for _ in 0..u.int_in_range(0..=8)? {
            let field = u.choose(FIELDS)?;
            let value = if u.ratio(3, 4)? {
                Value::String(gen.string(u)?)
            } else {
                gen.value(u)?
            };
            obj.insert(field.to_string(), value);
        }
        Ok(Input::Fields(Value::Object(obj)))
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Raw(s) => write!(f, "{s:?}"),
            Input::Fields(v) => write!(f, "{v}"),
        }
    }
}

fn threshold(t: SafetyThreshold) -> &'static str {
    match t {
        SafetyThreshold::Off => "OFF",
        SafetyThreshold::Low => "LOW",
        SafetyThreshold::Medium => "MEDIUM",
        SafetyThreshold::High => "HIGH",
    }
}

fuzz_target!(|input: Input| {
    let body = match &input {
        Input::Raw(s) => s.clone(),
        Input::Fields(v) => v.to_string(),
    };
    match parse_request(&body) {
        Err(e) => {
            assert!(!e.message.is_empty(), "empty message for {body}");
            assert!(
                e.code == "IMG_INVALID_REQUEST" || e.code == "IMG_UNSUPPORTED_MODEL",
                "code {} for {body}",
                e.code
            );
            if let Some(param) = &e.param {
                assert!(FIELDS.contains(&param.as_str()), "param {param} for {body}");
            }
        }
        Ok(req) => {
            assert!((1..=10).contains(&req.n), "n {} for {body}", req.n);
            assert!(!req.prompt.is_empty() && req.prompt.trim() == req.prompt);
            assert!(req.prompt.chars().count() <= 32_000);
            let model = aperture_models::find(&req.model)
                .unwrap_or_else(|| panic!("model {} is not served ({body})", req.model));
            assert_eq!(model.reported, req.model);
            assert_eq!(model.upstream, req.upstream_model);
            assert!(
                model.family.ratio(&req.aspect_ratio).is_some(),
                "ratio {} for {} ({body})",
                req.aspect_ratio,
                req.model
            );
            assert!(
                model
                    .family
                    .image_sizes()
                    .contains(&req.image_size.as_str())
                    || req.image_size == "1K",
                "image size {} for {} ({body})",
                req.image_size,
                req.model
            );
            // The upstream body the translator builds from it is JSON.
            let settings = safety_policy::thresholds::settings(
                req.safety_threshold.unwrap_or(SafetyThreshold::Medium),
            );
            let upstream = request_translator::upstream::build_upstream_body(&req, &settings);
            let _: Value = serde_json::from_str(&upstream).expect("upstream body is JSON");
            // The canonical request, sent again, is the same request.
            let mut canonical = json!({
                "prompt": req.prompt,
                "model": req.model,
                "n": req.n,
                "aspect_ratio": req.aspect_ratio,
                "image_size": req.image_size,
                "response_format": match req.response_format {
                    ResponseFormat::B64Json => "b64_json",
                    ResponseFormat::Url => "url",
                },
            });
            if let Some(style) = &req.style {
                canonical["style"] = json!(style);
            }
            if let Some(t) = req.safety_threshold {
                canonical["safety_threshold"] = json!(threshold(t));
            }
            if let Some(f) = req.output_format {
                canonical["output_format"] = json!(match f {
                    OutputFormat::Png => "png",
                    OutputFormat::Jpeg => "jpeg",
                    OutputFormat::Webp => "webp",
                });
            }
            let again = parse_request(&canonical.to_string())
                .unwrap_or_else(|e| panic!("canonical form {canonical} of {body} refused: {e:?}"));
            assert_eq!(again, req, "canonical form of {body}");
        }
    }
});
