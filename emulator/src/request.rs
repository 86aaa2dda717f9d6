//! Validation of a `generateContent` body the way the real API does it (proto JSON: camelCase or snake_case
//! names, unknown fields rejected, enums checked), reduced to what the emulated image model needs.

use base64::Engine;
use serde_json::{Map, Value};

use crate::errors::ApiError;
use crate::images::{ASPECT_RATIOS, IMAGE_SIZES};
use crate::safety::{Threshold, GEMINI_CATEGORIES, LEGACY_CATEGORIES};

/// What the emulated model is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRequest {
    /// The user's text parts, joined by newlines.
    pub prompt: String,
    pub aspect_ratio: &'static str,
    pub image_size: &'static str,
    /// `safetySettings` in request order.
    pub thresholds: Vec<(String, Threshold)>,
    /// `responseModalities` includes TEXT (the default includes both).
    pub text_out: bool,
    /// `responseModalities` includes IMAGE.
    pub image_out: bool,
    /// Images (inline or file) in the user's turns.
    pub reference_images: usize,
}

const REQUEST_FIELDS: &[&str] = &[
    "model",
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
];
const CONTENT_FIELDS: &[&str] = &["role", "parts"];
/// Part fields that are members of the `data` oneof.
const PART_DATA_FIELDS: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];
const PART_OTHER_FIELDS: &[&str] = &[
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "mediaResolution",
    "partMetadata",
];
const BLOB_FIELDS: &[&str] = &["mimeType", "data"];
const GENERATION_CONFIG_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "_responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];
const IMAGE_CONFIG_FIELDS: &[&str] = &["aspectRatio", "imageSize"];
const SAFETY_SETTING_FIELDS: &[&str] = &["category", "threshold", "method"];

/// `aspectRatio` -> `aspect_ratio`, as proto JSON also accepts the original field names.
fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn known(name: &str, fields: &[&str]) -> bool {
    fields.iter().any(|f| *f == name || snake(f) == name)
}

/// Rejects fields the message does not have, like the real API. `at` is the message's snake_case path.
fn check_fields(map: &Map<String, Value>, fields: &[&str], at: &str) -> Result<(), ApiError> {
    match map.keys().find(|k| !known(k, fields)) {
        None => Ok(()),
        Some(name) if at.is_empty() => Err(ApiError::invalid_argument(format!(
            "Invalid JSON payload received. Unknown name \"{name}\": Cannot find field."
        ))),
        Some(name) => Err(ApiError::invalid_argument(format!(
            "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
        ))),
    }
}

/// A field by its camelCase or snake_case name; JSON `null` counts as absent.
fn field<'a>(map: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    map.get(camel)
        .or_else(|| map.get(&snake(camel)))
        .filter(|v| !v.is_null())
}

fn invalid_value(at: &str, kind: &str, value: &Value) -> ApiError {
    let mut shown = value.to_string();
    if shown.len() > 100 {
        let cut = (0..=100)
            .rev()
            .find(|i| shown.is_char_boundary(*i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push_str("...");
    }
    ApiError::invalid_argument(format!("Invalid value at '{at}' ({kind}), {shown}"))
}

fn message<'a>(value: &'a Value, at: &str, kind: &str) -> Result<&'a Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Array(_) => Err(ApiError::invalid_argument(format!(
            "Invalid JSON payload received. Unknown name \"{at}\": Proto field is not repeating, cannot start list."
        ))),
        other => Err(invalid_value(
            at,
            &format!("type.googleapis.com/google.ai.generativelanguage.v1beta.{kind}"),
            other,
        )),
    }
}

fn list<'a>(value: &'a Value, at: &str, kind: &str) -> Result<&'a [Value], ApiError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(invalid_value(
            at,
            &format!("type.googleapis.com/google.ai.generativelanguage.v1beta.{kind}"),
            other,
        )),
    }
}

fn string<'a>(value: &'a Value, at: &str) -> Result<&'a str, ApiError> {
    value
        .as_str()
        .ok_or_else(|| invalid_value(at, "TYPE_STRING", value))
}

/// An int32 as proto JSON accepts it: a JSON integer or a string holding one.
fn int32(value: &Value, at: &str) -> Result<i64, ApiError> {
    let parsed = match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    parsed
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| invalid_value(at, "TYPE_INT32", value))
}

fn base64_ok(data: &str) -> bool {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    standard.decode(data).is_ok() || url_safe.decode(data).is_ok()
}

/// Parses and validates a `generateContent` body for `model`.
pub(crate) fn parse(model: &str, body: &[u8]) -> Result<ImageRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid JSON payload received. {e}")))?;
    let Value::Object(root) = &value else {
        return Err(ApiError::invalid_argument(
            "Invalid JSON payload received. Unknown name \"\": Root element must be a message.",
        ));
    };
    check_fields(root, REQUEST_FIELDS, "")?;

    let mut request = ImageRequest {
        prompt: String::new(),
        aspect_ratio: "1:1",
        image_size: "1K",
        thresholds: Vec::new(),
        text_out: true,
        image_out: true,
        reference_images: 0,
    };
    parse_contents(root, &mut request)?;
    if let Some(system) = field(root, "systemInstruction") {
        let system = message(system, "system_instruction", "Content")?;
        check_fields(system, CONTENT_FIELDS, "system_instruction")?;
    }
    if let Some(config) = field(root, "generationConfig") {
        parse_generation_config(model, config, &mut request)?;
    }
    if let Some(settings) = field(root, "safetySettings") {
        request.thresholds = parse_safety_settings(settings)?;
    }
    Ok(request)
}

fn parse_contents(root: &Map<String, Value>, request: &mut ImageRequest) -> Result<(), ApiError> {
    let contents = match field(root, "contents") {
        None => &[][..],
        Some(v) => list(v, "contents", "Content")?,
    };
    if contents.is_empty() {
        return Err(ApiError::invalid_argument(
            "* GenerateContentRequest.contents: contents is not specified\n",
        ));
    }
    let mut texts: Vec<&str> = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        let at = format!("contents[{i}]");
        let content = message(content, &at, "Content")?;
        check_fields(content, CONTENT_FIELDS, &at)?;
        let role = match field(content, "role") {
            None => "",
            Some(r) => string(r, &format!("{at}.role"))?,
        };
        if !matches!(role, "" | "user" | "model") {
            return Err(ApiError::invalid_argument(
                "Please use a valid role: user, model.",
            ));
        }
        let parts = match field(content, "parts") {
            None => &[][..],
            Some(p) => list(p, &format!("{at}.parts"), "Part")?,
        };
        if parts.is_empty() {
            return Err(ApiError::invalid_argument(format!(
                "* GenerateContentRequest.{at}.parts: contents.parts must not be empty.\n"
            )));
        }
        for (j, part) in parts.iter().enumerate() {
            let at = format!("{at}.parts[{j}]");
            let part = message(part, &at, "Part")?;
            let all: Vec<&str> = PART_DATA_FIELDS
                .iter()
                .chain(PART_OTHER_FIELDS)
                .copied()
                .collect();
            check_fields(part, &all, &at)?;
            let set: Vec<&str> = PART_DATA_FIELDS
                .iter()
                .copied()
                .filter(|f| field(part, f).is_some())
                .collect();
            match set.as_slice() {
                [] => {
                    return Err(ApiError::invalid_argument(format!(
                        "* GenerateContentRequest.{at}.data: required oneof field 'data' must have one \
                         initialized field\n"
                    )))
                }
                [_] => {}
                [_, second, ..] => {
                    return Err(ApiError::invalid_argument(format!(
                        "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{second}'"
                    )))
                }
            }
            let thought = match field(part, "thought") {
                None => false,
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| invalid_value(&format!("{at}.thought"), "TYPE_BOOL", v))?,
            };
            let from_user = role != "model" && !thought;
            if let Some(text) = field(part, "text") {
                let text = string(text, &format!("{at}.text"))?;
                if from_user {
                    texts.push(text);
                }
            }
            if let Some(blob) = field(part, "inlineData") {
                let blob_at = format!("{at}.inline_data");
                let blob = message(blob, &blob_at, "Blob")?;
                check_fields(blob, BLOB_FIELDS, &blob_at)?;
                if let Some(data) = field(blob, "data") {
                    let data_at = format!("{blob_at}.data");
                    let data = string(data, &data_at)?;
                    if !base64_ok(data) {
                        let shown: String = data.chars().take(40).collect();
                        return Err(ApiError::invalid_argument(format!(
                            "Invalid value at '{data_at}' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""
                        )));
                    }
                }
                if from_user {
                    request.reference_images += 1;
                }
            }
            if field(part, "fileData").is_some() && from_user {
                request.reference_images += 1;
            }
        }
    }
    request.prompt = texts.join("\n");
    Ok(())
}

fn parse_generation_config(
    model: &str,
    config: &Value,
    request: &mut ImageRequest,
) -> Result<(), ApiError> {
    let at = "generation_config";
    let config = message(config, at, "GenerationConfig")?;
    check_fields(config, GENERATION_CONFIG_FIELDS, at)?;
    if let Some(count) = field(config, "candidateCount") {
        let count = int32(count, "generation_config.candidate_count")?;
        if count > 1 {
            return Err(ApiError::invalid_argument(format!(
                "Multiple candidates is not enabled for models/{model}"
            )));
        }
        if count < 0 {
            return Err(ApiError::invalid_argument(
                "* GenerateContentRequest.generation_config.candidate_count: must be positive\n",
            ));
        }
    }
    if let Some(modalities) = field(config, "responseModalities") {
        let modalities = list(
            modalities,
            "generation_config.response_modalities",
            "GenerationConfig.Modality",
        )?;
        if !modalities.is_empty() {
            request.text_out = false;
            request.image_out = false;
        }
        for (k, modality) in modalities.iter().enumerate() {
            let name = modality.as_str().map(str::to_ascii_uppercase);
            match name.as_deref() {
                Some("TEXT") => request.text_out = true,
                Some("IMAGE") => request.image_out = true,
                Some("MODALITY_UNSPECIFIED") => {}
                Some("AUDIO") => {
                    return Err(ApiError::invalid_argument(
                        "Model does not support the requested response modalities: audio",
                    ))
                }
                _ => {
                    return Err(invalid_value(
                        &format!("generation_config.response_modalities[{k}]"),
                        "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality",
                        modality,
                    ))
                }
            }
        }
        if !request.text_out && !request.image_out {
            request.text_out = true;
            request.image_out = true;
        }
    }
    if let Some(image) = field(config, "imageConfig") {
        let at = "generation_config.image_config";
        let image = message(image, at, "ImageConfig")?;
        check_fields(image, IMAGE_CONFIG_FIELDS, at)?;
        if let Some(ratio) = field(image, "aspectRatio") {
            let ratio = string(ratio, "generation_config.image_config.aspect_ratio")?;
            request.aspect_ratio = ASPECT_RATIOS
                .iter()
                .copied()
                .find(|r| *r == ratio)
                .ok_or_else(|| {
                    ApiError::invalid_argument(format!(
                        "* GenerateContentRequest.generation_config.image_config.aspect_ratio: Unsupported aspect \
                         ratio: \"{ratio}\". Supported values are: {}.\n",
                        ASPECT_RATIOS.join(", ")
                    ))
                })?;
        }
        if let Some(size) = field(image, "imageSize") {
            let size = string(size, "generation_config.image_config.image_size")?;
            request.image_size = IMAGE_SIZES
                .iter()
                .copied()
                .find(|s| *s == size)
                .ok_or_else(|| {
                    ApiError::invalid_argument(format!(
                        "* GenerateContentRequest.generation_config.image_config.image_size: Unsupported image \
                         size: \"{size}\". Supported values are: {}.\n",
                        IMAGE_SIZES.join(", ")
                    ))
                })?;
        }
    }
    Ok(())
}

fn parse_safety_settings(settings: &Value) -> Result<Vec<(String, Threshold)>, ApiError> {
    let settings = list(settings, "safety_settings", "SafetySetting")?;
    let mut out = Vec::with_capacity(settings.len());
    for (i, setting) in settings.iter().enumerate() {
        let at = format!("safety_settings[{i}]");
        let setting = message(setting, &at, "SafetySetting")?;
        check_fields(setting, SAFETY_SETTING_FIELDS, &at)?;
        let category = match field(setting, "category") {
            None => "HARM_CATEGORY_UNSPECIFIED",
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(invalid_value(
                    &format!("{at}.category"),
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.HarmCategory",
                    other,
                ))
            }
        };
        if LEGACY_CATEGORIES.contains(&category) {
            return Err(ApiError::invalid_argument(format!(
                "* GenerateContentRequest.{at}.category: Invalid category value: {category}\n"
            )));
        }
        if !GEMINI_CATEGORIES.contains(&category) {
            return Err(invalid_value(
                &format!("{at}.category"),
                "type.googleapis.com/google.ai.generativelanguage.v1beta.HarmCategory",
                &Value::String(category.to_string()),
            ));
        }
        let threshold = match field(setting, "threshold") {
            None => Threshold::Unspecified,
            Some(value) => value.as_str().and_then(Threshold::parse).ok_or_else(|| {
                invalid_value(
                    &format!("{at}.threshold"),
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.SafetySetting.HarmBlockThreshold",
                    value,
                )
            })?,
        };
        out.push((category.to_string(), threshold));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MODEL: &str = "gemini-3-pro-image-preview";

    fn parse_json(v: Value) -> Result<ImageRequest, String> {
        parse(MODEL, v.to_string().as_bytes()).map_err(|e| {
            assert_eq!(e.status, 400);
            e.body["error"]["message"].as_str().unwrap().to_string()
        })
    }

    fn prompt(text: &str) -> Value {
        json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
    }

    #[test]
    fn defaults_and_prompt() {
        let r = parse_json(json!({"contents": [
            {"parts": [{"text": "a cat"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]},
            {"role": "model", "parts": [{"text": "ignored"}]},
            {"role": "user", "parts": [{"text": "in a hat"}, {"text": "secret", "thought": true}]}
        ]}))
        .unwrap();
        assert_eq!(r.prompt, "a cat\nin a hat");
        assert_eq!((r.aspect_ratio, r.image_size), ("1:1", "1K"));
        assert_eq!(r.reference_images, 1);
        assert!(r.text_out && r.image_out);
    }

    #[test]
    fn image_config_in_both_spellings() {
        let mut body = prompt("x");
        body["generation_config"] = json!({"image_config": {"aspect_ratio": "16:9", "image_size": "4K"},
            "responseModalities": ["IMAGE"]});
        let r = parse_json(body).unwrap();
        assert_eq!((r.aspect_ratio, r.image_size), ("16:9", "4K"));
        assert!(r.image_out && !r.text_out);
    }

    #[test]
    fn rejections() {
        let bad = |v: Value| parse_json(v).unwrap_err();
        assert!(
            parse(MODEL, b"not json").unwrap_err().body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid JSON payload received.")
        );
        assert!(bad(json!([1])).contains("Root element must be a message"));
        assert!(bad(json!({})).contains("contents is not specified"));
        assert!(bad(json!({"contents": []})).contains("contents is not specified"));
        assert!(bad(json!({"contents": [{"parts": []}]})).contains("must not be empty"));
        assert!(bad(json!({"contents": [{"parts": [{}]}]})).contains("required oneof field 'data'"));
        assert!(
            bad(json!({"contents": [{"role": "bot", "parts": [{"text": "x"}]}]}))
                .contains("valid role")
        );
        assert!(bad(json!({"contents": [{"parts": [{"text": 5}]}]})).contains("TYPE_STRING"));
        assert!(bad(json!({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "!!"}}]}]}))
            .contains("Base64 decoding failed"));
        let with = |key: &str, v: Value| {
            let mut body = prompt("x");
            body[key] = v;
            bad(body)
        };
        assert_eq!(
            with("foo", json!(1)),
            "Invalid JSON payload received. Unknown name \"foo\": Cannot find field."
        );
        assert_eq!(
            with("generationConfig", json!({"candidateCount": 2})),
            format!("Multiple candidates is not enabled for models/{MODEL}")
        );
        assert!(with(
            "generationConfig",
            json!({"imageConfig": {"aspectRatio": "7:3"}})
        )
        .contains("7:3"));
        assert!(with(
            "generationConfig",
            json!({"imageConfig": {"imageSize": "8K"}})
        )
        .contains("8K"));
        assert!(
            with("generationConfig", json!({"imageConfig": {"size": "1K"}}))
                .contains("Unknown name \"size\" at 'generation_config.image_config'")
        );
        assert!(with(
            "safetySettings",
            json!([{"category": "HARM_CATEGORY_NOPE", "threshold": "OFF"}])
        )
        .contains("HarmCategory"));
        assert!(with(
            "safetySettings",
            json!([{"category": "HARM_CATEGORY_VIOLENCE", "threshold": "OFF"}])
        )
        .contains("Invalid category value"));
        assert!(with(
            "safetySettings",
            json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_SOME"}])
        )
        .contains("HarmBlockThreshold"));
    }

    #[test]
    fn safety_settings_are_kept_in_order() {
        let mut body = prompt("x");
        body["safetySettings"] = json!([
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_ONLY_HIGH"},
            {"category": "HARM_CATEGORY_HARASSMENT"}
        ]);
        let r = parse_json(body).unwrap();
        assert_eq!(
            r.thresholds,
            vec![
                (
                    "HARM_CATEGORY_DANGEROUS_CONTENT".to_string(),
                    Threshold::BlockOnlyHigh
                ),
                (
                    "HARM_CATEGORY_HARASSMENT".to_string(),
                    Threshold::Unspecified
                ),
            ]
        );
    }
}
