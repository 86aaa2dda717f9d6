//! The JSON bodies of 200 answers: a plan of parts for the shape asked for (thoughts, interim and draft images,
//! text before/after, finals), turned into candidates with signatures and usage; and the no-image answers
//! (finish reasons, prompt blocks, text refusals, the trigger-word safety outcomes).

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::images::{self, ImageSpec, Style};
use crate::models::Model;
use crate::request::ImageRequest;
use crate::safety::Rating;
use crate::shape::{
    BlockReason, ContentShape, FinishReason, Layout, Mime, Shape, SignatureSize, TextMode,
};
use crate::signatures::{self, Carrier, SignatureCache};
use crate::texts;
use crate::usage::{self, Produced, PromptUsage};

/// Identifies one answer: who it is for, what it says and how it is shaped.
pub(crate) struct Answer<'a> {
    /// The model id as the request named it (reported as `modelVersion`).
    pub model_id: &'a str,
    pub model: Model,
    pub request: &'a ImageRequest,
    pub hash: [u8; 32],
    pub sequence: u64,
    pub shape: &'a Shape,
}

/// One part of a planned answer.
#[derive(Debug, Clone)]
pub(crate) enum Planned {
    Text { text: String, thought: bool },
    Image { spec: ImageSpec, thought: bool },
}

/// The parts of a successful answer, before images and signatures are produced.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub parts: Vec<Planned>,
    /// Signatures to attach (thinking models only), by part index.
    signed: Vec<usize>,
    signature_size: SignatureSize,
    hash: [u8; 32],
    /// The response without `candidates[0].content.parts` filled in.
    skeleton: Value,
}

impl Answer<'_> {
    fn response_id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.sequence.to_be_bytes());
        hasher.update(self.hash);
        let digest = hasher.finalize();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..17])
    }

    fn prompt_usage(&self) -> PromptUsage {
        PromptUsage::new(&self.request.prompt, self.request.reference_images)
    }

    /// Thinks at all (3.1 Flash at MINIMAL reports no thoughts).
    fn thinks(&self) -> bool {
        self.model.thinking() && !self.request.thinking_minimal
    }

    fn thought_tokens(&self) -> Option<u64> {
        self.thinks()
            .then(|| 120 + self.hash[0] as u64 + self.hash[1] as u64 % 64)
    }

    fn envelope(&self, mut body: Value) -> Value {
        body["modelVersion"] = json!(self.model_id);
        body["responseId"] = json!(self.response_id());
        body
    }

    fn mime(&self) -> Mime {
        self.shape
            .mime
            .unwrap_or_else(|| Mime::from_mime_type(self.model.family.usual_mime()))
    }

    fn layout(&self) -> Layout {
        self.shape.layout.unwrap_or(if self.thinks() {
            Layout::Interim
        } else {
            Layout::Plain
        })
    }

    fn text_mode(&self) -> TextMode {
        if self.layout() == Layout::ImageOnly {
            return TextMode::None;
        }
        self.shape.text.unwrap_or(if self.request.text_out {
            TextMode::Before
        } else {
            TextMode::None
        })
    }

    fn text(&self, long: bool, after: bool) -> String {
        if long {
            let seed: [u8; 32] = Sha256::digest([&self.hash[..], &[after as u8]].concat()).into();
            texts::long_answer(&self.request.prompt, &seed, after)
        } else {
            texts::short_answer(&self.request.prompt, after)
        }
    }

    /// The parts of a normal answer. `final_size` is the final image's pixel size.
    pub fn plan(&self, final_size: (u32, u32)) -> Plan {
        let request = self.request;
        let (width, height) = final_size;
        let (iw, ih) = images::interim_size(width, height);
        let mime = self.mime();
        let image = |index: usize, small: bool, style: Style| ImageSpec {
            seed: images::image_seed(&self.hash, index),
            width: if small { iw } else { width },
            height: if small { ih } else { height },
            style,
            mime,
        };
        let mut parts = Vec::new();
        let text_mode = self.text_mode();

        if !request.image_out {
            if self.thinks() {
                parts.push(Planned::Text {
                    text: texts::thought(&request.prompt, request.aspect_ratio, request.image_size),
                    thought: true,
                });
            }
            let text = match text_mode {
                TextMode::Echo => request.prompt.clone(),
                TextMode::LongBefore | TextMode::LongAfter | TextMode::LongSplit => {
                    self.text(true, false)
                }
                _ => texts::description(&request.prompt),
            };
            parts.push(Planned::Text {
                text,
                thought: false,
            });
        } else {
            let layout = self.layout();
            let thought_text = match layout {
                Layout::Interim | Layout::ThoughtOnly => true,
                Layout::Drafts(_) | Layout::Finals(_) => self.thinks(),
                Layout::ImageOnly | Layout::Plain => false,
            };
            if thought_text {
                parts.push(Planned::Text {
                    text: texts::thought(&request.prompt, request.aspect_ratio, request.image_size),
                    thought: true,
                });
            }
            if layout == Layout::Interim {
                parts.push(Planned::Image {
                    spec: image(0, true, Style::Sketch),
                    thought: true,
                });
            }
            if let Some(long) = text_mode.before() {
                parts.push(Planned::Text {
                    text: self.text(long, false),
                    thought: false,
                });
            }
            match layout {
                Layout::Drafts(n) => {
                    for k in 1..n as usize {
                        parts.push(Planned::Image {
                            spec: image(k, true, Style::Final),
                            thought: false,
                        });
                    }
                    parts.push(Planned::Image {
                        spec: image(0, false, Style::Final),
                        thought: false,
                    });
                }
                Layout::Finals(n) => {
                    for k in 0..n as usize {
                        parts.push(Planned::Image {
                            spec: image(k, false, Style::Final),
                            thought: false,
                        });
                    }
                }
                Layout::ThoughtOnly => parts.push(Planned::Image {
                    spec: image(0, false, Style::Final),
                    thought: true,
                }),
                Layout::Interim | Layout::ImageOnly | Layout::Plain => parts.push(Planned::Image {
                    spec: image(0, false, Style::Final),
                    thought: false,
                }),
            }
            if text_mode == TextMode::Echo {
                parts.push(Planned::Text {
                    text: request.prompt.clone(),
                    thought: false,
                });
            } else if let Some(long) = text_mode.after() {
                parts.push(Planned::Text {
                    text: self.text(long, true),
                    thought: false,
                });
            }
        }

        // Signatures: the first non-thought part and every image a thinking model sends as its answer.
        let mut signed = Vec::new();
        if self.model.thinking() {
            let first = parts.iter().position(|p| {
                !matches!(
                    p,
                    Planned::Text { thought: true, .. } | Planned::Image { thought: true, .. }
                )
            });
            for (i, part) in parts.iter().enumerate() {
                let sole_thought_image = layout_is_thought_only(self.layout(), part);
                if Some(i) == first
                    || matches!(part, Planned::Image { thought: false, .. })
                    || sole_thought_image
                {
                    signed.push(i);
                }
            }
        }

        let mut produced = Produced {
            thoughts: self.thought_tokens(),
            details: !self.hash[2].is_multiple_of(4),
            ..Produced::default()
        };
        for part in &parts {
            match part {
                Planned::Text {
                    text,
                    thought: false,
                } => produced.text += usage::text_tokens(text),
                Planned::Image { thought: false, .. } => {
                    produced.image += usage::image_tokens(self.model.family, request.image_size)
                }
                _ => {}
            }
        }
        let skeleton = self.envelope(json!({
            "candidates": [{
                "content": {"role": "model", "parts": []},
                "finishReason": "STOP",
                "index": 0,
            }],
            "usageMetadata": usage::answered(self.prompt_usage(), produced),
        }));
        Plan {
            parts,
            signed,
            signature_size: self.shape.signature.unwrap_or(SignatureSize::Short),
            hash: self.hash,
            skeleton,
        }
    }

    /// A normal answer with the harm ratings that matched without blocking.
    pub fn with_ratings(body: &mut Value, ratings: &[Rating]) {
        if !ratings.is_empty() {
            body["candidates"][0]["safetyRatings"] = ratings_json(ratings);
        }
    }

    /// A candidate that ends with `reason` and no image.
    pub fn finished(&self, reason: FinishReason, content: Option<ContentShape>) -> Value {
        let content = content.unwrap_or(match reason {
            FinishReason::ImageSafety => ContentShape::NullParts,
            FinishReason::ImageOther => ContentShape::Empty,
            FinishReason::ImageProhibitedContent => ContentShape::Role,
            _ => ContentShape::Absent,
        });
        let support_code = 35_500_000
            + u32::from_be_bytes([0, self.hash[5], self.hash[6], self.hash[7]]) % 100_000;
        let mut candidate = json!({
            "finishReason": reason.as_str(),
            "index": 0,
            "finishMessage": texts::finish_message(reason, support_code),
        });
        match content {
            ContentShape::Absent => {}
            ContentShape::Empty => candidate["content"] = json!({}),
            ContentShape::Role => candidate["content"] = json!({"role": "model"}),
            ContentShape::NullParts => candidate["content"] = json!({"parts": null}),
        }
        self.envelope(json!({
            "candidates": [candidate],
            "usageMetadata": usage::refused(self.prompt_usage(), self.thought_tokens(), self.hash[4] % 2 == 1),
        }))
    }

    /// The prompt itself was refused: `promptFeedback.blockReason`, no candidates.
    pub fn blocked(&self, reason: BlockReason) -> Value {
        self.envelope(json!({
            "promptFeedback": {"blockReason": reason.as_str()},
            "usageMetadata": usage::blocked(self.prompt_usage()),
        }))
    }

    /// A text-only refusal ending in STOP, signed on thinking models.
    pub fn refusal_plan(&self) -> Plan {
        let parts = vec![Planned::Text {
            text: texts::REFUSAL.to_string(),
            thought: false,
        }];
        let produced = Produced {
            text: usage::text_tokens(texts::REFUSAL),
            thoughts: self.thought_tokens(),
            details: !self.hash[2].is_multiple_of(4),
            ..Produced::default()
        };
        Plan {
            parts,
            signed: if self.model.thinking() {
                vec![0]
            } else {
                vec![]
            },
            signature_size: self.shape.signature.unwrap_or(SignatureSize::Short),
            hash: self.hash,
            skeleton: self.envelope(json!({
                "candidates": [{
                    "content": {"role": "model", "parts": []},
                    "finishReason": "STOP",
                    "index": 0,
                }],
                "usageMetadata": usage::answered(self.prompt_usage(), produced),
            })),
        }
    }

    /// The answer was stopped for a harm category: `finishReason: SAFETY`, ratings, no content.
    pub fn harm_blocked(&self, ratings: &[Rating]) -> Value {
        self.envelope(json!({
            "candidates": [{
                "finishReason": "SAFETY",
                "index": 0,
                "safetyRatings": ratings_json(ratings),
            }],
            "usageMetadata": usage::refused(self.prompt_usage(), None, false),
        }))
    }

    /// The generated image was filtered (trigger word): `finishReason: IMAGE_SAFETY`, no content.
    pub fn image_filtered(&self) -> Value {
        let content = self.shape.content.or(Some(ContentShape::Absent));
        self.finished(FinishReason::ImageSafety, content)
    }
}

fn layout_is_thought_only(layout: Layout, part: &Planned) -> bool {
    layout == Layout::ThoughtOnly && matches!(part, Planned::Image { thought: true, .. })
}

impl Plan {
    /// Every image spec the plan needs rendered.
    pub fn image_specs(&self) -> Vec<ImageSpec> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Planned::Image { spec, .. } => Some(*spec),
                Planned::Text { .. } => None,
            })
            .collect()
    }

    /// The full response, given the rendered images (base64, in `image_specs` order). Builds real-size
    /// signatures, so call it off the async runtime.
    pub fn into_response(self, rendered: &[Arc<String>], signatures: &SignatureCache) -> Value {
        let mut images = rendered.iter();
        let mut parts = Vec::with_capacity(self.parts.len());
        for (i, part) in self.parts.iter().enumerate() {
            let (mut json, carrier) = match part {
                Planned::Text { text, thought } => {
                    let mut p = json!({"text": text});
                    if *thought {
                        p["thought"] = json!(true);
                    }
                    (p, Carrier::Text)
                }
                Planned::Image { spec, thought } => {
                    let data = images.next().map_or("", |s| s.as_str());
                    let mut p =
                        json!({"inlineData": {"mimeType": spec.mime.mime_type(), "data": data}});
                    if *thought {
                        p["thought"] = json!(true);
                    }
                    (p, Carrier::Image)
                }
            };
            if self.signed.contains(&i) {
                let signature =
                    signatures::signature(signatures, &self.hash, i, carrier, self.signature_size);
                json["thoughtSignature"] = json!(signature.as_str());
            }
            parts.push(json);
        }
        let mut body = self.skeleton;
        body["candidates"][0]["content"]["parts"] = Value::Array(parts);
        body
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
