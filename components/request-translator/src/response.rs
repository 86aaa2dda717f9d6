//! Reading a Gemini `generateContent` response (image data already replaced by blob
//! tokens) and rendering the OpenAI Images API response.

use serde_json::{json, Map, Value};

use crate::types::{
    Generation, Image, OutputFormat, ResponseFormat, SafetyRating, UpstreamOutcome,
    UpstreamVerdict, Usage,
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

/// One image part of a candidate, in body order.
struct ImagePart<'a> {
    inline: &'a Value,
    thought: bool,
    signed: bool,
}

/// The image an `inlineData` object stands for; its data must be a blob token.
fn image(inline: &Value) -> Result<Image, String> {
    let data = inline.get("data").and_then(Value::as_str).unwrap_or("");
    let blob = blob_id(data).ok_or("image data was not a blob token")?;
    let mime = get_str(inline, "mimeType", "mime_type")
        .filter(|m| !m.trim().is_empty())
        .unwrap_or(DEFAULT_MIME);
    Ok(Image {
        blob,
        mime_type: mime.to_string(),
    })
}

/// Whether a candidate ended normally (`STOP`, or no finish reason at all), so an image it
/// flagged as a thought may stand as its final image.
fn finished_normally(candidate: &Value) -> bool {
    match get_str(candidate, "finishReason", "finish_reason").map(str::trim) {
        None | Some("") => true,
        Some(reason) => reason.eq_ignore_ascii_case("STOP"),
    }
}

/// The final images among one candidate's image parts:
/// - unflagged images exist and at least one carries a `thoughtSignature` (a thinking
///   model, Gemini 3 Pro / 3.1 Flash, which makes one final image per call and may send
///   unflagged drafts before it): only the last unflagged image;
/// - unflagged images without signatures (Gemini 2.5 Flash, which may make several): all;
/// - every image flagged `thought: true`: the last one, when the candidate ended normally
///   (an image was produced, so never nothing); after a non-`STOP` finish (e.g.
///   `IMAGE_SAFETY`) a thought image is only a draft of a withheld result, and none is
///   returned.
fn final_images<'a>(parts: &[ImagePart<'a>], candidate: &Value) -> Vec<&'a Value> {
    let unflagged: Vec<&ImagePart> = parts.iter().filter(|p| !p.thought).collect();
    if unflagged.iter().any(|p| p.signed) {
        return unflagged.last().map(|p| vec![p.inline]).unwrap_or_default();
    }
    if !unflagged.is_empty() {
        return unflagged.iter().map(|p| p.inline).collect();
    }
    match parts.last() {
        Some(last) if finished_normally(candidate) => vec![last.inline],
        _ => Vec::new(),
    }
}

/// Interpret an HTTP 200 `generateContent` body (image data and thought signatures
/// already replaced by blob tokens). Exactly the final images are returned (see
/// [`final_images`]); non-thought text becomes the revised prompt (thought text never
/// does, and text never changes which images are final). With no final image the verdict
/// is returned: block reason, the first candidate's finish reason and finish message,
/// ratings, and the non-thought text. `content` may be absent, `{}`, `{"role":"model"}` or
/// `{"parts":null}`. An error string means the body is not a `generateContent` response
/// (or a final image's data is not a blob token).
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
        let mut image_parts = Vec::new();
        for part in parts.into_iter().flatten() {
            let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
            if let Some(inline) = get(part, "inlineData", "inline_data") {
                image_parts.push(ImagePart {
                    inline,
                    thought,
                    signed: get(part, "thoughtSignature", "thought_signature").is_some(),
                });
            } else if thought {
                continue;
            } else if let Some(text) = part.get("text").and_then(Value::as_str) {
                let text = text.trim();
                if !text.is_empty() {
                    texts.push(text);
                }
            }
        }
        for inline in final_images(&image_parts, candidate) {
            images.push(image(inline)?);
        }
    }
    let text = if texts.is_empty() {
        None
    } else {
        Some(texts.join("\n"))
    };

    if !images.is_empty() {
        let usage =
            get(&value, "usageMetadata", "usage_metadata").map_or_else(Usage::default, |u| Usage {
                prompt_tokens: get_u32(u, "promptTokenCount", "prompt_token_count"),
                output_tokens: get_u32(u, "candidatesTokenCount", "candidates_token_count"),
                thought_tokens: get_u32(u, "thoughtsTokenCount", "thoughts_token_count"),
                total_tokens: get_u32(u, "totalTokenCount", "total_token_count"),
            });
        return Ok(UpstreamOutcome::Images(Generation {
            images,
            revised_prompt: text,
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
        finish_message: first
            .and_then(|c| get_str(c, "finishMessage", "finish_message"))
            .filter(|m| !m.trim().is_empty())
            .map(str::to_string),
        text,
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
/// `output_format` (`png`, `jpeg`, `webp`, as in OpenAI's `ImagesResponse`) is the
/// format of the first image, from its MIME type; it is left out when there is no image
/// or its type is none of those.
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
    let mut response = json!({
        "created": created,
        "data": data,
        "usage": {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": u64::from(usage.output_tokens) + u64::from(usage.thought_tokens),
            "total_tokens": usage.total_tokens,
        }
    });
    let format = result
        .images
        .first()
        .and_then(|image| OutputFormat::from_mime_type(&image.mime_type));
    if let (Some(format), Value::Object(map)) = (format, &mut response) {
        map.insert("output_format".into(), json!(format.as_str()));
    }
    response.to_string()
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
                   "usage": {"input_tokens": 1, "output_tokens": 5, "total_tokens": 6},
                   "output_format": "png"})
        );
    }
}
