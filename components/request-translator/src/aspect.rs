//! The OpenAI `size` / `aspect_ratio` -> Gemini `aspectRatio` table.

/// The aspect ratios Gemini image models accept, with their numeric form.
pub const RATIOS: [(&str, u32, u32); 10] = [
    ("1:1", 1, 1),
    ("2:3", 2, 3),
    ("3:2", 3, 2),
    ("3:4", 3, 4),
    ("4:3", 4, 3),
    ("4:5", 4, 5),
    ("5:4", 5, 4),
    ("9:16", 9, 16),
    ("16:9", 16, 9),
    ("21:9", 21, 9),
];

/// The ratio used when the client gives neither `size` nor `aspect_ratio` (or `size: "auto"`).
pub const DEFAULT_RATIO: &str = "1:1";

/// The supported ratio equal to `s` (exact `W:H` spelling), if any.
pub fn supported(s: &str) -> Option<&'static str> {
    RATIOS.iter().map(|r| r.0).find(|r| *r == s)
}

/// The supported ratio nearest to `width`:`height`, comparing `ln(W/H)` distances
/// (so 2:1 and 1:2 are equally far from 1:1). Ties go to the earlier table entry.
pub fn nearest(width: u32, height: u32) -> &'static str {
    let target = (f64::from(width) / f64::from(height)).ln();
    let mut best = DEFAULT_RATIO;
    let mut best_distance = f64::INFINITY;
    for (name, w, h) in RATIOS {
        let distance = ((f64::from(w) / f64::from(h)).ln() - target).abs();
        if distance < best_distance {
            best = name;
            best_distance = distance;
        }
    }
    best
}

/// Map an OpenAI `size` string to a Gemini aspect ratio: `auto` -> 1:1, a supported
/// `W:H` passes through, a pixel size `WxH` maps to the nearest supported ratio.
/// `None` means the string is none of these forms.
pub fn from_size(size: &str) -> Option<&'static str> {
    let size = size.trim();
    if size.eq_ignore_ascii_case("auto") {
        return Some(DEFAULT_RATIO);
    }
    if size.contains(':') {
        return supported(size);
    }
    let (w, h) = size.split_once(['x', 'X'])?;
    Some(nearest(pixels(w)?, pixels(h)?))
}

/// A positive pixel count written with ASCII digits only.
fn pixels(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&v| v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_sizes_map_to_nearest_ratio() {
        let cases = [
            ("1792x1024", "16:9"),
            ("1024x1792", "9:16"),
            ("1536x1024", "3:2"),
            ("1024x1536", "2:3"),
            ("2048x2048", "1:1"),
            ("1024x1024", "1:1"),
            ("512x512", "1:1"),
            ("256x256", "1:1"),
            ("1376x768", "16:9"),
            ("1584x672", "21:9"),
            ("1200x896", "4:3"),
            ("896x1152", "4:5"),
            ("1024X1024", "1:1"),
            ("auto", "1:1"),
            ("AUTO", "1:1"),
            ("16:9", "16:9"),
            ("21:9", "21:9"),
        ];
        for (size, ratio) in cases {
            assert_eq!(from_size(size), Some(ratio), "{size}");
        }
    }

    #[test]
    fn garbage_sizes_are_rejected() {
        for size in [
            "",
            "big",
            "1024",
            "x1024",
            "1024x",
            "0x100",
            "100x0",
            "-5x5",
            "2:1",
            "16:10",
            "1e3x5",
            "1024x1024x2",
            " x ",
            "9999999x1",
        ] {
            assert_eq!(from_size(size), None, "{size:?}");
        }
    }

    #[test]
    fn every_ratio_is_its_own_nearest() {
        for (name, w, h) in RATIOS {
            assert_eq!(nearest(w * 100, h * 100), name);
        }
    }
}
