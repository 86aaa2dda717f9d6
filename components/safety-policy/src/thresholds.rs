//! The threshold -> Gemini `safetySettings` table.

use crate::types::{SafetySetting, SafetyThreshold};

/// The Gemini harm categories configured on every call, in the order they are sent.
pub const CATEGORIES: [&str; 4] = [
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
];

/// The Gemini block threshold for an Aperture threshold.
pub fn gemini_threshold(threshold: SafetyThreshold) -> &'static str {
    match threshold {
        SafetyThreshold::Off => "OFF",
        SafetyThreshold::Low => "BLOCK_ONLY_HIGH",
        SafetyThreshold::Medium => "BLOCK_MEDIUM_AND_ABOVE",
        SafetyThreshold::High => "BLOCK_LOW_AND_ABOVE",
    }
}

/// The `safetySettings` sent upstream for `threshold`: every category at the same level.
pub fn settings(threshold: SafetyThreshold) -> Vec<SafetySetting> {
    CATEGORIES
        .iter()
        .map(|category| SafetySetting {
            category: (*category).to_string(),
            threshold: gemini_threshold(threshold).to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (t, g) in [
            (SafetyThreshold::Off, "OFF"),
            (SafetyThreshold::Low, "BLOCK_ONLY_HIGH"),
            (SafetyThreshold::Medium, "BLOCK_MEDIUM_AND_ABOVE"),
            (SafetyThreshold::High, "BLOCK_LOW_AND_ABOVE"),
        ] {
            let s = settings(t);
            assert_eq!(s.len(), 4);
            assert!(s.iter().all(|s| s.threshold == g));
            assert_eq!(s[0].category, "HARM_CATEGORY_HARASSMENT");
            assert_eq!(s[3].category, "HARM_CATEGORY_DANGEROUS_CONTENT");
        }
    }
}
