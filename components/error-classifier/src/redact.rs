//! Making upstream text safe to show a client: API keys removed, links and URLs
//! dropped, whitespace collapsed, length bounded.

/// The longest upstream text quoted in a message, in characters.
pub const MAX_CHARS: usize = 300;

/// The longest upstream text quoted in an account's disable reason (operator-facing, so
/// a whole upstream explanation such as `SERVICE_DISABLED`'s fits), in characters.
pub const REASON_MAX_CHARS: usize = 600;

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn starts_with_ci(chars: &[char], pattern: &str) -> bool {
    let mut it = chars.iter();
    pattern
        .chars()
        .all(|p| it.next().is_some_and(|c| c.eq_ignore_ascii_case(&p)))
}

/// Characters that end a `key=…` or `api_key:…` value.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || "&\"',;)]}".contains(c)
}

/// Replace anything that looks like an API key (`key=...` values, `api_key:...`
/// consumer ids and `AIza...` tokens) with `[redacted]`, collapse whitespace and cap
/// the length at [`MAX_CHARS`].
pub fn redact(text: &str) -> String {
    redact_to(text, MAX_CHARS)
}

/// [`redact`] with a length cap of `max_chars`.
pub fn redact_to(text: &str, max_chars: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        if let Some(prefix) = ["key=", "api_key:"]
            .into_iter()
            .find(|p| starts_with_ci(rest, p))
        {
            out.push_str(prefix);
            out.push_str("[redacted]");
            i += prefix.len();
            while i < chars.len() && !ends_value(chars[i]) {
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
    if out.chars().count() > max_chars {
        let cut: String = out.chars().take(max_chars).collect();
        format!("{cut}...")
    } else {
        out.to_string()
    }
}

/// `[text](url)` markdown links reduced to their text.
fn unlink(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let link = after.find("](").and_then(|close| {
            let label = &after[..close];
            let target = &after[close + 2..];
            let end = target.find(')')?;
            (!label.contains(['[', ']', '\n'])).then_some((label, close + 2 + end + 1))
        });
        match link {
            Some((label, len)) => {
                out.push_str(&rest[..open]);
                out.push_str(label);
                rest = &after[len..];
            }
            None => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The sentences of `text`: split after `.`, `!` or `?` followed by whitespace or the
/// end, and at line breaks. Each keeps its terminator.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let bytes = line.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            let ends = matches!(b, b'.' | b'!' | b'?')
                && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
            if ends {
                out.push(&line[start..=i]);
                start = i + 1;
            }
        }
        out.push(&line[start..]);
    }
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn has_url(sentence: &str) -> bool {
    let lower = sentence.to_ascii_lowercase();
    lower.contains("://") || lower.contains("www.")
}

/// Upstream text for a client message: markdown links reduced to their text, every
/// sentence holding a raw URL ("For more information, head to: https://…") and every
/// sentence `skip` accepts dropped, then [`redact`]ed.
pub fn clean_with(text: &str, skip: impl Fn(&str) -> bool) -> String {
    let text = unlink(text);
    let kept: Vec<&str> = sentences(&text)
        .into_iter()
        .filter(|s| !has_url(s) && !skip(s))
        // A leading list bullet ("* GenerateContentRequest.…: …") is dropped.
        .map(|s| s.strip_prefix("* ").unwrap_or(s))
        .collect();
    redact(&kept.join(" "))
}

/// [`clean_with`] dropping only the sentences with URLs.
pub fn clean(text: &str) -> String {
    clean_with(text, |_| false)
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
        // A consumer id that is not an AIza key is masked too.
        assert_eq!(
            redact("Consumer 'api_key:AQ.Ab8RN6Lx-yz' has been suspended."),
            "Consumer 'api_key:[redacted]' has been suspended."
        );
        assert_eq!(redact("KEY=secret value"), "key=[redacted] value");
        assert_eq!(
            redact("https://x/?alt=sse&key=abc"),
            "https://x/?alt=sse&key=[redacted]"
        );
        assert_eq!(redact("ends with key="), "ends with key=[redacted]");
        assert_eq!(redact("xAIzaNotAKey stays"), "xAIzaNotAKey stays");
        assert_eq!(redact("AIzaSy123"), "[redacted]");
    }

    #[test]
    fn whitespace_and_length() {
        assert_eq!(redact("  a \n\n b  "), "a b");
        assert_eq!(redact(&"x".repeat(400)).chars().count(), MAX_CHARS + 3);
        assert_eq!(redact_to(&"x".repeat(400), 500).chars().count(), 400);
    }

    #[test]
    fn links_and_urls_are_dropped() {
        assert_eq!(
            clean(
                "An internal error has occurred. Please retry or report in \
                 https://developers.generativeai.google/guide/troubleshooting"
            ),
            "An internal error has occurred."
        );
        assert_eq!(
            clean(
                "You exceeded your current quota, please check your plan and billing details. \
                 For more information on this error, head to: \
                 https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current \
                 usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded"
            ),
            "You exceeded your current quota, please check your plan and billing details. \
             Quota exceeded"
        );
        assert_eq!(
            clean("violated Google's [Generative AI Prohibited Use policy](https://policies.google.com/x). Try again."),
            "violated Google's Generative AI Prohibited Use policy. Try again."
        );
        assert_eq!(clean("a [b] c (d) [e](f"), "a [b] c (d) [e](f");
        assert_eq!(
            clean("aspect_ratio must be one of '1:1', '16:9', or '21:9'.\n"),
            "aspect_ratio must be one of '1:1', '16:9', or '21:9'."
        );
        assert_eq!(
            clean_with("Quota exceeded. Please retry in 3s.", |s| s
                .starts_with("Please retry")),
            "Quota exceeded."
        );
    }
}
