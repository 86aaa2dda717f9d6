//! The Gemini `generateContent` request body for one image of a canonical request.

use serde_json::{json, Map, Value};

use crate::request::supports_image_size;
use crate::types::{ImageRequest, SafetySetting};

/// The prompt text sent upstream: the prompt, with the style hint appended when present.
pub fn prompt_text(request: &ImageRequest) -> String {
    match request.style.as_deref().map(str::trim) {
        Some(style) if !style.is_empty() => format!("{}\n\nStyle: {style}.", request.prompt),
        _ => request.prompt.clone(),
    }
}

/// Build the `generateContent` JSON body. It never sets `candidateCount` (Gemini image
/// models reject values above 1; the host makes one call per image), omits
/// `safetySettings` when `settings` is empty, and omits `imageSize` for models that
/// only generate 1K images.
pub fn build_upstream_body(request: &ImageRequest, settings: &[SafetySetting]) -> String {
    let mut image_config = Map::new();
    image_config.insert("aspectRatio".into(), json!(request.aspect_ratio));
    if supports_image_size(&request.upstream_model) {
        image_config.insert("imageSize".into(), json!(request.image_size));
    }
    let mut body = json!({
        "contents": [{"role": "user", "parts": [{"text": prompt_text(request)}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": Value::Object(image_config),
        },
    });
    if !settings.is_empty() {
        let list: Vec<Value> = settings
            .iter()
            .map(|s| json!({"category": s.category, "threshold": s.threshold}))
            .collect();
        if let Value::Object(map) = &mut body {
            map.insert("safetySettings".into(), Value::Array(list));
        }
    }
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ResponseFormat;

    fn request(upstream: &str, style: Option<&str>) -> ImageRequest {
        ImageRequest {
            model: "m".into(),
            upstream_model: upstream.into(),
            prompt: "a fox".into(),
            n: 3,
            aspect_ratio: "16:9".into(),
            image_size: "2K".into(),
            style: style.map(Into::into),
            safety_threshold: None,
            response_format: ResponseFormat::B64Json,
            output_format: None,
        }
    }

    #[test]
    fn body_shape() {
        let settings = [SafetySetting {
            category: "HARM_CATEGORY_HARASSMENT".into(),
            threshold: "OFF".into(),
        }];
        let body: Value = serde_json::from_str(&build_upstream_body(
            &request("gemini-3-pro-image-preview", Some("vivid")),
            &settings,
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({
                "contents": [{"role": "user", "parts": [{"text": "a fox\n\nStyle: vivid."}]}],
                "generationConfig": {
                    "responseModalities": ["TEXT", "IMAGE"],
                    "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"}
                },
                "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}]
            })
        );
        assert!(!body.to_string().contains("candidateCount"));
    }

    #[test]
    fn flash_gets_no_image_size_and_empty_settings_are_omitted() {
        let body: Value = serde_json::from_str(&build_upstream_body(
            &request("gemini-2.5-flash-image", None),
            &[],
        ))
        .unwrap();
        assert_eq!(
            body["generationConfig"]["imageConfig"],
            json!({"aspectRatio": "16:9"})
        );
        assert_eq!(body["contents"][0]["parts"][0]["text"], "a fox");
        assert!(body.get("safetySettings").is_none());
    }
}
