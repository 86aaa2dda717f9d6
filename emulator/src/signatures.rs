//! Thought signatures: opaque, deterministic per prompt and part, either short (88 base64 characters) or as
//! large as production's (an image signature of 1,087,904 payload bytes, about 1.45 MB of base64; text ones of
//! 0.2-8 KB). Real ones are protobuf (`EqCzQg...` = field 2, length 1,087,904); so are these, filled from a
//! sha256 stream. Large ones are cached.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::shape::SignatureSize;

/// Payload length of the published real image signature.
pub(crate) const REAL_IMAGE_PAYLOAD: usize = 1_087_904;

/// What the signature is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Carrier {
    Image,
    Text,
}

/// `size` signature for part `index` of the answer to the prompt with `hash`.
pub(crate) fn signature(
    cache: &SignatureCache,
    hash: &[u8; 32],
    index: usize,
    carrier: Carrier,
    size: SignatureSize,
) -> Arc<String> {
    let seed: [u8; 32] = {
        let mut h = Sha256::new();
        h.update(b"thought-signature");
        h.update(hash);
        h.update((index as u64).to_be_bytes());
        h.update([carrier as u8]);
        h.finalize().into()
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    match size {
        SignatureSize::Short => {
            let mut bytes = seed.to_vec();
            bytes.extend_from_slice(&Sha256::digest(seed));
            Arc::new(b64.encode(bytes))
        }
        SignatureSize::Real => {
            let key = (seed, carrier);
            if let Some(hit) = cache.get(&key) {
                return hit;
            }
            let payload = match carrier {
                Carrier::Image => REAL_IMAGE_PAYLOAD,
                // 150..=6000 bytes: 200 to 8000 base64 characters with the header.
                Carrier::Text => 150 + (u16::from_be_bytes([seed[0], seed[1]]) as usize) % 5851,
            };
            let encoded = Arc::new(b64.encode(protobuf_blob(&seed, payload)));
            cache.put(key, encoded.clone());
            encoded
        }
    }
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7F) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn varint_len(n: usize) -> usize {
    let mut v = Vec::new();
    varint(n, &mut v);
    v.len()
}

/// Field 2 (`payload` bytes) holding field 1, a sha256 stream: the framing of production signatures.
fn protobuf_blob(seed: &[u8; 32], payload: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload + 6);
    out.push(0x12);
    varint(payload, &mut out);
    let inner = (1..=5)
        .map(|len| payload.saturating_sub(1 + len))
        .find(|inner| 1 + varint_len(*inner) + inner == payload)
        .unwrap_or(0);
    out.push(0x0A);
    varint(inner, &mut out);
    let mut block: [u8; 32] = *seed;
    let end = out.len() + inner;
    while out.len() < end {
        block = Sha256::digest(block).into();
        let take = (end - out.len()).min(32);
        out.extend_from_slice(&block[..take]);
    }
    out
}

type Key = ([u8; 32], Carrier);

/// The last few large signatures.
pub(crate) struct SignatureCache {
    entries: Mutex<VecDeque<(Key, Arc<String>)>>,
}

const SIGNATURE_CACHE_ENTRIES: usize = 24;

impl SignatureCache {
    pub fn new() -> Self {
        SignatureCache {
            entries: Mutex::new(VecDeque::new()),
        }
    }

    fn get(&self, key: &Key) -> Option<Arc<String>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: Key, value: Arc<String>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| *k != key);
        entries.push_front((key, value));
        entries.truncate(SIGNATURE_CACHE_ENTRIES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_determinism() {
        let cache = SignatureCache::new();
        let hash = [7u8; 32];
        let short = signature(&cache, &hash, 0, Carrier::Image, SignatureSize::Short);
        assert_eq!(short.len(), 88);
        let real = signature(&cache, &hash, 0, Carrier::Image, SignatureSize::Real);
        assert!(real.starts_with("EqCzQg"), "{}", &real[..10]);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(real.as_bytes())
            .unwrap();
        assert_eq!(bytes.len(), REAL_IMAGE_PAYLOAD + 4);
        let again = signature(
            &SignatureCache::new(),
            &hash,
            0,
            Carrier::Image,
            SignatureSize::Real,
        );
        assert_eq!(real, again);
        for index in 0..20 {
            let text = signature(&cache, &hash, index, Carrier::Text, SignatureSize::Real);
            assert!((200..=8192).contains(&text.len()), "{}", text.len());
        }
        assert_ne!(
            signature(&cache, &hash, 1, Carrier::Image, SignatureSize::Short),
            short
        );
    }
}
