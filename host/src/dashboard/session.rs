//! Dashboard sign-in sessions: a random token handed to the browser in an HttpOnly, SameSite=Strict cookie
//! after the admin key was posted through the sign-in form, kept in memory (as its sha256) with an expiry.
//! A restart signs everyone out; the admin key itself is never stored in the browser nor put in a URL.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "aperture_dashboard";
/// How long a sign-in lasts.
pub const TTL_MS: u64 = 12 * 3_600_000;
/// The most sessions kept at once; signing in past it ends the oldest one.
pub const MAX_SESSIONS: usize = 256;

/// The live sessions: sha256 of the token -> expiry (unix ms).
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], u64>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// Start a session; the token for the cookie.
    pub fn create(&self, now_ms: u64) -> String {
        let token = format!(
            "{:016x}{:016x}{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>(),
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, exp| *exp > now_ms);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k) {
                live.remove(&oldest);
            }
        }
        live.insert(digest(&token), now_ms + TTL_MS);
        token
    }

    /// Whether `token` is a live session.
    pub fn valid(&self, token: &str, now_ms: u64) -> bool {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(&digest(token)).is_some_and(|exp| *exp > now_ms)
    }

    /// End the session of `token`.
    pub fn end(&self, token: &str) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.remove(&digest(token));
    }
}

/// The session token in a request's `Cookie` headers.
pub fn token_of(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie(token: &str) -> String {
    format!(
        "{COOKIE}={token}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}",
        TTL_MS / 1000
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_end_and_stay_bounded() {
        let s = Sessions::default();
        let t = s.create(0);
        assert_eq!(t.len(), 64);
        assert!(s.valid(&t, 1));
        assert!(!s.valid(&t, TTL_MS));
        assert!(!s.valid("nope", 1));
        s.end(&t);
        assert!(!s.valid(&t, 1));
        let first = s.create(10);
        for i in 0..MAX_SESSIONS as u64 {
            s.create(11 + i);
        }
        assert!(!s.valid(&first, 20), "the oldest session makes room");
        assert_eq!(s.live.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("a=b; aperture_dashboard=tok123; c=d"),
        );
        assert_eq!(token_of(&h).as_deref(), Some("tok123"));
        assert!(set_cookie("x").contains("HttpOnly; SameSite=Strict"));
    }
}
