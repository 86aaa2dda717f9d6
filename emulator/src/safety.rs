//! The emulated model's safety behaviour: trigger words decide between a blocked prompt, a threshold-sensitive
//! harm block (`SAFETY`), an output image filtered (`IMAGE_SAFETY`) or a normal answer.

use crate::config::EmulatorConfig;

/// Harm categories Gemini accepts in `safetySettings`.
pub(crate) const GEMINI_CATEGORIES: [&str; 5] = [
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
];

/// Values of the HarmCategory enum that exist but are rejected for Gemini models.
pub(crate) const LEGACY_CATEGORIES: [&str; 7] = [
    "HARM_CATEGORY_UNSPECIFIED",
    "HARM_CATEGORY_DEROGATORY",
    "HARM_CATEGORY_TOXICITY",
    "HARM_CATEGORY_VIOLENCE",
    "HARM_CATEGORY_SEXUAL",
    "HARM_CATEGORY_MEDICAL",
    "HARM_CATEGORY_DANGEROUS",
];

/// How likely the emulated model thinks the content is harmful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Probability {
    Negligible,
    Low,
    Medium,
    High,
}

impl Probability {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "NEGLIGIBLE" => Some(Probability::Negligible),
            "LOW" => Some(Probability::Low),
            "MEDIUM" => Some(Probability::Medium),
            "HIGH" => Some(Probability::High),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Probability::Negligible => "NEGLIGIBLE",
            Probability::Low => "LOW",
            Probability::Medium => "MEDIUM",
            Probability::High => "HIGH",
        }
    }
}

/// A `safetySettings` threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threshold {
    Unspecified,
    Off,
    BlockNone,
    BlockOnlyHigh,
    BlockMediumAndAbove,
    BlockLowAndAbove,
}

impl Threshold {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HARM_BLOCK_THRESHOLD_UNSPECIFIED" => Some(Threshold::Unspecified),
            "OFF" => Some(Threshold::Off),
            "BLOCK_NONE" => Some(Threshold::BlockNone),
            "BLOCK_ONLY_HIGH" => Some(Threshold::BlockOnlyHigh),
            "BLOCK_MEDIUM_AND_ABOVE" => Some(Threshold::BlockMediumAndAbove),
            "BLOCK_LOW_AND_ABOVE" => Some(Threshold::BlockLowAndAbove),
            _ => None,
        }
    }

    /// The lowest probability this threshold blocks, if any.
    pub fn floor(self) -> Option<Probability> {
        match self {
            Threshold::Off | Threshold::BlockNone => None,
            Threshold::BlockOnlyHigh => Some(Probability::High),
            Threshold::Unspecified | Threshold::BlockMediumAndAbove => Some(Probability::Medium),
            Threshold::BlockLowAndAbove => Some(Probability::Low),
        }
    }
}

/// One `safetyRatings` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rating {
    pub category: String,
    pub probability: Probability,
    pub blocked: bool,
}

/// What the emulated model does with a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `promptFeedback.blockReason: PROHIBITED_CONTENT`, no candidates.
    PromptBlocked,
    /// A candidate with `finishReason: SAFETY` and these ratings (at least one blocked), no content.
    HarmBlocked(Vec<Rating>),
    /// A candidate with `finishReason: IMAGE_SAFETY`, no image.
    ImageFiltered,
    /// A normal answer, with ratings for any harm terms that matched without blocking.
    Allowed(Vec<Rating>),
}

#[derive(Debug, Clone)]
struct HarmTrigger {
    term: String,
    category: String,
    probability: Probability,
}

/// The trigger words of one emulator, lower-cased once.
#[derive(Debug, Clone)]
pub(crate) struct Triggers {
    block: Vec<String>,
    image_safety: Vec<String>,
    harm: Vec<HarmTrigger>,
}

fn lowered(terms: &[String]) -> Vec<String> {
    terms
        .iter()
        .map(|t| t.to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

impl Triggers {
    pub fn from_config(config: &EmulatorConfig) -> Self {
        let harm = config
            .harm_terms
            .iter()
            .filter(|h| !h.term.is_empty())
            .map(|h| HarmTrigger {
                term: h.term.to_lowercase(),
                category: h.category.clone(),
                probability: Probability::parse(&h.probability).unwrap_or_else(|| {
                    tracing::warn!(term = %h.term, probability = %h.probability,
                        "unknown harm probability in emulator config, using MEDIUM");
                    Probability::Medium
                }),
            })
            .collect();
        Triggers {
            block: lowered(&config.block_terms),
            image_safety: lowered(&config.image_safety_terms),
            harm,
        }
    }

    /// Judges `prompt` under the request's thresholds (`(category, threshold)` pairs; unlisted categories use
    /// BLOCK_MEDIUM_AND_ABOVE).
    pub fn judge(&self, prompt: &str, thresholds: &[(String, Threshold)]) -> Verdict {
        let prompt = prompt.to_lowercase();
        if self.block.iter().any(|t| prompt.contains(t.as_str())) {
            return Verdict::PromptBlocked;
        }
        let mut ratings: Vec<Rating> = Vec::new();
        for trigger in self
            .harm
            .iter()
            .filter(|h| prompt.contains(h.term.as_str()))
        {
            match ratings.iter_mut().find(|r| r.category == trigger.category) {
                Some(r) => r.probability = r.probability.max(trigger.probability),
                None => ratings.push(Rating {
                    category: trigger.category.clone(),
                    probability: trigger.probability,
                    blocked: false,
                }),
            }
        }
        for rating in &mut ratings {
            let threshold = thresholds
                .iter()
                .rev()
                .find(|(c, _)| *c == rating.category)
                .map_or(Threshold::BlockMediumAndAbove, |(_, t)| *t);
            rating.blocked = threshold.floor().is_some_and(|f| rating.probability >= f);
        }
        if ratings.iter().any(|r| r.blocked) {
            return Verdict::HarmBlocked(ratings);
        }
        if self
            .image_safety
            .iter()
            .any(|t| prompt.contains(t.as_str()))
        {
            return Verdict::ImageFiltered;
        }
        Verdict::Allowed(ratings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DANGEROUS: &str = "HARM_CATEGORY_DANGEROUS_CONTENT";

    fn demo() -> Triggers {
        Triggers::from_config(&EmulatorConfig::demo(vec![]))
    }

    fn at(threshold: Threshold) -> Vec<(String, Threshold)> {
        vec![(DANGEROUS.to_string(), threshold)]
    }

    #[test]
    fn block_and_image_safety_terms_are_case_insensitive() {
        let t = demo();
        assert_eq!(
            t.judge("a PROHIBITED-TEST cat", &[]),
            Verdict::PromptBlocked
        );
        assert_eq!(t.judge("Unsafe-Image-Test", &[]), Verdict::ImageFiltered);
        assert_eq!(t.judge("a cat", &[]), Verdict::Allowed(vec![]));
    }

    #[test]
    fn thresholds_decide_harm_blocks() {
        let t = demo();
        let blocked = |prompt: &str, th: Threshold| {
            matches!(t.judge(prompt, &at(th)), Verdict::HarmBlocked(_))
        };
        // "violent" is MEDIUM, "gore" is HIGH.
        assert!(!blocked("violent", Threshold::BlockOnlyHigh));
        assert!(blocked("violent", Threshold::BlockMediumAndAbove));
        assert!(blocked("violent", Threshold::BlockLowAndAbove));
        assert!(blocked("violent", Threshold::Unspecified));
        assert!(blocked("gore", Threshold::BlockOnlyHigh));
        assert!(!blocked("gore", Threshold::Off));
        assert!(!blocked("gore", Threshold::BlockNone));
        // No setting for the category: BLOCK_MEDIUM_AND_ABOVE.
        assert!(matches!(t.judge("violent", &[]), Verdict::HarmBlocked(_)));
        let Verdict::Allowed(r) = t.judge("violent", &at(Threshold::BlockOnlyHigh)) else {
            panic!("expected allowed");
        };
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].probability, r[0].blocked),
            (Probability::Medium, false)
        );
    }

    #[test]
    fn the_highest_probability_of_a_category_counts() {
        let t = demo();
        let Verdict::HarmBlocked(r) = t.judge("violent gore", &at(Threshold::BlockOnlyHigh)) else {
            panic!("expected blocked");
        };
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].probability, Probability::High);
    }
}
