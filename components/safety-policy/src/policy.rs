//! The two policy decisions: `screen` (before the upstream call) and `review` (of its verdict).

use crate::denylist;
use crate::thresholds;
use crate::types::{
    Block, Denial, ImageRequest, PolicyConfig, ReviewOutcome, SafetyThreshold, Screening,
    UpstreamVerdict,
};

/// The `IMG_*` code for every safety refusal.
pub const CODE_SAFETY_BLOCKED: &str = "IMG_SAFETY_BLOCKED";

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

/// Pass, or `IMG_SAFETY_BLOCKED` when the prompt was blocked (`block-reason` present)
/// or the output was withheld (a safety `finish-reason`).
pub fn review(verdict: &UpstreamVerdict) -> ReviewOutcome {
    let block_reason = verdict
        .block_reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let finish_reason = verdict
        .finish_reason
        .as_deref()
        .map(str::trim)
        .filter(|r| SAFETY_FINISH_REASONS.contains(r));

    let (what, name) = match (block_reason, finish_reason) {
        (Some(reason), _) => ("The model refused the prompt", reason),
        (None, Some(reason)) => ("The model withheld the generated image", reason),
        (None, None) => return ReviewOutcome::Pass,
    };
    let categories = categories(verdict);
    let flagged = if categories.is_empty() {
        String::new()
    } else {
        format!("; flagged categories: {}", categories.join(", "))
    };
    let advice = if threshold_adjustable(name) {
        "Rephrase the prompt, or send a lower `safety_threshold` (e.g. \"LOW\" or \"OFF\") \
         if this gateway's operator allows it."
    } else {
        "This filter cannot be relaxed with `safety_threshold`; rephrase the prompt."
    };
    ReviewOutcome::Blocked(Block {
        reason: format!("{what} for safety reasons (reason: {name}{flagged}). {advice}"),
        code: CODE_SAFETY_BLOCKED.to_string(),
        categories,
    })
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

    #[test]
    fn review_table() {
        let pass = UpstreamVerdict {
            block_reason: None,
            finish_reason: Some("STOP".into()),
            ratings: vec![rating("HARM_CATEGORY_HARASSMENT", "HIGH", false)],
            ..Default::default()
        };
        assert_eq!(review(&pass), ReviewOutcome::Pass);
        assert_eq!(review(&UpstreamVerdict::default()), ReviewOutcome::Pass);
        for reason in ["RECITATION", "MAX_TOKENS", "OTHER", "NO_IMAGE"] {
            let v = UpstreamVerdict {
                finish_reason: Some(reason.into()),
                ..Default::default()
            };
            assert_eq!(review(&v), ReviewOutcome::Pass, "{reason}");
        }
        for reason in SAFETY_FINISH_REASONS {
            let v = UpstreamVerdict {
                finish_reason: Some(reason.into()),
                ..Default::default()
            };
            assert!(matches!(review(&v), ReviewOutcome::Blocked(_)), "{reason}");
        }
        for reason in ["SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT"] {
            let v = UpstreamVerdict {
                block_reason: Some(reason.into()),
                ..Default::default()
            };
            assert!(matches!(review(&v), ReviewOutcome::Blocked(_)), "{reason}");
        }
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
