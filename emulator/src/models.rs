//! The image models the emulator serves, and the ListModels / GetModel answers describing them.

use serde_json::{json, Value};

/// One servable model.
#[derive(Debug)]
pub(crate) struct Model {
    /// The id in `models/{id}`.
    pub id: &'static str,
    /// The model named in quota errors (`model: gemini-3-pro-image`).
    pub quota_model: &'static str,
    display_name: &'static str,
    version: &'static str,
    description: &'static str,
    input_token_limit: u32,
    output_token_limit: u32,
    thinking: bool,
    /// Aliases resolve but are not listed.
    listed: bool,
}

const MODELS: [Model; 4] = [
    Model {
        id: "gemini-3-pro-image-preview",
        quota_model: "gemini-3-pro-image",
        display_name: "Nano Banana Pro",
        version: "3.0",
        description: "Gemini 3 Pro Image Preview",
        input_token_limit: 65536,
        output_token_limit: 32768,
        thinking: true,
        listed: true,
    },
    Model {
        id: "gemini-3-pro-image",
        quota_model: "gemini-3-pro-image",
        display_name: "Nano Banana Pro",
        version: "3.0",
        description: "Gemini 3 Pro Image",
        input_token_limit: 65536,
        output_token_limit: 32768,
        thinking: true,
        listed: false,
    },
    Model {
        id: "gemini-2.5-flash-image",
        quota_model: "gemini-2.5-flash-image",
        display_name: "Nano Banana",
        version: "2.0",
        description: "Gemini 2.5 Flash Image",
        input_token_limit: 32768,
        output_token_limit: 32768,
        thinking: false,
        listed: true,
    },
    Model {
        id: "gemini-2.5-flash-image-preview",
        quota_model: "gemini-2.5-flash-image",
        display_name: "Nano Banana",
        version: "2.0",
        description: "Gemini 2.5 Flash Preview Image",
        input_token_limit: 32768,
        output_token_limit: 32768,
        thinking: false,
        listed: true,
    },
];

/// The model called `id` (without the `models/` prefix).
pub(crate) fn find(id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id == id)
}

/// The base model name for errors about a model the emulator does not serve.
pub(crate) fn quota_name(id: &str) -> &str {
    find(id).map_or_else(
        || id.strip_suffix("-preview").unwrap_or(id),
        |m| m.quota_model,
    )
}

impl Model {
    /// Whether the model thinks before answering (and so sends thought parts and signatures).
    pub fn thinking(&self) -> bool {
        self.thinking
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": format!("models/{}", self.id),
            "version": self.version,
            "displayName": self.display_name,
            "description": self.description,
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"],
            "temperature": 1.0,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2.0,
            "thinking": self.thinking,
        })
    }
}

/// The ListModels answer.
pub(crate) fn list_json() -> Value {
    let models: Vec<Value> = MODELS
        .iter()
        .filter(|m| m.listed)
        .map(Model::to_json)
        .collect();
    json!({ "models": models })
}
