//! Deterministic images at Gemini's documented pixel sizes: stripes in bands, coloured from sha256(prompt),
//! described as runs of periodic rows so `png_writer` can encode even 4K images cheaply in debug builds; plus a
//! small LRU so repeated prompts are not re-encoded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::png_writer::{encode_rgb, RowRun};

/// Aspect ratios the image models accept.
pub const ASPECT_RATIOS: [&str; 10] = [
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
];

/// Image sizes the image models accept.
pub const IMAGE_SIZES: [&str; 3] = ["1K", "2K", "4K"];

/// Longest side of the interim "thought" image.
const INTERIM_MAX_SIDE: u32 = 256;

/// The documented pixel size (width, height) for an aspect ratio and image size, e.g. `("16:9", "1K")` ->
/// 1376x768. `None` for values the API rejects.
pub fn pixel_size(aspect_ratio: &str, image_size: &str) -> Option<(u32, u32)> {
    let (w, h) = match aspect_ratio {
        "1:1" => (1024, 1024),
        "2:3" => (848, 1264),
        "3:2" => (1264, 848),
        "3:4" => (896, 1200),
        "4:3" => (1200, 896),
        "4:5" => (928, 1152),
        "5:4" => (1152, 928),
        "9:16" => (768, 1376),
        "16:9" => (1376, 768),
        "21:9" => (1584, 672),
        _ => return None,
    };
    let scale = match image_size {
        "1K" => 1,
        "2K" => 2,
        "4K" => 4,
        _ => return None,
    };
    Some((w * scale, h * scale))
}

/// The interim image's size: the final aspect ratio, longest side 256 px.
fn interim_size(width: u32, height: u32) -> (u32, u32) {
    let longest = width.max(height);
    let scale = |v: u32| (v * INTERIM_MAX_SIDE / longest).max(1);
    (scale(width), scale(height))
}

/// A generated pair of images, base64-encoded and ready for `inlineData`.
#[derive(Debug)]
pub(crate) struct Rendered {
    /// The final image.
    pub png_base64: String,
    /// The smaller interim image shown as a thought.
    pub interim_base64: String,
}

/// sha256 of the prompt: the seed of everything generated for it.
pub(crate) fn prompt_hash(prompt: &str) -> [u8; 32] {
    Sha256::digest(prompt.as_bytes()).into()
}

/// Renders the final and the interim image for a prompt hash at `width` x `height`. CPU-heavy for 4K: call it
/// from `spawn_blocking`.
pub(crate) fn render(hash: &[u8; 32], width: u32, height: u32) -> Rendered {
    let final_png = encode_png(hash, width, height, Style::Final);
    let (iw, ih) = interim_size(width, height);
    let interim_png = encode_png(hash, iw, ih, Style::Sketch);
    let b64 = base64::engine::general_purpose::STANDARD;
    Rendered {
        png_base64: b64.encode(final_png),
        interim_base64: b64.encode(interim_png),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
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

fn encode_png(hash: &[u8; 32], width: u32, height: u32, style: Style) -> Vec<u8> {
    encode_rgb(width, height, &row_runs(hash, width, height, style))
}

/// Cache key: prompt hash, aspect ratio, image size.
type Key = ([u8; 32], &'static str, &'static str);

/// A small LRU of rendered images, bounded by entries and bytes, so retries and repeated prompts (the gateway's
/// tests send many) do not re-encode 4K images.
pub(crate) struct ImageCache {
    entries: Mutex<VecDeque<(Key, Arc<Rendered>)>>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Key, Arc<Rendered>)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Rendered>> {
        let mut entries = self.lock();
        let index = entries.iter().position(|(k, _)| k == key)?;
        let entry = entries.remove(index)?;
        let rendered = entry.1.clone();
        entries.push_front(entry);
        Some(rendered)
    }

    pub fn put(&self, key: Key, rendered: Arc<Rendered>) {
        let mut entries = self.lock();
        entries.retain(|(k, _)| *k != key);
        entries.push_front((key, rendered));
        let size = |r: &Rendered| r.png_base64.len() + r.interim_base64.len();
        while entries.len() > 1
            && (entries.len() > self.max_entries
                || entries.iter().map(|(_, r)| size(r)).sum::<usize>() > self.max_bytes)
        {
            entries.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn decode(b64: &str) -> (u32, u32, Vec<u8>) {
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

    #[test]
    fn the_documented_table() {
        assert_eq!(pixel_size("16:9", "1K"), Some((1376, 768)));
        assert_eq!(pixel_size("1:1", "2K"), Some((2048, 2048)));
        assert_eq!(pixel_size("21:9", "4K"), Some((6336, 2688)));
        assert_eq!(pixel_size("9:16", "4K"), Some((3072, 5504)));
        assert_eq!(pixel_size("4:5", "2K"), Some((1856, 2304)));
        assert_eq!(pixel_size("7:3", "1K"), None);
        assert_eq!(pixel_size("1:1", "1k"), None);
        for ratio in ASPECT_RATIOS {
            for size in IMAGE_SIZES {
                assert!(pixel_size(ratio, size).is_some());
            }
        }
    }

    #[test]
    fn images_decode_at_the_right_size_and_are_deterministic() {
        let hash = prompt_hash("a lighthouse at dusk");
        let a = render(&hash, 1376, 768);
        let b = render(&hash, 1376, 768);
        assert_eq!(a.png_base64, b.png_base64);
        let (w, h, pixels) = decode(&a.png_base64);
        assert_eq!((w, h), (1376, 768));
        assert!(
            pixels.chunks(3).any(|p| p != &pixels[..3]),
            "not a flat image"
        );
        let (iw, ih, _) = decode(&a.interim_base64);
        assert_eq!((iw, ih), (256, 142));
        let c = render(&prompt_hash("a lighthouse at dawn"), 1376, 768);
        assert_ne!(a.png_base64, c.png_base64);
    }

    /// Not a timing assert: prints how long the largest images take in this (usually debug) build.
    #[test]
    fn four_k_cost() {
        for (ratio, size) in [("21:9", "4K"), ("9:16", "4K"), ("1:1", "4K")] {
            let (w, h) = pixel_size(ratio, size).unwrap();
            let start = Instant::now();
            let r = render(&prompt_hash("timing"), w, h);
            let elapsed = start.elapsed();
            eprintln!(
                "render {ratio} {size} ({w}x{h}): {elapsed:?}, base64 PNG {} bytes",
                r.png_base64.len()
            );
            let (dw, dh, _) = decode(&r.png_base64);
            assert_eq!((dw, dh), (w, h));
        }
    }

    #[test]
    fn the_cache_is_a_bounded_lru() {
        let cache = ImageCache::new(2, usize::MAX);
        let item = || {
            Arc::new(Rendered {
                png_base64: String::new(),
                interim_base64: String::new(),
            })
        };
        let k = |n: u8| ([n; 32], "1:1", "1K");
        cache.put(k(1), item());
        cache.put(k(2), item());
        assert!(cache.get(&k(1)).is_some());
        cache.put(k(3), item());
        assert!(cache.get(&k(2)).is_none());
        assert!(cache.get(&k(1)).is_some());
        assert!(cache.get(&k(3)).is_some());
    }
}
