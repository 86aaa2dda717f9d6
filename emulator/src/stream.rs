//! `:streamGenerateContent`: one complete answer cut into the events production streams. Thoughts come first,
//! each image whole in one event, long text in pieces; every event carries the usage so far; only the last has
//! `finishReason` (for thinking models on an empty text part carrying a signature). Framed as SSE
//! (`data: {...}\r\n\r\n`) with `?alt=sse`, otherwise as a JSON array sent piece by piece.

use serde_json::{json, Value};

use crate::reply::{pretty, Reply, JSON, SSE};

/// Longest text piece per event, in bytes (cut at a character boundary).
const TEXT_PIECE: usize = 2048;

/// How events are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Sse,
    JsonArray,
}

/// Splits `text` into pieces of at most `TEXT_PIECE` bytes, never inside a character.
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > TEXT_PIECE {
        let cut = (0..=TEXT_PIECE)
            .rev()
            .find(|i| rest.is_char_boundary(*i))
            .filter(|i| *i > 0)
            .unwrap_or(rest.len());
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// The parts cut into event-sized chunks: long text in pieces (the signature stays on the first piece).
fn chunk_parts(parts: &[Value]) -> Vec<Value> {
    let mut chunks = Vec::new();
    for part in parts {
        match part["text"].as_str() {
            Some(text) if text.len() > TEXT_PIECE => {
                for (k, piece) in pieces(text).into_iter().enumerate() {
                    let mut p = part.clone();
                    p["text"] = json!(piece);
                    if k > 0 {
                        if let Some(map) = p.as_object_mut() {
                            map.remove("thoughtSignature");
                        }
                    }
                    chunks.push(p);
                }
            }
            _ => chunks.push(part.clone()),
        }
    }
    chunks
}

/// The events of `body` (a complete 200 answer). `final_signature` is the signature of the closing empty text
/// part (thinking models), if any.
pub(crate) fn events(body: &Value, final_signature: Option<&str>) -> Vec<Value> {
    let parts = body["candidates"][0]["content"]["parts"].as_array();
    let Some(parts) = parts.filter(|p| !p.is_empty()) else {
        // Blocks, finish reasons without content: one event, the whole answer.
        return vec![body.clone()];
    };
    let usage = &body["usageMetadata"];
    let final_candidates = usage["candidatesTokenCount"].as_u64().unwrap_or(0);
    let prompt = usage["promptTokenCount"].as_u64().unwrap_or(0);
    let thoughts = usage.get("thoughtsTokenCount").and_then(Value::as_u64);
    let chunks = chunk_parts(parts);
    let is_answer = |c: &Value| c["thought"] != json!(true);
    let answer_chunks = chunks.iter().filter(|c| is_answer(c)).count().max(1) as u64;
    let last = chunks.len() - 1;
    let mut answered = 0u64;
    let mut out = Vec::with_capacity(chunks.len() + 1);
    for (i, chunk) in chunks.into_iter().enumerate() {
        if is_answer(&chunk) {
            answered += 1;
        }
        let mut event = body.clone();
        if i == last && final_signature.is_none() {
            event["candidates"][0]["content"]["parts"] = json!([chunk]);
        } else {
            event["candidates"][0] =
                json!({"content": {"role": "model", "parts": [chunk]}, "index": 0});
            let so_far = final_candidates * answered / answer_chunks;
            let mut u = json!({
                "promptTokenCount": prompt,
                "candidatesTokenCount": so_far,
                "totalTokenCount": prompt + so_far + thoughts.unwrap_or(0),
                "promptTokensDetails": usage["promptTokensDetails"].clone(),
            });
            if let Some(t) = thoughts {
                u["thoughtsTokenCount"] = json!(t);
            }
            event["usageMetadata"] = u;
        }
        out.push(event);
    }
    if let Some(signature) = final_signature {
        let mut event = body.clone();
        event["candidates"][0]["content"]["parts"] =
            json!([{"text": "", "thoughtSignature": signature}]);
        out.push(event);
    }
    out
}

/// The events framed for the wire, one chunk each.
pub(crate) fn reply(events: &[Value], framing: Framing) -> Reply {
    let chunks = match framing {
        Framing::Sse => events
            .iter()
            .map(|e| {
                let mut line = b"data: ".to_vec();
                line.extend(serde_json::to_vec(e).unwrap_or_default());
                line.extend_from_slice(b"\r\n\r\n");
                line
            })
            .collect(),
        Framing::JsonArray => {
            let count = events.len();
            events
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let mut chunk = if i == 0 {
                        b"[".to_vec()
                    } else {
                        b"\n,\r\n".to_vec()
                    };
                    chunk.extend(pretty(e));
                    if i + 1 == count {
                        chunk.extend_from_slice(b"\n]");
                    }
                    chunk
                })
                .collect()
        }
    };
    Reply {
        status: 200,
        content_type: match framing {
            Framing::Sse => SSE,
            Framing::JsonArray => JSON,
        },
        chunks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Value {
        json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "thinking", "thought": true},
                {"text": "日本語".repeat(1000), "thoughtSignature": "c2ln"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}, "thoughtSignature": "c2ln"}
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1900, "totalTokenCount": 2105,
                              "thoughtsTokenCount": 200, "promptTokensDetails": []},
            "modelVersion": "m", "responseId": "r"
        })
    }

    #[test]
    fn thoughts_first_text_in_pieces_finish_last() {
        let events = events(&body(), Some("ZW5k"));
        // thought, 2 text pieces (3000 chars x 3 bytes = 9000 bytes -> 5 pieces), image, closing.
        let texts: String = events
            .iter()
            .map(|e| &e["candidates"][0]["content"]["parts"][0])
            .filter(|p| p["thought"] != true)
            .filter_map(|p| p["text"].as_str())
            .collect();
        assert_eq!(texts, "日本語".repeat(1000));
        assert_eq!(
            events[0]["candidates"][0]["content"]["parts"][0]["thought"],
            true
        );
        for e in &events[..events.len() - 1] {
            assert!(e["candidates"][0].get("finishReason").is_none());
        }
        let last = events.last().unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(last["candidates"][0]["content"]["parts"][0]["text"], "");
        assert_eq!(last["usageMetadata"], body()["usageMetadata"]);
        let counts: Vec<u64> = events
            .iter()
            .map(|e| e["usageMetadata"]["candidatesTokenCount"].as_u64().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    }

    #[test]
    fn without_a_closing_signature_the_last_part_finishes() {
        let events = events(&body(), None);
        let last = events.last().unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert!(last["candidates"][0]["content"]["parts"][0]
            .get("inlineData")
            .is_some());
    }
}
