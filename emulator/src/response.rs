//! The JSON bodies of successful `generateContent` answers: candidates with thought parts, the final image,
//! usageMetadata, and the three kinds of safety outcome.

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::images::Rendered;
use crate::models::Model;
use crate::request::ImageRequest;
use crate::safety::Rating;

/// Tokens billed per output image by size, as Gemini prices them.
fn image_tokens(model: &Model, image_size: &str) -> u64 {
    if !model.thinking() {
        return 1290;
    }
    match image_size {
        "4K" => 2000,
        _ => 1120,
    }
}

/// Tokens per input image.
const INPUT_IMAGE_TOKENS: u64 = 258;

fn text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

/// Identifies one answer: who it is for and what it says.
pub(crate) struct Answer<'a> {
    pub model_version: &'a str,
    pub model: &'a Model,
    pub request: &'a ImageRequest,
    pub prompt_hash: &'a [u8; 32],
    pub sequence: u64,
}

impl Answer<'_> {
    fn response_id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.sequence.to_be_bytes());
        hasher.update(self.prompt_hash);
        let digest = hasher.finalize();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..17])
    }

    fn prompt_tokens(&self) -> (u64, u64) {
        let text = text_tokens(&self.request.prompt);
        let images = self.request.reference_images as u64 * INPUT_IMAGE_TOKENS;
        (text, images)
    }

    fn thought_tokens(&self) -> u64 {
        if self.model.thinking() {
            120 + self.prompt_hash[0] as u64 + self.prompt_hash[1] as u64 % 64
        } else {
            0
        }
    }

    fn usage(&self, candidates: u64, candidate_details: Value, thoughts: u64) -> Value {
        let (text, images) = self.prompt_tokens();
        let mut prompt_details = vec![json!({"modality": "TEXT", "tokenCount": text})];
        if images > 0 {
            prompt_details.push(json!({"modality": "IMAGE", "tokenCount": images}));
        }
        let mut usage = json!({
            "promptTokenCount": text + images,
            "totalTokenCount": text + images + candidates + thoughts,
            "promptTokensDetails": prompt_details,
        });
        if candidates > 0 {
            usage["candidatesTokenCount"] = json!(candidates);
            usage["candidatesTokensDetails"] = candidate_details;
        }
        if thoughts > 0 {
            usage["thoughtsTokenCount"] = json!(thoughts);
        }
        usage
    }

    fn envelope(&self, mut body: Value) -> Vec<u8> {
        body["modelVersion"] = json!(self.model_version);
        body["responseId"] = json!(self.response_id());
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn short_prompt(&self) -> String {
        let prompt = self.request.prompt.trim();
        let mut short: String = prompt.chars().take(120).collect();
        if short.len() < prompt.len() {
            short.push_str("...");
        }
        short
    }

    /// A normal answer; `rendered` is `None` when no image was asked for (`responseModalities` without IMAGE).
    pub fn success(&self, rendered: Option<&Rendered>, ratings: &[Rating]) -> Vec<u8> {
        let request = self.request;
        let short = self.short_prompt();
        let mut parts = Vec::new();
        let thoughts = self.thought_tokens();
        if self.model.thinking() {
            parts.push(json!({
                "text": format!(
                    "**Composing the scene**\n\nThe request asks for \"{short}\". I'll lay it out at {} ({}), \
                     sketch a draft to check the composition, then render the final image.",
                    request.aspect_ratio, request.image_size
                ),
                "thought": true,
            }));
            if let Some(r) = rendered {
                parts.push(json!({
                    "inlineData": {"mimeType": "image/png", "data": r.interim_base64},
                    "thought": true,
                }));
            }
        }
        let mut candidates = 0;
        let mut details = Vec::new();
        if request.text_out {
            let text = match rendered {
                Some(_) => format!("Here is the image you asked for: {short}"),
                None => format!("Here is a description of the image you asked for: {short}"),
            };
            if rendered.is_none() {
                let tokens = text_tokens(&text);
                candidates += tokens;
                details.push(json!({"modality": "TEXT", "tokenCount": tokens}));
            }
            parts.push(json!({ "text": text }));
        }
        if let Some(r) = rendered {
            let mut part = json!({"inlineData": {"mimeType": "image/png", "data": r.png_base64}});
            if self.model.thinking() {
                part["thoughtSignature"] = json!(self.thought_signature());
            }
            parts.push(part);
            let tokens = image_tokens(self.model, request.image_size);
            candidates += tokens;
            details.push(json!({"modality": "IMAGE", "tokenCount": tokens}));
        }
        let mut candidate = json!({
            "content": {"role": "model", "parts": parts},
            "finishReason": "STOP",
            "index": 0,
        });
        if !ratings.is_empty() {
            candidate["safetyRatings"] = ratings_json(ratings);
        }
        self.envelope(json!({
            "candidates": [candidate],
            "usageMetadata": self.usage(candidates, json!(details), thoughts),
        }))
    }

    /// An opaque signature that lets a later turn refer back to this one.
    fn thought_signature(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"thought-signature");
        hasher.update(self.prompt_hash);
        hasher.update(self.request.aspect_ratio.as_bytes());
        hasher.update(self.request.image_size.as_bytes());
        let digest = hasher.finalize();
        let mut signature = digest.to_vec();
        signature.extend_from_slice(&Sha256::digest(digest));
        base64::engine::general_purpose::STANDARD.encode(signature)
    }

    /// The prompt itself was refused: `promptFeedback.blockReason`, no candidates.
    pub fn prompt_blocked(&self) -> Vec<u8> {
        self.envelope(json!({
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": self.usage(0, json!([]), 0),
        }))
    }

    /// The answer was stopped for a harm category: `finishReason: SAFETY`, ratings, no content.
    pub fn harm_blocked(&self, ratings: &[Rating]) -> Vec<u8> {
        self.envelope(json!({
            "candidates": [{
                "finishReason": "SAFETY",
                "index": 0,
                "safetyRatings": ratings_json(ratings),
            }],
            "usageMetadata": self.usage(0, json!([]), 0),
        }))
    }

    /// The generated image was filtered: `finishReason: IMAGE_SAFETY`, no image.
    pub fn image_filtered(&self) -> Vec<u8> {
        self.envelope(json!({
            "candidates": [{
                "finishReason": "IMAGE_SAFETY",
                "finishMessage": "Unable to show the generated image. The generated image was filtered out \
                                  because it violated Google's Generative AI Prohibited Use policy. You will not be \
                                  charged for blocked images. Try rephrasing the prompt.",
                "index": 0,
            }],
            "usageMetadata": self.usage(0, json!([]), self.thought_tokens()),
        }))
    }
}

fn ratings_json(ratings: &[Rating]) -> Value {
    Value::Array(
        ratings
            .iter()
            .map(|r| {
                json!({
                    "category": r.category,
                    "probability": r.probability.as_str(),
                    "blocked": r.blocked,
                })
            })
            .collect(),
    )
}
