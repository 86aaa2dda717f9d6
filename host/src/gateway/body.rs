//! The body of a generation response: a few shared [`Bytes`] pieces — the JSON around
//! the images and each image's base64, which is the very buffer the upstream body or
//! the cache entry arrived in — sent one after another, never joined into one more
//! copy of the megabytes. Cloning it (the hot cache does, per hit) copies no data.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// A response body made of pieces, with its exact length known up front (so the
/// response carries `Content-Length`).
#[derive(Debug, Clone, Default)]
pub struct Chunks {
    parts: VecDeque<Bytes>,
    len: u64,
}

impl Chunks {
    /// A body of `parts`, in order (empty pieces are dropped).
    pub fn new(parts: impl IntoIterator<Item = Bytes>) -> Chunks {
        let parts: VecDeque<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let len = parts.iter().map(|p| p.len() as u64).sum();
        Chunks { parts, len }
    }

    /// Bytes left to send.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole body as one buffer (a copy; for tests and small bodies).
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.len() {
            0 => Bytes::new(),
            1 => self.parts[0].clone(),
            _ => {
                let mut out = Vec::with_capacity(self.len as usize);
                for p in &self.parts {
                    out.extend_from_slice(p);
                }
                out.into()
            }
        }
    }
}

impl From<Bytes> for Chunks {
    fn from(body: Bytes) -> Chunks {
        Chunks::new([body])
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.parts.pop_front();
        if let Some(part) = &next {
            self.len -= part.len() as u64;
        }
        Poll::Ready(next.map(|p| Ok(Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_pieces_arrive_in_order_with_their_exact_length() {
        let body = Chunks::new([
            Bytes::from_static(b"{\"data\":[{\"b64_json\":\""),
            Bytes::new(),
            Bytes::from_static(b"QUJD"),
            Bytes::from_static(b"\"}]}"),
        ]);
        assert_eq!(body.size_hint().exact(), Some(30));
        assert_eq!(body.len(), 30);
        let whole = body.to_bytes();
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected, whole);
        assert_eq!(&collected[..], b"{\"data\":[{\"b64_json\":\"QUJD\"}]}");
        assert!(Chunks::default().is_end_stream());
    }
}
