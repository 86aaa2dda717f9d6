//! Per-call shape directives in the prompt text: whitespace-separated `emu:<name>=<value>` tokens anywhere in
//! the user's text override the instance-wide shape for that one call. Unknown names and values are errors, so
//! a typo fails loudly instead of silently producing the default shape.

use crate::shape::{Shape, ShapeError};

/// The token prefix.
pub const PREFIX: &str = "emu:";

/// The shape the directives in `prompt` ask for (empty when there are none).
pub(crate) fn parse(prompt: &str) -> Result<Shape, ShapeError> {
    let mut shape = Shape::default();
    for token in prompt.split_whitespace() {
        let Some(directive) = token.strip_prefix(PREFIX) else {
            continue;
        };
        match directive.split_once('=') {
            Some((name, value)) => shape.set(name, value)?,
            None => {
                return Err(ShapeError::UnknownName {
                    name: directive.to_string(),
                })
            }
        }
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::{Layout, Mime, TextMode};

    #[test]
    fn tokens_anywhere_in_the_text() {
        let shape =
            parse("a cat emu:layout=drafts-4\nin a hat\temu:text=echo emu:mime=png").unwrap();
        assert_eq!(shape.layout, Some(Layout::Drafts(4)));
        assert_eq!(shape.text, Some(TextMode::Echo));
        assert_eq!(shape.mime, Some(Mime::Png));
        assert_eq!(
            parse("no directives: emu is a bird").unwrap(),
            Shape::default()
        );
    }

    #[test]
    fn the_last_repeat_wins_and_typos_fail() {
        assert_eq!(
            parse("emu:mime=png emu:mime=jpeg").unwrap().mime,
            Some(Mime::Jpeg)
        );
        assert!(parse("emu:mine=png").is_err());
        assert!(parse("emu:layout").is_err());
        assert!(parse("emu:text=echo.").is_err());
    }
}
