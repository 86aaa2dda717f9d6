//! WIT glue for the `request-translator` world: converts the generated
//! `aperture:policy` types (generated in `crate::generated`) to and from the plain-Rust types and calls the
//! logic. The test variants under tests/guests/ reuse this file as it is.

use crate::generated::aperture::policy::types as wit;
use crate::generated::exports::aperture::policy::translator::{Guest, UpstreamOutcome, UserError};
use crate::types as plain;

struct Component;

impl Guest for Component {
    fn cache_namespace() -> String {
        crate::CACHE_NAMESPACE.to_string()
    }

    fn parse_request(body: String) -> Result<wit::ImageRequest, UserError> {
        crate::request::parse_request(&body)
            .map(Into::into)
            .map_err(|e| UserError {
                message: e.message,
                param: e.param,
                code: e.code,
            })
    }

    fn build_upstream_body(
        request: wit::ImageRequest,
        settings: Vec<wit::SafetySetting>,
    ) -> String {
        let settings: Vec<plain::SafetySetting> = settings
            .into_iter()
            .map(|s| plain::SafetySetting {
                category: s.category,
                threshold: s.threshold,
            })
            .collect();
        crate::upstream::build_upstream_body(&request.into(), &settings)
    }

    fn parse_response(body: String) -> Result<UpstreamOutcome, String> {
        crate::response::parse_response(&body).map(|outcome| match outcome {
            plain::UpstreamOutcome::Images(g) => UpstreamOutcome::Images(g.into()),
            plain::UpstreamOutcome::NoImage(v) => UpstreamOutcome::NoImage(v.into()),
        })
    }

    fn build_response(
        result: wit::Generation,
        format: wit::ResponseFormat,
        created: u64,
    ) -> String {
        crate::response::build_response(&result.into(), format.into(), created)
    }
}

crate::generated::export!(Component with_types_in crate::generated);

impl From<wit::SafetyThreshold> for plain::SafetyThreshold {
    fn from(t: wit::SafetyThreshold) -> Self {
        match t {
            wit::SafetyThreshold::Off => Self::Off,
            wit::SafetyThreshold::Low => Self::Low,
            wit::SafetyThreshold::Medium => Self::Medium,
            wit::SafetyThreshold::High => Self::High,
        }
    }
}

impl From<plain::SafetyThreshold> for wit::SafetyThreshold {
    fn from(t: plain::SafetyThreshold) -> Self {
        match t {
            plain::SafetyThreshold::Off => Self::Off,
            plain::SafetyThreshold::Low => Self::Low,
            plain::SafetyThreshold::Medium => Self::Medium,
            plain::SafetyThreshold::High => Self::High,
        }
    }
}

impl From<wit::ResponseFormat> for plain::ResponseFormat {
    fn from(f: wit::ResponseFormat) -> Self {
        match f {
            wit::ResponseFormat::B64Json => Self::B64Json,
            wit::ResponseFormat::Url => Self::Url,
        }
    }
}

impl From<plain::ResponseFormat> for wit::ResponseFormat {
    fn from(f: plain::ResponseFormat) -> Self {
        match f {
            plain::ResponseFormat::B64Json => Self::B64Json,
            plain::ResponseFormat::Url => Self::Url,
        }
    }
}

impl From<wit::OutputFormat> for plain::OutputFormat {
    fn from(f: wit::OutputFormat) -> Self {
        match f {
            wit::OutputFormat::Png => Self::Png,
            wit::OutputFormat::Jpeg => Self::Jpeg,
            wit::OutputFormat::Webp => Self::Webp,
        }
    }
}

impl From<plain::OutputFormat> for wit::OutputFormat {
    fn from(f: plain::OutputFormat) -> Self {
        match f {
            plain::OutputFormat::Png => Self::Png,
            plain::OutputFormat::Jpeg => Self::Jpeg,
            plain::OutputFormat::Webp => Self::Webp,
        }
    }
}

impl From<wit::ImageRequest> for plain::ImageRequest {
    fn from(r: wit::ImageRequest) -> Self {
        Self {
            model: r.model,
            upstream_model: r.upstream_model,
            prompt: r.prompt,
            n: r.n,
            aspect_ratio: r.aspect_ratio,
            image_size: r.image_size,
            style: r.style,
            safety_threshold: r.safety_threshold.map(Into::into),
            response_format: r.response_format.into(),
            output_format: r.output_format.map(Into::into),
        }
    }
}

impl From<plain::ImageRequest> for wit::ImageRequest {
    fn from(r: plain::ImageRequest) -> Self {
        Self {
            model: r.model,
            upstream_model: r.upstream_model,
            prompt: r.prompt,
            n: r.n,
            aspect_ratio: r.aspect_ratio,
            image_size: r.image_size,
            style: r.style,
            safety_threshold: r.safety_threshold.map(Into::into),
            response_format: r.response_format.into(),
            output_format: r.output_format.map(Into::into),
        }
    }
}

impl From<plain::UpstreamVerdict> for wit::UpstreamVerdict {
    fn from(v: plain::UpstreamVerdict) -> Self {
        Self {
            block_reason: v.block_reason,
            finish_reason: v.finish_reason,
            ratings: v
                .ratings
                .into_iter()
                .map(|r| wit::SafetyRating {
                    category: r.category,
                    probability: r.probability,
                    blocked: r.blocked,
                })
                .collect(),
            finish_message: v.finish_message,
            text: v.text,
        }
    }
}

impl From<plain::Usage> for wit::Usage {
    fn from(u: plain::Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            output_tokens: u.output_tokens,
            thought_tokens: u.thought_tokens,
            total_tokens: u.total_tokens,
        }
    }
}

impl From<wit::Usage> for plain::Usage {
    fn from(u: wit::Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            output_tokens: u.output_tokens,
            thought_tokens: u.thought_tokens,
            total_tokens: u.total_tokens,
        }
    }
}

impl From<plain::Generation> for wit::Generation {
    fn from(g: plain::Generation) -> Self {
        Self {
            images: g
                .images
                .into_iter()
                .map(|i| wit::Image {
                    blob: i.blob,
                    mime_type: i.mime_type,
                })
                .collect(),
            revised_prompt: g.revised_prompt,
            usage: g.usage.into(),
        }
    }
}

impl From<wit::Generation> for plain::Generation {
    fn from(g: wit::Generation) -> Self {
        Self {
            images: g
                .images
                .into_iter()
                .map(|i| plain::Image {
                    blob: i.blob,
                    mime_type: i.mime_type,
                })
                .collect(),
            revised_prompt: g.revised_prompt,
            usage: g.usage.into(),
        }
    }
}
