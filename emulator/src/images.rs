//! Deterministic images at Gemini's documented pixel sizes (from the shared `aperture-models` table): stripes
//! in bands, coloured from a seed derived from sha256(prompt), described as runs of periodic rows so
//! `png_writer` encodes even 4K PNGs cheaply in debug builds, or expanded and encoded as baseline JPEG; plus a
//! small LRU so repeated prompts are not re-encoded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use base64::Engine;
use sha2::{Digest, Sha256};

use aperture_models::Family;

use crate::png_writer::{encode_rgb, RowRun};
use crate::shape::Mime;

/// Longest side of the interim "thought" image and of drafts.
const INTERIM_MAX_SIDE: u32 = 256;

/// JPEG quality: below 90 the encoder subsamples chroma (4:2:0), like most camera and model output.
const JPEG_QUALITY: u8 = 85;

/// The pixel size (width, height) Gemini 3 Pro Image answers with for an aspect ratio and image size, e.g.
/// `("16:9", "1K")` -> 1376x768. `None` for values it rejects.
pub fn pixel_size(aspect_ratio: &str, image_size: &str) -> Option<(u32, u32)> {
    Family::Pro3.pixel_size(aspect_ratio, image_size)
}

/// The pixel size model `model_id` (any id the emulator serves) answers with, e.g.
/// `("gemini-2.5-flash-image", "16:9", "1K")` -> 1344x768. `None` for an unknown model or a value it rejects.
pub fn pixel_size_for(model_id: &str, aspect_ratio: &str, image_size: &str) -> Option<(u32, u32)> {
    crate::models::find(model_id)?
        .family
        .pixel_size(aspect_ratio, image_size)
}

/// sha256 of the prompt: the seed of everything generated for it.
pub(crate) fn prompt_hash(prompt: &str) -> [u8; 32] {
    Sha256::digest(prompt.as_bytes()).into()
}

/// The seed of the `index`-th image of an answer (index 0 is the plain final image: the prompt hash itself).
pub(crate) fn image_seed(hash: &[u8; 32], index: usize) -> [u8; 32] {
    if index == 0 {
        return *hash;
    }
    let mut hasher = Sha256::new();
    hasher.update(b"image");
    hasher.update(hash);
    hasher.update((index as u64).to_be_bytes());
    hasher.finalize().into()
}

/// The interim image's and drafts' size: the final aspect ratio, longest side 256 px.
pub(crate) fn interim_size(width: u32, height: u32) -> (u32, u32) {
    let longest = width.max(height).max(1);
    let scale = |v: u32| (v * INTERIM_MAX_SIDE / longest).max(1);
    (scale(width), scale(height))
}

/// One image to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ImageSpec {
    pub seed: [u8; 32],
    pub width: u32,
    pub height: u32,
    pub style: Style,
    pub mime: Mime,
}

/// Renders and encodes one image, base64 for `inlineData`. CPU-heavy for 4K: call it from `spawn_blocking`.
pub(crate) fn render(spec: &ImageSpec) -> String {
    let runs = row_runs(&spec.seed, spec.width, spec.height, spec.style);
    let bytes = match spec.mime {
        Mime::Png => encode_rgb(spec.width, spec.height, &runs),
        Mime::Jpeg => encode_jpeg(spec.width, spec.height, &runs),
    };
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Expands the row runs into RGB rows and encodes a baseline JPEG. Sizes fit in u16 (the largest is 6336).
fn encode_jpeg(width: u32, height: u32, runs: &[RowRun]) -> Vec<u8> {
    let row_bytes = width as usize * 3;
    let mut rgb = Vec::with_capacity(row_bytes * height as usize);
    let mut row = Vec::with_capacity(row_bytes);
    for run in runs {
        row.clear();
        while row.len() < row_bytes {
            let take = (row_bytes - row.len()).min(run.period.len());
            row.extend_from_slice(&run.period[..take]);
        }
        for _ in 0..run.rows {
            rgb.extend_from_slice(&row);
        }
    }
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
    let (w, h) = (
        u16::try_from(width).unwrap_or(u16::MAX),
        u16::try_from(height).unwrap_or(u16::MAX),
    );
    if let Err(e) = encoder.encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb) {
        tracing::error!(error = %e, width, height, "JPEG encoding failed");
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Style {
    /// Full colour.
    Final,
    /// Grey, coarser: the model's draft.
    Sketch,
}

type Rgb = [u8; 3];

fn palette(hash: &[u8; 32], style: Style) -> [Rgb; 8] {
    let mut colours = [[0u8; 3]; 8];
    for (i, c) in colours.iter_mut().enumerate() {
        let (r, g, b) = (hash[i * 3], hash[i * 3 + 1], hash[i * 3 + 2]);
        *c = match style {
            Style::Final => [r, g, b],
            Style::Sketch => {
                let luma = ((r as u32 * 77 + g as u32 * 150 + b as u32 * 29) >> 8) as u8;
                [luma; 3]
            }
        };
    }
    colours
}

/// One horizontal band: a periodic pattern of stripes that slides sideways as rows go down.
struct Band {
    /// RGB bytes of one period.
    period: Vec<u8>,
    /// Pixels in one period.
    pixels: usize,
    /// Pixels the pattern moves per row group.
    speed: usize,
    leftwards: bool,
}

impl Band {
    /// The band's period as seen from a row `step` pixels along.
    fn rotated(&self, step: usize) -> Vec<u8> {
        let shift = step % self.pixels;
        let offset = if self.leftwards {
            shift
        } else {
            (self.pixels - shift) % self.pixels
        };
        let mut period = Vec::with_capacity(self.period.len());
        period.extend_from_slice(&self.period[offset * 3..]);
        period.extend_from_slice(&self.period[..offset * 3]);
        period
    }
}

fn band(hash: &[u8; 32], colours: &[Rgb; 8], index: usize, width: usize) -> Band {
    let h = |i: usize| hash[(index * 5 + i) % 32] as usize;
    // Narrower stripes on smaller images, so the interim sketch still shows a pattern.
    let unit = if width >= 1024 { 32 } else { 8 };
    let pixels = 2 * unit + unit * (h(0) % 6);
    let split = pixels * (30 + h(1) % 40) / 100;
    let line = 1 + (h(2) % 6) * unit / 16;
    let a = colours[(index + h(3)) % 8];
    let b = colours[(index + 1 + h(4) % 7) % 8];
    let c = colours[(index + 4) % 8];
    let mut period = Vec::with_capacity(pixels * 3);
    for x in 0..pixels {
        let colour = if x < split {
            a
        } else if x < split + line {
            c
        } else {
            b
        };
        period.extend_from_slice(&colour);
    }
    Band {
        period,
        pixels,
        speed: 1 + h(5) % 5,
        leftwards: h(6) % 2 == 0,
    }
}

/// The image as runs of identical rows: bands of stripes that move one step every `group` rows.
fn row_runs(hash: &[u8; 32], width: u32, height: u32, style: Style) -> Vec<RowRun> {
    let (w, h) = (width as usize, height as usize);
    let colours = palette(hash, style);
    let (bands, group) = match style {
        Style::Final => (5 + hash[31] as usize % 4, 8),
        Style::Sketch => (3, 4),
    };
    let bands: Vec<Band> = (0..bands).map(|i| band(hash, &colours, i, w)).collect();
    let band_height = h.div_ceil(bands.len()).max(1);
    let mut runs = Vec::with_capacity(h / group + bands.len());
    let mut y = 0;
    while y < h {
        let index = (y / band_height).min(bands.len() - 1);
        let band = &bands[index];
        let local = y - index * band_height;
        let rows = (group - local % group)
            .min(h - y)
            .min((index + 1) * band_height - y);
        runs.push(RowRun {
            period: band.rotated(local / group * band.speed),
            rows,
        });
        y += rows;
    }
    runs
}

/// Cache key: everything that decides the encoded bytes.
type Key = ImageSpec;

/// A small LRU of rendered images (base64), bounded by entries and bytes, so retries and repeated prompts (the
/// gateway's tests send many) do not re-encode 4K images.
pub(crate) struct ImageCache {
    entries: Mutex<VecDeque<(Key, Arc<String>)>>,
    max_entries: usize,
    max_bytes: usize,
}

impl ImageCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        ImageCache {
            entries: Mutex::new(VecDeque::new()),
            max_entries,
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Key, Arc<String>)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &Key) -> Option<Arc<String>> {
        let mut entries = self.lock();
        let index = entries.iter().position(|(k, _)| k == key)?;
        let entry = entries.remove(index)?;
        let rendered = entry.1.clone();
        entries.push_front(entry);
        Some(rendered)
    }

    pub fn put(&self, key: Key, rendered: Arc<String>) {
        let mut entries = self.lock();
        entries.retain(|(k, _)| *k != key);
        entries.push_front((key, rendered));
        while entries.len() > 1
            && (entries.len() > self.max_entries
                || entries.iter().map(|(_, r)| r.len()).sum::<usize>() > self.max_bytes)
        {
            entries.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn decode_png(b64: &str) -> (u32, u32, Vec<u8>) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let decoder = png::Decoder::new(bytes.as_slice());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn decode_jpeg(b64: &str) -> (u32, u32, Vec<u8>) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let mut decoder = jpeg_decoder::Decoder::new(bytes.as_slice());
        let pixels = decoder.decode().unwrap();
        let info = decoder.info().unwrap();
        (u32::from(info.width), u32::from(info.height), pixels)
    }

    fn spec(prompt: &str, width: u32, height: u32, mime: Mime) -> ImageSpec {
        ImageSpec {
            seed: prompt_hash(prompt),
            width,
            height,
            style: Style::Final,
            mime,
        }
    }

    #[test]
    fn the_documented_table() {
        assert_eq!(pixel_size("16:9", "1K"), Some((1376, 768)));
        assert_eq!(pixel_size("1:1", "2K"), Some((2048, 2048)));
        assert_eq!(pixel_size("21:9", "4K"), Some((6336, 2688)));
        assert_eq!(pixel_size("9:16", "4K"), Some((3072, 5504)));
        assert_eq!(pixel_size("4:5", "2K"), Some((1856, 2304)));
        assert_eq!(pixel_size("7:3", "1K"), None);
        assert_eq!(pixel_size("1:1", "1k"), None);
        assert_eq!(pixel_size("1:1", "512"), None);
        assert_eq!(
            pixel_size_for("gemini-2.5-flash-image", "16:9", "1K"),
            Some((1344, 768))
        );
        assert_eq!(
            pixel_size_for("gemini-3.1-flash-image", "1:8", "512"),
            Some((192, 1536))
        );
        assert_eq!(pixel_size_for("gemini-9", "1:1", "1K"), None);
    }

    #[test]
    fn images_decode_at_the_right_size_and_are_deterministic() {
        let a = render(&spec("a lighthouse at dusk", 1376, 768, Mime::Png));
        let b = render(&spec("a lighthouse at dusk", 1376, 768, Mime::Png));
        assert_eq!(a, b);
        let (w, h, pixels) = decode_png(&a);
        assert_eq!((w, h), (1376, 768));
        assert!(
            pixels.chunks(3).any(|p| p != &pixels[..3]),
            "not a flat image"
        );
        let (iw, ih) = interim_size(1376, 768);
        assert_eq!((iw, ih), (256, 142));
        let c = render(&spec("a lighthouse at dawn", 1376, 768, Mime::Png));
        assert_ne!(a, c);
        let j = render(&spec("a lighthouse at dusk", 1376, 768, Mime::Jpeg));
        let (jw, jh, jpixels) = decode_jpeg(&j);
        assert_eq!((jw, jh), (1376, 768));
        assert!(jpixels.chunks(3).any(|p| p != &jpixels[..3]));
        assert_ne!(image_seed(&prompt_hash("x"), 1), prompt_hash("x"));
    }

    /// Not a timing assert: prints how long the largest images take in this (usually debug) build.
    #[test]
    fn four_k_cost() {
        for (ratio, size, mime) in [
            ("21:9", "4K", Mime::Png),
            ("9:16", "4K", Mime::Jpeg),
            ("1:1", "4K", Mime::Jpeg),
        ] {
            let (w, h) = pixel_size(ratio, size).unwrap();
            let start = Instant::now();
            let r = render(&spec("timing", w, h, mime));
            let elapsed = start.elapsed();
            eprintln!(
                "render {ratio} {size} {mime:?} ({w}x{h}): {elapsed:?}, base64 {} bytes",
                r.len()
            );
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&r)
                .unwrap();
            match mime {
                Mime::Png => assert_eq!(decode_png(&r).0, w),
                Mime::Jpeg => assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]),
            }
        }
    }

    #[test]
    fn the_cache_is_a_bounded_lru() {
        let cache = ImageCache::new(2, usize::MAX);
        let item = || Arc::new(String::new());
        let k = |n: u8| ImageSpec {
            seed: [n; 32],
            width: 1,
            height: 1,
            style: Style::Final,
            mime: Mime::Png,
        };
        cache.put(k(1), item());
        cache.put(k(2), item());
        assert!(cache.get(&k(1)).is_some());
        cache.put(k(3), item());
        assert!(cache.get(&k(2)).is_none());
        assert!(cache.get(&k(1)).is_some());
        assert!(cache.get(&k(3)).is_some());
        let jpeg = ImageSpec {
            mime: Mime::Jpeg,
            ..k(1)
        };
        assert!(cache.get(&jpeg).is_none(), "the format is part of the key");
    }
}
