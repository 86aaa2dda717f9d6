//! Reading a Gemini `generateContent` response (image data already replaced by blob
//! tokens) and rendering the OpenAI Images API response.

use serde_json::{json, Map, Value};

use crate::types::{
    Generation, Image, ResponseFormat, SafetyRating, UpstreamOutcome, UpstreamVerdict, Usage,
};

/// The prefix of a blob token, `aperture-blob:<id>`.
pub const BLOB_PREFIX: &str = "aperture-blob:";

/// The MIME type assumed when an image part names none.
const DEFAULT_MIME: &str = "image/png";

/// The blob id in a token `aperture-blob:<id>`.
pub fn blob_id(token: &str) -> Option<u32> {
    let digits = token.strip_prefix(BLOB_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The blob token for `id`.
pub fn blob_token(id: u32) -> String {
    format!("{BLOB_PREFIX}{id}")
}

/// `obj[camel]`, or `obj[snake]` (the REST API accepts and some proxies emit snake case).
fn get<'a>(obj: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(snake))
        .filter(|v| !v.is_null())
}

fn get_str<'a>(obj: &'a Value, camel: &str, snake: &str) -> Option<&'a str> {
    get(obj, camel, snake).and_then(Value::as_str)
}

fn get_u32(obj: &Value, camel: &str, snake: &str) -> u32 {
    get(obj, camel, snake)
        .and_then(Value::as_u64)
        .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
}

fn ratings(list: Option<&Value>, out: &mut Vec<SafetyRating>) {
    let Some(Value::Array(items)) = list else {
        return;
    };
    for item in items {
        let Some(category) = get_str(item, "category", "category") else {
            continue;
        };
        out.push(SafetyRating {
            category: category.to_string(),
            probability: get_str(item, "probability", "probability")
                .unwrap_or("")
                .to_string(),
            blocked: get(item, "blocked", "blocked")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    }
}

/// Interpret an HTTP 200 `generateContent` body. Thought parts (`"thought": true`)
/// are skipped; final `inlineData` parts become images, non-thought text parts the
/// revised prompt. With no final image the verdict is returned instead. An error
/// string means the body is not a `generateContent` response (or carries image data
/// that is not a blob token).
pub fn parse_response(body: &str) -> Result<UpstreamOutcome, String> {
    let value: Value = serde_json::from_str(body)
        .map_err(|_| "upstream response is not valid JSON".to_string())?;
    if !value.is_object() {
        return Err("upstream response is not a JSON object".to_string());
    }
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        let status = error.get("status").and_then(Value::as_str).unwrap_or("");
        return Err(format!(
            "upstream response is an error, not a generateContent result{}{}",
            if status.is_empty() { "" } else { ": " },
            status
        ));
    }
    let candidates = get(&value, "candidates", "candidates");
    let feedback = get(&value, "promptFeedback", "prompt_feedback");
    if candidates.is_none() && feedback.is_none() {
        return Err(
            "upstream response has neither candidates nor promptFeedback: not a \
             generateContent response"
                .to_string(),
        );
    }
    let candidates: &[Value] = match candidates {
        None => &[],
        Some(Value::Array(list)) => list,
        Some(_) => return Err("upstream response candidates is not an array".to_string()),
    };

    let mut images = Vec::new();
    let mut texts: Vec<&str> = Vec::new();
    for candidate in candidates {
        let parts = get(candidate, "content", "content")
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array);
        for part in parts.into_iter().flatten() {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(inline) = get(part, "inlineData", "inline_data") {
                let data = inline.get("data").and_then(Value::as_str).unwrap_or("");
                let blob = blob_id(data).ok_or("image data was not a blob token")?;
                let mime = get_str(inline, "mimeType", "mime_type")
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or(DEFAULT_MIME);
                images.push(Image {
                    blob,
                    mime_type: mime.to_string(),
                });
            } else if let Some(text) = part.get("text").and_then(Value::as_str) {
                let text = text.trim();
                if !text.is_empty() {
                    texts.push(text);
                }
            }
        }
    }

    if !images.is_empty() {
        let usage =
            get(&value, "usageMetadata", "usage_metadata").map_or_else(Usage::default, |u| Usage {
                prompt_tokens: get_u32(u, "promptTokenCount", "prompt_token_count"),
                output_tokens: get_u32(u, "candidatesTokenCount", "candidates_token_count"),
                thought_tokens: get_u32(u, "thoughtsTokenCount", "thoughts_token_count"),
                total_tokens: get_u32(u, "totalTokenCount", "total_token_count"),
            });
        let revised_prompt = if texts.is_empty() {
            None
        } else {
            Some(texts.join("\n"))
        };
        return Ok(UpstreamOutcome::Images(Generation {
            images,
            revised_prompt,
            usage,
        }));
    }

    let first = candidates.first();
    let mut verdict = UpstreamVerdict {
        block_reason: feedback
            .and_then(|f| get_str(f, "blockReason", "block_reason"))
            .map(str::to_string),
        finish_reason: first
            .and_then(|c| get_str(c, "finishReason", "finish_reason"))
            .map(str::to_string),
        ratings: Vec::new(),
        finish_message: None,
        text: None,
    };
    ratings(
        feedback.and_then(|f| get(f, "safetyRatings", "safety_ratings")),
        &mut verdict.ratings,
    );
    ratings(
        first.and_then(|c| get(c, "safetyRatings", "safety_ratings")),
        &mut verdict.ratings,
    );
    Ok(UpstreamOutcome::NoImage(verdict))
}

/// Render the OpenAI Images API response. Image data is written as blob tokens the
/// host splices: `b64_json: "aperture-blob:<id>"`, or `url:
/// "data:<mime>;base64,aperture-blob:<id>"`. `revised_prompt` appears on every item
/// when present. `usage.output_tokens` counts image, text and thought tokens (Gemini
/// bills thoughts as output), so input + output = total when upstream totals agree.
pub fn build_response(result: &Generation, format: ResponseFormat, created: u64) -> String {
    let data: Vec<Value> = result
        .images
        .iter()
        .map(|image| {
            let mut item = Map::new();
            let token = blob_token(image.blob);
            match format {
                ResponseFormat::B64Json => {
                    item.insert("b64_json".into(), json!(token));
                }
                ResponseFormat::Url => {
                    item.insert(
                        "url".into(),
                        json!(format!("data:{};base64,{token}", image.mime_type)),
                    );
                }
            }
            if let Some(revised) = &result.revised_prompt {
                item.insert("revised_prompt".into(), json!(revised));
            }
            Value::Object(item)
        })
        .collect();
    let usage = &result.usage;
    json!({
        "created": created,
        "data": data,
        "usage": {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": u64::from(usage.output_tokens) + u64::from(usage.thought_tokens),
            "total_tokens": usage.total_tokens,
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thought_parts_are_skipped() {
        let body = r#"{"candidates":[{"content":{"role":"model","parts":[
            {"text":"thinking","thought":true},
            {"inlineData":{"mimeType":"image/png","data":"aperture-blob:1"},"thought":true},
            {"text":"Here is your fox."},
            {"inline_data":{"mime_type":"image/jpeg","data":"aperture-blob:2"}}]},
            "finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":1290,"totalTokenCount":1400}}"#;
        let Ok(UpstreamOutcome::Images(g)) = parse_response(body) else {
            panic!("expected images");
        };
        assert_eq!(
            g.images,
            vec![Image {
                blob: 2,
                mime_type: "image/jpeg".into()
            }]
        );
        assert_eq!(g.revised_prompt.as_deref(), Some("Here is your fox."));
        assert_eq!(g.usage.thought_tokens, 0);
        assert_eq!(g.usage.total_tokens, 1400);
    }

    #[test]
    fn blocked_prompt_gives_verdict() {
        let body = r#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[
            {"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}}"#;
        let Ok(UpstreamOutcome::NoImage(v)) = parse_response(body) else {
            panic!("expected verdict");
        };
        assert_eq!(v.block_reason.as_deref(), Some("SAFETY"));
        assert_eq!(v.finish_reason, None);
        assert_eq!(v.ratings.len(), 1);
        assert!(v.ratings[0].blocked);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [
            "",
            "[]",
            "{}",
            r#"{"error":{"code":500}}"#,
            r#"{"candidates":5}"#,
            r#"{"candidates":[{"content":{"parts":[{"inlineData":{"data":"iVBORw0KGgo="}}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"inlineData":{"data":"aperture-blob:x"}}]}}]}"#,
        ] {
            assert!(parse_response(body).is_err(), "{body}");
        }
    }

    #[test]
    fn response_rendering() {
        let g = Generation {
            images: vec![Image {
                blob: 7,
                mime_type: "image/png".into(),
            }],
            revised_prompt: None,
            usage: Usage {
                prompt_tokens: 1,
                output_tokens: 2,
                thought_tokens: 3,
                total_tokens: 6,
            },
        };
        let v: Value = serde_json::from_str(&build_response(&g, ResponseFormat::Url, 9)).unwrap();
        assert_eq!(
            v,
            json!({"created": 9, "data": [{"url": "data:image/png;base64,aperture-blob:7"}],
                   "usage": {"input_tokens": 1, "output_tokens": 5, "total_tokens": 6}})
        );
    }
}
