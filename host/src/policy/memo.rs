//! Memoized results of the two component calls every request makes
//! (`translator.parse-request`, `safety.screen`), so a repeated request costs no
//! component call, no instance and no thread hop.
//!
//! The components are pure functions of their inputs (DESIGN), so a result is
//! reusable as long as it is looked up by *what produced it*: the key is the sha256
//! of the function, the sha256 of the serving version and the complete input (the
//! exact body text for parse; the canonical request, threshold and policy config,
//! deny-list included, for screen). A swap changes the version sha, so old entries
//! are simply never asked for again and age out of the bounded cache.
//!
//! Only `Ok` results are kept (traps and timeouts never are; a parse `user_error`
//! is a pure result and is), only when the request's pin has no candidate in play
//! for the slot (no shadow: its comparison must run; not served by a canary: the
//! canary's counters and automatic abort must see real calls), and only for inputs
//! up to [`MAX_INPUT`] bytes.

use std::fmt::Write as _;
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;
use sha2::{Digest, Sha256};

use super::slot::{Pin, Version};
use super::{ImageRequest, PolicyConfig, SafetyThreshold, Screening, UserError};

/// Inputs longer than this (the body for parse, the prompt for screen) are not memoized.
pub const MAX_INPUT: usize = 16 << 10;

/// Default byte budget of the parse memo (approximate weight of keys and values).
pub const PARSE_BUDGET: u64 = 8 << 20;

/// Default byte budget of the screen memo.
pub const SCREEN_BUDGET: u64 = 2 << 20;

/// The sha256 naming one memoizable call: function, version and exact input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoKey([u8; 32]);

/// What a memo lookup found.
#[derive(Debug)]
pub enum Lookup<R> {
    /// The result of an earlier identical call on the same version.
    Hit(R),
    /// Call the component; remember the result under the key, if there is one
    /// (`None`: this call may not be memoized).
    Miss(Option<MemoKey>),
}

/// A memoized value and its approximate size in bytes.
struct Entry<R> {
    value: R,
    weight: u64,
}

#[derive(Clone)]
struct ByWeight;

impl<R> Weighter<MemoKey, Arc<Entry<R>>> for ByWeight {
    fn weight(&self, _: &MemoKey, entry: &Arc<Entry<R>>) -> u64 {
        entry.weight
    }
}

type Table<R> = Cache<MemoKey, Arc<Entry<R>>, ByWeight>;

/// The memo of the hot-path calls: bounded, concurrent, shared by every request.
pub struct Memo {
    parse: Table<Result<ImageRequest, UserError>>,
    screen: Table<Screening>,
}

impl Default for Memo {
    fn default() -> Self {
        Memo::with_budgets(PARSE_BUDGET, SCREEN_BUDGET)
    }
}

/// Feeds formatted text straight into a sha256 (no intermediate string).
struct HashWriter(Sha256);

impl std::fmt::Write for HashWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

/// The version whose result a call on `pin` may reuse or store: the active one,
/// when no candidate takes part in this request.
pub(crate) fn eligible<P>(pin: &Pin<P>) -> Option<&Arc<Version<P>>> {
    (pin.shadow.is_none() && !pin.on_canary()).then_some(&pin.active)
}

/// A hasher started with the function and the version (fixed-length hex sha256),
/// each terminated so no two (function, version) pairs share a prefix.
fn start(function: &str, version_sha256: &str) -> HashWriter {
    let mut h = Sha256::new();
    h.update(b"aperture-memo\0");
    h.update(function.as_bytes());
    h.update(b"\0");
    h.update(version_sha256.as_bytes());
    h.update(b"\0");
    HashWriter(h)
}

/// The key of `parse-request(body)` on the version `version_sha256`, unless the body is too long.
pub fn parse_key(version_sha256: &str, body: &str) -> Option<MemoKey> {
    if body.len() > MAX_INPUT {
        return None;
    }
    let mut h = start("parse-request", version_sha256);
    h.0.update(body.as_bytes());
    Some(MemoKey(h.0.finalize().into()))
}

/// The key of `screen(request, threshold, config)` on the version `version_sha256`,
/// unless the prompt is too long. The inputs are written in their `Debug` form, which
/// names every field and quotes and escapes every string, so distinct inputs never
/// write the same text.
pub fn screen_key(
    version_sha256: &str,
    request: &ImageRequest,
    threshold: SafetyThreshold,
    config: &PolicyConfig,
) -> Option<MemoKey> {
    let size = request.prompt.len() + request.style.as_ref().map_or(0, String::len);
    if size > MAX_INPUT {
        return None;
    }
    let mut h = start("screen", version_sha256);
    write!(h, "{request:?}\0{threshold:?}\0{config:?}").ok()?;
    Some(MemoKey(h.0.finalize().into()))
}

/// Approximate bytes held by a parse result (key and bookkeeping included).
fn parse_weight(r: &Result<ImageRequest, UserError>) -> u64 {
    let strings = match r {
        Ok(q) => {
            q.model.len()
                + q.upstream_model.len()
                + q.prompt.len()
                + q.aspect_ratio.len()
                + q.image_size.len()
                + q.style.as_ref().map_or(0, String::len)
        }
        Err(e) => e.message.len() + e.code.len() + e.param.as_ref().map_or(0, String::len),
    };
    (256 + strings) as u64
}

/// Approximate bytes held by a screening.
fn screen_weight(s: &Screening) -> u64 {
    let strings: usize = match s {
        Screening::Allow(settings) => settings
            .iter()
            .map(|s| s.category.len() + s.threshold.len() + 48)
            .sum(),
        Screening::Deny(d) => d.reason.len() + d.code.len(),
    };
    (160 + strings) as u64
}

impl Memo {
    /// A memo holding about `parse_bytes` of parse results and `screen_bytes` of screenings.
    pub fn with_budgets(parse_bytes: u64, screen_bytes: u64) -> Memo {
        Memo {
            parse: Cache::with_weighter(
                (parse_bytes / 512).max(16) as usize,
                parse_bytes,
                ByWeight,
            ),
            screen: Cache::with_weighter(
                (screen_bytes / 256).max(16) as usize,
                screen_bytes,
                ByWeight,
            ),
        }
    }

    /// A remembered parse result.
    pub fn parse(&self, key: &MemoKey) -> Option<Result<ImageRequest, UserError>> {
        self.parse.get(key).map(|e| e.value.clone())
    }

    /// Remember a parse result.
    pub fn remember_parse(&self, key: MemoKey, value: Result<ImageRequest, UserError>) {
        let weight = parse_weight(&value);
        self.parse.insert(key, Arc::new(Entry { value, weight }));
    }

    /// A remembered screening.
    pub fn screen(&self, key: &MemoKey) -> Option<Screening> {
        self.screen.get(key).map(|e| e.value.clone())
    }

    /// Remember a screening.
    pub fn remember_screen(&self, key: MemoKey, value: Screening) {
        let weight = screen_weight(&value);
        self.screen.insert(key, Arc::new(Entry { value, weight }));
    }

    /// Entries held (parse, screen).
    pub fn entries(&self) -> (usize, usize) {
        (self.parse.len(), self.screen.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ResponseFormat, SafetySetting};

    fn request(prompt: &str) -> ImageRequest {
        ImageRequest {
            model: "gemini-3-pro-image".into(),
            upstream_model: "gemini-3-pro-image-preview".into(),
            prompt: prompt.into(),
            n: 1,
            aspect_ratio: "1:1".into(),
            image_size: "1K".into(),
            style: None,
            safety_threshold: None,
            response_format: ResponseFormat::B64Json,
            output_format: None,
        }
    }

    fn config(terms: &[&str]) -> PolicyConfig {
        PolicyConfig {
            deny_list: terms.iter().map(|t| t.to_string()).collect(),
        }
    }

    const V1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const V2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn parse_keys_separate_versions_and_bodies_and_stop_at_the_cap() {
        let a = parse_key(V1, r#"{"prompt":"a"}"#).unwrap();
        assert_eq!(Some(a), parse_key(V1, r#"{"prompt":"a"}"#));
        assert_ne!(Some(a), parse_key(V2, r#"{"prompt":"a"}"#));
        assert_ne!(Some(a), parse_key(V1, r#"{"prompt":"a" }"#));
        let at_cap = "x".repeat(MAX_INPUT);
        assert!(parse_key(V1, &at_cap).is_some());
        assert!(parse_key(V1, &format!("{at_cap}x")).is_none());
    }

    #[test]
    fn screen_keys_cover_request_threshold_and_every_deny_list_term() {
        let base = screen_key(
            V1,
            &request("a cat"),
            SafetyThreshold::Medium,
            &config(&["x"]),
        );
        let same = screen_key(
            V1,
            &request("a cat"),
            SafetyThreshold::Medium,
            &config(&["x"]),
        );
        assert!(base.is_some());
        assert_eq!(base, same);
        for other in [
            screen_key(
                V2,
                &request("a cat"),
                SafetyThreshold::Medium,
                &config(&["x"]),
            ),
            screen_key(
                V1,
                &request("a dog"),
                SafetyThreshold::Medium,
                &config(&["x"]),
            ),
            screen_key(
                V1,
                &request("a cat"),
                SafetyThreshold::High,
                &config(&["x"]),
            ),
            screen_key(
                V1,
                &request("a cat"),
                SafetyThreshold::Medium,
                &config(&["y"]),
            ),
            screen_key(
                V1,
                &request("a cat"),
                SafetyThreshold::Medium,
                &config(&["x", "y"]),
            ),
            screen_key(V1, &request("a cat"), SafetyThreshold::Medium, &config(&[])),
            // The same characters split differently between terms.
            screen_key(
                V1,
                &request("a cat"),
                SafetyThreshold::Medium,
                &config(&["x\", \"y"]),
            ),
            screen_key(
                V1,
                &ImageRequest {
                    safety_threshold: Some(SafetyThreshold::Off),
                    ..request("a cat")
                },
                SafetyThreshold::Medium,
                &config(&["x"]),
            ),
        ] {
            assert!(other.is_some());
            assert_ne!(base, other);
        }
        assert!(screen_key(
            V1,
            &request(&"p".repeat(MAX_INPUT + 1)),
            SafetyThreshold::Medium,
            &config(&[])
        )
        .is_none());
    }

    #[test]
    fn the_memo_is_bounded_by_its_budget() {
        let memo = Memo::with_budgets(64 << 10, 16 << 10);
        for i in 0..2000 {
            let key = parse_key(V1, &format!("body {i}")).unwrap();
            memo.remember_parse(key, Ok(request(&"p".repeat(200))));
            let key = screen_key(
                V1,
                &request(&i.to_string()),
                SafetyThreshold::Low,
                &config(&[]),
            )
            .unwrap();
            memo.remember_screen(
                key,
                Screening::Allow(vec![SafetySetting {
                    category: "HARM_CATEGORY_HARASSMENT".into(),
                    threshold: "BLOCK_ONLY_HIGH".into(),
                }]),
            );
        }
        let (parse, screen) = memo.entries();
        assert!(parse > 0 && parse * 456 <= 64 << 10, "{parse}");
        assert!(screen > 0 && screen * 200 <= 16 << 10, "{screen}");
    }
}
