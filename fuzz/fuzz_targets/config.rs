//! Config parsing, the two stages as `aperture serve` runs them: the TOML file
//! (`RawConfig::from_toml_all`), the environment over it (`apply_env`), then
//! `Config::validate`. Nothing may panic, and every bad setting is reported: each
//! unknown or wrongly typed key of the file, and each bad environment value, is named in
//! the problems, all at once.
#![no_main]

use std::collections::BTreeMap;

use aperture::config::{Config, RawConfig};
use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// The type each known key wants.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    Str,
    U64,
    U32,
    F64,
    StrList,
}

/// Every key of the file, by section ("" for the top level).
const KEYS: &[(&str, &[(&str, Want)])] = &[
    ("", &[("listen", Want::Str), ("data_dir", Want::Str)]),
    (
        "upstream",
        &[
            ("base_url", Want::Str),
            ("connect_timeout_ms", Want::U64),
            ("request_timeout_ms", Want::U64),
            ("max_attempts", Want::U32),
            ("request_deadline_ms", Want::U64),
            ("max_concurrent_calls", Want::U32),
            ("max_queued_calls", Want::U32),
        ],
    ),
    (
        "cache",
        &[
            ("backend", Want::Str),
            ("max_size_mb", Want::F64),
            ("ttl_seconds", Want::U64),
        ],
    ),
    (
        "safety",
        &[("threshold", Want::Str), ("deny_list", Want::StrList)],
    ),
    (
        "components",
        &[
            ("translator", Want::Str),
            ("safety", Want::Str),
            ("classifier", Want::Str),
            ("timeout_ms", Want::U64),
            ("max_memory_mb", Want::U64),
        ],
    ),
    (
        "server",
        &[
            ("max_body_bytes", Want::U64),
            ("body_timeout_ms", Want::U64),
        ],
    ),
    (
        "auth",
        &[("api_keys", Want::StrList), ("admin_key", Want::Str)],
    ),
];

const ENV: &[&str] = &[
    "APERTURE_LISTEN",
    "APERTURE_DATA_DIR",
    "APERTURE_UPSTREAM_URL",
    "GEMINI_IMAGE_SAFETY_THRESHOLD",
    "APERTURE_DENY_LIST",
    "CACHE_BACKEND",
    "CACHE_MAX_SIZE_MB",
    "CACHE_TTL_SECONDS",
    "APERTURE_API_KEY",
    "APERTURE_ADMIN_KEY",
];

const WORDS: &[&str] = &[
    "127.0.0.1:0",
    "[::1]:8045",
    "localhost:80",
    "http://127.0.0.1:9",
    "https://x",
    "ftp://x",
    "",
    " ",
    "OFF",
    "low",
    "MEDIUM",
    "extreme",
    "redb",
    "filesystem",
    "memory",
    "none",
    "floppy",
    "0",
    "1",
    "-1",
    "1e309",
    "NaN",
    "inf",
    "0.5",
    "18446744073709551616",
    "ap-key-123456",
    "short",
    ",",
    "a,b",
    "/nonexistent.wasm",
];

fn word(u: &mut Unstructured) -> Result<String> {
    Ok(if u.ratio(2, 3)? {
        u.choose(WORDS)?.to_string()
    } else {
        u.arbitrary()?
    })
}

fn value(u: &mut Unstructured, depth: u8) -> Result<toml::Value> {
    Ok(match u.int_in_range(0..=if depth > 1 { 4 } else { 6 })? {
        0 => toml::Value::String(word(u)?),
        1 => toml::Value::Integer(u.arbitrary()?),
        2 => toml::Value::Integer(u.int_in_range(-2..=5000)?),
        3 => toml::Value::Float(u.arbitrary()?),
        4 => toml::Value::Boolean(u.arbitrary()?),
        5 => {
            let mut items = Vec::new();
            for _ in 0..u.int_in_range(0..=3)? {
                items.push(if u.ratio(3, 4)? {
                    toml::Value::String(word(u)?)
                } else {
                    value(u, depth + 1)?
                });
            }
            toml::Value::Array(items)
        }
        _ => {
            let mut t = toml::Table::new();
            for _ in 0..u.int_in_range(0..=3)? {
                t.insert(word(u)?, value(u, depth + 1)?);
            }
            toml::Value::Table(t)
        }
    })
}

fn fits(want: Want, v: &toml::Value) -> bool {
    match (want, v) {
        (Want::Str, toml::Value::String(_)) => true,
        (Want::U64, toml::Value::Integer(i)) => *i >= 0,
        (Want::U32, toml::Value::Integer(i)) => (0..=i64::from(u32::MAX)).contains(i),
        (Want::F64, toml::Value::Integer(_) | toml::Value::Float(_)) => true,
        (Want::StrList, toml::Value::Array(a)) => a.iter().all(toml::Value::is_str),
        _ => false,
    }
}

struct Input {
    toml: String,
    /// The names the problems must mention: every bad key of a generated file.
    bad_keys: Vec<String>,
    env: BTreeMap<&'static str, String>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "toml:\n{}\nbad keys: {:?}\nenv: {:?}",
            self.toml, self.bad_keys, self.env
        )
    }
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut bad_keys = Vec::new();
        let toml = if u.ratio(1, 4)? {
            u.arbitrary()?
        } else {
            let mut root = toml::Table::new();
            for _ in 0..u.int_in_range(0..=8)? {
                let (section, keys) = *u.choose(KEYS)?;
                let (key, want, unknown) = if u.ratio(1, 6)? {
                    let name = format!("x_{}", u.int_in_range(0..=99u8)?);
                    (name, Want::Str, true)
                } else {
                    let (k, w) = *u.choose(keys)?;
                    (k.to_string(), w, false)
                };
                let v = if u.ratio(3, 4)? && !unknown {
                    match want {
                        Want::Str => toml::Value::String(word(u)?),
                        Want::U64 => toml::Value::Integer(u.int_in_range(0..=i64::MAX)?),
                        Want::U32 => toml::Value::Integer(u.int_in_range(0..=10)?),
                        Want::F64 => toml::Value::Float(u.arbitrary()?),
                        Want::StrList => toml::Value::Array(vec![toml::Value::String(word(u)?)]),
                    }
                } else {
                    value(u, 0)?
                };
                let table = if section.is_empty() {
                    &mut root
                } else {
                    match root
                        .entry(section)
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    {
                        toml::Value::Table(t) => t,
                        _ => unreachable!("sections are only inserted as tables"),
                    }
                };
                table.insert(key, v);
            }
            for (name, v) in &root {
                match KEYS.iter().find(|(s, _)| s == name) {
                    Some((_, keys)) => {
                        let toml::Value::Table(t) = v else {
                            unreachable!()
                        };
                        for (k, v) in t {
                            match keys.iter().find(|(n, _)| n == k) {
                                Some((_, want)) if fits(*want, v) => {}
                                _ => bad_keys.push(k.clone()),
                            }
                        }
                    }
                    None => match KEYS[0].1.iter().find(|(n, _)| n == name) {
                        Some((_, want)) if fits(*want, v) => {}
                        _ => bad_keys.push(name.clone()),
                    },
                }
            }
            toml::to_string(&root).expect("a table renders")
        };
        let mut env = BTreeMap::new();
        for _ in 0..u.int_in_range(0..=4)? {
            env.insert(*u.choose(ENV)?, word(u)?);
        }
        Ok(Input {
            toml,
            bad_keys,
            env,
        })
    }
}

/// The name a problem with environment variable `name` = `v` must mention, if `v` is bad.
fn bad_env(name: &str, v: &str) -> Option<&'static str> {
    let bad = match name {
        "APERTURE_LISTEN" => v.parse::<std::net::SocketAddr>().is_err(),
        "GEMINI_IMAGE_SAFETY_THRESHOLD" => {
            !["OFF", "LOW", "MEDIUM", "HIGH"].contains(&v.trim().to_ascii_uppercase().as_str())
        }
        "CACHE_BACKEND" => ![
            "redb",
            "filesystem",
            "disk",
            "memory",
            "none",
            "off",
            "disabled",
        ]
        .contains(&v.trim().to_ascii_lowercase().as_str()),
        "CACHE_MAX_SIZE_MB" => !v
            .trim()
            .parse::<f64>()
            .is_ok_and(|n| n.is_finite() && n > 0.0),
        "CACHE_TTL_SECONDS" => !v.trim().parse::<u64>().is_ok_and(|n| n > 0),
        "APERTURE_API_KEY" => v
            .split(',')
            .map(str::trim)
            .any(|k| !k.is_empty() && k.len() < 8),
        "APERTURE_ADMIN_KEY" => !v.is_empty() && v.len() < 8,
        _ => false,
    };
    let mention = match name {
        "APERTURE_LISTEN" => "listen",
        "APERTURE_API_KEY" => "client API keys",
        other => ENV.iter().find(|e| **e == other).copied().unwrap_or(""),
    };
    bad.then_some(mention)
}

fuzz_target!(|input: Input| {
    let (mut raw, mut problems) = RawConfig::from_toml_all(&input.toml);
    if toml::from_str::<toml::Table>(&input.toml).is_ok() {
        for key in &input.bad_keys {
            assert!(
                problems.iter().any(|p| p.contains(key.as_str())),
                "bad key {key} not reported: {problems:?}\n{input:?}"
            );
        }
    }
    raw.apply_env(|k| input.env.get(k).cloned(), &mut problems);
    let result = Config::validate(raw, problems);
    let problems = result.as_ref().err().cloned().unwrap_or_default();
    for (name, v) in &input.env {
        if let Some(mention) = bad_env(name, v) {
            assert!(
                problems.iter().any(|p| p.contains(mention)),
                "{name}={v:?} not reported: {problems:?}\n{input:?}"
            );
        }
    }
    if result.is_err() {
        assert!(!problems.is_empty() && problems.iter().all(|p| !p.is_empty()));
    }
});
