//! WIT glue for the `safety-policy` world: converts the generated `aperture:policy`
//! types (generated in `crate::generated`) to and from the plain-Rust types and calls the
//! logic. The test variants under tests/guests/ reuse this file as it is.

use crate::generated::aperture::policy::types as wit;
use crate::generated::exports::aperture::policy::safety::{
    Block, Denial, Guest, PolicyConfig, Refusal, ReviewOutcome, Screening,
};
use crate::types as plain;

struct Component;

impl Guest for Component {
    fn screen(
        request: wit::ImageRequest,
        threshold: wit::SafetyThreshold,
        config: PolicyConfig,
    ) -> Screening {
        let config = plain::PolicyConfig {
            deny_list: config.deny_list,
        };
        match crate::policy::screen(&request.into(), threshold.into(), &config) {
            plain::Screening::Allow(settings) => Screening::Allow(
                settings
                    .into_iter()
                    .map(|s| wit::SafetySetting {
                        category: s.category,
                        threshold: s.threshold,
                    })
                    .collect(),
            ),
            plain::Screening::Deny(d) => Screening::Deny(Denial {
                reason: d.reason,
                code: d.code,
            }),
        }
    }

    fn review(verdict: wit::UpstreamVerdict) -> ReviewOutcome {
        let verdict = plain::UpstreamVerdict {
            block_reason: verdict.block_reason,
            finish_reason: verdict.finish_reason,
            ratings: verdict
                .ratings
                .into_iter()
                .map(|r| plain::SafetyRating {
                    category: r.category,
                    probability: r.probability,
                    blocked: r.blocked,
                })
                .collect(),
            finish_message: verdict.finish_message,
            text: verdict.text,
        };
        match crate::policy::review(&verdict) {
            plain::ReviewOutcome::Pass => ReviewOutcome::Pass,
            plain::ReviewOutcome::Blocked(b) => ReviewOutcome::Blocked(Block {
                reason: b.reason,
                code: b.code,
                categories: b.categories,
            }),
            plain::ReviewOutcome::NoImage(r) => ReviewOutcome::NoImage(Refusal {
                message: r.message,
                code: r.code,
                error_type: r.error_type.into(),
                status: r.status,
            }),
        }
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
            response_format: match r.response_format {
                wit::ResponseFormat::B64Json => plain::ResponseFormat::B64Json,
                wit::ResponseFormat::Url => plain::ResponseFormat::Url,
            },
            output_format: r.output_format.map(|f| match f {
                wit::OutputFormat::Png => plain::OutputFormat::Png,
                wit::OutputFormat::Jpeg => plain::OutputFormat::Jpeg,
                wit::OutputFormat::Webp => plain::OutputFormat::Webp,
            }),
        }
    }
}

impl From<plain::ErrorType> for wit::ErrorType {
    fn from(t: plain::ErrorType) -> Self {
        match t {
            plain::ErrorType::UserError => Self::UserError,
            plain::ErrorType::ApiError => Self::ApiError,
            plain::ErrorType::NetworkError => Self::NetworkError,
            plain::ErrorType::SystemError => Self::SystemError,
        }
    }
}
