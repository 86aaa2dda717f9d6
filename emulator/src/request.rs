//! Validation of a `generateContent` body the way the real API does it (proto JSON: camelCase or snake_case
//! names, every unknown field named at once, enums checked, then the model's own rules: its ratios and sizes,
//! thinking, candidate count, input images, 3.1 Flash's thought signatures), reduced to what the emulated
//! image model needs.

use base64::Engine;
use serde_json::{Map, Value};

use aperture_models::Family;

use crate::errors::ApiError;
use crate::models::Model;
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
    /// `thinkingConfig.thinkingLevel` is MINIMAL (3.1 Flash then reports no thought tokens).
    pub thinking_minimal: bool,
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
const THINKING_CONFIG_FIELDS: &[&str] = &["includeThoughts", "thinkingBudget", "thinkingLevel"];
const FILE_DATA_FIELDS: &[&str] = &["mimeType", "fileUri"];
const THINKING_LEVELS: &[&str] = &[
    "THINKING_LEVEL_UNSPECIFIED",
    "MINIMAL",
    "LOW",
    "MEDIUM",
    "HIGH",
];
/// Input image types the image models take.
const INPUT_MIME_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/heic",
    "image/heif",
];
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

/// The messages of a request, for the unknown-field pass.
#[derive(Debug, Clone, Copy)]
enum Message {
    Request,
    Content,
    Part,
    Blob,
    FileData,
    GenerationConfig,
    ImageConfig,
    ThinkingConfig,
    SafetySetting,
}

impl Message {
    fn fields(self) -> Vec<&'static str> {
        match self {
            Message::Request => REQUEST_FIELDS.to_vec(),
            Message::Content => CONTENT_FIELDS.to_vec(),
            Message::Part => PART_DATA_FIELDS
                .iter()
                .chain(PART_OTHER_FIELDS)
                .copied()
                .collect(),
            Message::Blob => BLOB_FIELDS.to_vec(),
            Message::FileData => FILE_DATA_FIELDS.to_vec(),
            Message::GenerationConfig => GENERATION_CONFIG_FIELDS.to_vec(),
            Message::ImageConfig => IMAGE_CONFIG_FIELDS.to_vec(),
            Message::ThinkingConfig => THINKING_CONFIG_FIELDS.to_vec(),
            Message::SafetySetting => SAFETY_SETTING_FIELDS.to_vec(),
        }
    }

    /// The message type of a field (by its camelCase name), for fields that hold messages.
    fn child(self, camel: &str) -> Option<Message> {
        Some(match (self, camel) {
            (Message::Request, "contents" | "systemInstruction") => Message::Content,
            (Message::Request, "generationConfig") => Message::GenerationConfig,
            (Message::Request, "safetySettings") => Message::SafetySetting,
            (Message::Content, "parts") => Message::Part,
            (Message::Part, "inlineData") => Message::Blob,
            (Message::Part, "fileData") => Message::FileData,
            (Message::GenerationConfig, "imageConfig") => Message::ImageConfig,
            (Message::GenerationConfig, "thinkingConfig") => Message::ThinkingConfig,
            _ => return None,
        })
    }
}

/// Collects every field the messages do not have, as `(snake_case path, name)`, like the proto JSON parser
/// does before any other check. Values of the wrong type are left for the later checks.
fn collect_unknown(value: &Value, kind: Message, at: &str, out: &mut Vec<(String, String)>) {
    let Value::Object(map) = value else {
        return;
    };
    let fields = kind.fields();
    for (name, child) in map {
        let Some(camel) = fields.iter().find(|f| **f == name || snake(f) == *name) else {
            out.push((at.to_string(), name.clone()));
            continue;
        };
        let Some(child_kind) = kind.child(camel) else {
            continue;
        };
        let path = if at.is_empty() {
            snake(camel)
        } else {
            format!("{at}.{}", snake(camel))
        };
        match child {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    collect_unknown(item, child_kind, &format!("{path}[{i}]"), out);
                }
            }
            other => collect_unknown(other, child_kind, &path, out),
        }
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

/// Decodes proto JSON bytes (standard or URL-safe alphabet, padding optional).
fn base64_decode(data: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    standard
        .decode(data)
        .or_else(|_| url_safe.decode(data))
        .ok()
}

/// Whether the bytes start like an image the models read (PNG, JPEG, WebP, HEIC/HEIF).
fn looks_like_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        || (bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP")
        || (bytes.len() >= 12 && &bytes[4..8] == b"ftyp")
}

/// Parses and validates a `generateContent` body for `model`.
pub(crate) fn parse(model: &Model, body: &[u8]) -> Result<ImageRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid JSON payload received. {e}")))?;
    let Value::Object(root) = &value else {
        return Err(ApiError::invalid_argument(
            "Invalid JSON payload received. Unknown name \"\": Root element must be a message.",
        ));
    };

    let mut request = ImageRequest {
        prompt: String::new(),
        aspect_ratio: "1:1",
        image_size: "1K",
        thresholds: Vec::new(),
        text_out: true,
        image_out: true,
        reference_images: 0,
        thinking_minimal: false,
    };
    let mut unknown = Vec::new();
    collect_unknown(&value, Message::Request, "", &mut unknown);
    if !unknown.is_empty() {
        return Err(ApiError::unknown_fields(&unknown));
    }
    parse_contents(model, root, &mut request)?;
    if let Some(system) = field(root, "systemInstruction") {
        message(system, "system_instruction", "Content")?;
    }
    if let Some(config) = field(root, "generationConfig") {
        parse_generation_config(model, config, &mut request)?;
    }
    if let Some(settings) = field(root, "safetySettings") {
        request.thresholds = parse_safety_settings(settings)?;
    }
    Ok(request)
}

fn parse_contents(
    model: &Model,
    root: &Map<String, Value>,
    request: &mut ImageRequest,
) -> Result<(), ApiError> {
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
                check_image(blob, &blob_at)?;
                if from_user {
                    request.reference_images += 1;
                }
                let signed = field(part, "thoughtSignature")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                if role == "model" && !signed && model.family == Family::Flash31 {
                    return Err(ApiError::invalid_argument(format!(
                        "Image part is missing a thought_signature in content position {}, part position {}. \
                         For more information, see https://ai.google.dev/gemini-api/docs/thought-signatures",
                        i + 1,
                        j + 1
                    )));
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

/// An inline image: decodable base64 (a proto parse error otherwise), a MIME type the models take, and bytes
/// that look like an image.
fn check_image(blob: &Map<String, Value>, at: &str) -> Result<(), ApiError> {
    let mime = match field(blob, "mimeType") {
        None => None,
        Some(m) => Some(string(m, &format!("{at}.mime_type"))?),
    };
    let Some(data) = field(blob, "data") else {
        return Ok(());
    };
    let data_at = format!("{at}.data");
    let data = string(data, &data_at)?;
    let Some(bytes) = base64_decode(data) else {
        let shown: String = data.chars().take(40).collect();
        return Err(ApiError::bad_value(
            &data_at,
            format!(
                "Invalid value at '{data_at}' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""
            ),
        ));
    };
    if let Some(mime) = mime {
        if !INPUT_MIME_TYPES
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mime))
        {
            return Err(ApiError::invalid_argument(format!(
                "Unsupported MIME type: {mime}"
            )));
        }
    }
    if !looks_like_image(&bytes) {
        return Err(ApiError::invalid_argument("Provided image is not valid"));
    }
    Ok(())
}

fn parse_generation_config(
    model: &Model,
    config: &Value,
    request: &mut ImageRequest,
) -> Result<(), ApiError> {
    let at = "generation_config";
    let config = message(config, at, "GenerationConfig")?;
    if let Some(count) = field(config, "candidateCount") {
        let count = int32(count, "generation_config.candidate_count")?;
        if count > 1 {
            return Err(ApiError::invalid_argument(
                "Multiple candidates is not enabled for this model",
            ));
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
    if let Some(thinking) = field(config, "thinkingConfig") {
        let thinking = message(
            thinking,
            "generation_config.thinking_config",
            "ThinkingConfig",
        )?;
        if !model.family.thinks() {
            return Err(ApiError::invalid_argument(format!(
                "Thinking is not enabled for models/{}",
                model.id
            )));
        }
        if let Some(level) = field(thinking, "thinkingLevel") {
            let name = level.as_str().map(str::to_ascii_uppercase);
            match name.as_deref() {
                Some(l) if THINKING_LEVELS.contains(&l) => {
                    request.thinking_minimal = l == "MINIMAL";
                }
                _ => {
                    return Err(invalid_value(
                        "generation_config.thinking_config.thinking_level",
                        "type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel",
                        level,
                    ))
                }
            }
        }
    }
    if let Some(image) = field(config, "imageConfig") {
        let at = "generation_config.image_config";
        let image = message(image, at, "ImageConfig")?;
        if let Some(ratio) = field(image, "aspectRatio") {
            let ratio = string(ratio, "generation_config.image_config.aspect_ratio")?;
            request.aspect_ratio = model
                .family
                .ratio(ratio)
                .map(|r| r.name)
                .ok_or_else(|| ApiError::aspect_ratio(model.id))?;
        }
        if let Some(size) = field(image, "imageSize") {
            let size = string(size, "generation_config.image_config.image_size")?;
            request.image_size = model
                .family
                .image_sizes()
                .iter()
                .copied()
                .find(|s| *s == size)
                .ok_or_else(|| {
                    ApiError::invalid_argument("Request contains an invalid argument.")
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

    fn model(id: &str) -> Model {
        crate::models::find(id).unwrap()
    }

    fn parse_for(id: &str, v: Value) -> Result<ImageRequest, ApiError> {
        parse(&model(id), v.to_string().as_bytes())
    }

    fn parse_json(v: Value) -> Result<ImageRequest, String> {
        parse_for(MODEL, v).map_err(|e| {
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
            parse(&model(MODEL), b"not json").unwrap_err().body["error"]["message"]
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
            "Multiple candidates is not enabled for this model"
        );
        assert_eq!(
            with(
                "generationConfig",
                json!({"imageConfig": {"aspectRatio": "7:3"}})
            ),
            "* GenerateContentRequest.generation_config.image_config.aspect_ratio: aspect_ratio must be one of \
             '1:1', '2:3', '3:2', '3:4', '4:3', '4:5', '5:4', '9:16', '16:9', or '21:9'.\n"
        );
        for size in ["8K", "512", "1k", "0.5K"] {
            assert_eq!(
                with(
                    "generationConfig",
                    json!({"imageConfig": {"imageSize": size}})
                ),
                "Request contains an invalid argument."
            );
        }
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

    #[test]
    fn every_unknown_field_is_named_with_field_violations() {
        let body = json!({
            "contents": [{"parts": [{"text": "x", "colour": 1}]}],
            "n": 2,
            "generationConfig": {"imageConfig": {"outputMimeType": "image/png"}}
        });
        let e = parse_for(MODEL, body).unwrap_err();
        let message = e.body["error"]["message"].as_str().unwrap();
        let lines: Vec<&str> = message.split('\n').collect();
        assert_eq!(lines.len(), 3, "{message}");
        assert!(lines.contains(
            &"Invalid JSON payload received. Unknown name \"outputMimeType\" at 'generation_config.image_config': Cannot find field."
        ));
        assert!(lines
            .contains(&"Invalid JSON payload received. Unknown name \"n\": Cannot find field."));
        assert!(lines.contains(
            &"Invalid JSON payload received. Unknown name \"colour\" at 'contents[0].parts[0]': Cannot find field."
        ));
        let detail = &e.body["error"]["details"][0];
        assert_eq!(detail["@type"], "type.googleapis.com/google.rpc.BadRequest");
        let violations = detail["fieldViolations"].as_array().unwrap();
        assert_eq!(violations.len(), 3);
        let root = violations
            .iter()
            .find(|v| v["description"].as_str().unwrap().contains("\"n\""))
            .unwrap();
        assert!(root.get("field").is_none());
    }

    #[test]
    fn per_model_rules() {
        let flash31 = "gemini-3.1-flash-image";
        let flash25 = "gemini-2.5-flash-image";
        let sized = |ratio: &str, size: &str| {
            json!({"contents": [{"parts": [{"text": "x"}]}],
                   "generationConfig": {"imageConfig": {"aspectRatio": ratio, "imageSize": size}}})
        };
        let r = parse_for(flash31, sized("1:8", "512")).unwrap();
        assert_eq!((r.aspect_ratio, r.image_size), ("1:8", "512"));
        let e = parse_for(MODEL, sized("1:8", "1K")).unwrap_err();
        assert!(e.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("aspect_ratio must be one of"));
        assert!(parse_for(flash25, sized("16:9", "1K")).is_ok());
        assert!(parse_for(flash25, sized("16:9", "2K")).is_err());

        let thinking = json!({"contents": [{"parts": [{"text": "x"}]}],
                              "generationConfig": {"thinkingConfig": {"thinkingLevel": "minimal"}}});
        let e = parse_for(flash25, thinking.clone()).unwrap_err();
        assert_eq!(
            e.body["error"]["message"],
            "Thinking is not enabled for models/gemini-2.5-flash-image"
        );
        assert!(parse_for(flash31, thinking).unwrap().thinking_minimal);

        let history = |signature: Option<&str>| {
            let mut image =
                json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}});
            if let Some(s) = signature {
                image["thoughtSignature"] = json!(s);
            }
            json!({"contents": [
                {"role": "user", "parts": [{"text": "a cat"}]},
                {"role": "model", "parts": [{"text": "here"}, image]},
                {"role": "user", "parts": [{"text": "now in a hat"}]}
            ]})
        };
        let e = parse_for(flash31, history(None)).unwrap_err();
        assert!(e.body["error"]["message"].as_str().unwrap().starts_with(
            "Image part is missing a thought_signature in content position 2, part position 2."
        ));
        assert!(parse_for(flash31, history(Some("c2ln"))).is_ok());
        assert!(parse_for(MODEL, history(None)).is_ok());
    }

    #[test]
    fn input_images_are_checked() {
        let with_image = |mime: &str, data: &str| json!({"contents": [{"parts": [{"text": "x"}, {"inlineData": {"mimeType": mime, "data": data}}]}]});
        let message = |v: Value| {
            parse_for(MODEL, v).unwrap_err().body["error"]["message"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            message(with_image("image/png", "aGVsbG8gd29ybGQ=")),
            "Provided image is not valid"
        );
        assert_eq!(
            message(with_image("image/gif", "R0lGODlh")),
            "Unsupported MIME type: image/gif"
        );
        let e = parse_for(MODEL, with_image("image/png", "!!")).unwrap_err();
        assert_eq!(
            e.body["error"]["details"][0]["fieldViolations"][0]["field"],
            "contents[0].parts[1].inline_data.data"
        );
        assert!(parse_for(MODEL, with_image("image/jpeg", "/9j/4AAQ")).is_ok());
    }
}
