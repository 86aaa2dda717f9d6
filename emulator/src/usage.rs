//! `usageMetadata` as production reports it: prompt tokens by modality, `candidatesTokenCount` above the sum of
//! its details (text tokens are not listed), details left out for some prompts, thoughts counted apart (absent
//! without thinking), refusals counting 0 or only thoughts, and `serviceTier`.

use serde_json::{json, Value};

/// Tokens per input image.
const INPUT_IMAGE_TOKENS: u64 = 258;
/// Candidate tokens never listed in the details (production: 1298 counted, 1290 IMAGE listed).
const UNLISTED_OVERHEAD: u64 = 8;

/// Roughly four characters per token.
pub(crate) fn text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

/// Tokens billed per output image, as Gemini prices them.
pub(crate) fn image_tokens(family: aperture_models::Family, image_size: &str) -> u64 {
    use aperture_models::Family;
    match (family, image_size) {
        (Family::Flash25, _) => 1290,
        (_, "4K") => 2000,
        (_, "512") => 747,
        _ => 1120,
    }
}

/// The prompt side of the usage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PromptUsage {
    pub text: u64,
    pub images: u64,
}

impl PromptUsage {
    pub fn new(prompt: &str, reference_images: usize) -> Self {
        PromptUsage {
            text: text_tokens(prompt),
            images: reference_images as u64 * INPUT_IMAGE_TOKENS,
        }
    }

    fn total(&self) -> u64 {
        self.text + self.images
    }

    fn details(&self) -> Value {
        let mut details = vec![json!({"modality": "TEXT", "tokenCount": self.text})];
        if self.images > 0 {
            details.push(json!({"modality": "IMAGE", "tokenCount": self.images}));
        }
        Value::Array(details)
    }
}

/// What an answer produced.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Produced {
    /// Tokens of unflagged images.
    pub image: u64,
    /// Tokens of unflagged text.
    pub text: u64,
    /// `None`: no thinking (the key is left out).
    pub thoughts: Option<u64>,
    /// List `candidatesTokensDetails`.
    pub details: bool,
}

/// The usage of an answer with content.
pub(crate) fn answered(prompt: PromptUsage, produced: Produced) -> Value {
    let candidates = produced.image + produced.text + UNLISTED_OVERHEAD;
    let thoughts = produced.thoughts.unwrap_or(0);
    let mut usage = json!({
        "promptTokenCount": prompt.total(),
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt.total() + candidates + thoughts,
        "promptTokensDetails": prompt.details(),
        "serviceTier": "standard",
    });
    if produced.details {
        let detail = if produced.image > 0 {
            json!({"modality": "IMAGE", "tokenCount": produced.image})
        } else {
            json!({"modality": "TEXT", "tokenCount": produced.text})
        };
        usage["candidatesTokensDetails"] = json!([detail]);
    }
    if let Some(t) = produced.thoughts {
        usage["thoughtsTokenCount"] = json!(t);
    }
    usage
}

/// The usage of a candidate refused without content: candidates 0 or equal to the thoughts, total = prompt +
/// thoughts.
pub(crate) fn refused(
    prompt: PromptUsage,
    thoughts: Option<u64>,
    candidates_as_thoughts: bool,
) -> Value {
    let t = thoughts.unwrap_or(0);
    let mut usage = json!({
        "promptTokenCount": prompt.total(),
        "candidatesTokenCount": if candidates_as_thoughts { t } else { 0 },
        "totalTokenCount": prompt.total() + t,
        "promptTokensDetails": prompt.details(),
        "serviceTier": "standard",
    });
    if let Some(t) = thoughts {
        usage["thoughtsTokenCount"] = json!(t);
    }
    usage
}

/// The usage of a blocked prompt: nothing generated.
pub(crate) fn blocked(prompt: PromptUsage) -> Value {
    json!({
        "promptTokenCount": prompt.total(),
        "candidatesTokenCount": 0,
        "totalTokenCount": prompt.total(),
        "promptTokensDetails": prompt.details(),
        "serviceTier": "standard",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_exceed_their_details() {
        let prompt = PromptUsage::new("a cat", 1);
        let usage = answered(
            prompt,
            Produced {
                image: 1290,
                text: 10,
                thoughts: None,
                details: true,
            },
        );
        assert_eq!(usage["candidatesTokenCount"], 1308);
        assert_eq!(usage["candidatesTokensDetails"][0]["tokenCount"], 1290);
        assert!(usage.get("thoughtsTokenCount").is_none());
        assert_eq!(usage["promptTokenCount"], 2 + 258);
        let r = refused(prompt, Some(291), false);
        assert_eq!(
            (
                r["candidatesTokenCount"].as_u64(),
                r["totalTokenCount"].as_u64()
            ),
            (Some(0), Some(260 + 291))
        );
    }
}
