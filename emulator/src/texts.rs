//! The words in answers: thought summaries, short and long (several KB, multi-byte) answer text, the refusal
//! sentence and the `finishMessage` of each finish reason (production's wording where it is published).

use crate::shape::FinishReason;

/// Sentences long text is built from; every one holds non-ASCII text so multi-byte handling is exercised all
/// through a long part.
const SENTENCES: [&str; 8] = [
    "The composition balances warm and cool tones — café lights, a naïve mural, and a façade in soft focus. ",
    "日本語のテキストも含まれています：夕焼けの空、静かな港、そして遠くの灯台。 ",
    "Details matter: the crème-coloured sky 🌅, reflections on wet cobblestones 🌧️, a cat on a windowsill 🐈. ",
    "Über dem Fluss liegt Nebel; die Brücke führt ins Unbekannte, schön und geheimnisvoll. ",
    "Los colores cálidos del atardecer se mezclan con el azul profundo del mar — ¡qué vista! ",
    "Emoji check: 🎨🖌️🖼️ ✨ and a family 👨‍👩‍👧 drawn in the corner for scale. ",
    "中文也可以：山水画的意境，云雾缭绕，层峦叠嶂。한국어도: 고요한 아침의 나라. ",
    "Ελληνικά και русский текст: свет, тень, и φως — the lighting is deliberate. ",
];

/// The thought summary before the images.
pub(crate) fn thought(prompt: &str, ratio: &str, size: &str) -> String {
    format!(
        "**Composing the scene**\n\nThe request asks for \"{}\". I'll lay it out at {ratio} ({size}), sketch a \
         draft to check the composition, then render the final image.",
        short(prompt)
    )
}

/// The prompt trimmed to 120 characters, for short text.
pub(crate) fn short(prompt: &str) -> String {
    let prompt = prompt.trim();
    let mut short: String = prompt.chars().take(120).collect();
    if short.len() < prompt.len() {
        short.push_str("...");
    }
    short
}

/// Short answer text before (or after) an image.
pub(crate) fn short_answer(prompt: &str, after: bool) -> String {
    if after {
        format!(
            "I hope this image of {} is what you had in mind.",
            short(prompt)
        )
    } else {
        format!("Here is the image you asked for: {}", short(prompt))
    }
}

/// 3-6 KB of text, deterministic per `seed`, starting with a summary of the prompt.
pub(crate) fn long_answer(prompt: &str, seed: &[u8; 32], after: bool) -> String {
    let target = 3072 + (u16::from_be_bytes([seed[0], seed[1]]) as usize) % 3072;
    let mut text = short_answer(prompt, after);
    text.push_str("\n\n");
    let mut i = 0;
    while text.len() < target {
        let pick = seed[i % 32] as usize + i;
        text.push_str(SENTENCES[pick % SENTENCES.len()]);
        if i % 5 == 4 {
            text.push_str("\n\n");
        }
        i += 1;
    }
    // Always all three kinds of multi-byte text, whatever the seed picked.
    text.push_str(SENTENCES[1]);
    text.push_str(SENTENCES[2]);
    text.push_str(SENTENCES[0]);
    text.trim_end().to_string()
}

/// The answer when only text was asked for.
pub(crate) fn description(prompt: &str) -> String {
    format!(
        "Here is a description of the image you asked for: {}",
        short(prompt)
    )
}

/// The text-only refusal.
pub(crate) const REFUSAL: &str = "I can't generate images that are sexually explicit.";

/// `finishMessage` for a reason; `support_code` fills IMAGE_PROHIBITED_CONTENT's.
pub(crate) fn finish_message(reason: FinishReason, support_code: u32) -> String {
    match reason {
        FinishReason::ImageSafety => "Unable to show the generated image. The image was filtered out because it \
            violated Google's [Generative AI Prohibited Use policy](https://policies.google.com/terms/generative-ai/use-policy). \
            You will not be charged for blocked images. Try rephrasing the prompt. If you think this was an error, \
            [send feedback](https://ai.google.dev/gemini-api/docs/troubleshooting)."
            .to_string(),
        FinishReason::ImageOther => "Unable to show the generated image. The model could not generate the image \
            based on the prompt provided. You will not be charged for this request. Try rephrasing the prompt."
            .to_string(),
        FinishReason::ImageProhibitedContent => format!(
            "Unable to show the generated image due to interests of third-party content providers. Please edit \
             your prompt and try again. If you think this was an error, send feedback. Support code: {support_code}"
        ),
        FinishReason::ImageRecitation => "Unable to show the generated image. The image was filtered out because \
            it may resemble existing protected content. You will not be charged for blocked images. Try rephrasing \
            the prompt."
            .to_string(),
        FinishReason::NoImage => "The model did not generate an image for this prompt. You will not be charged \
            for this request. Try rephrasing the prompt to describe the image you want."
            .to_string(),
        FinishReason::Recitation => "The response was stopped because it may recite existing content.".to_string(),
        FinishReason::MaxTokens => "The response was truncated because it reached the maximum number of output \
            tokens."
            .to_string(),
        FinishReason::Other => "The response was stopped for an unspecified reason.".to_string(),
        FinishReason::Safety => "The response was stopped because it may contain unsafe content.".to_string(),
        FinishReason::ProhibitedContent => {
            "The response was stopped because it may contain prohibited content.".to_string()
        }
        FinishReason::MalformedResponse => {
            "The model produced a malformed response. Try again.".to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_several_kb_of_multibyte_text() {
        for n in 0..8u8 {
            let text = long_answer("a cat", &[n.wrapping_mul(37); 32], false);
            assert!((3000..=6500).contains(&text.len()), "{}", text.len());
            assert!(text.contains("日本語") && text.contains('🌅') && text.contains("café"));
        }
    }

    #[test]
    fn published_finish_messages() {
        assert!(finish_message(FinishReason::ImageSafety, 0)
            .contains("[send feedback](https://ai.google.dev/gemini-api/docs/troubleshooting)."));
        assert!(
            finish_message(FinishReason::ImageProhibitedContent, 35512345)
                .ends_with("Support code: 35512345")
        );
    }
}
