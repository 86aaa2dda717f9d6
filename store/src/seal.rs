//! Account secrets at rest: the operator's 32-byte [`SecretKey`] and the ChaCha20-Poly1305 sealing of each
//! secret (a fresh random 96-bit nonce per secret, the account's id and label as associated data, so a
//! sealed secret copied onto another account row does not open).
//!
//! Stored form: `v1:` followed by base64 (standard, padded) of `nonce || ciphertext || tag`.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::error::StoreError;

/// Prefix of a sealed secret's stored form (the format version).
const SEALED_PREFIX: &str = "v1:";
/// Nonce length of ChaCha20-Poly1305.
const NONCE_LEN: usize = 12;

/// The key account secrets are encrypted with: 32 bytes, written as 64 hex digits (`openssl rand -hex 32`)
/// or as standard base64 (`openssl rand -base64 32`). Its `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(****)")
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl SecretKey {
    /// Parses a key written as 64 hex digits or as base64 of 32 bytes (surrounding whitespace, such as
    /// a key file's trailing newline, is ignored). The error never repeats the text.
    pub fn parse(text: &str) -> Result<SecretKey, StoreError> {
        let text = text.trim();
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut key = [0u8; 32];
            for (i, pair) in text.as_bytes().chunks(2).enumerate() {
                let hex = std::str::from_utf8(pair).unwrap_or("00");
                key[i] = u8::from_str_radix(hex, 16).unwrap_or(0);
            }
            return Ok(SecretKey(key));
        }
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                Ok(SecretKey(key))
            }
            _ => Err(StoreError::SecretKey(format!(
                "the key is not 32 bytes written as 64 hex digits or base64 ({} characters given); \
                 generate one with `openssl rand -hex 32`",
                text.chars().count()
            ))),
        }
    }

    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(bytes)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

/// Whether a stored secret is sealed (rather than plain text from before encryption was configured).
pub(crate) fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// The associated data binding a sealed secret to its account.
fn associated_data(id: u64, label: &str) -> Vec<u8> {
    format!("aperture:account:{id}:{label}").into_bytes()
}

/// Seals `secret` for the account `id`/`label`.
pub(crate) fn seal(
    key: &SecretKey,
    id: u64,
    label: &str,
    secret: &str,
) -> Result<String, StoreError> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let aad = associated_data(id, label);
    let sealed = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| StoreError::SecretKey("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!(
        "{SEALED_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(out)
    ))
}

/// Opens a sealed secret of account `id`/`label`. Fails when the key is not the one it was sealed with
/// (or the row was tampered with).
pub(crate) fn open(
    key: &SecretKey,
    id: u64,
    label: &str,
    stored: &str,
) -> Result<String, StoreError> {
    let wrong = || {
        StoreError::SecretKey(format!(
            "the secret of account {label:?} (id {id}) does not decrypt with this key: the key is not \
             the one the secrets were encrypted with (or the row was altered)"
        ))
    };
    let b64 = stored.strip_prefix(SEALED_PREFIX).ok_or_else(wrong)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| {
            StoreError::Corrupt(format!("account row {id}: sealed secret is not base64"))
        })?;
    if bytes.len() < NONCE_LEN + 16 {
        return Err(StoreError::Corrupt(format!(
            "account row {id}: sealed secret is too short"
        )));
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let aad = associated_data(id, label);
    let plain = key
        .cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| wrong())?;
    String::from_utf8(plain)
        .map_err(|_| StoreError::Corrupt(format!("account row {id}: secret is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn parses_hex_and_base64_and_rejects_the_rest() {
        let a = SecretKey::parse(&format!("  {HEX}\n")).unwrap();
        let b = SecretKey::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        assert_eq!(a, b);
        assert_eq!(format!("{a:?}"), "SecretKey(****)");
        for bad in [
            "",
            "short",
            &HEX[..62],
            &format!("{HEX}00"),
            "zz".repeat(32).as_str(),
        ] {
            let e = SecretKey::parse(bad).unwrap_err().to_string();
            assert!(e.contains("openssl rand -hex 32"), "{e}");
            assert!(bad.len() < 8 || !e.contains(bad), "{e}");
        }
    }

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let key = SecretKey::parse(HEX).unwrap();
        let s1 = seal(&key, 7, "main", "AIza-secret").unwrap();
        let s2 = seal(&key, 7, "main", "AIza-secret").unwrap();
        assert!(is_sealed(&s1) && !is_sealed("AIza-secret"));
        assert_ne!(s1, s2, "a fresh nonce per seal");
        assert!(!s1.contains("AIza"));
        assert_eq!(open(&key, 7, "main", &s1).unwrap(), "AIza-secret");
    }

    #[test]
    fn wrong_key_or_other_account_does_not_open() {
        let key = SecretKey::parse(HEX).unwrap();
        let other = SecretKey::from_bytes([9; 32]);
        let s = seal(&key, 7, "main", "AIza-secret").unwrap();
        assert!(matches!(
            open(&other, 7, "main", &s),
            Err(StoreError::SecretKey(_))
        ));
        assert!(matches!(
            open(&key, 8, "main", &s),
            Err(StoreError::SecretKey(_))
        ));
        assert!(matches!(
            open(&key, 7, "spare", &s),
            Err(StoreError::SecretKey(_))
        ));
    }
}
