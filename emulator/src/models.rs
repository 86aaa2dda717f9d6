//! The image models the emulator serves, taken from the shared `aperture-models` table, and the ListModels /
//! GetModel answers describing them.

use aperture_models::{Family, MODELS};
use serde_json::{json, Value};

/// One servable model id (a client id or an upstream id of the shared table).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Model {
    /// The id in `models/{id}`.
    pub id: &'static str,
    /// The quota family named in 429 bodies (`quotaDimensions.model`).
    pub quota_model: &'static str,
    pub family: Family,
    display_name: &'static str,
    /// Aliases resolve but are not listed.
    listed: bool,
}

/// The model called `id` (without the `models/` prefix), exactly as the table spells it.
pub(crate) fn find(id: &str) -> Option<Model> {
    let entry = MODELS
        .iter()
        .find(|m| m.id == id)
        .or_else(|| MODELS.iter().find(|m| m.upstream == id))?;
    Some(Model {
        id: if entry.id == id {
            entry.id
        } else {
            entry.upstream
        },
        quota_model: entry.quota_model,
        family: entry.family,
        display_name: entry.display_name,
        listed: entry.id == entry.upstream || entry.upstream == id,
    })
}

/// The quota family for errors about `id`; for a model the table does not know, the id without `-preview`.
pub(crate) fn quota_name(id: &str) -> &str {
    find(id).map_or_else(
        || id.strip_suffix("-preview").unwrap_or(id),
        |m| m.quota_model,
    )
}

/// `gemini-3-pro-image-preview` -> `Gemini 3 Pro Image Preview`.
fn description(id: &str) -> String {
    id.split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

impl Model {
    /// Whether the model thinks before answering (thought parts, signatures, thought tokens).
    pub fn thinking(&self) -> bool {
        self.family.thinks()
    }

    pub fn to_json(self) -> Value {
        let (version, input, output) = match self.family {
            Family::Pro3 => ("3.0", 65536, 32768),
            Family::Flash31 => ("3.1", 65536, 32768),
            Family::Flash25 => ("2.0", 32768, 32768),
        };
        json!({
            "name": format!("models/{}", self.id),
            "version": version,
            "displayName": self.display_name,
            "description": description(self.id),
            "inputTokenLimit": input,
            "outputTokenLimit": output,
            "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"],
            "temperature": 1.0,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2.0,
            "thinking": self.thinking(),
        })
    }
}

/// The ListModels answer: every upstream id of the table once, aliases left out.
pub(crate) fn list_json() -> Value {
    let mut ids: Vec<&str> = Vec::new();
    for m in MODELS {
        if !ids.contains(&m.upstream) {
            ids.push(m.upstream);
        }
    }
    let models: Vec<Value> = ids
        .iter()
        .filter_map(|id| find(id))
        .filter(|m| m.listed)
        .map(|m| m.to_json())
        .collect();
    json!({ "models": models })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_upstream_ids_are_served() {
        assert_eq!(find("gemini-3-pro-image").unwrap().family, Family::Pro3);
        assert_eq!(
            find("gemini-3.1-flash-image").unwrap().family,
            Family::Flash31
        );
        assert!(find("dall-e-3").is_none());
        assert!(find("GEMINI-3-PRO-IMAGE").is_none());
        assert_eq!(
            quota_name("gemini-2.5-flash-image"),
            "gemini-2.5-flash-preview-image"
        );
        assert_eq!(
            description("gemini-3-pro-image-preview"),
            "Gemini 3 Pro Image Preview"
        );
    }
}
