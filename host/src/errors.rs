//! Every failure a client can see, and the ONE place that turns a failure into
//! the OpenAI-shaped error response (like linkerd's `ServerRescue`).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::policy::ErrorType;

/// A request failure, made where it happens, rendered by [`GatewayError::render`].
/// Cloneable so that coalesced identical requests can share one outcome.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// No or wrong client key.
    #[error("missing or invalid API key: send `Authorization: Bearer <key>` with a key the operator issued")]
    Unauthorized,
    /// Admin API without the admin key, or the admin API is off.
    #[error("{0}")]
    AdminUnauthorized(&'static str),
    /// The admin key was sent where a client key is needed.
    #[error("this is the gateway's admin key, which only opens /admin/*; send a client key instead (one issued with `aperture keys add` or listed in APERTURE_API_KEY)")]
    AdminKeyAsClientKey,
    /// Refused by a limit of the client key or of the client's address.
    #[error(transparent)]
    Limit(#[from] crate::limiter::LimitError),
    /// The store failed while checking the client key: the key may well be valid, so this is not a 401.
    #[error("the gateway could not check the API key because its storage failed ({0}); retry shortly, or contact the operator if it persists")]
    AuthStorage(String),
    /// Body over the limit.
    #[error("the request body is larger than {limit} bytes; send a smaller body")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body did not arrive in time.
    #[error("the request body did not arrive within {secs} seconds; send it again")]
    BodyTimeout {
        /// The limit in seconds.
        secs: u64,
    },
    /// The request target is longer than the gateway accepts.
    #[error(
        "the request URL is longer than {limit} bytes; send parameters in the JSON body instead"
    )]
    UriTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request headers are larger than the gateway accepts.
    #[error(
        "the request headers are larger than {limit} bytes in total; send fewer or shorter headers"
    )]
    HeadersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Unknown path.
    #[error("no such endpoint {0}; see GET /v1/models and POST /v1/images/generations")]
    NotFound(String),
    /// Wrong method for a path.
    #[error("method {method} is not allowed on {path}; use {allowed}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The path.
        path: String,
        /// The allowed method(s).
        allowed: &'static str,
    },
    /// The request was refused by the translator (or is not even text).
    #[error("{message}")]
    InvalidRequest {
        /// What to fix.
        message: String,
        /// The field at fault.
        param: Option<String>,
        /// `IMG_*` code.
        code: String,
    },
    /// A safety block, local or upstream.
    #[error("{reason}")]
    SafetyBlocked {
        /// What happened and what to do.
        reason: String,
        /// Harm categories the upstream named.
        categories: Vec<String>,
        /// True when the local policy refused before any upstream call.
        local: bool,
        /// True when the prompt was refused (locally, or by the upstream's prompt feedback),
        /// false when the upstream refused the image it generated.
        prompt: bool,
    },
    /// An upstream failure as classified by the error-classifier component.
    #[error("{message}")]
    Upstream {
        /// The family.
        error_type: ErrorType,
        /// `IMG_*` code.
        code: String,
        /// The client status.
        status: u16,
        /// What happened and what to do.
        message: String,
        /// Seconds for `Retry-After`, for 429/503.
        retry_after: Option<u64>,
    },
    /// The upstream answered without an image for a reason that is not a safety
    /// block (the model declined, recited, produced nothing), as the safety policy
    /// reports it. A final outcome: never cached, never retried on another account.
    #[error("{message}")]
    NoImage {
        /// What happened and what to do.
        message: String,
        /// `IMG_*` code (`IMG_NO_IMAGE`).
        code: String,
        /// `USER_ERROR` when rephrasing helps, else `API_ERROR`.
        error_type: ErrorType,
        /// The client status.
        status: u16,
    },
    /// The client closed the connection before the answer was sent (logged as
    /// 499; the client never sees it).
    #[error("the client closed the connection before the answer was sent{}", if *completed { "; the images were generated and cached, so a retry is served from the cache" } else { "" })]
    ClientClosed {
        /// Whether the request completed (and its images were cached).
        completed: bool,
    },
    /// An admin API request that cannot be carried out (unknown account, duplicate label, bad input).
    #[error("{message}")]
    Admin {
        /// HTTP status (400, 404, 409).
        status: u16,
        /// `IMG_*` code.
        code: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// A configuration reload was refused: the file or environment has these problems,
    /// and the running configuration is unchanged.
    #[error("the configuration has {} problem(s) and was not reloaded; the running configuration is unchanged. Fix the file and reload again: {}", problems.len(), problems.join("; "))]
    ConfigRejected {
        /// Every problem found.
        problems: Vec<String>,
    },
    /// A policy component failed verification and was not installed; `report` is its
    /// verification report (sent beside the error).
    #[error("the component was refused: {reason}")]
    ComponentRefused {
        /// The first reason it was refused.
        reason: String,
        /// The whole verification report.
        report: serde_json::Value,
    },
    /// Every account is cooling down or out of quota.
    #[error("all upstream accounts are out of quota or cooling down; retry after {retry_after} seconds, or ask the operator to add accounts")]
    QuotaExhausted {
        /// Seconds until the earliest account is usable.
        retry_after: u64,
    },
    /// Too many upstream calls are in flight and queued: the request is shed.
    #[error("the gateway is at its limit of concurrent upstream calls; retry after {retry_after} seconds")]
    Overloaded {
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// Every enabled account's key has no quota at all for the model.
    #[error("no enabled upstream account can use {model}: each has no quota for it (limit: 0); the operator must enable billing on an account's project, add an account, or re-enable one (aperture accounts enable)")]
    NoAccountForModel {
        /// The upstream model id.
        model: String,
    },
    /// No account is configured or enabled.
    #[error("no upstream account is available: the operator must add or enable one (aperture accounts add)")]
    NoAccounts,
    /// A policy component failed (trap, timeout, bad output). The text is a short
    /// summary; the full trap (with the guest's backtrace) goes to the log only.
    #[error("a policy component of the gateway failed: {0}; the request was not completed, try again or contact the operator")]
    Policy(String),
    /// The store failed.
    #[error("the gateway's storage failed ({0}); try again or contact the operator")]
    Storage(String),
    /// Anything else inside the gateway.
    #[error("internal gateway error ({0}); try again or contact the operator")]
    Internal(String),
}

impl From<crate::policy::PolicyError> for GatewayError {
    fn from(e: crate::policy::PolicyError) -> Self {
        tracing::error!(error = %e, "policy component failure");
        GatewayError::Policy(e.summary())
    }
}

impl From<aperture_store::StoreError> for GatewayError {
    fn from(e: aperture_store::StoreError) -> Self {
        GatewayError::Storage(e.to_string())
    }
}

/// The operator-facing name of an error family (`USER_ERROR`, ...).
pub fn error_type_name(t: ErrorType) -> &'static str {
    match t {
        ErrorType::UserError => "USER_ERROR",
        ErrorType::ApiError => "API_ERROR",
        ErrorType::NetworkError => "NETWORK_ERROR",
        ErrorType::SystemError => "SYSTEM_ERROR",
    }
}

impl GatewayError {
    /// HTTP status for the client.
    pub fn status(&self) -> StatusCode {
        use GatewayError::*;
        match self {
            Unauthorized | AdminUnauthorized(_) | AdminKeyAsClientKey => StatusCode::UNAUTHORIZED,
            Limit(e) => StatusCode::from_u16(e.status()).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
            BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            InvalidRequest { .. } | SafetyBlocked { .. } => StatusCode::BAD_REQUEST,
            Upstream { status, .. } | NoImage { status, .. } => StatusCode::from_u16(*status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::BAD_GATEWAY),
            Admin { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ConfigRejected { .. } | ComponentRefused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            QuotaExhausted { .. } => StatusCode::TOO_MANY_REQUESTS,
            ClientClosed { .. } => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            NoAccounts | NoAccountForModel { .. } | Overloaded { .. } | AuthStorage(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Policy(_) | Storage(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error family.
    pub fn error_type(&self) -> ErrorType {
        use GatewayError::*;
        match self {
            Unauthorized
            | AdminUnauthorized(_)
            | AdminKeyAsClientKey
            | Limit(_)
            | BodyTooLarge { .. }
            | BodyTimeout { .. }
            | UriTooLong { .. }
            | HeadersTooLarge { .. }
            | NotFound(_)
            | MethodNotAllowed { .. }
            | InvalidRequest { .. }
            | SafetyBlocked { .. }
            | ClientClosed { .. }
            | Admin { .. }
            | ConfigRejected { .. }
            | ComponentRefused { .. } => ErrorType::UserError,
            Upstream { error_type, .. } | NoImage { error_type, .. } => *error_type,
            QuotaExhausted { .. } => ErrorType::ApiError,
            NoAccounts
            | NoAccountForModel { .. }
            | Overloaded { .. }
            | Policy(_)
            | Storage(_)
            | AuthStorage(_)
            | Internal(_) => ErrorType::SystemError,
        }
    }

    /// The `IMG_*` code.
    pub fn code(&self) -> &str {
        use GatewayError::*;
        match self {
            Unauthorized | AdminUnauthorized(_) | AdminKeyAsClientKey => "IMG_UNAUTHORIZED",
            Limit(e) => e.code(),
            BodyTooLarge { .. } => "IMG_PAYLOAD_TOO_LARGE",
            BodyTimeout { .. } => "IMG_REQUEST_TIMEOUT",
            UriTooLong { .. } => "IMG_URI_TOO_LONG",
            HeadersTooLarge { .. } => "IMG_HEADERS_TOO_LARGE",
            NotFound(_) => "IMG_NOT_FOUND",
            MethodNotAllowed { .. } => "IMG_METHOD_NOT_ALLOWED",
            InvalidRequest { code, .. } | Upstream { code, .. } | NoImage { code, .. } => code,
            SafetyBlocked { .. } => "IMG_SAFETY_BLOCKED",
            Admin { code, .. } => code,
            ConfigRejected { .. } => "IMG_CONFIG_INVALID",
            ComponentRefused { .. } => "IMG_COMPONENT_REFUSED",
            QuotaExhausted { .. } => "IMG_QUOTA_EXHAUSTED",
            ClientClosed { .. } => "IMG_CLIENT_CLOSED",
            NoAccounts | NoAccountForModel { .. } => "IMG_NO_ACCOUNTS",
            Overloaded { .. } => "IMG_OVERLOADED",
            Policy(_) => "IMG_POLICY_FAILURE",
            Storage(_) | AuthStorage(_) => "IMG_STORAGE_FAILURE",
            Internal(_) => "IMG_INTERNAL_ERROR",
        }
    }

    /// Seconds for `Retry-After` (every 429 and 503 carries one).
    pub fn retry_after(&self) -> Option<u64> {
        let explicit = match self {
            GatewayError::QuotaExhausted { retry_after }
            | GatewayError::Overloaded { retry_after } => Some(*retry_after),
            GatewayError::Upstream {
                retry_after: Some(secs),
                ..
            } => Some(*secs),
            GatewayError::NoAccounts | GatewayError::NoAccountForModel { .. } => Some(60),
            GatewayError::Limit(e) => e.retry_after(),
            _ => None,
        };
        explicit.or(match self.status() {
            StatusCode::SERVICE_UNAVAILABLE => Some(5),
            StatusCode::TOO_MANY_REQUESTS => Some(60),
            _ => None,
        })
    }

    fn openai_type(&self) -> &'static str {
        match self.status().as_u16() {
            401 => "authentication_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            GatewayError::InvalidRequest { param, .. } => param.as_deref(),
            GatewayError::SafetyBlocked { .. } => Some("prompt"),
            GatewayError::Limit(e) => e.param(),
            GatewayError::NoImage {
                error_type: ErrorType::UserError,
                ..
            } => Some("prompt"),
            _ => None,
        }
    }

    /// Render the client response — the only place an error becomes HTTP.
    pub fn render(&self, request_id: &str) -> Response<Full<Bytes>> {
        let mut error = json!({
            "message": self.to_string(),
            "type": self.openai_type(),
            "param": self.param(),
            "code": self.code(),
            "error_type": error_type_name(self.error_type()),
            "request_id": request_id,
        });
        if let GatewayError::SafetyBlocked { categories, .. } = self {
            if !categories.is_empty() {
                error["categories"] = json!(categories);
            }
        }
        if let GatewayError::ConfigRejected { problems } = self {
            error["problems"] = json!(problems);
        }
        let body = match self {
            GatewayError::ComponentRefused { report, .. } => {
                json!({ "error": error, "report": report })
            }
            _ => json!({ "error": error }),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after() {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if let GatewayError::MethodNotAllowed { allowed, .. } = self {
            headers.insert(http::header::ALLOW, HeaderValue::from_static(allowed));
        }
        if matches!(
            self,
            GatewayError::Unauthorized
                | GatewayError::AdminUnauthorized(_)
                | GatewayError::AdminKeyAsClientKey
        ) {
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", v);
        }
        response
    }
}
