//! WIT glue for the `request-translator` world of `aperture:policy@0.1.0`: the real
//! translator's glue (components/request-translator/src/bindings.rs) minus what 0.2.0
//! added (`output-format`, the verdict's `finish-message` and `text`).

wit_bindgen::generate!({
    path: "../../../wit/released/0.1.0",
    world: "request-translator",
});

use crate::types as plain;
use aperture::policy::types as wit;
use exports::aperture::policy::translator::{Guest, UpstreamOutcome, UserError};

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

export!(Component);

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
            output_format: None,
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
