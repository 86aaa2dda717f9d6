//! What one generation produced (images as base64 text, revised prompt, usage),
//! and its compact byte format in the cache: a small JSON header, then the image
//! data back to back, so a hit costs one read and no base64 work.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One final image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenImage {
    /// MIME type, e.g. `image/png`.
    pub mime_type: String,
    /// Base64 data, exactly as the upstream sent it: usually a slice of the upstream
    /// body or of the cache entry it was read from (shared, never copied).
    pub b64: Bytes,
}

/// Token usage summed over the upstream calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub prompt: u32,
    /// Output (image + text) tokens.
    pub output: u32,
    /// Thinking tokens.
    pub thought: u32,
    /// Total tokens.
    pub total: u32,
}

impl TokenUsage {
    /// Add another call's usage.
    pub fn add(&mut self, other: TokenUsage) {
        self.prompt = self.prompt.saturating_add(other.prompt);
        self.output = self.output.saturating_add(other.output);
        self.thought = self.thought.saturating_add(other.thought);
        self.total = self.total.saturating_add(other.total);
    }
}

/// Everything a request produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generated {
    /// The images, in request order.
    pub images: Vec<GenImage>,
    /// Text the model returned, if any.
    pub revised_prompt: Option<String>,
    /// Token usage.
    pub usage: TokenUsage,
}

const MAGIC: &[u8; 4] = b"APC1";

/// Whether `data` holds only base64 characters (standard or URL-safe alphabet): text that
/// needs no escaping in a JSON string.
///
/// Every image of every answer passes through here, so it is written to vectorise: a branch-free test
/// per byte over 64-byte blocks (the compiler turns it into SIMD compares), one branch per block.
pub fn plain_base64(data: &[u8]) -> bool {
    #[inline(always)]
    fn plain(b: u8) -> bool {
        let letter = (b | 0x20).wrapping_sub(b'a') < 26;
        let digit = b.wrapping_sub(b'0') < 10;
        letter | digit | (b == b'+') | (b == b'/') | (b == b'=') | (b == b'-') | (b == b'_')
    }
    let blocks = data.chunks_exact(64);
    let tail = blocks.remainder();
    for block in blocks {
        if !block.iter().fold(true, |all, &b| all & plain(b)) {
            return false;
        }
    }
    tail.iter().all(|&b| plain(b))
}

#[derive(Serialize, Deserialize)]
struct Header {
    revised_prompt: Option<String>,
    usage: TokenUsage,
    images: Vec<(String, usize)>,
}

/// A result encoded for the cache ([`Generated::encoded`]): the header, then the image data back to back.
pub struct Encoded {
    head: Vec<u8>,
    images: Vec<Bytes>,
}

impl aperture_store::Payload for Encoded {
    fn len(&self) -> usize {
        self.head.len() + self.images.iter().map(Bytes::len).sum::<usize>()
    }

    fn write_to(&self, out: &mut [u8]) {
        let (head, mut rest) = out.split_at_mut(self.head.len());
        head.copy_from_slice(&self.head);
        for image in &self.images {
            let (this, after) = rest.split_at_mut(image.len());
            this.copy_from_slice(image);
            rest = after;
        }
    }
}

/// A cache payload that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[error("corrupt cache entry: {0}")]
pub struct CorruptEntry(&'static str);

impl Generated {
    /// Encode for the cache, as one buffer.
    pub fn encode(&self) -> Vec<u8> {
        let encoded = self.encoded();
        let mut out = vec![0; aperture_store::Payload::len(&encoded)];
        aperture_store::Payload::write_to(&encoded, &mut out);
        out
    }

    /// The cache payload with the images still shared: the store writes it straight into its page
    /// (the one copy of the images a cache write makes).
    pub fn encoded(&self) -> Encoded {
        let header = Header {
            revised_prompt: self.revised_prompt.clone(),
            usage: self.usage,
            images: self
                .images
                .iter()
                .map(|i| (i.mime_type.clone(), i.b64.len()))
                .collect(),
        };
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let mut head = Vec::with_capacity(8 + header.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&(header.len() as u32).to_le_bytes());
        head.extend_from_slice(&header);
        Encoded {
            head,
            images: self.images.iter().map(|i| i.b64.clone()).collect(),
        }
    }

    /// About the size of [`Generated::encode`]'s output (the image data; the header is small).
    pub fn encoded_len(&self) -> usize {
        self.images.iter().map(|i| i.b64.len() + 64).sum::<usize>() + 64
    }

    /// Decode a cache payload. The images are slices of `bytes` (no copy).
    pub fn decode(bytes: &Bytes) -> Result<Generated, CorruptEntry> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(CorruptEntry("bad magic"))?;
        let (len, rest) = rest
            .split_at_checked(4)
            .ok_or(CorruptEntry("truncated header length"))?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let header = rest.get(..len).ok_or(CorruptEntry("truncated header"))?;
        let header: Header =
            serde_json::from_slice(header).map_err(|_| CorruptEntry("bad header"))?;
        let mut at = MAGIC.len() + 4 + len;
        let mut images = Vec::with_capacity(header.images.len());
        for (mime_type, len) in header.images {
            let end = at
                .checked_add(len)
                .filter(|&end| end <= bytes.len())
                .ok_or(CorruptEntry("truncated image"))?;
            if !plain_base64(&bytes[at..end]) {
                return Err(CorruptEntry("image data is not base64"));
            }
            images.push(GenImage {
                mime_type,
                b64: bytes.slice(at..end),
            });
            at = end;
        }
        let data = &bytes[at..];
        if !data.is_empty() {
            return Err(CorruptEntry("trailing bytes"));
        }
        Ok(Generated {
            images,
            revised_prompt: header.revised_prompt,
            usage: header.usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_base64_accepts_exactly_the_two_alphabets_anywhere() {
        let reference =
            |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_');
        // Every byte value, in a 64-byte block and in the tail after blocks.
        for len in [1, 63, 64, 65, 200] {
            for at in [0, len / 2, len - 1] {
                for b in 0..=255u8 {
                    let mut data = vec![b'A'; len];
                    data[at] = b;
                    assert_eq!(
                        plain_base64(&data),
                        reference(b),
                        "byte {b:#x} at {at} of {len}"
                    );
                }
            }
        }
        assert!(plain_base64(b""));
    }

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        let g = Generated {
            images: vec![
                GenImage {
                    mime_type: "image/png".into(),
                    b64: "iVBORw0KGgo=".into(),
                },
                GenImage {
                    mime_type: "image/jpeg".into(),
                    b64: "/9j/4AAQ".into(),
                },
            ],
            revised_prompt: Some("a lake".into()),
            usage: TokenUsage {
                prompt: 3,
                output: 1120,
                thought: 10,
                total: 1133,
            },
        };
        let bytes = Bytes::from(g.encode());
        assert_eq!(Generated::decode(&bytes).unwrap(), g);
        assert!(Generated::decode(&bytes.slice(..bytes.len() - 1)).is_err());
        assert!(Generated::decode(&Bytes::from_static(b"junk")).is_err());
        // Image data that is not base64 is damage too.
        let mut bad = g.encode();
        let last = bad.len() - 1;
        bad[last] = b'"';
        assert!(Generated::decode(&Bytes::from(bad)).is_err());
    }
}
