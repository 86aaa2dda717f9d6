//! Putting a reply on the wire as Google's front end does: `server: scaffolding on HTTPServer2`, chunked
//! transfer (no content-length), and gzip when the client accepts it, flushed per chunk so stream events
//! arrive as they are sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use http::{HeaderValue, Response, StatusCode};
use hyper::body::{Body, Frame, SizeHint};

use crate::reply::Reply;

/// A body sent as a series of chunks of unknown total length (so HTTP/1.1 uses chunked transfer).
#[derive(Debug, Default)]
pub(crate) struct ChunkedBody {
    chunks: VecDeque<Bytes>,
}

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.chunks.pop_front().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Whether an `accept-encoding` value allows gzip (`gzip`, `x-gzip` or `*`, unless `;q=0`).
pub(crate) fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|value| {
        value.split(',').any(|item| {
            let mut params = item.split(';');
            let coding = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = params.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            matches!(coding.as_str(), "gzip" | "x-gzip" | "*") && !refused
        })
    })
}

/// Compresses the chunks as one gzip stream, sync-flushed after each chunk.
fn gzip(chunks: Vec<Vec<u8>>) -> Vec<Bytes> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let mut out = Vec::with_capacity(chunks.len() + 1);
    for chunk in chunks {
        if encoder
            .write_all(&chunk)
            .and_then(|_| encoder.flush())
            .is_err()
        {
            break;
        }
        out.push(Bytes::from(std::mem::take(encoder.get_mut())));
    }
    match encoder.finish() {
        Ok(tail) => out.push(Bytes::from(tail)),
        Err(e) => tracing::error!(error = %e, "gzip failed"),
    }
    out
}

/// The HTTP response for a reply, gzip-compressed when `gzip` is set.
pub(crate) fn to_response(reply: Reply, gzip_it: bool) -> Response<ChunkedBody> {
    let chunks: Vec<Bytes> = if gzip_it {
        gzip(reply.chunks)
    } else {
        reply.chunks.into_iter().map(Bytes::from).collect()
    };
    let body = ChunkedBody {
        chunks: chunks.into_iter().filter(|c| !c.is_empty()).collect(),
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    headers.insert(
        http::header::SERVER,
        HeaderValue::from_static("scaffolding on HTTPServer2"),
    );
    headers.insert(
        http::header::VARY,
        HeaderValue::from_static("Origin, X-Origin, Referer"),
    );
    if gzip_it {
        headers.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn accept_encoding_values() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=0.5, br")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("br")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn flushed_chunks_decode_as_one_stream() {
        let chunks = gzip(vec![b"hello ".to_vec(), "wörld".as_bytes().to_vec()]);
        assert!(chunks.len() >= 3);
        let all: Vec<u8> = chunks.concat();
        let mut text = String::new();
        flate2::read::GzDecoder::new(all.as_slice())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello wörld");
    }
}
