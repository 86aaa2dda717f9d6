//! The client side of the admin API, used by `aperture accounts|keys|cache`.
//! Secrets are read from stdin or a named environment variable, never argv.

use std::io::{IsTerminal, Read};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use crate::cli::{AccountsAction, CacheAction, KeysAction, LimitArgs, Remote};

/// Print one line on stdout. A reader that went away (`aperture accounts list | head`)
/// ends the program quietly with success, as Unix tools do, instead of a panic.
macro_rules! out {
    ($($arg:tt)*) => {
        crate::admin_client::write_line(format_args!($($arg)*))
    };
}

/// A label or id as one URL path segment (`team a` -> `team%20a`, `a/b` -> `a%2Fb`).
pub(crate) fn segment(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// The body of [`out!`].
pub fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{args}").and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// Read a secret: from `$env_name` if given, else stdin (prompting on a terminal).
pub fn read_secret(env_name: Option<&str>, what: &str) -> Result<String> {
    let secret = match env_name {
        Some(name) => std::env::var(name)
            .with_context(|| format!("environment variable {name} is not set"))?,
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("Paste the {what}, then press Enter and Ctrl-D:");
            }
            let mut s = String::new();
            stdin
                .lock()
                .read_to_string(&mut s)
                .context("reading the secret from stdin")?;
            s
        }
    };
    let secret = secret.trim().to_string();
    if secret.is_empty() {
        bail!("the {what} is empty: pipe it on stdin (e.g. `printf %s \"$KEY\" | aperture …`) or use --secret-env");
    }
    Ok(secret)
}

async fn call(remote: &Remote, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
    let body = body.map(|v| Bytes::from(v.to_string()));
    let bytes = request(remote, method, path, body).await?;
    Ok(serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)})))
}

/// One admin API request with the admin key (a JSON body when given); the raw
/// answer of a 2xx, else an error with the gateway's own message.
pub(crate) async fn request(
    remote: &Remote,
    method: Method,
    path: &str,
    body: Option<Bytes>,
) -> Result<Bytes> {
    let (status, bytes) = request_with_status(remote, method, path, body).await?;
    if !status.is_success() {
        let msg = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        bail!("the gateway refused ({status}): {msg}");
    }
    Ok(bytes)
}

/// [`request`] that hands back any answer with its status.
pub(crate) async fn request_with_status(
    remote: &Remote,
    method: Method,
    path: &str,
    body: Option<Bytes>,
) -> Result<(http::StatusCode, Bytes)> {
    let admin_key = std::env::var("APERTURE_ADMIN_KEY").map_err(|_| {
        anyhow!("set APERTURE_ADMIN_KEY to the gateway's admin key (demo mode prints one at start)")
    })?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let url = format!("{}{path}", remote.server.trim_end_matches('/'));
    let mut builder = Request::builder()
        .method(method)
        .uri(&url)
        .header("authorization", format!("Bearer {admin_key}"));
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let request = builder
        .body(Full::new(body.unwrap_or_default()))
        .with_context(|| format!("bad server URL {url}"))?;
    let response = client.request(request).await.with_context(|| {
        format!(
            "cannot reach the gateway at {} (is it running? see --server)",
            remote.server
        )
    })?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .context("reading the gateway's answer")?
        .to_bytes();
    Ok((status, bytes))
}

fn print(remote: &Remote, value: &Value, table: impl FnOnce(&Value)) {
    if remote.json {
        out!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        table(value);
    }
}

/// A JSON string without quotes (other values as JSON).
fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn state_text(state: &Value) -> String {
    let kind = state["kind"].as_str().unwrap_or("?");
    let until = state["until_ms"]
        .as_u64()
        .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64));
    match (kind, until) {
        ("cooling_down", Some(t)) => {
            format!("cooling down until {}", t.format("%Y-%m-%dT%H:%M:%SZ"))
        }
        ("exhausted", Some(t)) => {
            format!("quota exhausted until {}", t.format("%Y-%m-%dT%H:%M:%SZ"))
        }
        ("disabled", _) => format!("disabled: {}", state["reason"].as_str().unwrap_or("")),
        (k, _) => k.to_string(),
    }
}

fn print_account(a: &Value) {
    out!(
        "{:<4} {:<16} {:<28} {:<14} {:>8} {:>8}  {}",
        a["id"].to_string(),
        a["label"].as_str().unwrap_or(""),
        a["email"].as_str().unwrap_or("-"),
        a["secret_masked"].as_str().unwrap_or(""),
        a["counters"]["requests"].to_string(),
        a["counters"]["failures"].to_string(),
        state_text(&a["state"])
    );
}

/// One account change through the admin API, reported as "<done> account <label>".
async fn change_account(
    remote: &Remote,
    method: Method,
    path: &str,
    body: Option<Value>,
    done: &str,
) -> Result<()> {
    let v = call(remote, method, path, body).await?;
    print(remote, &v, |v| {
        out!("{done} account {}", text(&v["account"]["label"]))
    });
    Ok(())
}

/// `aperture accounts …`.
pub async fn accounts(remote: &Remote, action: &AccountsAction) -> Result<()> {
    match action {
        AccountsAction::Add {
            label,
            email,
            secret_env,
        } => {
            let secret = read_secret(secret_env.as_deref(), "Gemini API key")?;
            let v = call(
                remote,
                Method::POST,
                "/admin/accounts",
                Some(json!({"label": label, "email": email, "secret": secret})),
            )
            .await?;
            print(remote, &v, |v| {
                out!(
                    "added account {} ({})",
                    text(&v["account"]["label"]),
                    text(&v["account"]["secret_masked"])
                )
            });
        }
        AccountsAction::List => {
            let v = call(remote, Method::GET, "/admin/accounts", None).await?;
            print(remote, &v, |v| {
                out!(
                    "{:<4} {:<16} {:<28} {:<14} {:>8} {:>8}  STATE",
                    "ID",
                    "LABEL",
                    "EMAIL",
                    "SECRET",
                    "REQUESTS",
                    "FAILURES"
                );
                for a in v["accounts"].as_array().into_iter().flatten() {
                    print_account(a);
                }
            });
        }
        AccountsAction::Disable { account, reason } => {
            let path = format!("/admin/accounts/{}/disable", segment(account));
            change_account(
                remote,
                Method::POST,
                &path,
                Some(json!({"reason": reason})),
                "disabled",
            )
            .await?;
        }
        AccountsAction::Enable { account } => {
            let path = format!("/admin/accounts/{}/enable", segment(account));
            change_account(remote, Method::POST, &path, None, "enabled").await?;
        }
        AccountsAction::Remove { account } => {
            let path = format!("/admin/accounts/{}", segment(account));
            change_account(remote, Method::DELETE, &path, None, "removed").await?;
        }
    }
    Ok(())
}

/// A limit flag's value as JSON: a number (`unlimited` is 0) or null for `default`.
fn limit_number(flag: &str, value: &str) -> Result<Value> {
    match value.trim().to_ascii_lowercase().as_str() {
        "default" => Ok(Value::Null),
        "unlimited" | "none" => Ok(json!(0)),
        n => n.parse::<u32>().map(|n| json!(n)).map_err(|_| {
            anyhow!("--{flag} {value:?}: give a whole number, `unlimited` (or 0), or `default`")
        }),
    }
}

/// The limit flags that were given, as the admin API's JSON object.
fn limits_json(args: &LimitArgs) -> Result<serde_json::Map<String, Value>> {
    let mut m = serde_json::Map::new();
    for (flag, field, value) in [
        ("rpm", "rpm", &args.rpm),
        ("images-per-day", "images_per_day", &args.images_per_day),
        ("max-concurrent", "max_concurrent", &args.max_concurrent),
    ] {
        if let Some(v) = value {
            m.insert(field.into(), limit_number(flag, v)?);
        }
    }
    if let Some(list) = &args.allow_thresholds {
        let v = if list.trim().eq_ignore_ascii_case("default") {
            Value::Null
        } else {
            json!(list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>())
        };
        m.insert("allowed_thresholds".into(), v);
    }
    Ok(m)
}

/// A limit for the table: `unlimited` for 0, `*` after values set on the key itself.
fn limit_cell(key: &Value, field: &str) -> String {
    let value = &key["effective"][field];
    let mut text = match value {
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        Value::Number(n) if n.as_u64() == Some(0) => "unlimited".into(),
        other => text(other),
    };
    if !key["limits"][field].is_null() {
        text.push('*');
    }
    text
}

fn print_key_line(k: &Value) {
    out!(
        "{:<20} {:<14} {:>10} {:>11} {:>11}  {:<20} {:>6} {:>9}",
        k["label"].as_str().unwrap_or(""),
        k["sha256_prefix"]
            .as_str()
            .map(|p| format!("{p}…"))
            .unwrap_or_else(|| "-".into()),
        limit_cell(k, "rpm"),
        limit_cell(k, "images_per_day"),
        limit_cell(k, "max_concurrent"),
        limit_cell(k, "allowed_thresholds"),
        k["usage"]["images_today"],
        k["usage"]["in_flight"],
    );
}

fn print_key_header() {
    out!(
        "{:<20} {:<14} {:>10} {:>11} {:>11}  {:<20} {:>6} {:>9}",
        "LABEL",
        "SHA256",
        "RPM",
        "IMAGES/DAY",
        "CONCURRENT",
        "THRESHOLDS",
        "TODAY",
        "IN-FLIGHT"
    );
}

/// `aperture keys …`.
pub async fn keys(remote: &Remote, action: &KeysAction) -> Result<()> {
    match action {
        KeysAction::Add { label, limits } => {
            let limits = limits_json(limits)?;
            let key = read_secret(None, "client API key")?;
            let v = call(
                remote,
                Method::POST,
                "/admin/keys",
                Some(json!({"label": label, "key": key, "limits": limits})),
            )
            .await?;
            print(remote, &v, |v| {
                out!("added client key {label}");
                print_key_header();
                print_key_line(&v["key"]);
            });
        }
        KeysAction::Set { label, limits } => {
            let limits = limits_json(limits)?;
            if limits.is_empty() {
                bail!("name at least one limit to change: --rpm, --images-per-day, --max-concurrent, --allow-thresholds");
            }
            let v = call(
                remote,
                Method::PATCH,
                &format!("/admin/keys/{}", segment(label)),
                Some(Value::Object(limits)),
            )
            .await?;
            print(remote, &v, |v| {
                out!("changed the limits of client key {label}");
                print_key_header();
                print_key_line(&v["key"]);
            });
        }
        KeysAction::List => {
            let v = call(remote, Method::GET, "/admin/keys", None).await?;
            print(remote, &v, |v| {
                print_key_header();
                for k in v["keys"].as_array().into_iter().flatten() {
                    print_key_line(k);
                }
                let d = json!({"effective": v["defaults"]});
                out!(
                    "defaults (keys in APERTURE_API_KEY, and limits without *): rpm={} images_per_day={} max_concurrent={} allowed_thresholds={}",
                    limit_cell(&d, "rpm"),
                    limit_cell(&d, "images_per_day"),
                    limit_cell(&d, "max_concurrent"),
                    limit_cell(&d, "allowed_thresholds"),
                );
            });
        }
        KeysAction::Remove { label } => {
            let v = call(
                remote,
                Method::DELETE,
                &format!("/admin/keys/{}", segment(label)),
                None,
            )
            .await?;
            print(remote, &v, |_| out!("removed client key {label}"));
        }
    }
    Ok(())
}

/// `aperture cache …`.
pub async fn cache(remote: &Remote, action: &CacheAction) -> Result<()> {
    match action {
        CacheAction::Stats => {
            let v = call(remote, Method::GET, "/admin/cache", None).await?;
            print(remote, &v, |v| {
                let (bytes, max) = (
                    v["bytes"].as_u64().unwrap_or(0),
                    v["max_bytes"].as_u64().unwrap_or(0),
                );
                let pct = if max > 0 {
                    bytes as f64 * 100.0 / max as f64
                } else {
                    0.0
                };
                out!(
                    "backend={} entries={} bytes={} max_bytes={} usage_percent={:.1} ttl_seconds={}",
                    v["backend"].as_str().unwrap_or("?"),
                    v["entries"],
                    bytes,
                    max,
                    pct,
                    v["ttl_seconds"]
                );
            });
        }
        CacheAction::Clear => {
            let v = call(remote, Method::DELETE, "/admin/cache", None).await?;
            print(remote, &v, |v| {
                out!("removed {} cache entries", v["removed"])
            });
        }
    }
    Ok(())
}
