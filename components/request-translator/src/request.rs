//! Parsing and validation of an OpenAI `POST /v1/images/generations` body into the
//! canonical [`ImageRequest`].

use serde_json::{Map, Value};

use crate::aspect;
use crate::types::{ImageRequest, ResponseFormat, SafetyThreshold, UserError};

/// The `IMG_*` code for every malformed request.
pub const CODE_INVALID_REQUEST: &str = "IMG_INVALID_REQUEST";
/// The `IMG_*` code for a model this gateway does not serve.
pub const CODE_UNSUPPORTED_MODEL: &str = "IMG_UNSUPPORTED_MODEL";
/// The model used when the client names none (or an OpenAI model alias).
pub const DEFAULT_MODEL: &str = "gemini-3-pro-image";
/// The longest prompt accepted, in characters (after trimming).
pub const MAX_PROMPT_CHARS: usize = 32_000;
/// The most images one request may ask for.
pub const MAX_N: u64 = 10;

/// One model a client may name: (requested id, reported model, upstream model id).
const MODELS: [(&str, &str, &str); 4] = [
    (
        "gemini-3-pro-image",
        "gemini-3-pro-image",
        "gemini-3-pro-image-preview",
    ),
    (
        "gemini-3-pro-image-preview",
        "gemini-3-pro-image",
        "gemini-3-pro-image-preview",
    ),
    (
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-image",
    ),
    (
        "gemini-2.5-flash-image-preview",
        "gemini-2.5-flash-image-preview",
        "gemini-2.5-flash-image-preview",
    ),
];

/// OpenAI model names accepted as aliases of [`DEFAULT_MODEL`].
const OPENAI_ALIASES: [&str; 3] = ["dall-e-2", "dall-e-3", "gpt-image-1"];

/// The image sizes Gemini accepts.
const IMAGE_SIZES: [&str; 3] = ["1K", "2K", "4K"];

/// Whether an upstream model accepts `imageConfig.imageSize` (Gemini 3 image models do;
/// Gemini 2.5 Flash Image generates 1K images only and gets no `imageSize`).
pub fn supports_image_size(upstream_model: &str) -> bool {
    upstream_model.starts_with("gemini-3")
}

/// Resolve a requested model name to (reported model, upstream model id).
pub fn resolve_model(name: &str) -> Option<(&'static str, &'static str)> {
    let name = name.trim().to_ascii_lowercase();
    let name = if OPENAI_ALIASES.contains(&name.as_str()) {
        DEFAULT_MODEL
    } else {
        name.as_str()
    };
    MODELS
        .iter()
        .find(|m| m.0 == name)
        .map(|&(_, model, upstream)| (model, upstream))
}

/// Parse and validate an OpenAI images request body. Unknown fields are ignored and
/// `null` counts as absent; the first problem found is reported.
pub fn parse_request(body: &str) -> Result<ImageRequest, UserError> {
    let value: Value = serde_json::from_str(body).map_err(|_| {
        invalid(
            None,
            "The request body must be a JSON object, e.g. {\"prompt\": \"a red fox in the snow\"}; \
             it could not be parsed as JSON."
                .to_string(),
        )
    })?;
    let Value::Object(obj) = value else {
        return Err(invalid(
            None,
            "The request body must be a JSON object, e.g. {\"prompt\": \"a red fox in the snow\"}."
                .to_string(),
        ));
    };

    let prompt = parse_prompt(&obj)?;
    let (model, upstream_model) = parse_model(&obj)?;
    let n = parse_n(&obj)?;
    let aspect_ratio = parse_aspect_ratio(&obj)?;
    let image_size = parse_image_size(&obj, model, upstream_model)?;
    let response_format = parse_response_format(&obj)?;
    let style = parse_style(&obj)?;
    let safety_threshold = parse_safety_threshold(&obj)?;

    Ok(ImageRequest {
        model: model.to_string(),
        upstream_model: upstream_model.to_string(),
        prompt,
        n,
        aspect_ratio: aspect_ratio.to_string(),
        image_size: image_size.to_string(),
        style,
        safety_threshold,
        response_format,
        output_format: None,
    })
}

fn invalid(param: Option<&str>, message: String) -> UserError {
    UserError {
        message,
        param: param.map(str::to_string),
        code: CODE_INVALID_REQUEST.to_string(),
    }
}

/// A field's value, with `null` treated as absent.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

/// A string field: `Ok(None)` when absent, an error with `message` when not a string.
fn string_field<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    message: &str,
) -> Result<Option<&'a str>, UserError> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(invalid(Some(name), message.to_string())),
    }
}

/// Shorten client-supplied text quoted back in a message.
fn quote(s: &str) -> String {
    const MAX: usize = 64;
    let s = s.trim();
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}...")
    }
}

fn parse_prompt(obj: &Map<String, Value>) -> Result<String, UserError> {
    let prompt = match field(obj, "prompt") {
        None => {
            return Err(invalid(
                Some("prompt"),
                "prompt is required: send a text description of the image, \
                 e.g. {\"prompt\": \"a red fox in the snow\"}."
                    .to_string(),
            ))
        }
        Some(Value::String(s)) => s.trim(),
        Some(_) => {
            return Err(invalid(
                Some("prompt"),
                "prompt must be a string: a text description of the image.".to_string(),
            ))
        }
    };
    if prompt.is_empty() {
        return Err(invalid(
            Some("prompt"),
            "prompt must not be empty: send a text description of the image.".to_string(),
        ));
    }
    let chars = prompt.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(invalid(
            Some("prompt"),
            format!(
                "prompt is too long ({chars} characters): shorten it to at most \
                 {MAX_PROMPT_CHARS} characters."
            ),
        ));
    }
    Ok(prompt.to_string())
}

fn supported_models_message() -> String {
    let names: Vec<&str> = MODELS.iter().map(|m| m.0).collect();
    format!(
        "use one of: {} (the OpenAI names {} are accepted as aliases of {DEFAULT_MODEL}), \
         or omit model.",
        names.join(", "),
        OPENAI_ALIASES.join(", ")
    )
}

fn parse_model(obj: &Map<String, Value>) -> Result<(&'static str, &'static str), UserError> {
    let unsupported = |message: String| UserError {
        message,
        param: Some("model".to_string()),
        code: CODE_UNSUPPORTED_MODEL.to_string(),
    };
    match field(obj, "model") {
        None => resolve_model(DEFAULT_MODEL).ok_or_else(|| unsupported(String::new())),
        Some(Value::String(name)) => resolve_model(name).ok_or_else(|| {
            unsupported(format!(
                "model \"{}\" is not supported by this gateway: {}",
                quote(name),
                supported_models_message()
            ))
        }),
        Some(_) => Err(invalid(
            Some("model"),
            format!("model must be a string: {}", supported_models_message()),
        )),
    }
}

fn parse_n(obj: &Map<String, Value>) -> Result<u8, UserError> {
    match field(obj, "n") {
        None => Ok(1),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_N).contains(n))
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| {
                invalid(
                    Some("n"),
                    format!(
                        "n must be an integer between 1 and {MAX_N}: the number of images \
                         to generate (default 1)."
                    ),
                )
            }),
    }
}

fn ratios_list() -> String {
    aspect::RATIOS
        .iter()
        .map(|r| r.0)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `size` is always validated; a valid `aspect_ratio` (extension) wins over it.
fn parse_aspect_ratio(obj: &Map<String, Value>) -> Result<&'static str, UserError> {
    let size_message = format!(
        "size must be \"auto\", a pixel size such as \"1024x1024\" or \"1792x1024\" (mapped to \
         the nearest supported aspect ratio), or an aspect ratio, one of: {}.",
        ratios_list()
    );
    let from_size = match string_field(obj, "size", &size_message)? {
        None => aspect::DEFAULT_RATIO,
        Some(size) => {
            aspect::from_size(size).ok_or_else(|| invalid(Some("size"), size_message.clone()))?
        }
    };
    let ratio_message = format!("aspect_ratio must be one of: {}.", ratios_list());
    match string_field(obj, "aspect_ratio", &ratio_message)? {
        None => Ok(from_size),
        Some(ratio) => aspect::supported(ratio.trim())
            .ok_or_else(|| invalid(Some("aspect_ratio"), ratio_message)),
    }
}

fn parse_image_size(
    obj: &Map<String, Value>,
    model: &str,
    upstream_model: &str,
) -> Result<&'static str, UserError> {
    let size_message = "image_size must be one of: 1K, 2K, 4K (or omit it and use quality).";
    let explicit = match string_field(obj, "image_size", size_message)? {
        None => None,
        Some(s) => {
            let upper = s.trim().to_ascii_uppercase();
            let size = IMAGE_SIZES
                .iter()
                .copied()
                .find(|&z| z == upper)
                .ok_or_else(|| invalid(Some("image_size"), size_message.to_string()))?;
            Some(size)
        }
    };

    let quality_message =
        "quality must be one of: auto, low, standard (1K), medium (2K), high, hd (4K).";
    let from_quality = match string_field(obj, "quality", quality_message)? {
        None => "1K",
        Some(q) => match q.trim().to_ascii_lowercase().as_str() {
            "low" | "standard" | "auto" => "1K",
            "medium" => "2K",
            "high" | "hd" => "4K",
            _ => return Err(invalid(Some("quality"), quality_message.to_string())),
        },
    };

    if supports_image_size(upstream_model) {
        return Ok(explicit.unwrap_or(from_quality));
    }
    // 1K-only model: quality is a hint and is ignored, an explicit larger size is an error.
    match explicit {
        Some(size) if size != "1K" => Err(invalid(
            Some("image_size"),
            format!(
                "image_size {size} is not available for model {model}, which generates 1K \
                 images only: omit image_size or use model {DEFAULT_MODEL}."
            ),
        )),
        _ => Ok("1K"),
    }
}

fn parse_response_format(obj: &Map<String, Value>) -> Result<ResponseFormat, UserError> {
    let message = "response_format must be \"b64_json\" (the default) or \"url\" \
                   (a data: URI; this gateway keeps no image store).";
    match string_field(obj, "response_format", message)? {
        None => Ok(ResponseFormat::B64Json),
        Some(f) => match f.trim().to_ascii_lowercase().as_str() {
            "b64_json" => Ok(ResponseFormat::B64Json),
            "url" => Ok(ResponseFormat::Url),
            _ => Err(invalid(Some("response_format"), message.to_string())),
        },
    }
}

fn parse_style(obj: &Map<String, Value>) -> Result<Option<String>, UserError> {
    let message = "style must be \"vivid\" or \"natural\", or omitted.";
    match string_field(obj, "style", message)? {
        None => Ok(None),
        Some(s) => match s.trim().to_ascii_lowercase().as_str() {
            style @ ("vivid" | "natural") => Ok(Some(style.to_string())),
            _ => Err(invalid(Some("style"), message.to_string())),
        },
    }
}

fn parse_safety_threshold(obj: &Map<String, Value>) -> Result<Option<SafetyThreshold>, UserError> {
    let message = "safety_threshold must be one of: OFF, LOW, MEDIUM, HIGH \
                   (or omit it to use the gateway's default).";
    match string_field(obj, "safety_threshold", message)? {
        None => Ok(None),
        Some(t) => match t.trim().to_ascii_uppercase().as_str() {
            "OFF" => Ok(Some(SafetyThreshold::Off)),
            "LOW" => Ok(Some(SafetyThreshold::Low)),
            "MEDIUM" => Ok(Some(SafetyThreshold::Medium)),
            "HIGH" => Ok(Some(SafetyThreshold::High)),
            _ => Err(invalid(Some("safety_threshold"), message.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> ImageRequest {
        match parse_request(body) {
            Ok(r) => r,
            Err(e) => panic!("{body}: {e:?}"),
        }
    }

    fn err(body: &str) -> UserError {
        match parse_request(body) {
            Ok(r) => panic!("{body} parsed: {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults() {
        let r = ok(r#"{"prompt":"  a cat  "}"#);
        assert_eq!(r.prompt, "a cat");
        assert_eq!(r.model, "gemini-3-pro-image");
        assert_eq!(r.upstream_model, "gemini-3-pro-image-preview");
        assert_eq!(r.n, 1);
        assert_eq!(r.aspect_ratio, "1:1");
        assert_eq!(r.image_size, "1K");
        assert_eq!(r.style, None);
        assert_eq!(r.safety_threshold, None);
        assert_eq!(r.response_format, ResponseFormat::B64Json);
    }

    #[test]
    fn quality_table_and_image_size_override() {
        for (q, size) in [
            ("low", "1K"),
            ("standard", "1K"),
            ("auto", "1K"),
            ("medium", "2K"),
            ("high", "4K"),
            ("hd", "4K"),
            ("HD", "4K"),
        ] {
            let r = ok(&format!(r#"{{"prompt":"x","quality":"{q}"}}"#));
            assert_eq!(r.image_size, size, "{q}");
        }
        let r = ok(r#"{"prompt":"x","quality":"hd","image_size":"2k"}"#);
        assert_eq!(r.image_size, "2K");
        assert_eq!(
            err(r#"{"prompt":"x","quality":"ultra"}"#).param.as_deref(),
            Some("quality")
        );
        assert_eq!(
            err(r#"{"prompt":"x","image_size":"8K"}"#).param.as_deref(),
            Some("image_size")
        );
    }

    #[test]
    fn flash_models_are_1k_only() {
        let r = ok(r#"{"prompt":"x","model":"gemini-2.5-flash-image","quality":"hd"}"#);
        assert_eq!(r.image_size, "1K");
        let r = ok(r#"{"prompt":"x","model":"gemini-2.5-flash-image","image_size":"1k"}"#);
        assert_eq!(r.image_size, "1K");
        let e = err(r#"{"prompt":"x","model":"gemini-2.5-flash-image","image_size":"4K"}"#);
        assert_eq!(e.param.as_deref(), Some("image_size"));
    }

    #[test]
    fn models_and_aliases() {
        for (asked, model, upstream) in [
            (
                "dall-e-2",
                "gemini-3-pro-image",
                "gemini-3-pro-image-preview",
            ),
            (
                "dall-e-3",
                "gemini-3-pro-image",
                "gemini-3-pro-image-preview",
            ),
            (
                "gpt-image-1",
                "gemini-3-pro-image",
                "gemini-3-pro-image-preview",
            ),
            (
                "gemini-3-pro-image-preview",
                "gemini-3-pro-image",
                "gemini-3-pro-image-preview",
            ),
            (
                "gemini-2.5-flash-image",
                "gemini-2.5-flash-image",
                "gemini-2.5-flash-image",
            ),
            (
                "gemini-2.5-flash-image-preview",
                "gemini-2.5-flash-image-preview",
                "gemini-2.5-flash-image-preview",
            ),
        ] {
            let r = ok(&format!(r#"{{"prompt":"x","model":"{asked}"}}"#));
            assert_eq!(
                (r.model.as_str(), r.upstream_model.as_str()),
                (model, upstream)
            );
        }
        let e = err(r#"{"prompt":"x","model":"midjourney"}"#);
        assert_eq!(e.code, CODE_UNSUPPORTED_MODEL);
        assert!(e.message.contains("gemini-2.5-flash-image"));
        let e = err(r#"{"prompt":"x","model":7}"#);
        assert_eq!(e.param.as_deref(), Some("model"));
    }

    #[test]
    fn n_bounds_and_types() {
        assert_eq!(ok(r#"{"prompt":"x","n":10}"#).n, 10);
        assert_eq!(ok(r#"{"prompt":"x","n":null}"#).n, 1);
        for n in ["0", "11", "\"3\"", "2.5", "-1", "1e3", "true", "300"] {
            let e = err(&format!(r#"{{"prompt":"x","n":{n}}}"#));
            assert_eq!(e.param.as_deref(), Some("n"), "{n}");
            assert!(e
                .message
                .starts_with("n must be an integer between 1 and 10"));
            assert_eq!(e.code, CODE_INVALID_REQUEST);
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        for (field, value) in [
            ("prompt", "5"),
            ("model", "[]"),
            ("size", "1024"),
            ("aspect_ratio", "1.5"),
            ("quality", "{}"),
            ("image_size", "2"),
            ("response_format", "false"),
            ("style", "1"),
            ("safety_threshold", "0"),
        ] {
            let body = if field == "prompt" {
                format!(r#"{{"prompt":{value}}}"#)
            } else {
                format!(r#"{{"prompt":"x","{field}":{value}}}"#)
            };
            let e = err(&body);
            assert_eq!(e.param.as_deref(), Some(field), "{body}");
            assert!(e.message.starts_with(field), "{body}: {}", e.message);
        }
    }

    #[test]
    fn prompt_rules() {
        assert_eq!(err("{}").param.as_deref(), Some("prompt"));
        assert_eq!(err(r#"{"prompt":null}"#).param.as_deref(), Some("prompt"));
        assert_eq!(err(r#"{"prompt":"   "}"#).param.as_deref(), Some("prompt"));
        let long = "a".repeat(MAX_PROMPT_CHARS + 1);
        assert_eq!(
            err(&format!(r#"{{"prompt":"{long}"}}"#)).param.as_deref(),
            Some("prompt")
        );
        let max = "é".repeat(MAX_PROMPT_CHARS);
        assert_eq!(
            ok(&format!(r#"{{"prompt":"{max}"}}"#))
                .prompt
                .chars()
                .count(),
            MAX_PROMPT_CHARS
        );
    }

    #[test]
    fn body_must_be_an_object() {
        for body in ["", "not json", "[]", "\"prompt\"", "null", "{\"prompt\":"] {
            let e = err(body);
            assert_eq!(e.param, None);
            assert!(e.message.contains("must be a JSON object"), "{body}");
        }
    }

    #[test]
    fn options_and_extensions() {
        let r = ok(
            r#"{"prompt":"x","size":"1792x1024","aspect_ratio":"4:5","style":"Vivid",
                      "safety_threshold":"low","response_format":"url","user":"u1","foo":[1]}"#,
        );
        assert_eq!(r.aspect_ratio, "4:5");
        assert_eq!(r.style.as_deref(), Some("vivid"));
        assert_eq!(r.safety_threshold, Some(SafetyThreshold::Low));
        assert_eq!(r.response_format, ResponseFormat::Url);
        assert_eq!(
            err(r#"{"prompt":"x","aspect_ratio":"2:1"}"#)
                .param
                .as_deref(),
            Some("aspect_ratio")
        );
        assert_eq!(
            err(r#"{"prompt":"x","size":"huge"}"#).param.as_deref(),
            Some("size")
        );
        assert_eq!(
            err(r#"{"prompt":"x","style":"noir"}"#).param.as_deref(),
            Some("style")
        );
        assert_eq!(
            err(r#"{"prompt":"x","safety_threshold":"BLOCK_NONE"}"#)
                .param
                .as_deref(),
            Some("safety_threshold")
        );
        assert_eq!(
            err(r#"{"prompt":"x","response_format":"png"}"#)
                .param
                .as_deref(),
            Some("response_format")
        );
    }
}
