//! The shape of an answer: which of the real Gemini response forms the emulator produces (part layout, text
//! placement, image format, signature size, refusals, blocks, named errors, delay). One vocabulary, spelled the
//! same in prompt directives (`emu:layout=drafts-3`), `POST /_emulator/shape` keys and `aperture emulator` flags.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::catalog::NamedError;

/// Longest `delay-ms` accepted: two minutes.
pub const MAX_DELAY_MS: u64 = 120_000;

/// A shape name or value the emulator does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// `emu:NAME=...` with a name that is not a shape setting.
    #[error("unknown emulator directive \"{name}\" (known: {})", NAMES.join(", "))]
    UnknownName { name: String },
    /// A known name with a value it does not take.
    #[error("invalid value \"{value}\" for emulator directive \"{name}\": expected {expected}")]
    InvalidValue {
        name: String,
        value: String,
        expected: &'static str,
    },
}

/// Every shape setting, as directives and JSON keys spell them.
pub const NAMES: [&str; 10] = [
    "layout",
    "text",
    "mime",
    "signature",
    "finish",
    "content",
    "block",
    "refuse",
    "error",
    "delay-ms",
];

/// Which parts carry images, and how they are flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Thought text, a smaller `thought: true` interim image, then the final image (thinking models' default).
    Interim,
    /// `n` (2..=10) unflagged images, each with its own signature; the last is the final one.
    Drafts(u8),
    /// Thought text, then the only image, flagged `thought: true`.
    ThoughtOnly,
    /// `n` (2..=4) final images, all unflagged (2.5 Flash style).
    Finals(u8),
    /// One image part and nothing else (no thoughts, no text).
    ImageOnly,
    /// No thought parts, one final image, text as the text mode says (2.5 Flash's default).
    Plain,
}

/// Where answer text goes relative to the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    None,
    /// A short sentence before the image (the default).
    Before,
    After,
    /// Short text before and after.
    Split,
    /// Several KB of text, with multi-byte characters, before the image.
    LongBefore,
    LongAfter,
    LongSplit,
    /// A text part after the image repeating the whole user prompt, unabridged.
    Echo,
}

/// The image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mime {
    Png,
    Jpeg,
}

/// How large thought signatures are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureSize {
    /// 88 base64 characters.
    Short,
    /// As large as production's: about 1.45 MB on images, 0.2-8 KB on text.
    Real,
}

/// What `content` looks like on a candidate that ends without an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentShape {
    /// No `content` key.
    Absent,
    /// `{}`.
    Empty,
    /// `{"role": "model"}`.
    Role,
    /// `{"parts": null}`.
    NullParts,
}

/// A refusal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A text-only answer ending in STOP.
    Text,
}

/// A `finishReason` that ends a candidate without an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    ImageSafety,
    ImageOther,
    ImageProhibitedContent,
    ImageRecitation,
    NoImage,
    Recitation,
    MaxTokens,
    Other,
    Safety,
    ProhibitedContent,
    MalformedResponse,
}

/// A `promptFeedback.blockReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReason {
    Other,
    Safety,
    ProhibitedContent,
    ImageSafety,
}

macro_rules! names {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every value, in documentation order.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),*];

            /// The name as Gemini (or the directive) spells it.
            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),* }
            }

            /// Parses the name (any case).
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s))
            }
        }
    };
}

names!(FinishReason {
    ImageSafety => "IMAGE_SAFETY",
    ImageOther => "IMAGE_OTHER",
    ImageProhibitedContent => "IMAGE_PROHIBITED_CONTENT",
    ImageRecitation => "IMAGE_RECITATION",
    NoImage => "NO_IMAGE",
    Recitation => "RECITATION",
    MaxTokens => "MAX_TOKENS",
    Other => "OTHER",
    Safety => "SAFETY",
    ProhibitedContent => "PROHIBITED_CONTENT",
    MalformedResponse => "MALFORMED_RESPONSE",
});

names!(BlockReason {
    Other => "OTHER",
    Safety => "SAFETY",
    ProhibitedContent => "PROHIBITED_CONTENT",
    ImageSafety => "IMAGE_SAFETY",
});

names!(TextMode {
    None => "none",
    Before => "before",
    After => "after",
    Split => "split",
    LongBefore => "long-before",
    LongAfter => "long-after",
    LongSplit => "long-split",
    Echo => "echo",
});

names!(Mime {
    Png => "png",
    Jpeg => "jpeg",
});

names!(SignatureSize {
    Short => "short",
    Real => "real",
});

names!(ContentShape {
    Absent => "absent",
    Empty => "empty",
    Role => "role",
    NullParts => "null-parts",
});

names!(Refusal { Text => "text" });

impl TextMode {
    /// Whether a text part comes before the images.
    pub(crate) fn before(self) -> Option<bool> {
        match self {
            TextMode::Before | TextMode::Split => Some(false),
            TextMode::LongBefore | TextMode::LongSplit => Some(true),
            _ => None,
        }
    }

    /// Whether a text part comes after the images (`Some(long)`); echo is handled apart.
    pub(crate) fn after(self) -> Option<bool> {
        match self {
            TextMode::After | TextMode::Split => Some(false),
            TextMode::LongAfter | TextMode::LongSplit => Some(true),
            _ => None,
        }
    }
}

impl Mime {
    /// The `inlineData.mimeType`.
    pub fn mime_type(self) -> &'static str {
        match self {
            Mime::Png => "image/png",
            Mime::Jpeg => "image/jpeg",
        }
    }

    /// The format a MIME type names (`image/jpeg` -> JPEG; anything else PNG).
    pub fn from_mime_type(mime_type: &str) -> Mime {
        if mime_type.eq_ignore_ascii_case("image/jpeg") {
            Mime::Jpeg
        } else {
            Mime::Png
        }
    }
}

impl Layout {
    /// Parses `interim`, `drafts-N` (2..=10), `thought-only`, `finals-N` (2..=4), `image-only`, `plain`.
    pub fn parse(s: &str) -> Option<Layout> {
        let s = s.to_ascii_lowercase();
        let count = |prefix: &str, range: std::ops::RangeInclusive<u8>| {
            s.strip_prefix(prefix)
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| range.contains(n))
        };
        match s.as_str() {
            "interim" => Some(Layout::Interim),
            "thought-only" => Some(Layout::ThoughtOnly),
            "image-only" => Some(Layout::ImageOnly),
            "plain" => Some(Layout::Plain),
            _ => count("drafts-", 2..=10)
                .map(Layout::Drafts)
                .or_else(|| count("finals-", 2..=4).map(Layout::Finals)),
        }
    }

    /// The name as a directive spells it.
    pub fn name(self) -> String {
        match self {
            Layout::Interim => "interim".into(),
            Layout::Drafts(n) => format!("drafts-{n}"),
            Layout::ThoughtOnly => "thought-only".into(),
            Layout::Finals(n) => format!("finals-{n}"),
            Layout::ImageOnly => "image-only".into(),
            Layout::Plain => "plain".into(),
        }
    }
}

/// An answer shape: each setting `None` means "the model's default" (or, in a per-call overlay, "the
/// instance's setting").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub layout: Option<Layout>,
    pub text: Option<TextMode>,
    /// Default: the model's usual format (JPEG for 3 Pro and 3.1 Flash, PNG for 2.5 Flash).
    pub mime: Option<Mime>,
    pub signature: Option<SignatureSize>,
    /// A 200 with one candidate ending with this reason and no image.
    pub finish: Option<FinishReason>,
    /// The `content` of a `finish` candidate (default per reason).
    pub content: Option<ContentShape>,
    /// A 200 with `promptFeedback.blockReason` and no candidates.
    pub block: Option<BlockReason>,
    pub refuse: Option<Refusal>,
    /// A named real error body instead of an answer.
    pub error: Option<NamedError>,
    /// Waits this long before answering.
    pub delay: Option<Duration>,
}

fn invalid(name: &str, value: &str, expected: &'static str) -> ShapeError {
    ShapeError::InvalidValue {
        name: name.to_string(),
        value: value.to_string(),
        expected,
    }
}

impl Shape {
    /// Sets one setting by its directive name (`layout`, `text`, `mime`, `signature`, `finish`, `content`,
    /// `block`, `refuse`, `error`, `delay-ms`).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ShapeError> {
        let value = value.trim();
        match name {
            "layout" => {
                self.layout = Some(Layout::parse(value).ok_or_else(|| {
                    invalid(
                        name,
                        value,
                        "interim, drafts-N (N=2..10), thought-only, finals-N (N=2..4), image-only or plain",
                    )
                })?)
            }
            "text" => {
                self.text = Some(TextMode::parse(value).ok_or_else(|| {
                    invalid(
                        name,
                        value,
                        "none, before, after, split, long-before, long-after, long-split or echo",
                    )
                })?)
            }
            "mime" => {
                self.mime = Some(
                    Mime::parse(value).ok_or_else(|| invalid(name, value, "png or jpeg"))?,
                )
            }
            "signature" => {
                self.signature = Some(
                    SignatureSize::parse(value)
                        .ok_or_else(|| invalid(name, value, "short or real"))?,
                )
            }
            "finish" => {
                self.finish = Some(FinishReason::parse(value).ok_or_else(|| {
                    invalid(
                        name,
                        value,
                        "IMAGE_SAFETY, IMAGE_OTHER, IMAGE_PROHIBITED_CONTENT, IMAGE_RECITATION, NO_IMAGE, \
                         RECITATION, MAX_TOKENS, OTHER, SAFETY, PROHIBITED_CONTENT or MALFORMED_RESPONSE",
                    )
                })?)
            }
            "content" => {
                self.content = Some(ContentShape::parse(value).ok_or_else(|| {
                    invalid(name, value, "absent, empty, role or null-parts")
                })?)
            }
            "block" => {
                self.block = Some(BlockReason::parse(value).ok_or_else(|| {
                    invalid(
                        name,
                        value,
                        "OTHER, SAFETY, PROHIBITED_CONTENT or IMAGE_SAFETY",
                    )
                })?)
            }
            "refuse" => {
                self.refuse =
                    Some(Refusal::parse(value).ok_or_else(|| invalid(name, value, "text"))?)
            }
            "error" => {
                self.error = Some(NamedError::parse(value).ok_or_else(|| {
                    invalid(name, value, "a named error (see docs/emulator.md)")
                })?)
            }
            "delay-ms" => {
                let ms = value
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms <= MAX_DELAY_MS)
                    .ok_or_else(|| invalid(name, value, "milliseconds, 0..=120000"))?;
                self.delay = Some(Duration::from_millis(ms));
            }
            _ => {
                return Err(ShapeError::UnknownName {
                    name: name.to_string(),
                })
            }
        }
        Ok(())
    }

    /// A shape from `(name, value)` pairs.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Shape, ShapeError> {
        let mut shape = Shape::default();
        for (name, value) in pairs {
            shape.set(name, value)?;
        }
        Ok(shape)
    }

    /// A shape from a JSON object with the directive names as keys (strings, or a number for `delay-ms`;
    /// `null` leaves a setting at its default).
    pub fn from_json(value: &Value) -> Result<Shape, ShapeError> {
        let Value::Object(map) = value else {
            return Err(invalid("shape", &value.to_string(), "a JSON object"));
        };
        let mut shape = Shape::default();
        for (name, v) in map {
            let text = match v {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => other.to_string(),
            };
            shape.set(name, &text)?;
        }
        Ok(shape)
    }

    /// The settings that are set, as `from_json` reads them.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(v) = value {
                map.insert(name.to_string(), v);
            }
        };
        put("layout", self.layout.map(|l| json!(l.name())));
        put("text", self.text.map(|t| json!(t.as_str())));
        put("mime", self.mime.map(|m| json!(m.as_str())));
        put("signature", self.signature.map(|s| json!(s.as_str())));
        put("finish", self.finish.map(|f| json!(f.as_str())));
        put("content", self.content.map(|c| json!(c.as_str())));
        put("block", self.block.map(|b| json!(b.as_str())));
        put("refuse", self.refuse.map(|r| json!(r.as_str())));
        put("error", self.error.map(|e| json!(e.as_str())));
        put("delay-ms", self.delay.map(|d| json!(d.as_millis() as u64)));
        Value::Object(map)
    }

    /// This shape with every setting `over` has replacing ours.
    pub fn overlaid(&self, over: &Shape) -> Shape {
        Shape {
            layout: over.layout.or(self.layout),
            text: over.text.or(self.text),
            mime: over.mime.or(self.mime),
            signature: over.signature.or(self.signature),
            finish: over.finish.or(self.finish),
            content: over.content.or(self.content),
            block: over.block.or(self.block),
            refuse: over.refuse.or(self.refuse),
            error: over.error.or(self.error),
            delay: over.delay.or(self.delay),
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_round_trip() {
        let shape = Shape::from_pairs([
            ("layout", "drafts-3"),
            ("text", "long-split"),
            ("mime", "JPEG"),
            ("signature", "real"),
            ("finish", "image_other"),
            ("content", "null-parts"),
            ("block", "OTHER"),
            ("refuse", "text"),
            ("error", "429-limit0"),
            ("delay-ms", "250"),
        ])
        .unwrap();
        assert_eq!(shape.layout, Some(Layout::Drafts(3)));
        assert_eq!(shape.finish, Some(FinishReason::ImageOther));
        assert_eq!(Shape::from_json(&shape.to_json()).unwrap(), shape);
    }

    #[test]
    fn bad_names_and_values_are_named() {
        let e = Shape::from_pairs([("layuot", "interim")]).unwrap_err();
        assert!(e.to_string().contains("\"layuot\""), "{e}");
        for (name, value) in [
            ("layout", "drafts-11"),
            ("layout", "drafts-1"),
            ("layout", "finals-5"),
            ("text", "middle"),
            ("mime", "gif"),
            ("finish", "STOP"),
            ("error", "418-teapot"),
            ("delay-ms", "120001"),
            ("delay-ms", "-1"),
        ] {
            let e = Shape::from_pairs([(name, value)]).unwrap_err();
            assert!(e.to_string().contains(value), "{e}");
        }
    }

    #[test]
    fn overlays_replace_only_what_they_set() {
        let base = Shape::from_pairs([("text", "echo"), ("mime", "png")]).unwrap();
        let over = Shape::from_pairs([("mime", "jpeg")]).unwrap();
        let both = base.overlaid(&over);
        assert_eq!(
            (both.text, both.mime),
            (Some(TextMode::Echo), Some(Mime::Jpeg))
        );
    }
}
