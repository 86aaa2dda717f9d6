//! `aperture stats [--since 1h|24h|7d] [--json]`: the runbook's business and technical metrics tables from a
//! running gateway's `GET /admin/stats`, with the runbook's targets and critical thresholds and a mark per row.

use anyhow::{Context, Result};
use http::Method;
use serde_json::Value;

use crate::cli::Remote;

/// Fetch and print the report.
pub async fn run(remote: &Remote, since: &str) -> Result<()> {
    // Refuse a bad window before asking the gateway (it would refuse it the same way).
    super::report::parse_since(since).map_err(anyhow::Error::msg)?;
    let path = format!("/admin/stats?since={since}");
    let bytes = crate::admin_client::request(remote, Method::GET, &path, None).await?;
    let v: Value = serde_json::from_slice(&bytes).context("the gateway's stats are not JSON")?;
    if remote.json {
        crate::admin_client::write_line(format_args!(
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ));
        return Ok(());
    }
    for line in render(&v) {
        crate::admin_client::write_line(format_args!("{line}"));
    }
    Ok(())
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The tables as lines.
pub fn render(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let t = &v["totals"];
    let from = v["window"]["from_ms"]
        .as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    out.push(format!(
        "Aperture stats, last {} (since {from}): {} requests, {} failed, {} cache hits, {} in flight now",
        text(&v["window"]["since"]),
        t["requests"],
        t["failed"],
        t["cache_hits"],
        v["live"]["in_flight"],
    ));
    for (title, key) in [
        ("Business metrics", "business"),
        ("Technical metrics", "technical"),
    ] {
        out.push(String::new());
        out.push(format!("{title}:"));
        out.push(format!(
            "{:<32} {:>12}  {:<20} {:<18} MARK",
            "METRIC", "VALUE", "TARGET", "CRITICAL"
        ));
        for r in v[key].as_array().into_iter().flatten() {
            out.push(format!(
                "{:<32} {:>12}  {:<20} {:<18} {}",
                text(&r["metric"]),
                text(&r["display"]),
                text(&r["target"]),
                text(&r["critical"]),
                text(&r["mark"]),
            ));
        }
    }
    let lat = &v["performance"]["latency"];
    let num = |x: &Value| {
        x.as_f64()
            .map(|f| format!("{f:.1} ms"))
            .unwrap_or_else(|| "-".into())
    };
    out.push(String::new());
    out.push(format!(
        "Generation time: p50 {}  p95 {}  p99 {}  max {}   Cost saved by the cache: ${:.2}",
        num(&lat["p50_ms"]),
        num(&lat["p95_ms"]),
        num(&lat["p99_ms"]),
        num(&lat["max_ms"]),
        t["cost_saved_usd"].as_f64().unwrap_or(0.0),
    ));
    out
}
