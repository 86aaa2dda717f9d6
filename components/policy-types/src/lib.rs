//! The plain-Rust mirror of `aperture:policy/types`, shared by the policy components so
//! each one need not carry its own copy. The serde derives encode these types exactly like
//! the conformance vectors (`tests/vectors/*.json`) encode WIT values: records keyed by
//! kebab-case field names, enums and payload-less cases as strings, variants with a
//! payload as `{"case": payload}`.
//!
//! [`vectors`] is the harness that checks a component's plain-Rust logic against its
//! conformance-vector file (the same file the host runs against the built `.wasm`).

use serde::{Deserialize, Serialize};

pub mod vectors;

/// `types.safety-threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SafetyThreshold {
    Off,
    Low,
    Medium,
    High,
}

/// `types.response-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseFormat {
    B64Json,
    Url,
}

/// `types.error-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorType {
    UserError,
    ApiError,
    NetworkError,
    SystemError,
}

/// `types.output-format`: the image file format a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    Png,
    Jpeg,
    Webp,
}

impl OutputFormat {
    /// The OpenAI name of the format (`png`, `jpeg`, `webp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Webp => "webp",
        }
    }

    /// The format of an image MIME type (`image/png`, `image/jpeg`, `image/webp`), if known.
    pub fn from_mime_type(mime: &str) -> Option<Self> {
        let essence = mime.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "image/png" => Some(Self::Png),
            "image/jpeg" | "image/jpg" => Some(Self::Jpeg),
            "image/webp" => Some(Self::Webp),
            _ => None,
        }
    }
}

/// `types.image-request`: the canonical, validated request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageRequest {
    pub model: String,
    pub upstream_model: String,
    pub prompt: String,
    pub n: u8,
    pub aspect_ratio: String,
    pub image_size: String,
    pub style: Option<String>,
    pub safety_threshold: Option<SafetyThreshold>,
    pub response_format: ResponseFormat,
    pub output_format: Option<OutputFormat>,
}

/// `types.safety-setting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SafetySetting {
    pub category: String,
    pub threshold: String,
}

/// `types.safety-rating`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SafetyRating {
    pub category: String,
    pub probability: String,
    pub blocked: bool,
}

/// `types.upstream-verdict`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpstreamVerdict {
    pub block_reason: Option<String>,
    pub finish_reason: Option<String>,
    pub ratings: Vec<SafetyRating>,
    pub finish_message: Option<String>,
    pub text: Option<String>,
}

/// `types.image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Image {
    pub blob: u32,
    pub mime_type: String,
}

/// `types.usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Usage {
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    pub thought_tokens: u32,
    pub total_tokens: u32,
}

/// `types.generation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Generation {
    pub images: Vec<Image>,
    pub revised_prompt: Option<String>,
    pub usage: Usage,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_like_the_vectors() {
        let request = ImageRequest {
            model: "m".into(),
            upstream_model: "u".into(),
            prompt: "p".into(),
            n: 2,
            aspect_ratio: "1:1".into(),
            image_size: "1K".into(),
            style: None,
            safety_threshold: Some(SafetyThreshold::High),
            response_format: ResponseFormat::B64Json,
            output_format: Some(OutputFormat::Jpeg),
        };
        let encoded = serde_json::to_value(&request).unwrap();
        assert_eq!(
            encoded,
            json!({
                "model": "m", "upstream-model": "u", "prompt": "p", "n": 2,
                "aspect-ratio": "1:1", "image-size": "1K", "style": null,
                "safety-threshold": "high", "response-format": "b64-json",
                "output-format": "jpeg"
            })
        );
        assert_eq!(
            serde_json::from_value::<ImageRequest>(encoded).unwrap(),
            request
        );
        assert_eq!(
            serde_json::to_value(UpstreamVerdict {
                finish_message: Some("m".into()),
                text: Some("t".into()),
                ..Default::default()
            })
            .unwrap(),
            json!({"block-reason": null, "finish-reason": null, "ratings": [],
                   "finish-message": "m", "text": "t"})
        );
        assert_eq!(
            serde_json::to_value(ErrorType::NetworkError).unwrap(),
            json!("network-error")
        );
        assert_eq!(
            serde_json::to_value(Usage {
                prompt_tokens: 1,
                output_tokens: 2,
                thought_tokens: 3,
                total_tokens: 6
            })
            .unwrap(),
            json!({"prompt-tokens": 1, "output-tokens": 2, "thought-tokens": 3, "total-tokens": 6})
        );
    }

    #[test]
    #[should_panic(expected = "vectors in error-classifier.json failed")]
    fn harness_reports_mismatches() {
        vectors::check(
            "error-classifier.json",
            "error-classifier",
            "aperture:policy/classifier@0.2.0",
            |_, _| Ok(serde_json::Value::Null),
        );
    }

    #[test]
    #[should_panic(expected = "interface")]
    fn harness_checks_the_interface() {
        vectors::check(
            "error-classifier.json",
            "error-classifier",
            "aperture:policy/safety@0.2.0",
            |_, _| Ok(serde_json::Value::Null),
        );
    }
}
