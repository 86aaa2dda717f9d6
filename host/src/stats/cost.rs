//! What the cache saved: the upstream price of each image served from the cache.
//!
//! The prices here are a stand-in until the shared `[pricing]` table (`host/src/pricing.rs`, with its config
//! section) lands: [`image_price_usd`] is the one function the rollups call, so swapping it for
//! `crate::pricing::image_price_usd(&config.pricing, model, image_size)` is a one-line change.
//! Defaults from Google's published Gemini API prices per output image (standard tier).

/// Estimated upstream price of one image of `model` at `image_size`, in USD.
pub fn image_price_usd(model: &str, image_size: &str) -> f64 {
    let family = aperture_models::find(model).map(|m| m.family);
    match (family, image_size) {
        // Gemini 3 Pro Image: $0.134 per 1K/2K image, $0.24 per 4K image.
        (Some(aperture_models::Family::Pro3), "4K") => 0.24,
        (Some(aperture_models::Family::Pro3), _) => 0.134,
        // Gemini 3.1 Flash Image: $0.045 (512), $0.067 (1K), $0.101 (2K), $0.151 (4K).
        (Some(aperture_models::Family::Flash31), "512") => 0.045,
        (Some(aperture_models::Family::Flash31), "2K") => 0.101,
        (Some(aperture_models::Family::Flash31), "4K") => 0.151,
        (Some(aperture_models::Family::Flash31), _) => 0.067,
        // Gemini 2.5 Flash Image: $0.039 per image (1K only).
        (Some(aperture_models::Family::Flash25), _) => 0.039,
        (None, _) => 0.0,
    }
}

/// [`image_price_usd`] for `images` images, in micro-USD (what the rollups store).
pub fn saved_micro_usd(model: &str, image_size: &str, images: u64) -> u64 {
    (image_price_usd(model, image_size) * 1e6).round() as u64 * images
}
