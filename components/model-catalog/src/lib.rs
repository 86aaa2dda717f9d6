//! The one table of Gemini image models that the request translator (in WebAssembly), the emulator and the
//! docs share: which ids a client may name, what goes in the upstream URL, which aspect ratios and image sizes
//! each model accepts and the pixel size it answers with, and the image format it usually sends. Plain data
//! with no dependencies, so it builds for `wasm32-wasip2` and natively alike.

#![forbid(unsafe_code)]

/// A family of models that share ratios, sizes, pixel sizes and behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Gemini 3 Pro Image ("Nano Banana Pro"): thinks, 1K/2K/4K, usually JPEG.
    Pro3,
    /// Gemini 3.1 Flash Image: thinks, 512/1K/2K/4K, four extra extreme ratios, usually JPEG, insists on
    /// thought signatures being sent back with image parts.
    Flash31,
    /// Gemini 2.5 Flash Image ("Nano Banana"): no thinking, 1K only (no `imageSize`), PNG, its own pixel sizes.
    Flash25,
}

/// One aspect ratio a family accepts, with its pixel size at 1K.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    /// As Gemini spells it, e.g. `16:9`.
    pub name: &'static str,
    /// Width at 1K, in pixels.
    pub width: u32,
    /// Height at 1K, in pixels.
    pub height: u32,
}

impl Ratio {
    /// The numeric ratio `W/H` the name stands for (`16:9` -> 16/9).
    pub fn value(&self) -> f64 {
        let (w, h) = self.name.split_once(':').unwrap_or(("1", "1"));
        w.parse::<f64>().unwrap_or(1.0) / h.parse::<f64>().unwrap_or(1.0)
    }
}

const fn r(name: &'static str, width: u32, height: u32) -> Ratio {
    Ratio {
        name,
        width,
        height,
    }
}

/// The ten ratios of Gemini 3 Pro Image, with their documented 1K pixel sizes.
const PRO_RATIOS: &[Ratio] = &[
    r("1:1", 1024, 1024),
    r("2:3", 848, 1264),
    r("3:2", 1264, 848),
    r("3:4", 896, 1200),
    r("4:3", 1200, 896),
    r("4:5", 928, 1152),
    r("5:4", 1152, 928),
    r("9:16", 768, 1376),
    r("16:9", 1376, 768),
    r("21:9", 1584, 672),
];

/// Gemini 3.1 Flash Image: the Pro ratios plus 1:4, 4:1, 1:8 and 8:1. Google publishes no pixel table for the
/// four extreme ratios; these keep about one megapixel at 1K in multiples of 16, like the others.
const FLASH31_RATIOS: &[Ratio] = &[
    r("1:1", 1024, 1024),
    r("1:4", 512, 2048),
    r("1:8", 384, 3072),
    r("2:3", 848, 1264),
    r("3:2", 1264, 848),
    r("3:4", 896, 1200),
    r("4:1", 2048, 512),
    r("4:3", 1200, 896),
    r("4:5", 928, 1152),
    r("5:4", 1152, 928),
    r("8:1", 3072, 384),
    r("9:16", 768, 1376),
    r("16:9", 1376, 768),
    r("21:9", 1584, 672),
];

/// Gemini 2.5 Flash Image's documented pixel sizes (its 16:9 is 1344x768, not Pro's 1376x768).
const FLASH25_RATIOS: &[Ratio] = &[
    r("1:1", 1024, 1024),
    r("2:3", 832, 1248),
    r("3:2", 1248, 832),
    r("3:4", 864, 1184),
    r("4:3", 1184, 864),
    r("4:5", 896, 1152),
    r("5:4", 1152, 896),
    r("9:16", 768, 1344),
    r("16:9", 1344, 768),
    r("21:9", 1536, 672),
];

impl Family {
    /// The aspect ratios the family accepts, in the order Gemini lists them.
    pub fn ratios(self) -> &'static [Ratio] {
        match self {
            Family::Pro3 => PRO_RATIOS,
            Family::Flash31 => FLASH31_RATIOS,
            Family::Flash25 => FLASH25_RATIOS,
        }
    }

    /// The `imageConfig.imageSize` values the family accepts, smallest first. Flash 2.5 takes none (1K only).
    pub fn image_sizes(self) -> &'static [&'static str] {
        match self {
            Family::Pro3 => &["1K", "2K", "4K"],
            Family::Flash31 => &["512", "1K", "2K", "4K"],
            Family::Flash25 => &["1K"],
        }
    }

    /// Whether requests carry `imageConfig.imageSize` (Flash 2.5 rejects it and generates 1K).
    pub fn accepts_image_size(self) -> bool {
        !matches!(self, Family::Flash25)
    }

    /// Whether the model thinks (thought parts, thought signatures, `thoughtsTokenCount`).
    pub fn thinks(self) -> bool {
        !matches!(self, Family::Flash25)
    }

    /// The MIME type the model usually answers with.
    pub fn usual_mime(self) -> &'static str {
        match self {
            Family::Flash25 => "image/png",
            Family::Pro3 | Family::Flash31 => "image/jpeg",
        }
    }

    /// The ratio named `name` (exact spelling), if the family accepts it.
    pub fn ratio(self, name: &str) -> Option<&'static Ratio> {
        self.ratios().iter().find(|r| r.name == name)
    }

    /// The pixel size (width, height) the family answers with for `ratio` at `image_size`; `None` for a ratio
    /// or size it rejects.
    pub fn pixel_size(self, ratio: &str, image_size: &str) -> Option<(u32, u32)> {
        let ratio = self.ratio(ratio)?;
        if !self.image_sizes().contains(&image_size) {
            return None;
        }
        Some(match image_size {
            // Half of 1K, kept to multiples of 16 like every published size.
            "512" => (half16(ratio.width), half16(ratio.height)),
            "2K" => (ratio.width * 2, ratio.height * 2),
            "4K" => (ratio.width * 4, ratio.height * 4),
            _ => (ratio.width, ratio.height),
        })
    }
}

fn half16(v: u32) -> u32 {
    (v / 2).div_ceil(16) * 16
}

/// One model id a client may name, or an upstream id the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// The id a client sends (`model`) and `/v1/models` lists.
    pub id: &'static str,
    /// The id reported back in responses and logs (an alias reports its base model).
    pub reported: &'static str,
    /// The Gemini model id in the upstream URL (`models/{upstream}:generateContent`).
    pub upstream: &'static str,
    /// The model family: ratios, sizes, behaviour.
    pub family: Family,
    /// The quota family Gemini names in 429 bodies (`quotaDimensions.model`), which can differ from the id.
    pub quota_model: &'static str,
    /// Google's display name.
    pub display_name: &'static str,
}

const fn m(
    id: &'static str,
    reported: &'static str,
    upstream: &'static str,
    family: Family,
    quota_model: &'static str,
    display_name: &'static str,
) -> Model {
    Model {
        id,
        reported,
        upstream,
        family,
        quota_model,
        display_name,
    }
}

/// Every model id a client may name, in the order `/v1/models` lists them.
pub const MODELS: &[Model] = &[
    m(
        "gemini-3-pro-image",
        "gemini-3-pro-image",
        "gemini-3-pro-image-preview",
        Family::Pro3,
        "gemini-3-pro-image",
        "Nano Banana Pro",
    ),
    m(
        "gemini-3-pro-image-preview",
        "gemini-3-pro-image",
        "gemini-3-pro-image-preview",
        Family::Pro3,
        "gemini-3-pro-image",
        "Nano Banana Pro",
    ),
    m(
        "gemini-3.1-flash-image",
        "gemini-3.1-flash-image",
        "gemini-3.1-flash-image",
        Family::Flash31,
        "gemini-3.1-flash-image",
        "Nano Banana 2",
    ),
    m(
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-image",
        Family::Flash25,
        "gemini-2.5-flash-preview-image",
        "Nano Banana",
    ),
    m(
        "gemini-2.5-flash-image-preview",
        "gemini-2.5-flash-image-preview",
        "gemini-2.5-flash-image-preview",
        Family::Flash25,
        "gemini-2.5-flash-preview-image",
        "Nano Banana",
    ),
];

/// The model used when a client names none, or names an OpenAI model.
pub const DEFAULT_MODEL: &str = "gemini-3-pro-image";

/// OpenAI model names accepted as aliases of [`DEFAULT_MODEL`].
pub const OPENAI_ALIASES: &[&str] = &["dall-e-2", "dall-e-3", "gpt-image-1"];

/// The model a client named (trimmed, any case; OpenAI names map to [`DEFAULT_MODEL`]).
pub fn find(name: &str) -> Option<&'static Model> {
    let name = name.trim().to_ascii_lowercase();
    let name = if OPENAI_ALIASES.contains(&name.as_str()) {
        DEFAULT_MODEL
    } else {
        name.as_str()
    };
    MODELS.iter().find(|m| m.id == name)
}

/// The family behind an upstream model id (`models/{id}`), for every id the table sends upstream or accepts as
/// a client id.
pub fn family_of_upstream(upstream: &str) -> Option<Family> {
    MODELS
        .iter()
        .find(|m| m.upstream == upstream || m.id == upstream)
        .map(|m| m.family)
}

/// Every aspect ratio any model accepts, each once, in first-seen order of the table.
pub fn all_ratios() -> Vec<&'static Ratio> {
    let mut out: Vec<&'static Ratio> = Vec::new();
    for family in [Family::Pro3, Family::Flash31, Family::Flash25] {
        for ratio in family.ratios() {
            if !out.iter().any(|r| r.name == ratio.name) {
                out.push(ratio);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_pixel_sizes() {
        assert_eq!(Family::Pro3.pixel_size("16:9", "1K"), Some((1376, 768)));
        assert_eq!(Family::Flash25.pixel_size("16:9", "1K"), Some((1344, 768)));
        assert_eq!(Family::Pro3.pixel_size("21:9", "4K"), Some((6336, 2688)));
        assert_eq!(Family::Flash31.pixel_size("1:1", "512"), Some((512, 512)));
        assert_eq!(Family::Flash31.pixel_size("1:8", "1K"), Some((384, 3072)));
        assert_eq!(Family::Pro3.pixel_size("1:8", "1K"), None);
        assert_eq!(Family::Pro3.pixel_size("1:1", "512"), None);
        assert_eq!(Family::Flash25.pixel_size("1:1", "2K"), None);
    }

    #[test]
    fn every_size_is_a_multiple_of_16_and_near_the_ratio() {
        for family in [Family::Pro3, Family::Flash31, Family::Flash25] {
            for ratio in family.ratios() {
                for size in family.image_sizes() {
                    let (w, h) = family.pixel_size(ratio.name, size).unwrap();
                    assert_eq!((w % 16, h % 16), (0, 0), "{family:?} {} {size}", ratio.name);
                    let off = (f64::from(w) / f64::from(h) / ratio.value()).ln().abs();
                    assert!(off < 0.1, "{family:?} {} {size}: {w}x{h}", ratio.name);
                }
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(find(" DALL-E-3 ").unwrap().id, DEFAULT_MODEL);
        assert_eq!(
            find("gemini-3.1-flash-image").unwrap().family,
            Family::Flash31
        );
        assert_eq!(
            family_of_upstream("gemini-3-pro-image-preview"),
            Some(Family::Pro3)
        );
        assert!(find("gemini-1.0-pro").is_none());
        assert_eq!(all_ratios().len(), 14);
    }
}
