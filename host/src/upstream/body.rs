//! Reading an upstream answer into ONE buffer as it arrives: each chunk is copied (or,
//! gzip-encoded, inflated) into the final buffer and freed at once, so a megabyte
//! answer never exists twice — not as the received chunks plus a joined copy, nor as
//! the compressed body plus the inflated one. The buffer is the one the image data is
//! later shared from (`policy::blobs::extract_body`).

use std::io::Write;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body;

use super::TransportError;

/// Compressed bytes inflated between two checks of the limit (at most ~4 MiB of output each).
const INFLATE_STEP: usize = 4096;

/// Spare capacity kept at most (an eighth of the length); more is given back.
fn fit(mut out: Vec<u8>) -> Bytes {
    if out.capacity() > out.len() + out.len() / 8 {
        out.shrink_to_fit();
    }
    Bytes::from(out)
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
    let damaged = |e: std::io::Error| {
        TransportError::Protocol(format!("the gzip-encoded response is damaged: {e}"))
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
    let mut inflate = gzipped.then(|| flate2::write::GzDecoder::new(Vec::with_capacity(capacity)));
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
            // A little at a time: deflate inflates up to ~1000x, so a whole chunk of a gzip bomb
            // could overshoot the limit by tens of megabytes before the check.
            Some(decoder) => {
                for piece in chunk.chunks(INFLATE_STEP) {
                    decoder.write_all(piece).map_err(damaged)?;
                    if decoder.get_ref().len() > limit {
                        return Err(too_large("inflates"));
                    }
                }
            }
            None => plain.extend_from_slice(&chunk),
        }
    }
    match inflate {
        Some(decoder) => {
            let out = decoder.finish().map_err(damaged)?;
            if out.len() > limit {
                return Err(too_large("inflates"));
            }
            Ok(fit(out))
        }
        None => Ok(fit(plain)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::body::Frame;

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
    }
}
