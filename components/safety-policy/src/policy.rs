//! The two policy decisions: `screen` (before the upstream call) and `review` (of its verdict).

use crate::denylist;
use crate::thresholds;
use crate::types::{
    Block, Denial, ErrorType, ImageRequest, PolicyConfig, Refusal, ReviewOutcome, SafetyThreshold,
    Screening, UpstreamVerdict,
};

/// The `IMG_*` code for every safety refusal.
pub const CODE_SAFETY_BLOCKED: &str = "IMG_SAFETY_BLOCKED";
/// The `IMG_*` code for an answer without an image that is not a safety block.
pub const CODE_NO_IMAGE: &str = "IMG_NO_IMAGE";

/// The reason given for a local deny-list hit. It never names the matched term: the
/// deny-list is operator-private.
pub const DENY_REASON: &str = "The prompt was blocked by this gateway's content policy before \
reaching the model. Rephrase the prompt without the disallowed content and try again.";

/// Finish reasons that mean the upstream withheld the output for safety.
pub const SAFETY_FINISH_REASONS: [&str; 6] = [
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
];

/// Deny when the prompt hits the deny-list; otherwise allow with the settings for
/// `threshold` (already the effective one: request override, else the global default).
pub fn screen(
    request: &ImageRequest,
    threshold: SafetyThreshold,
    config: &PolicyConfig,
) -> Screening {
    if denylist::matches(&request.prompt, &config.deny_list) {
        return Screening::Deny(Denial {
            reason: DENY_REASON.to_string(),
            code: CODE_SAFETY_BLOCKED.to_string(),
        });
    }
    Screening::Allow(thresholds::settings(threshold))
}

/// Categories the upstream blamed: those of ratings marked `blocked`, else those rated
/// `HIGH` or `MEDIUM`; de-duplicated, in upstream order.
fn categories(verdict: &UpstreamVerdict) -> Vec<String> {
    let blocked: Vec<&str> = verdict
        .ratings
        .iter()
        .filter(|r| r.blocked)
        .map(|r| r.category.as_str())
        .collect();
    let chosen: Vec<&str> = if blocked.is_empty() {
        verdict
            .ratings
            .iter()
            .filter(|r| matches!(r.probability.as_str(), "HIGH" | "MEDIUM"))
            .map(|r| r.category.as_str())
            .collect()
    } else {
        blocked
    };
    let mut out: Vec<String> = Vec::new();
    for category in chosen {
        if !category.is_empty() && !out.iter().any(|c| c == category) {
            out.push(category.to_string());
        }
    }
    out
}

/// Whether a block of this kind can be avoided with a lower `safety_threshold`
/// (Gemini's prohibited-content, blocklist and SPII filters are not configurable).
fn threshold_adjustable(reason: &str) -> bool {
    matches!(reason, "SAFETY" | "IMAGE_SAFETY")
}

/// Finish reasons where Gemini declined to draw for a reason rephrasing can fix: the
/// answer is a `400 USER_ERROR` refusal.
pub const USER_FINISH_REASONS: [&str; 4] =
    ["RECITATION", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE"];

/// The longest upstream text quoted back to the client, in characters.
const MAX_QUOTE_CHARS: usize = 300;

/// `[text](url)` -> `text`, everywhere in `s`.
fn strip_markdown_links(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let link = after.find("](").and_then(|close| {
            let text = &after[..close];
            let target = &after[close + 2..];
            let end = target.find(')')?;
            (!text.contains('[') && !target[..end].contains(char::is_whitespace))
                .then_some((text, close + 2 + end + 1))
        });
        match link {
            Some((text, consumed)) => {
                out.push_str(&rest[..open]);
                out.push_str(text);
                rest = &after[consumed..];
            }
            None => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whitespace runs collapsed to single spaces, trimmed.
fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Sentences of `s`: each ends at `.`, `!` or `?` followed by whitespace (or the end).
fn sentences(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at_break = matches!(c, '.' | '!' | '?')
            && chars.peek().is_none_or(|&(_, next)| next.is_whitespace());
        if at_break {
            let end = i + c.len_utf8();
            out.push(s[start..end].trim());
            start = end;
        }
    }
    out.push(s[start..].trim());
    out.retain(|sentence| !sentence.is_empty());
    out
}

/// Whether a sentence of a `finishMessage` is boilerplate the client does not need: a
/// link or feedback/troubleshooting pointer, billing, a support code, or advice we give
/// in our own words.
fn is_boilerplate(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    [
        "http://",
        "https://",
        "feedback",
        "troubleshoot",
        "if you think this was an error",
        "will not be charged",
        "support code",
        "rephras",
        "edit your prompt",
        "try again",
    ]
    .iter()
    .any(|marker| lower.contains(marker))
}

/// At most [`MAX_QUOTE_CHARS`] characters of `s`, cut with an ellipsis.
fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_QUOTE_CHARS {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX_QUOTE_CHARS).collect();
        format!("{}…", cut.trim_end())
    }
}

/// The explanatory part of a Gemini `finishMessage`, for quoting to the client: markdown
/// links reduced to their text, and sentences that are links, feedback/troubleshooting
/// pointers, billing notes, support codes or advice dropped; a bare "Unable to show the
/// generated image." is dropped when a more specific sentence remains. `None` when
/// nothing explanatory is left.
pub fn clean_finish_message(message: &str) -> Option<String> {
    let text = collapse_whitespace(&strip_markdown_links(message));
    let mut kept: Vec<&str> = sentences(&text)
        .into_iter()
        .filter(|s| !is_boilerplate(s))
        .collect();
    if kept.len() > 1 {
        kept.retain(|s| {
            !s.trim_end_matches('.')
                .eq_ignore_ascii_case("unable to show the generated image")
        });
    }
    let joined = kept.join(" ");
    (!joined.is_empty()).then(|| shorten(&joined))
}

/// The model's own text, for quoting: links reduced to their text, whitespace collapsed,
/// shortened.
fn clean_text(text: &str) -> Option<String> {
    let text = collapse_whitespace(&strip_markdown_links(text));
    (!text.is_empty()).then(|| shorten(&text))
}

/// One sentence: `what.`, or `what: "quote"` (with a closing `.` unless the quote ends
/// a sentence itself).
fn sentence(what: &str, quote: Option<String>) -> String {
    match quote {
        None => format!("{what}."),
        Some(q) if q.ends_with(['.', '!', '?', '…']) => format!("{what}: \"{q}\""),
        Some(q) => format!("{what}: \"{q}\"."),
    }
}

/// The `no-image` refusal for a verdict that is not a safety block.
fn refusal(verdict: &UpstreamVerdict, finish_reason: Option<&str>) -> Refusal {
    let finish_message = verdict
        .finish_message
        .as_deref()
        .and_then(clean_finish_message);
    let text = verdict.text.as_deref().and_then(clean_text);
    let user = |message: String| Refusal {
        message,
        code: CODE_NO_IMAGE.to_string(),
        error_type: ErrorType::UserError,
        status: 400,
    };
    match finish_reason {
        Some(reason @ ("RECITATION" | "IMAGE_RECITATION")) => user(format!(
            "{} Rephrase the prompt to ask for something more original and try again.",
            sentence(
                &format!(
                    "Gemini withheld the image because it resembled existing content too \
                     closely ({reason})"
                ),
                finish_message.or(text)
            )
        )),
        Some("IMAGE_OTHER") => user(format!(
            "{} Rephrase the prompt and try again.",
            sentence(
                "Gemini could not generate an image for this prompt (IMAGE_OTHER)",
                finish_message.or(text)
            )
        )),
        Some("NO_IMAGE") => user(format!(
            "{} Rephrase the prompt to ask for a picture explicitly and try again.",
            sentence(
                "Gemini answered without an image (NO_IMAGE)",
                finish_message.or(text)
            )
        )),
        None | Some("STOP") if text.is_some() => user(format!(
            "{} Rephrase the prompt and try again.",
            sentence("Gemini answered with text instead of an image", text)
        )),
        _ => {
            let what = match finish_reason {
                Some("MAX_TOKENS") => {
                    "Gemini ran out of output tokens before producing an image (MAX_TOKENS)"
                        .to_string()
                }
                Some("MALFORMED_RESPONSE") => {
                    "Gemini produced a malformed response without an image (MALFORMED_RESPONSE)"
                        .to_string()
                }
                Some(reason) => format!("Gemini returned no image (finish reason {reason})"),
                None => "Gemini returned no image and no finish reason".to_string(),
            };
            Refusal {
                message: format!(
                    "{} This is an upstream failure, not a problem with the prompt; try again \
                     later.",
                    sentence(&what, finish_message)
                ),
                code: CODE_NO_IMAGE.to_string(),
                error_type: ErrorType::ApiError,
                status: 502,
            }
        }
    }
}

/// Review a verdict without an image (the host calls this only when the upstream sent
/// no final image, so every verdict ends in `blocked` or `no-image`, never `pass`):
/// - any `block-reason` (the prompt or an input was refused): `blocked`; `OTHER` names
///   no category, so the reason says only that Gemini refused the prompt;
/// - a safety `finish-reason` ([`SAFETY_FINISH_REASONS`]): `blocked`, naming the reason;
/// - `RECITATION`, `IMAGE_RECITATION`, `IMAGE_OTHER`, `NO_IMAGE`, or a text-only answer
///   (`STOP` or no finish reason, with `text`): `no-image`, `USER_ERROR` 400, quoting
///   Gemini's `finishMessage` or the model's text, since rephrasing helps;
/// - anything else (`MAX_TOKENS`, `OTHER`, `MALFORMED_RESPONSE`,
///   `MISSING_THOUGHT_SIGNATURE`, `STOP` with nothing, unknown, none): `no-image`,
///   `API_ERROR` 502.
pub fn review(verdict: &UpstreamVerdict) -> ReviewOutcome {
    let upper = |s: &Option<String>| {
        s.as_deref()
            .map(|r| r.trim().to_ascii_uppercase())
            .filter(|r| !r.is_empty())
    };
    let block_reason = upper(&verdict.block_reason);
    let finish_reason = upper(&verdict.finish_reason);
    let categories = categories(verdict);
    let flagged = if categories.is_empty() {
        String::new()
    } else {
        format!("; flagged categories: {}", categories.join(", "))
    };
    let advice = |name: &str| {
        if threshold_adjustable(name) {
            "Rephrase the prompt, or send a lower `safety_threshold` (e.g. \"LOW\" or \"OFF\") \
             if this gateway's operator allows it."
        } else {
            "This filter cannot be relaxed with `safety_threshold`; rephrase the prompt."
        }
    };
    let blocked = |reason: String| {
        ReviewOutcome::Blocked(Block {
            reason,
            code: CODE_SAFETY_BLOCKED.to_string(),
            categories: categories.clone(),
        })
    };

    if let Some(name) = block_reason.as_deref() {
        return blocked(if name == "OTHER" {
            "Gemini refused the prompt without giving a reason (blockReason OTHER). Rephrase \
             the prompt and try again; this cannot be relaxed with `safety_threshold`."
                .to_string()
        } else {
            format!(
                "The model refused the prompt for safety reasons (reason: {name}{flagged}). {}",
                advice(name)
            )
        });
    }
    let finish = finish_reason.as_deref();
    if let Some(name) = finish.filter(|r| SAFETY_FINISH_REASONS.contains(r)) {
        let explanation = verdict
            .finish_message
            .as_deref()
            .and_then(clean_finish_message);
        return blocked(format!(
            "{} {}",
            sentence(
                &format!("The generated image was filtered by Gemini ({name}{flagged})"),
                explanation
            ),
            advice(name)
        ));
    }
    ReviewOutcome::NoImage(refusal(verdict, finish))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ResponseFormat, SafetyRating};

    fn request(prompt: &str) -> ImageRequest {
        ImageRequest {
            model: "gemini-3-pro-image".into(),
            upstream_model: "gemini-3-pro-image-preview".into(),
            prompt: prompt.into(),
            n: 1,
            aspect_ratio: "1:1".into(),
            image_size: "1K".into(),
            style: None,
            safety_threshold: None,
            response_format: ResponseFormat::B64Json,
            output_format: None,
        }
    }

    fn rating(category: &str, probability: &str, blocked: bool) -> SafetyRating {
        SafetyRating {
            category: category.into(),
            probability: probability.into(),
            blocked,
        }
    }

    #[test]
    fn screen_denies_without_echoing_the_term() {
        let config = PolicyConfig {
            deny_list: vec!["secretterm".into()],
        };
        match screen(
            &request("draw SecretTerm now"),
            SafetyThreshold::Off,
            &config,
        ) {
            Screening::Deny(d) => {
                assert_eq!(d.code, CODE_SAFETY_BLOCKED);
                assert!(!d.reason.to_lowercase().contains("secretterm"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            screen(&request("a gorgeous day"), SafetyThreshold::High, &PolicyConfig { deny_list: vec!["gore".into()] }),
            Screening::Allow(s) if s.len() == 4 && s[0].threshold == "BLOCK_LOW_AND_ABOVE"
        ));
    }

    fn no_image(v: &UpstreamVerdict) -> Refusal {
        match review(v) {
            ReviewOutcome::NoImage(r) => r,
            other => panic!("{v:?}: {other:?}"),
        }
    }

    #[test]
    fn review_table() {
        let finish = |reason: &str| UpstreamVerdict {
            finish_reason: Some(reason.into()),
            ..Default::default()
        };
        for reason in SAFETY_FINISH_REASONS {
            assert!(
                matches!(review(&finish(reason)), ReviewOutcome::Blocked(_)),
                "{reason}"
            );
        }
        for reason in [
            "SAFETY",
            "OTHER",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "IMAGE_SAFETY",
        ] {
            let v = UpstreamVerdict {
                block_reason: Some(reason.into()),
                finish_reason: Some("STOP".into()),
                ..Default::default()
            };
            assert!(matches!(review(&v), ReviewOutcome::Blocked(_)), "{reason}");
        }
        for reason in USER_FINISH_REASONS {
            let r = no_image(&finish(reason));
            assert_eq!(
                (r.error_type, r.status),
                (ErrorType::UserError, 400),
                "{reason}"
            );
            assert_eq!(r.code, CODE_NO_IMAGE);
        }
        for reason in [
            "MAX_TOKENS",
            "OTHER",
            "MALFORMED_RESPONSE",
            "MISSING_THOUGHT_SIGNATURE",
            "STOP",
            "WHATEVER",
        ] {
            let r = no_image(&finish(reason));
            assert_eq!(
                (r.error_type, r.status),
                (ErrorType::ApiError, 502),
                "{reason}"
            );
        }
        let r = no_image(&UpstreamVerdict::default());
        assert_eq!(r.status, 502);
        let text_only = UpstreamVerdict {
            finish_reason: Some("STOP".into()),
            text: Some("I can't generate images that are sexually explicit.".into()),
            ..Default::default()
        };
        let r = no_image(&text_only);
        assert_eq!(r.status, 400);
        assert!(r
            .message
            .contains("\"I can't generate images that are sexually explicit.\""));
        let r = no_image(&UpstreamVerdict {
            finish_reason: Some("MAX_TOKENS".into()),
            ..text_only
        });
        assert_eq!(r.status, 502);
        assert!(!r.message.contains("explicit"));
    }

    #[test]
    fn finish_messages_are_cleaned() {
        assert_eq!(
            clean_finish_message(
                "Unable to show the generated image. The image was filtered out because it \
                 violated Google's [Generative AI Prohibited Use policy](https://policies.google.com/terms/generative-ai/use-policy). \
                 You will not be charged for blocked images. Try rephrasing the prompt. If you \
                 think this was an error, [send feedback](https://ai.google.dev/gemini-api/docs/troubleshooting)."
            )
            .as_deref(),
            Some(
                "The image was filtered out because it violated Google's Generative AI \
                 Prohibited Use policy."
            )
        );
        assert_eq!(
            clean_finish_message(
                "Unable to show the generated image due to interests of third-party content \
                 providers. Please edit your prompt and try again. If you think this was an \
                 error, send feedback. Support code: 355123"
            )
            .as_deref(),
            Some("Unable to show the generated image due to interests of third-party content providers.")
        );
        assert_eq!(
            clean_finish_message("Unable to show the generated image.").as_deref(),
            Some("Unable to show the generated image.")
        );
        assert_eq!(clean_finish_message("Try rephrasing the prompt."), None);
        assert_eq!(clean_finish_message("   "), None);
        assert_eq!(
            strip_markdown_links("a [b](c) [d] (e) [f](g h) [i](j)"),
            "a b [d] (e) [f](g h) i"
        );
        let long = "word ".repeat(200);
        let quote = clean_finish_message(&long).unwrap();
        assert!(quote.chars().count() <= MAX_QUOTE_CHARS + 1 && quote.ends_with("word…"));
    }

    #[test]
    fn categories_prefer_blocked_ratings_and_dedupe() {
        let v = UpstreamVerdict {
            block_reason: None,
            finish_reason: Some("IMAGE_SAFETY".into()),
            ratings: vec![
                rating("HARM_CATEGORY_HARASSMENT", "HIGH", false),
                rating("HARM_CATEGORY_DANGEROUS_CONTENT", "LOW", true),
                rating("HARM_CATEGORY_DANGEROUS_CONTENT", "LOW", true),
            ],
            ..Default::default()
        };
        let ReviewOutcome::Blocked(b) = review(&v) else {
            panic!()
        };
        assert_eq!(b.categories, vec!["HARM_CATEGORY_DANGEROUS_CONTENT"]);
        let v = UpstreamVerdict {
            ratings: vec![
                rating("A", "MEDIUM", false),
                rating("B", "LOW", false),
                rating("C", "HIGH", false),
                rating("A", "HIGH", false),
            ],
            ..v
        };
        let ReviewOutcome::Blocked(b) = review(&v) else {
            panic!()
        };
        assert_eq!(b.categories, vec!["A", "C"]);
    }
}
