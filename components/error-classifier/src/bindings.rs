//! WIT glue for the `error-classifier` world: converts the generated `aperture:policy`
//! types to and from the plain-Rust types and calls the logic.

wit_bindgen::generate!({
    path: "../../wit",
    world: "error-classifier",
});

use crate::types as plain;
use aperture::policy::types::ErrorType;
use exports::aperture::policy::classifier::{
    AccountAction, Classification, Failure, Guest, TransportKind,
};

struct Component;

impl Guest for Component {
    fn classify(failure: Failure) -> Classification {
        let failure = match failure {
            Failure::Http(h) => plain::Failure::Http(plain::HttpFailure {
                status: h.status,
                headers: h.headers,
                body: h.body,
            }),
            Failure::Transport(t) => plain::Failure::Transport(plain::TransportFailure {
                kind: match t.kind {
                    TransportKind::Connect => plain::TransportKind::Connect,
                    TransportKind::Timeout => plain::TransportKind::Timeout,
                    TransportKind::Tls => plain::TransportKind::Tls,
                    TransportKind::Protocol => plain::TransportKind::Protocol,
                },
                message: t.message,
            }),
        };
        let c = crate::classify::classify(&failure);
        Classification {
            error_type: match c.error_type {
                plain::ErrorType::UserError => ErrorType::UserError,
                plain::ErrorType::ApiError => ErrorType::ApiError,
                plain::ErrorType::NetworkError => ErrorType::NetworkError,
                plain::ErrorType::SystemError => ErrorType::SystemError,
            },
            code: c.code,
            client_status: c.client_status,
            retryable: c.retryable,
            message: c.message,
            account_action: match c.account_action {
                plain::AccountAction::None => AccountAction::None,
                plain::AccountAction::CoolDown(ms) => AccountAction::CoolDown(ms),
                plain::AccountAction::ExhaustedUntilReset => AccountAction::ExhaustedUntilReset,
                plain::AccountAction::Disable(reason) => AccountAction::Disable(reason),
                plain::AccountAction::DisableForModel(reason) => {
                    AccountAction::DisableForModel(reason)
                }
            },
        }
    }
}

export!(Component);
