//! Upstream text is not trusted to keep secrets: an error message that echoes an
//! account key or the client's prompt is redacted before it reaches the client,
//! the log or an account's disable reason.

/// What replaces an account secret.
pub const SECRET: &str = "[redacted key]";
/// What replaces the client's prompt.
pub const PROMPT: &str = "[prompt]";

/// Secrets shorter than this are not searched for (they would match ordinary text).
const MIN_SECRET: usize = 8;

/// Redacts account secrets and one prompt from upstream text.
#[derive(Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    prompt: String,
}

impl Redactor {
    /// A redactor for these secrets and this request's prompt.
    pub fn new(mut secrets: Vec<String>, prompt: &str) -> Redactor {
        secrets.retain(|s| s.len() >= MIN_SECRET);
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor {
            secrets,
            prompt: prompt.trim().to_string(),
        }
    }

    /// `text` with every secret and the prompt replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        // The prompt first: it may contain a secret-looking string, never the reverse.
        if self.prompt.chars().count() >= 4 && out.contains(&self.prompt) {
            out = out.replace(&self.prompt, PROMPT);
        }
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), SECRET);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_the_prompt_are_replaced_everywhere() {
        let r = Redactor::new(
            vec![
                "AIzaSyA-one".into(),
                "AIzaSyA-one-longer".into(),
                "short".into(),
            ],
            "  a red fox  ",
        );
        assert_eq!(
            r.redact("key AIzaSyA-one-longer and AIzaSyA-one; prompt 'a red fox' short"),
            "key [redacted key] and [redacted key]; prompt '[prompt]' short"
        );
        assert_eq!(r.redact("nothing here"), "nothing here");
    }
}
