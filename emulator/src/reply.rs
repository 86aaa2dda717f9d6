//! An answer before it goes on the wire: status, content type and the body as one piece or as stream events
//! (each sent, and compressed, as its own chunk). JSON is pretty-printed with two spaces, as Google's servers do.

use serde_json::Value;

use crate::errors::ApiError;

pub(crate) const JSON: &str = "application/json; charset=UTF-8";
pub(crate) const HTML: &str = "text/html; charset=UTF-8";
pub(crate) const SSE: &str = "text/event-stream";

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// The body in the pieces it is sent in (one piece unless streaming).
    pub chunks: Vec<Vec<u8>>,
}

/// Pretty-printed JSON (2-space indent).
pub(crate) fn pretty(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Self {
        Reply {
            status,
            content_type: JSON,
            chunks: vec![pretty(value)],
        }
    }

    pub fn ok(value: &Value) -> Self {
        Reply::json(200, value)
    }

    pub fn html(status: u16, page: &str) -> Self {
        Reply {
            status,
            content_type: HTML,
            chunks: vec![page.as_bytes().to_vec()],
        }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Reply::json(e.status, &e.body)
    }
}
