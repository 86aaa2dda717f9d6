//! What one generated image costs upstream, per model and image size, so the
//! gateway can estimate what its cache saved (metrics, stats). Defaults are
//! Google's published Gemini API prices (standard tier, paid; see
//! docs/configuration.md `[pricing]`); operators override any of them.

use std::collections::BTreeMap;

/// Google's published per-image prices in USD (Gemini API pricing page, standard paid tier):
/// output image tokens × the model's image-output rate.
///
/// - Gemini 3 Pro Image: $120 / 1M image tokens; 1K and 2K images are 1120 tokens ($0.134),
///   4K images 2000 tokens ($0.24).
/// - Gemini 3.1 Flash Image: $60 / 1M image tokens; 512: 747 tokens ($0.045), 1K: 1120 ($0.067),
///   2K: 1680 ($0.101), 4K: 2520 ($0.151).
/// - Gemini 2.5 Flash Image: $30 / 1M image tokens; every image 1290 tokens ($0.039), 1K only.
pub const DEFAULT_PRICES: &[(&str, &str, f64)] = &[
    ("gemini-3-pro-image", "1K", 0.134),
    ("gemini-3-pro-image", "2K", 0.134),
    ("gemini-3-pro-image", "4K", 0.24),
    ("gemini-3.1-flash-image", "512", 0.045),
    ("gemini-3.1-flash-image", "1K", 0.067),
    ("gemini-3.1-flash-image", "2K", 0.101),
    ("gemini-3.1-flash-image", "4K", 0.151),
    ("gemini-2.5-flash-image", "1K", 0.039),
    ("gemini-2.5-flash-image-preview", "1K", 0.039),
];

/// Per-image prices in USD by (reported model id, image size).
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    prices: BTreeMap<(String, String), f64>,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            prices: DEFAULT_PRICES
                .iter()
                .map(|(m, s, p)| ((m.to_string(), s.to_string()), *p))
                .collect(),
        }
    }
}

impl Pricing {
    /// Every (model, size, price), sorted.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, f64)> {
        self.prices
            .iter()
            .map(|((m, s), p)| (m.as_str(), s.as_str(), *p))
    }

    /// The defaults with `overrides` (`[pricing."MODEL"] SIZE = USD`) applied; every bad entry
    /// (unknown model, a size the model does not make, a negative or non-finite price) is pushed
    /// to `errors`.
    pub fn with_overrides(
        overrides: &BTreeMap<String, BTreeMap<String, f64>>,
        errors: &mut Vec<String>,
    ) -> Pricing {
        let mut pricing = Pricing::default();
        for (model, sizes) in overrides {
            let Some(known) = aperture_models::find(model) else {
                let ids: Vec<&str> = aperture_models::MODELS.iter().map(|m| m.id).collect();
                errors.push(format!(
                    "pricing.{model:?}: unknown model; use one of {}",
                    ids.join(", ")
                ));
                continue;
            };
            for (size, price) in sizes {
                if !known.family.image_sizes().contains(&size.as_str()) {
                    errors.push(format!(
                        "pricing.{model:?}.{size:?}: {} makes images of size {} only",
                        known.id,
                        known.family.image_sizes().join(", ")
                    ));
                    continue;
                }
                if !(price.is_finite() && *price >= 0.0) {
                    errors.push(format!(
                        "pricing.{model:?}.{size:?}: {price} must be a price in USD, 0 or more (e.g. 0.134)"
                    ));
                    continue;
                }
                pricing
                    .prices
                    .insert((known.reported.to_string(), size.clone()), *price);
            }
        }
        pricing
    }
}

/// The upstream price in USD of one image of `model` (a client id or alias, any case) at
/// `image_size` (`512`, `1K`, `2K`, `4K`; anything else, e.g. `-`, counts as the model's
/// smallest priced size). 0.0 for a model with no price.
pub fn image_price_usd(pricing: &Pricing, model: &str, image_size: &str) -> f64 {
    let reported = aperture_models::find(model)
        .map(|m| m.reported)
        .unwrap_or(model);
    if let Some(p) = pricing
        .prices
        .get(&(reported.to_string(), image_size.to_string()))
    {
        return *p;
    }
    let fallback = aperture_models::find(model).and_then(|m| {
        m.family.image_sizes().iter().find_map(|s| {
            pricing
                .prices
                .get(&(reported.to_string(), s.to_string()))
                .copied()
        })
    });
    fallback.unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_defaults_and_aliases() {
        let p = Pricing::default();
        assert_eq!(image_price_usd(&p, "gemini-3-pro-image", "1K"), 0.134);
        assert_eq!(
            image_price_usd(&p, "gemini-3-pro-image-preview", "4K"),
            0.24
        );
        assert_eq!(image_price_usd(&p, "dall-e-3", "2K"), 0.134);
        assert_eq!(image_price_usd(&p, "gemini-3.1-flash-image", "512"), 0.045);
        assert_eq!(image_price_usd(&p, "gemini-2.5-flash-image", "-"), 0.039);
        assert_eq!(image_price_usd(&p, "no-such-model", "1K"), 0.0);
    }

    #[test]
    fn overrides_apply_and_bad_ones_are_all_reported() {
        let mut o = BTreeMap::new();
        o.insert(
            "gemini-3-pro-image-preview".to_string(),
            BTreeMap::from([("4K".to_string(), 0.5)]),
        );
        o.insert(
            "gemini-2.5-flash-image".to_string(),
            BTreeMap::from([("4K".to_string(), 1.0), ("1K".to_string(), -1.0)]),
        );
        o.insert("mystery".to_string(), BTreeMap::new());
        let mut errors = vec![];
        let p = Pricing::with_overrides(&o, &mut errors);
        assert_eq!(image_price_usd(&p, "gemini-3-pro-image", "4K"), 0.5);
        assert_eq!(image_price_usd(&p, "gemini-3-pro-image", "1K"), 0.134);
        assert_eq!(errors.len(), 3, "{errors:?}");
    }
}
