//! `aperture policy …`: the offline `verify`, and the client of the
//! `/admin/policy` routes for everything else (like `aperture accounts`).

use std::io::Write;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use crate::admin_client::{request, request_with_status, segment, write_line};
use crate::cli::{PolicyAction, Remote};
use crate::policy::verify::Report;
use crate::policy::{CallLimits, Which};

macro_rules! out {
    ($($arg:tt)*) => {
        write_line(format_args!($($arg)*))
    };
}

fn slot(name: &str) -> Result<Which> {
    Which::parse(name)
        .ok_or_else(|| anyhow!("unknown slot {name:?}: use translator, safety or classifier"))
}

fn read_component(file: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

fn print_report(remote: &Remote, report: &Report) {
    if remote.json {
        out!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
    } else {
        out!("{}", report.render().trim_end());
    }
}

async fn post(remote: &Remote, path: &str, body: Option<Value>) -> Result<Value> {
    let bytes = request(
        remote,
        Method::POST,
        path,
        body.map(|b| Bytes::from(b.to_string())),
    )
    .await?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn short(v: &Value) -> String {
    v.as_str()
        .map(|s| s.get(..8).unwrap_or(s).to_string())
        .unwrap_or_else(|| "-".into())
}

fn print_slot(name: &str, s: &Value) {
    let candidate = match &s["candidate"] {
        Value::Null => "-".to_string(),
        c => match c["mode"].as_str() {
            Some("canary") => format!("{} (canary {}%)", short(&c["sha256"]), c["percent"]),
            _ => format!("{} (shadow)", short(&c["sha256"])),
        },
    };
    out!(
        "{name}: active {}  candidate {candidate}  previous {}",
        short(&s["active"]),
        short(&s["previous"])
    );
    out!(
        "  {:<9} {:<10} {:<12} {:<8} {:<7} {:>8} {:>8} {:>6} {:>8} {:>9} {:>9} {:>8}  outcomes",
        "version",
        "role",
        "label",
        "state",
        "wit",
        "calls",
        "memo",
        "traps",
        "timeouts",
        "median_us",
        "p99_us",
        "disagree"
    );
    for v in s["versions"].as_array().into_iter().flatten() {
        let st = &v["stats"];
        let n = |k: &str| st[k].as_u64().unwrap_or(0).to_string();
        let outcomes = st["outcome_shares"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={:.0}%", v.as_f64().unwrap_or(0.0) * 100.0))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        out!(
            "  {:<9} {:<10} {:<12} {:<8} {:<7} {:>8} {:>8} {:>6} {:>8} {:>9} {:>9} {:>8}  {}",
            short(&v["sha256"]),
            v["role"].as_str().unwrap_or("?"),
            v["label"].as_str().unwrap_or("-"),
            v["state"].as_str().unwrap_or("?"),
            v["wit_version"].as_str().unwrap_or("?"),
            n("calls"),
            n("memo_hits"),
            n("traps"),
            n("timeouts"),
            n("median_us"),
            n("p99_us"),
            n("disagreements"),
            outcomes
        );
    }
}

/// Run one `aperture policy` command.
pub async fn run(remote: &Remote, action: &PolicyAction) -> Result<()> {
    match action {
        PolicyAction::Verify { file, slot: s } => {
            let which = slot(s)?;
            let bytes = read_component(file)?;
            let report = tokio::task::spawn_blocking(move || {
                crate::policy::lifecycle::verify_offline(which, &bytes, CallLimits::default())
            })
            .await
            .context("the verification task failed")??;
            print_report(remote, &report);
            if !report.passed {
                bail!(
                    "{} was refused for the {} slot: {}",
                    file.display(),
                    which.name(),
                    report.refused.as_deref().unwrap_or("verification failed")
                );
            }
            Ok(())
        }
        PolicyAction::Install {
            file,
            slot: s,
            label,
        } => {
            let which = slot(s)?;
            let bytes = read_component(file)?;
            let mut path = format!("/admin/policy/{}/install", which.name());
            if let Some(l) = label {
                path.push_str(&format!("?label={}", segment(l)));
            }
            let (status, body) =
                request_with_status(remote, Method::POST, &path, Some(Bytes::from(bytes))).await?;
            let v: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)}));
            if status.as_u16() == 422 {
                if let Ok(report) = serde_json::from_value::<Report>(v["report"].clone()) {
                    print_report(remote, &report);
                }
                bail!(
                    "{}; fix the component (check it offline with `aperture policy verify {} --slot {}`)",
                    v["error"]["message"].as_str().unwrap_or("the component was refused"),
                    file.display(),
                    which.name()
                );
            }
            if !status.is_success() {
                bail!(
                    "the gateway refused ({status}): {}",
                    v["error"]["message"].as_str().unwrap_or("")
                );
            }
            if remote.json {
                out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                let sha = v["version"]["sha256"].as_str().unwrap_or("");
                let verb = if v["new"].as_bool() == Some(true) {
                    "installed"
                } else {
                    "already installed"
                };
                out!("{sha}");
                out!(
                    "{verb}: {} version {}",
                    which.name(),
                    &sha[..8.min(sha.len())]
                );
                if let Ok(report) = serde_json::from_value::<Report>(v["report"].clone()) {
                    out!("{}", report.render().trim_end());
                }
            }
            Ok(())
        }
        PolicyAction::List => {
            let bytes = request(remote, Method::GET, "/admin/policy", None).await?;
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if remote.json {
                out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                for which in Which::ALL {
                    print_slot(which.name(), &v["slots"][which.name()]);
                }
            }
            Ok(())
        }
        PolicyAction::Shadow { slot: s, reference } => {
            let which = slot(s)?;
            let v = post(
                remote,
                &format!("/admin/policy/{}/shadow", which.name()),
                Some(json!({"ref": reference})),
            )
            .await?;
            done(remote, which, &v, "shadow started")
        }
        PolicyAction::Canary {
            slot: s,
            reference,
            percent,
        } => {
            let which = slot(s)?;
            let v = post(
                remote,
                &format!("/admin/policy/{}/canary", which.name()),
                Some(json!({"ref": reference, "percent": percent})),
            )
            .await?;
            done(remote, which, &v, "canary started")
        }
        PolicyAction::Activate { slot: s, reference } => {
            let which = slot(s)?;
            let v = post(
                remote,
                &format!("/admin/policy/{}/activate", which.name()),
                Some(json!({"ref": reference})),
            )
            .await?;
            done(remote, which, &v, "activated")
        }
        PolicyAction::Promote { slot: s } => {
            let which = slot(s)?;
            let v = post(
                remote,
                &format!("/admin/policy/{}/promote", which.name()),
                None,
            )
            .await?;
            done(remote, which, &v, "promoted")
        }
        PolicyAction::Abort { slot: s } => {
            let which = slot(s)?;
            let v = post(
                remote,
                &format!("/admin/policy/{}/abort", which.name()),
                None,
            )
            .await?;
            done(remote, which, &v, "candidate aborted")
        }
        PolicyAction::Rollback { slot: s } => {
            let which = slot(s)?;
            let v = post(
                remote,
                &format!("/admin/policy/{}/rollback", which.name()),
                None,
            )
            .await?;
            done(remote, which, &v, "rolled back")
        }
        PolicyAction::History { slot: s } => {
            let mut path = "/admin/policy/history".to_string();
            if let Some(s) = s {
                path.push_str(&format!("?slot={}", slot(s)?.name()));
            }
            let bytes = request(remote, Method::GET, &path, None).await?;
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if remote.json {
                out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                for e in v["events"].as_array().into_iter().flatten() {
                    let at = e["at_ms"]
                        .as_u64()
                        .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                        .unwrap_or_default();
                    out!(
                        "{at} {:<10} {:<14} {} previous={} {}",
                        e["slot"].as_str().unwrap_or(""),
                        e["event"].as_str().unwrap_or(""),
                        short(&e["version"]),
                        short(&e["previous"]),
                        e["reason"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        PolicyAction::Export { slot: s, reference } => {
            let which = slot(s)?;
            let mut path = format!("/admin/policy/{}/export", which.name());
            if let Some(r) = reference {
                path.push_str(&format!("?ref={}", segment(r)));
            }
            let bytes = request(remote, Method::GET, &path, None).await?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .context("writing the component to stdout")?;
            Ok(())
        }
    }
}

fn done(remote: &Remote, which: Which, v: &Value, what: &str) -> Result<()> {
    if remote.json {
        out!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        out!("{}: {what}", which.name());
        print_slot(which.name(), v);
    }
    Ok(())
}
