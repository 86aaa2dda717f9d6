//! Local deny-list matching: case-insensitive, on word boundaries, phrases as word
//! sequences, after normalising away the usual ways of disguising a word.
//!
//! # Normalisation (prompt and terms alike)
//!
//! 1. Unicode compatibility decomposition (NFKD, the decomposition half of NFKC), so
//!    fullwidth `ｇｏｒｅ`, mathematical `𝐠𝐨𝐫𝐞`, circled and superscript letters and
//!    ligatures become plain letters.
//! 2. Invisible characters are removed (they join, not split): zero-width space, joiners
//!    and non-joiners, word joiner, BOM, soft hyphen, bidi controls, variation selectors,
//!    Hangul fillers, tag characters, and combining marks that are not letters themselves
//!    (accents, strike-through overlays, the combining grapheme joiner). Vowel signs of
//!    scripts such as Devanagari are letters and stay. Other separators (spaces of every
//!    width, line and paragraph separators) stay word boundaries.
//! 3. Lower-casing, and folding of Cyrillic and Greek look-alikes of Latin letters
//!    (`о` U+043E -> `o`, `Α` U+0391 -> `a`, ...; see [`fold_upper`] and [`fold_lower`]).
//!
//! # Words and matching
//!
//! A word is a maximal run of alphanumeric characters. A term matches when its words
//! appear consecutively in the prompt, each prompt word equal to the term word letter for
//! letter, where a prompt character may also be a leetspeak stand-in for the term's
//! letter: `0`->o, `1`->i or l, `3`->e, `4`->a, `5`->s, `7`->t, `@`->a, `$`->s. Stand-ins
//! count only in a word that is not all digits (`g0re` matches `gore`, the number `455`
//! never matches `ass`). `@` and `$` are read both ways: as letters inside a word (`n@$ty`)
//! and as separators (`me@gore`).
//!
//! Word boundaries are kept: `gore` matches "Gore." and "blood-and-gore" but not
//! "gorgeous", "Gorey" or "g0rey". Outside spelled-out runs a prompt word matches only
//! when it is the term once normalised (`góre`, `gоre` with a Cyrillic о) or spells it
//! with stand-ins (`g0re`); a word that merely contains the term never does.
//!
//! # Spelled-out terms
//!
//! A run of two or more single-character words (`g o r e`, `g.o.r.e`, `g-0-r-e`) is also
//! read as one word with the boundaries inside it unknown: a term of three or more letters
//! (phrases with their spaces removed: `r e d w e d d i n g` is `red wedding`) matches
//! anywhere inside such a run. Partly spaced words (`go re`) are not caught.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The shortest term (in letters, spaces removed) matched inside a spelled-out run.
const MIN_SPELLED_LEN: usize = 3;

/// Characters that render as nothing (or nearly nothing) and are removed before matching.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// A combining mark that is not itself a letter (an accent or overlay, not a vowel sign).
fn is_decoration(c: char) -> bool {
    is_combining_mark(c) && !c.is_alphabetic()
}

/// Greek and Cyrillic capitals that look like Latin capitals, folded before lower-casing
/// (Greek `Η` looks like H, though its lower case `η` looks like n).
fn fold_upper(c: char) -> Option<char> {
    Some(match c {
        'Α' | 'А' => 'a',
        'Β' | 'В' => 'b',
        'С' => 'c',
        'Ε' | 'Е' => 'e',
        'Η' | 'Н' => 'h',
        'Ι' | 'І' => 'i',
        'Ј' => 'j',
        'Κ' | 'К' => 'k',
        'Ӏ' => 'l',
        'Μ' | 'М' => 'm',
        'Ν' => 'n',
        'Ο' | 'О' => 'o',
        'Ρ' | 'Р' => 'p',
        'Ԛ' => 'q',
        'Ѕ' => 's',
        'Τ' | 'Т' => 't',
        'Ԝ' => 'w',
        'Χ' | 'Х' => 'x',
        'Υ' | 'У' | 'Ү' => 'y',
        'Ζ' => 'z',
        _ => return None,
    })
}

/// Lower-case Greek, Cyrillic and Latin-extension look-alikes of Latin letters.
fn fold_lower(c: char) -> char {
    match c {
        'α' | 'а' => 'a',
        'β' | 'в' => 'b',
        'ϲ' | 'с' => 'c',
        'ԁ' => 'd',
        'ε' | 'е' | 'ё' => 'e',
        'ɡ' => 'g',
        'һ' => 'h',
        'ι' | 'і' | 'ї' | 'ı' => 'i',
        'ϳ' | 'ј' => 'j',
        'κ' | 'к' => 'k',
        'ӏ' => 'l',
        'м' => 'm',
        'η' | 'п' => 'n',
        'ο' | 'о' => 'o',
        'ρ' | 'р' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'τ' | 'т' => 't',
        'υ' | 'μ' => 'u',
        'ν' => 'v',
        'ω' | 'ԝ' => 'w',
        'χ' | 'х' => 'x',
        'γ' | 'у' | 'ү' => 'y',
        other => other,
    }
}

/// `text` normalised as described in the module documentation.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfkd() {
        if is_invisible(c) || is_decoration(c) {
            continue;
        }
        if let Some(folded) = fold_upper(c) {
            out.push(folded);
            continue;
        }
        for lower in c.to_lowercase() {
            if !is_decoration(lower) {
                out.push(fold_lower(lower));
            }
        }
    }
    out
}

/// The letters a prompt character may stand for in leetspeak.
fn leet(c: char) -> &'static [char] {
    match c {
        '0' => &['o'],
        '1' => &['i', 'l'],
        '3' => &['e'],
        '4' | '@' => &['a'],
        '5' | '$' => &['s'],
        '7' => &['t'],
        _ => &[],
    }
}

/// Words of normalised text: runs of alphanumeric characters, and with `symbols` also of
/// the leetspeak symbols `@` and `$`.
fn words(normalized: &str, symbols: bool) -> Vec<Vec<char>> {
    normalized
        .split(|c: char| !(c.is_alphanumeric() || (symbols && matches!(c, '@' | '$'))))
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().collect())
        .collect()
}

/// Whether prompt characters `prompt` spell the term characters `term`, letter for letter
/// or by leetspeak stand-ins (only when `prompt` is not all ASCII digits).
fn spells(prompt: &[char], term: &[char]) -> bool {
    if prompt.len() != term.len() {
        return false;
    }
    let leet_ok = prompt.iter().any(|c| !c.is_ascii_digit());
    prompt
        .iter()
        .zip(term)
        .all(|(&p, &t)| p == t || (leet_ok && leet(p).contains(&t)))
}

/// Whether the term words appear consecutively in `prompt`, or (spelled out) inside a run
/// of single-character prompt words.
fn matches_words(prompt: &[Vec<char>], term: &[Vec<char>]) -> bool {
    let whole = prompt.windows(term.len()).any(|window| {
        window
            .iter()
            .zip(term)
            .all(|(p, t)| spells(p.as_slice(), t.as_slice()))
    });
    if whole {
        return true;
    }
    let letters: Vec<char> = term.iter().flatten().copied().collect();
    if letters.len() < MIN_SPELLED_LEN {
        return false;
    }
    prompt
        .split(|w| w.len() != 1)
        .filter(|run| run.len() >= 2)
        .any(|run| {
            let run: Vec<char> = run.iter().map(|w| w[0]).collect();
            run.windows(letters.len()).any(|w| spells(w, &letters))
        })
}

/// Whether any term of `deny_list` occurs in `prompt`. Terms with no word characters
/// (empty or whitespace/punctuation only) are ignored.
pub fn matches(prompt: &str, deny_list: &[String]) -> bool {
    let prompt = normalize(prompt);
    let readings = [words(&prompt, false), words(&prompt, true)];
    deny_list.iter().any(|term| {
        let term_words = words(&normalize(term), false);
        !term_words.is_empty()
            && readings
                .iter()
                .any(|prompt_words| matches_words(prompt_words, &term_words))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(terms: &[&str]) -> Vec<String> {
        terms.iter().map(|t| (*t).to_string()).collect()
    }

    #[test]
    fn word_boundaries() {
        let deny = list(&["gore"]);
        assert!(matches("a scene full of GORE.", &deny));
        assert!(matches("gore", &deny));
        assert!(matches("blood-and-gore!", &deny));
        assert!(!matches("a gorgeous sunset", &deny));
        assert!(!matches("an Edward Gorey drawing", &deny));
        assert!(!matches("Al Gore's... no: algore", &list(&["gored"])));
    }

    #[test]
    fn phrases() {
        let deny = list(&["Red  Wedding"]);
        assert!(matches("paint the red wedding scene", &deny));
        assert!(matches("RED\nwedding", &deny));
        assert!(!matches("a red dress at a wedding", &deny));
        assert!(matches("an X-Rated poster", &list(&["x-rated"])));
    }

    #[test]
    fn blank_terms_are_ignored() {
        assert!(!matches("anything at all", &list(&["", "   ", "!!!"])));
        assert!(!matches("", &list(&["gore"])));
    }

    #[test]
    fn unicode_case_folding() {
        assert!(matches("ÜBEL stuff", &list(&["übel"])));
    }

    #[test]
    fn disguises_are_seen_through() {
        let deny = list(&["gore"]);
        for prompt in [
            "a g\u{200B}ore scene",
            "a go\u{200D}re\u{FEFF} scene",
            "a g\u{00AD}ore scene",
            "ｇｏｒｅ everywhere",
            "𝐠𝐨𝐫𝐞",
            "a g\u{043E}re scene",
            "ＧＯＲＥ",
            "G\u{039F}RE",
            "g\u{0336}o\u{0336}r\u{0336}e\u{0336}",
            "gôre",
            "g o r e",
            "g.o.r.e",
            "g - o - r - e",
            "show a g o r e y scene",
            "g0re",
            "G0R3",
            "g 0 r 3",
        ] {
            assert!(matches(prompt, &deny), "{prompt:?}");
        }
        assert!(matches("so n@$ty", &list(&["nasty"])));
        assert!(matches("mail me@gore.example", &deny));
        assert!(matches("l1ght", &list(&["light"])));
        assert!(matches("1ight", &list(&["light"])));
        assert!(matches("r e d w e d d i n g", &list(&["red wedding"])));
    }

    #[test]
    fn ordinary_text_stays_clear() {
        let deny = list(&["gore", "ass", "tits"]);
        for prompt in [
            "a gorgeous sunset",
            "an Edward Gorey drawing",
            "g0rey",
            "bus number 455 passing a 7175 sign",
            "passive assistance, class of 1955",
            "A B C D",
            "x y z axes",
            "Привет, мир",
            "Αθήνα at dawn",
            "go re-read it",
            "a 4K landscape, 16:9, f/1.8",
        ] {
            assert!(!matches(prompt, &deny), "{prompt:?}");
        }
        // Two-letter terms are never matched inside spelled-out runs.
        assert!(!matches("a i b", &list(&["ai"])));
    }
}
