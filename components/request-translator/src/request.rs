//! Parsing and validation of an OpenAI `POST /v1/images/generations` body into the
//! canonical [`ImageRequest`].

use aperture_models::{Family, Model};
use serde_json::{Map, Value};

use crate::aspect::{self, SizeRatio};
use crate::types::{ImageRequest, OutputFormat, ResponseFormat, SafetyThreshold, UserError};

/// The `IMG_*` code for every malformed request.
pub const CODE_INVALID_REQUEST: &str = "IMG_INVALID_REQUEST";
/// The `IMG_*` code for a model this gateway does not serve.
pub const CODE_UNSUPPORTED_MODEL: &str = "IMG_UNSUPPORTED_MODEL";
/// The model used when the client names none (or an OpenAI model alias).
pub const DEFAULT_MODEL: &str = aperture_models::DEFAULT_MODEL;
/// The longest prompt accepted, in characters (after trimming).
pub const MAX_PROMPT_CHARS: usize = 32_000;
/// The most images one request may ask for.
pub const MAX_N: u64 = 10;

/// Every `imageSize` spelling any model accepts (the client's spelling is upper-cased).
const ALL_IMAGE_SIZES: [&str; 4] = ["512", "1K", "2K", "4K"];

/// Whether an upstream model accepts `imageConfig.imageSize`, from its family in
/// `aperture-models` (Gemini 2.5 Flash Image generates 1K images only and gets none). An
/// upstream id the table does not know keeps the rule of translator 0.1: only `gemini-3*`.
pub fn supports_image_size(upstream_model: &str) -> bool {
    match aperture_models::family_of_upstream(upstream_model) {
        Some(family) => family.accepts_image_size(),
        None => upstream_model.starts_with("gemini-3"),
    }
}

/// Resolve a requested model name (trimmed, any case; OpenAI names are aliases of
/// [`DEFAULT_MODEL`]) to its `aperture-models` entry.
pub fn resolve_model(name: &str) -> Option<&'static Model> {
    aperture_models::find(name)
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
    let model = parse_model(&obj)?;
    let n = parse_n(&obj)?;
    let aspect_ratio = parse_aspect_ratio(&obj, model)?;
    let image_size = parse_image_size(&obj, model)?;
    let response_format = parse_response_format(&obj)?;
    let style = parse_style(&obj)?;
    let safety_threshold = parse_safety_threshold(&obj)?;
    let output_format = parse_output_format(&obj)?;

    Ok(ImageRequest {
        model: model.reported.to_string(),
        upstream_model: model.upstream.to_string(),
        prompt,
        n,
        aspect_ratio: aspect_ratio.to_string(),
        image_size: image_size.to_string(),
        style,
        safety_threshold,
        response_format,
        output_format,
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
    let names: Vec<&str> = aperture_models::MODELS.iter().map(|m| m.id).collect();
    format!(
        "use one of: {} (the OpenAI names {} are accepted as aliases of {DEFAULT_MODEL}), \
         or omit model.",
        names.join(", "),
        aperture_models::OPENAI_ALIASES.join(", ")
    )
}

fn parse_model(obj: &Map<String, Value>) -> Result<&'static Model, UserError> {
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

/// The first model (in `/v1/models` order) whose family accepts `accepts`, for advice.
fn model_accepting(accepts: impl Fn(Family) -> bool) -> Option<&'static str> {
    aperture_models::MODELS
        .iter()
        .find(|m| accepts(m.family))
        .map(|m| m.id)
}

/// The error for a ratio that exists, but not for the requested model.
fn ratio_not_for_model(param: &str, ratio: &str, model: &Model) -> UserError {
    let other = model_accepting(|f| f.ratio(ratio).is_some())
        .map(|m| format!(", or use model {m}"))
        .unwrap_or_default();
    invalid(
        Some(param),
        format!(
            "{param} {ratio} is not available for model {}, which accepts: {}. Use one of \
             those{other}.",
            model.id,
            aspect::names(model.family).join(", ")
        ),
    )
}

/// `size` is always validated; a valid `aspect_ratio` (extension) wins over it. Both are
/// checked against the ratios of the requested model, and a pixel size maps to the
/// nearest of them.
fn parse_aspect_ratio(obj: &Map<String, Value>, model: &Model) -> Result<&'static str, UserError> {
    let family = model.family;
    let ratios = aspect::names(family).join(", ");
    let size_message = format!(
        "size must be \"auto\", a pixel size such as \"1024x1024\" or \"1792x1024\" (mapped to \
         the nearest supported aspect ratio), or an aspect ratio, one of: {ratios}."
    );
    let from_size = match string_field(obj, "size", &size_message)? {
        None => aspect::DEFAULT_RATIO,
        Some(size) => match aspect::from_size(family, size) {
            SizeRatio::Ratio(r) => r,
            SizeRatio::OtherModel => return Err(ratio_not_for_model("size", size.trim(), model)),
            SizeRatio::Invalid => return Err(invalid(Some("size"), size_message)),
        },
    };
    let ratio_message = format!("aspect_ratio must be one of: {ratios}.");
    match string_field(obj, "aspect_ratio", &ratio_message)? {
        None => Ok(from_size),
        Some(ratio) => {
            let ratio = ratio.trim();
            match aspect::supported(family, ratio) {
                Some(r) => Ok(r),
                None if aspect::known_elsewhere(ratio) => {
                    Err(ratio_not_for_model("aspect_ratio", ratio, model))
                }
                None => Err(invalid(Some("aspect_ratio"), ratio_message)),
            }
        }
    }
}

/// The image size `quality` stands for with `family`: `low` is the family's smallest
/// size (512 for Gemini 3.1 Flash Image, 1K elsewhere), `auto`/`standard` 1K, `medium`
/// 2K, `high`/`hd` 4K. `None` for an unknown quality.
fn quality_size(family: Family, quality: &str) -> Option<&'static str> {
    match quality {
        "low" => Some(if family.image_sizes().contains(&"512") {
            "512"
        } else {
            "1K"
        }),
        "standard" | "auto" => Some("1K"),
        "medium" => Some("2K"),
        "high" | "hd" => Some("4K"),
        _ => None,
    }
}

fn parse_image_size(obj: &Map<String, Value>, model: &Model) -> Result<&'static str, UserError> {
    let family = model.family;
    let sizes = family.image_sizes();
    let size_message = format!(
        "image_size must be one of: {} for model {} (or omit it and use quality).",
        sizes.join(", "),
        model.id
    );
    let explicit = match string_field(obj, "image_size", &size_message)? {
        None => None,
        Some(s) => {
            let upper = s.trim().to_ascii_uppercase();
            let size = ALL_IMAGE_SIZES
                .iter()
                .copied()
                .find(|&z| z == upper)
                .ok_or_else(|| invalid(Some("image_size"), size_message.clone()))?;
            Some(size)
        }
    };

    let quality_message = if sizes.contains(&"512") {
        "quality must be one of: low (512), auto, standard (1K), medium (2K), high, hd (4K)."
    } else {
        "quality must be one of: auto, low, standard (1K), medium (2K), high, hd (4K)."
    };
    let from_quality = match string_field(obj, "quality", quality_message)? {
        None => "1K",
        Some(q) => quality_size(family, q.trim().to_ascii_lowercase().as_str())
            .ok_or_else(|| invalid(Some("quality"), quality_message.to_string()))?,
    };

    if !family.accepts_image_size() {
        // 1K-only model: quality is a hint and is ignored, an explicit other size is an error.
        return match explicit {
            Some(size) if size != "1K" => Err(invalid(
                Some("image_size"),
                format!(
                    "image_size {size} is not available for model {}, which generates 1K \
                     images only: omit image_size or use model {}.",
                    model.id,
                    model_accepting(|f| f.image_sizes().contains(&size)).unwrap_or(DEFAULT_MODEL)
                ),
            )),
            _ => Ok("1K"),
        };
    }
    match explicit {
        None => Ok(from_quality),
        Some(size) if sizes.contains(&size) => Ok(size),
        Some(size) => {
            let other = model_accepting(|f| f.image_sizes().contains(&size))
                .map(|m| format!(", or use model {m}"))
                .unwrap_or_default();
            Err(invalid(
                Some("image_size"),
                format!(
                    "image_size {size} is not available for model {}, which accepts: {}. Use \
                     one of those{other}.",
                    model.id,
                    sizes.join(", ")
                ),
            ))
        }
    }
}

fn parse_output_format(obj: &Map<String, Value>) -> Result<Option<OutputFormat>, UserError> {
    let message = "output_format must be one of: png, jpeg (or jpg), webp; or omit it to \
                   keep the format the model sends.";
    match string_field(obj, "output_format", message)? {
        None => Ok(None),
        Some(f) => match f.trim().to_ascii_lowercase().as_str() {
            "png" => Ok(Some(OutputFormat::Png)),
            "jpeg" | "jpg" => Ok(Some(OutputFormat::Jpeg)),
            "webp" => Ok(Some(OutputFormat::Webp)),
            _ => Err(invalid(Some("output_format"), message.to_string())),
        },
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
    fn flash_31_sizes_ratios_and_quality() {
        let flash = r#""model":"gemini-3.1-flash-image""#;
        let r = ok(&format!(r#"{{"prompt":"x",{flash},"quality":"low"}}"#));
        assert_eq!(
            (r.model.as_str(), r.image_size.as_str()),
            ("gemini-3.1-flash-image", "512")
        );
        assert_eq!(ok(r#"{"prompt":"x","quality":"low"}"#).image_size, "1K");
        let r = ok(&format!(r#"{{"prompt":"x",{flash},"image_size":"512"}}"#));
        assert_eq!(r.image_size, "512");
        let r = ok(&format!(r#"{{"prompt":"x",{flash},"size":"4000x1000"}}"#));
        assert_eq!(r.aspect_ratio, "4:1");
        assert_eq!(
            ok(r#"{"prompt":"x","size":"4000x1000"}"#).aspect_ratio,
            "21:9"
        );
        let r = ok(&format!(r#"{{"prompt":"x",{flash},"aspect_ratio":"1:8"}}"#));
        assert_eq!(r.aspect_ratio, "1:8");

        let e = err(r#"{"prompt":"x","image_size":"512"}"#);
        assert_eq!(e.param.as_deref(), Some("image_size"));
        assert!(e.message.contains("1K, 2K, 4K") && e.message.contains("gemini-3.1-flash-image"));
        let e = err(r#"{"prompt":"x","model":"gemini-2.5-flash-image","image_size":"512"}"#);
        assert!(
            e.message.contains("gemini-3.1-flash-image"),
            "{}",
            e.message
        );
        let e = err(r#"{"prompt":"x","aspect_ratio":"4:1"}"#);
        assert_eq!(e.param.as_deref(), Some("aspect_ratio"));
        assert!(e.message.contains("21:9") && !e.message.contains("1:8,"));
        let e = err(r#"{"prompt":"x","size":"1:4"}"#);
        assert_eq!(e.param.as_deref(), Some("size"));
    }

    #[test]
    fn output_format() {
        assert_eq!(ok(r#"{"prompt":"x"}"#).output_format, None);
        for (asked, format) in [
            ("png", OutputFormat::Png),
            ("JPEG", OutputFormat::Jpeg),
            ("jpg", OutputFormat::Jpeg),
            (" webp ", OutputFormat::Webp),
        ] {
            let r = ok(&format!(r#"{{"prompt":"x","output_format":"{asked}"}}"#));
            assert_eq!(r.output_format, Some(format), "{asked}");
        }
        for bad in [r#""gif""#, "1", "[]"] {
            let e = err(&format!(r#"{{"prompt":"x","output_format":{bad}}}"#));
            assert_eq!(e.param.as_deref(), Some("output_format"));
            assert!(e.message.starts_with("output_format"));
        }
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
