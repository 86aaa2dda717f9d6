//! Reading an upstream answer into ONE buffer as it arrives: each chunk is copied (or,
//! gzip-encoded, inflated) into the final buffer and freed at once, so a megabyte
//! answer never exists twice — not as the received chunks plus a joined copy, nor as
//! the compressed body plus the inflated one. The buffer is the one the image data is
//! later shared from (`policy::blobs::extract_body`).

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};
use http_body_util::BodyExt;
use hyper::body::Body;

use super::TransportError;

/// The first allocation for an inflated body (Google sends chunked, so no size is stated); it
/// doubles from there. Room for a 1K image's answer (~180 KB), below glibc's mmap threshold
/// (`memory.rs`), so it is warm arena memory, not a fresh mapping faulted in page by page. A larger
/// answer is copied once or twice while small, then, past the threshold, grows by `mremap`.
const FIRST_GUESS: usize = 256 << 10;

/// Spare capacity kept at most (an eighth of the length); more is given back.
fn fit(mut out: Vec<u8>) -> Bytes {
    if out.capacity() > out.len() + out.len() / 8 {
        out.shrink_to_fit();
    }
    Bytes::from(out)
}

/// Gzip inflated straight into the final buffer (no staging copy), whose capacity never exceeds
/// `limit + 1`: a gzip bomb stops at the limit, however much one chunk would inflate to.
struct Inflater {
    z: Decompress,
    out: Vec<u8>,
    limit: usize,
    ended: bool,
}

/// What went wrong inflating: the message for `damaged`, or the limit was passed.
enum InflateError {
    Damaged(String),
    TooLarge,
}

impl Inflater {
    fn new(capacity: usize, limit: usize) -> Self {
        Inflater {
            z: Decompress::new_gzip(15),
            out: Vec::with_capacity(capacity.min(limit.saturating_add(1))),
            limit,
            ended: false,
        }
    }

    fn feed(&mut self, mut input: &[u8]) -> Result<(), InflateError> {
        while !input.is_empty() {
            if self.ended {
                return Err(InflateError::Damaged(
                    "data after the end of the gzip stream".into(),
                ));
            }
            if self.out.len() == self.out.capacity() {
                if self.out.len() > self.limit {
                    return Err(InflateError::TooLarge);
                }
                let room = self.out.len().max(FIRST_GUESS);
                let ceiling = self.limit + 1 - self.out.len();
                self.out.reserve_exact(room.min(ceiling));
            }
            let (before_in, before_out) = (self.z.total_in(), self.out.len());
            let status = self
                .z
                .decompress_vec(input, &mut self.out, FlushDecompress::None)
                .map_err(|e| InflateError::Damaged(e.to_string()))?;
            let used = (self.z.total_in() - before_in) as usize;
            input = &input[used..];
            match status {
                Status::StreamEnd => self.ended = true,
                Status::Ok | Status::BufError if used == 0 && self.out.len() == before_out => {
                    return Err(InflateError::Damaged("the stream makes no progress".into()));
                }
                Status::Ok | Status::BufError => {}
            }
        }
        if self.out.len() > self.limit {
            return Err(InflateError::TooLarge);
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>, InflateError> {
        if !self.ended {
            return Err(InflateError::Damaged("the gzip stream ends early".into()));
        }
        Ok(self.out)
    }
}

/// The whole body, inflated when `gzipped`, refused past `limit` bytes either way.
pub async fn read<B>(mut body: B, gzipped: bool, limit: usize) -> Result<Bytes, TransportError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let too_large =
        |what: &str| TransportError::Protocol(format!("the response {what} past {limit} bytes"));
    let stated = body.size_hint().exact().map(|n| n as usize).unwrap_or(0);
    if stated > limit {
        return Err(too_large("is"));
    }
    let inflate_error = |e: InflateError| match e {
        InflateError::Damaged(why) => {
            TransportError::Protocol(format!("the gzip-encoded response is damaged: {why}"))
        }
        InflateError::TooLarge => too_large("inflates"),
    };
    // A base64 image compresses to about three quarters: room for the inflated size, mostly untouched
    // (so not resident) if the guess is high, and grown if it is low.
    let capacity = if gzipped {
        stated.saturating_mul(3) / 2
    } else {
        stated
    }
    .min(limit);
    let mut plain = Vec::with_capacity(if gzipped { 0 } else { capacity });
    let mut inflate = gzipped.then(|| Inflater::new(capacity.max(FIRST_GUESS), limit));
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| TransportError::Protocol(format!("reading the response body: {e}")))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        received += chunk.len();
        if received > limit {
            return Err(too_large("is"));
        }
        match &mut inflate {
            Some(inflater) => inflater.feed(&chunk).map_err(inflate_error)?,
            None => plain.extend_from_slice(&chunk),
        }
    }
    match inflate {
        Some(inflater) => Ok(fit(inflater.finish().map_err(inflate_error)?)),
        None => Ok(fit(plain)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::body::Frame;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A body that arrives in `size`-byte chunks, with no length stated.
    struct Pieces(std::collections::VecDeque<Bytes>);

    impl Body for Pieces {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
        }
    }

    fn chunked(data: Vec<u8>, size: usize) -> Pieces {
        Pieces(data.chunks(size).map(Bytes::copy_from_slice).collect())
    }

    #[tokio::test]
    async fn plain_and_gzipped_bodies_arrive_whole_in_any_chunking() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for size in [1000, 4096, 65_536, 1 << 20] {
            let got = read(chunked(data.clone(), size), false, 10 << 20)
                .await
                .unwrap();
            assert_eq!(got, data);
            let got = read(chunked(gzip(&data), size), true, 10 << 20)
                .await
                .unwrap();
            assert_eq!(got, data);
        }
        let got = read(Full::new(Bytes::from(gzip(&data))), true, 10 << 20)
            .await
            .unwrap();
        assert_eq!(got, data);
    }

    #[tokio::test]
    async fn too_large_and_damaged_bodies_are_refused() {
        let data = vec![b'A'; 100_000];
        let e = read(Full::new(Bytes::from(data.clone())), false, 1000)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("past 1000 bytes"), "{e}");
        // A small gzip body that inflates past the limit (a gzip bomb).
        let e = read(Full::new(Bytes::from(gzip(&data))), true, 50_000)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("inflates past 50000 bytes"), "{e}");
        let mut bad = gzip(&data);
        bad.truncate(bad.len() / 2);
        let e = read(Full::new(Bytes::from(bad)), true, 1 << 20)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        let e = read(
            Full::new(Bytes::from_static(b"not gzip at all")),
            true,
            1 << 20,
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        // Bytes after the end of the stream are not silently dropped.
        let mut trailing = gzip(&data);
        trailing.extend_from_slice(b"garbage");
        let e = read(Full::new(Bytes::from(trailing)), true, 1 << 20)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("after the end"), "{e}");
    }

    #[tokio::test]
    async fn the_inflate_limit_is_exact_and_a_bomb_stops_at_it() {
        let data = vec![b'A'; 200_000];
        let got = read(Full::new(Bytes::from(gzip(&data))), true, 200_000)
            .await
            .unwrap();
        assert_eq!(got.len(), 200_000);
        let e = read(Full::new(Bytes::from(gzip(&data))), true, 199_999)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("inflates past 199999 bytes"), "{e}");
        // 32 MiB of zeros in one ~32 KB chunk: refused at the limit, never inflated whole.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..32 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        let e = read(chunked(bomb, 1 << 20), true, 1 << 20)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("inflates past"), "{e}");
    }
}
