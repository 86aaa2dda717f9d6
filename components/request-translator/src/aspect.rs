//! The OpenAI `size` / `aspect_ratio` -> Gemini `aspectRatio` mapping. Which ratios exist
//! is not decided here: each model family's ratios come from `aperture-models`, so
//! Gemini 3.1 Flash Image gets its four extra ratios (1:4 4:1 1:8 8:1) and the others do not.

use aperture_models::Family;

/// The ratio used when the client gives neither `size` nor `aspect_ratio` (or `size: "auto"`).
pub const DEFAULT_RATIO: &str = "1:1";

/// The ratio names `family` accepts, in the order Gemini lists them.
pub fn names(family: Family) -> Vec<&'static str> {
    family.ratios().iter().map(|r| r.name).collect()
}

/// The ratio of `family` spelled exactly `s` (`W:H`), if the family accepts it.
pub fn supported(family: Family, s: &str) -> Option<&'static str> {
    family.ratio(s).map(|r| r.name)
}

/// Whether `s` is a ratio some model accepts (so an error can say which model takes it).
pub fn known_elsewhere(s: &str) -> bool {
    aperture_models::all_ratios().iter().any(|r| r.name == s)
}

/// The ratio of `family` nearest to `width`:`height`, comparing `ln(W/H)` distances
/// (so 2:1 and 1:2 are equally far from 1:1). Ties go to the earlier table entry.
pub fn nearest(family: Family, width: u32, height: u32) -> &'static str {
    let target = (f64::from(width) / f64::from(height)).ln();
    let mut best = DEFAULT_RATIO;
    let mut best_distance = f64::INFINITY;
    for ratio in family.ratios() {
        let distance = (ratio.value().ln() - target).abs();
        if distance < best_distance {
            best = ratio.name;
            best_distance = distance;
        }
    }
    best
}

/// What an OpenAI `size` string means for `family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeRatio {
    /// A ratio the family accepts.
    Ratio(&'static str),
    /// A `W:H` ratio another model accepts but this family does not.
    OtherModel,
    /// None of the accepted forms.
    Invalid,
}

/// Map an OpenAI `size` string to a ratio of `family`: `auto` -> 1:1, an accepted `W:H`
/// passes through, a pixel size `WxH` maps to the nearest ratio the family accepts.
pub fn from_size(family: Family, size: &str) -> SizeRatio {
    let size = size.trim();
    if size.eq_ignore_ascii_case("auto") {
        return SizeRatio::Ratio(DEFAULT_RATIO);
    }
    if size.contains(':') {
        return match supported(family, size) {
            Some(r) => SizeRatio::Ratio(r),
            None if known_elsewhere(size) => SizeRatio::OtherModel,
            None => SizeRatio::Invalid,
        };
    }
    let Some((w, h)) = size.split_once(['x', 'X']) else {
        return SizeRatio::Invalid;
    };
    match (pixels(w), pixels(h)) {
        (Some(w), Some(h)) => SizeRatio::Ratio(nearest(family, w, h)),
        _ => SizeRatio::Invalid,
    }
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

    fn ratio(family: Family, size: &str) -> Option<&'static str> {
        match from_size(family, size) {
            SizeRatio::Ratio(r) => Some(r),
            _ => None,
        }
    }

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
        for family in [Family::Pro3, Family::Flash31, Family::Flash25] {
            for (size, expected) in cases {
                assert_eq!(ratio(family, size), Some(expected), "{family:?} {size}");
            }
        }
    }

    #[test]
    fn nearest_is_over_the_models_own_ratios() {
        assert_eq!(ratio(Family::Flash31, "4000x1000"), Some("4:1"));
        assert_eq!(ratio(Family::Pro3, "4000x1000"), Some("21:9"));
        assert_eq!(ratio(Family::Flash25, "4000x1000"), Some("21:9"));
        assert_eq!(ratio(Family::Flash31, "1000x8000"), Some("1:8"));
        assert_eq!(ratio(Family::Pro3, "1000x8000"), Some("9:16"));
        assert_eq!(ratio(Family::Flash31, "8:1"), Some("8:1"));
        assert_eq!(from_size(Family::Pro3, "8:1"), SizeRatio::OtherModel);
        assert_eq!(from_size(Family::Pro3, "2:1"), SizeRatio::Invalid);
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
            assert_eq!(
                from_size(Family::Flash31, size),
                SizeRatio::Invalid,
                "{size:?}"
            );
        }
    }

    #[test]
    fn every_ratio_is_its_own_nearest() {
        for family in [Family::Pro3, Family::Flash31, Family::Flash25] {
            for r in family.ratios() {
                let (w, h) = r.name.split_once(':').unwrap();
                let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
                assert_eq!(nearest(family, w * 100, h * 100), r.name);
            }
        }
    }
}
