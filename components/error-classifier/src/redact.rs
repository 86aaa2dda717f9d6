//! Making upstream text safe to show a client: API keys removed, whitespace collapsed,
//! length bounded.

/// The longest upstream text quoted in a message, in characters.
pub const MAX_CHARS: usize = 300;

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn starts_with_ci(chars: &[char], pattern: &str) -> bool {
    let mut it = chars.iter();
    pattern
        .chars()
        .all(|p| it.next().is_some_and(|c| c.eq_ignore_ascii_case(&p)))
}

/// Replace anything that looks like an API key (`key=...` values and `AIza...`
/// tokens) with `[redacted]`, collapse whitespace and cap the length.
pub fn redact(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        if starts_with_ci(rest, "key=") {
            out.push_str("key=[redacted]");
            i += 4;
            while i < chars.len() && !chars[i].is_whitespace() && !"&\"',;)]}".contains(chars[i]) {
                i += 1;
            }
            continue;
        }
        if starts_with_ci(rest, "aiza") && (i == 0 || !is_token_char(chars[i - 1])) {
            out.push_str("[redacted]");
            while i < chars.len() && is_token_char(chars[i]) {
                i += 1;
            }
            continue;
        }
        let c = chars[i];
        if c.is_whitespace() {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    let out = out.trim_end();
    if out.chars().count() > MAX_CHARS {
        let cut: String = out.chars().take(MAX_CHARS).collect();
        format!("{cut}...")
    } else {
        out.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_removed() {
        assert_eq!(
            redact("GET /v1beta/models?key=AIzaSyD-abc_123&alt=json failed"),
            "GET /v1beta/models?key=[redacted]&alt=json failed"
        );
        assert_eq!(
            redact("Consumer 'api_key:AIzaSyAbCdEf0123' has been suspended."),
            "Consumer 'api_key:[redacted]' has been suspended."
        );
        assert_eq!(redact("KEY=secret value"), "key=[redacted] value");
        assert_eq!(redact("xAIzaNotAKey stays"), "xAIzaNotAKey stays");
    }

    #[test]
    fn whitespace_and_length() {
        assert_eq!(redact("  a \n\n b  "), "a b");
        assert_eq!(redact(&"x".repeat(400)).chars().count(), MAX_CHARS + 3);
    }
}
