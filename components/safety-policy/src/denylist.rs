//! Local deny-list matching: case-insensitive, on word boundaries, phrases as word sequences.
//!
//! Both the prompt and each term are split into words (maximal runs of alphanumeric
//! characters, lower-cased); a term matches when its words appear consecutively in the
//! prompt. So `gore` matches "Gore." but not "gorgeous", and `x-rated` matches
//! "x rated" and "X-Rated".

/// Lower-cased words of `text`.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether any term of `deny_list` occurs in `prompt`. Terms with no word characters
/// (empty or whitespace/punctuation only) are ignored.
pub fn matches(prompt: &str, deny_list: &[String]) -> bool {
    let prompt_words = words(prompt);
    deny_list.iter().any(|term| {
        let term_words = words(term);
        !term_words.is_empty()
            && prompt_words
                .windows(term_words.len())
                .any(|window| window == term_words.as_slice())
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
}
