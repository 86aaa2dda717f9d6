//! The statistics report behind `GET /admin/stats`, `aperture stats` and the dashboard: the runbook's business
//! and technical metrics over a window, each with the runbook's target and critical threshold and a mark
//! (OK, WARN, CRITICAL, or NO DATA when nothing was measured), time series per bucket for charts, the
//! performance breakdowns, and the live numbers. The JSON built here is the one data contract of all three.

use std::collections::BTreeMap;
use std::sync::Arc;

use aperture_store::{Bucket, Histogram, Resolution, BOUNDS_US, BOUND_COUNT, HOUR_MS, MINUTE_MS};
use serde_json::{json, Value};

use crate::app::{now_ms, App};
use crate::errors::GatewayError;

/// The longest window: the hour rows' retention.
pub const MAX_SINCE_MS: u64 = aperture_store::HOUR_RETENTION_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The width of the time-series buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One point per minute (windows up to a day).
    Minute,
    /// One point per hour.
    Hour,
    /// One point per day (UTC).
    Day,
}

impl Step {
    fn ms(self) -> u64 {
        match self {
            Step::Minute => MINUTE_MS,
            Step::Hour => HOUR_MS,
            Step::Day => DAY_MS,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Step::Minute => "minute",
            Step::Hour => "hour",
            Step::Day => "day",
        }
    }
}

/// What a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The window as given (`1h`, `24h`, `7d`, ...).
    pub since: String,
    /// Its length, ms.
    pub since_ms: u64,
    /// The series step.
    pub step: Step,
}

fn bad(message: String) -> GatewayError {
    GatewayError::Admin {
        status: 400,
        code: "IMG_INVALID_REQUEST",
        message,
    }
}

/// A window length: a whole number followed by `m`, `h` or `d` (`1h`, `24h`, `7d`), from 1 minute to 30 days.
pub fn parse_since(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let unit = s.chars().last().unwrap_or(' ');
    let num = &s[..s.len() - unit.len_utf8().min(s.len())];
    let unit_ms = match unit {
        'm' => MINUTE_MS,
        'h' => HOUR_MS,
        'd' => DAY_MS,
        _ => 0,
    };
    match num.parse::<u64>() {
        Ok(n) if unit_ms > 0 && n > 0 && n.saturating_mul(unit_ms) <= MAX_SINCE_MS => Ok(n * unit_ms),
        _ => Err(format!(
            "since={s:?} is not a window: give a number of minutes, hours or days such as 1h, 24h or 7d (at most 30d)"
        )),
    }
}

impl Query {
    /// From the query string of `GET /admin/stats` (`since=1h|24h|7d…`, optional `step=minute|hour|day`).
    pub fn parse(query: Option<&str>) -> Result<Query, GatewayError> {
        let mut since = "1h".to_string();
        let mut step = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned();
            match k {
                "since" => since = v,
                "step" => {
                    step = Some(match v.as_str() {
                        "minute" => Step::Minute,
                        "hour" => Step::Hour,
                        "day" => Step::Day,
                        _ => {
                            return Err(bad(format!(
                                "step={v:?} is not a step: give minute, hour or day"
                            )))
                        }
                    })
                }
                _ => {
                    return Err(bad(format!(
                        "unknown parameter {k:?}: /admin/stats takes since (1h, 24h, 7d…) and step (minute, hour, day)"
                    )))
                }
            }
        }
        let since_ms = parse_since(&since).map_err(bad)?;
        let step = match step {
            Some(Step::Minute) if since_ms > DAY_MS => {
                return Err(bad(
                    "step=minute covers at most since=24h (minute rows are kept one day); use step=hour"
                        .into(),
                ))
            }
            Some(s) => s,
            None if since_ms <= 6 * HOUR_MS => Step::Minute,
            None if since_ms <= 7 * DAY_MS => Step::Hour,
            None => Step::Day,
        };
        Ok(Query {
            since,
            since_ms,
            step,
        })
    }
}

/// A mark for a row.
fn mark(
    value: Option<f64>,
    ok: impl Fn(f64) -> bool,
    critical: impl Fn(f64) -> bool,
) -> &'static str {
    match value {
        None => "NO DATA",
        Some(v) if critical(v) => "CRITICAL",
        Some(v) if ok(v) => "OK",
        Some(_) => "WARN",
    }
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round(part as f64 * 100.0 / whole as f64, 1))
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

fn show_percent(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "-".into())
}

fn show_ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(ms) if ms < 1000.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{:.2} s", ms / 1000.0),
    }
}

fn ms(us: Option<f64>) -> Option<f64> {
    us.map(|us| round(us / 1000.0, 1))
}

#[allow(clippy::too_many_arguments)]
fn row(
    key: &str,
    name: &str,
    value: Option<f64>,
    unit: &str,
    display: String,
    target: &str,
    critical: &str,
    source: &str,
    mark: &str,
) -> Value {
    json!({"key": key, "metric": name, "value": value, "unit": unit, "display": display,
           "target": target, "critical": critical, "source": source, "mark": mark})
}

/// The rows of `resolution` in `[from, to)`, with what is still in memory written first.
async fn rows(
    app: &Arc<App>,
    resolution: Resolution,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, Bucket)>, GatewayError> {
    let app = app.clone();
    crate::app::blocking(move || {
        if let Err(e) = app.stats.flush(&app.accounts, now_ms()) {
            tracing::warn!(error = %e, "could not write the traffic statistics before a report");
        }
        app.stats.rollups().range(resolution, from, to)
    })
    .await?
    .map_err(GatewayError::from)
}

fn quantiles(h: &Histogram) -> Value {
    json!({
        "count": h.count,
        "avg_ms": ms(h.mean_us()),
        "p50_ms": ms(h.quantile(0.50)),
        "p95_ms": ms(h.quantile(0.95)),
        "p99_ms": ms(h.quantile(0.99)),
        "max_ms": ms((h.count > 0).then_some(h.max_us as f64)),
    })
}

/// The histogram's buckets from the first to the last one that counted, for a bar chart.
fn histogram_bars(h: &Histogram) -> Vec<Value> {
    let counted: Vec<(usize, u64)> = h.buckets().collect();
    let (Some(first), Some(last)) = (counted.first(), counted.last()) else {
        return Vec::new();
    };
    let by_index: BTreeMap<usize, u64> = counted.iter().copied().collect();
    (first.0..=last.0)
        .map(|i| {
            let le = (i < BOUND_COUNT).then(|| BOUNDS_US[i] as f64 / 1000.0);
            json!({"le_ms": le, "count": by_index.get(&i).copied().unwrap_or(0)})
        })
        .collect()
}

/// Build the report for `query` at the current time.
pub async fn build(app: &Arc<App>, query: &Query) -> Result<Value, GatewayError> {
    let now = now_ms();
    let from = now.saturating_sub(query.since_ms);
    // Totals from the finest rows that cover the window; the series from the step's rows.
    let (total_res, width) = if query.since_ms <= DAY_MS {
        (Resolution::Minute, MINUTE_MS)
    } else {
        (Resolution::Hour, HOUR_MS)
    };
    let total_rows = rows(app, total_res, from - from % width, now + 1).await?;
    let step_ms = query.step.ms();
    let series_from = from - from % step_ms;
    let series_rows = match (query.step, total_res) {
        (Step::Minute, Resolution::Minute) | (Step::Hour, Resolution::Hour) => total_rows.clone(),
        (Step::Minute, Resolution::Hour) => Vec::new(),
        _ => {
            let app2 = app.clone();
            crate::app::blocking(move || {
                app2.stats
                    .rollups()
                    .range(Resolution::Hour, series_from, now + 1)
            })
            .await?
            .map_err(GatewayError::from)?
        }
    };

    let mut total = Bucket::default();
    for (_, b) in &total_rows {
        total.merge(b);
    }

    // Uptime: the time the gateway ran in the window over the window, counted from the first recorded
    // minute (a gateway younger than the window is not "down" before it existed).
    let first_up = total_rows
        .iter()
        .find(|(_, b)| b.up_ms > 0)
        // The gateway ran the last `up_ms` of the first bucket (or of its part up to now).
        .map(|(start, b)| (start + width).min(now).saturating_sub(b.up_ms));
    let uptime = first_up.and_then(|first| {
        let span = now.saturating_sub(from.max(first));
        (span > 0).then(|| round((total.up_ms as f64 * 100.0 / span as f64).min(100.0), 2))
    });

    let accounts = app.accounts.list(now);
    let blocked = accounts
        .iter()
        .filter(|a| !matches!(a.state, aperture_store::AccountState::Active))
        .count();
    let cache_stats = match app.cache.clone() {
        Some(cache) => Some(
            crate::app::blocking(move || cache.stats(now))
                .await?
                .map_err(GatewayError::from)?,
        ),
        None => None,
    };

    let success = percent(total.succeeded, total.requests);
    let avg_ms = ms(total.time.mean_us());
    let hit_rate = percent(total.cache_hits, total.cache_hits + total.cache_misses);
    let safety = percent(total.safety_blocked, total.requests);
    let error_rate = percent(total.failed(), total.requests);
    let storage = cache_stats.as_ref().and_then(|s| {
        (s.max_bytes > 0).then(|| round(s.bytes as f64 * 100.0 / s.max_bytes as f64, 1))
    });
    let blocked_pct = percent(blocked as u64, accounts.len() as u64);
    let threshold = crate::config::threshold_name(app.config.safety.threshold);

    let business = vec![
        row(
            "success_rate",
            "Image generation success rate",
            success,
            "%",
            show_percent(success),
            "≥95%",
            "<90%",
            "requests answered without error_type",
            mark(success, |v| v >= 95.0, |v| v < 90.0),
        ),
        row(
            "avg_generation_time",
            "Average generation time",
            avg_ms,
            "ms",
            show_ms(avg_ms),
            "<5s",
            ">10s",
            "generation_time_ms of successful requests",
            mark(avg_ms, |v| v < 5000.0, |v| v > 10000.0),
        ),
        row(
            "cache_hit_rate",
            "Cache hit rate",
            hit_rate,
            "%",
            show_percent(hit_rate),
            "≥30%",
            "<20%",
            "Cache hit / (Cache hit + Cache miss)",
            mark(hit_rate, |v| v >= 30.0, |v| v < 20.0),
        ),
        row(
            "safety_rejection_rate",
            "Safety rejection rate",
            safety,
            "%",
            show_percent(safety),
            "5-15% (MEDIUM)",
            ">30%",
            &format!("IMG_SAFETY_BLOCKED / requests (threshold {threshold})"),
            mark(safety, |v| (5.0..=15.0).contains(&v), |v| v > 30.0),
        ),
    ];
    let technical = vec![
        row(
            "error_rate",
            "Error rate",
            error_rate,
            "%",
            show_percent(error_rate),
            "<5%",
            ">10%",
            "requests with an error_type",
            mark(error_rate, |v| v < 5.0, |v| v > 10.0),
        ),
        row(
            "cache_storage_usage",
            "Cache storage usage",
            storage,
            "%",
            show_percent(storage),
            "<80%",
            ">95%",
            "cache bytes / byte cap",
            mark(storage, |v| v < 80.0, |v| v > 95.0),
        ),
        row(
            "proxy_uptime",
            "Proxy uptime",
            uptime,
            "%",
            uptime
                .map(|v| format!("{v:.2}%"))
                .unwrap_or_else(|| "-".into()),
            "99.9%",
            "<99%",
            "time the gateway ran in the window",
            mark(uptime, |v| v >= 99.9, |v| v < 99.0),
        ),
        row(
            "account_rotation_health",
            "Account rotation health",
            blocked_pct,
            "% blocked",
            format!("{}/{} active", accounts.len() - blocked, accounts.len()),
            "All accounts active",
            ">50% blocked",
            "account states",
            if accounts.is_empty() {
                "CRITICAL"
            } else {
                mark(blocked_pct, |v| v == 0.0, |v| v > 50.0)
            },
        ),
    ];

    let series = series_json(query.step, series_from, now, &series_rows);

    let mut models: Vec<Value> = total
        .models
        .iter()
        .map(|(m, h)| {
            let mut v = quantiles(h);
            v["model"] = json!(m);
            v
        })
        .collect();
    models.sort_by(|a, b| b["count"].as_u64().cmp(&a["count"].as_u64()));
    let account_rows: Vec<Value> = accounts
        .iter()
        .map(|a| {
            let used = total.accounts.get(&a.label).cloned().unwrap_or_default();
            json!({"label": a.label, "state": a.state, "calls": used.calls, "successes": used.successes,
                   "failures": used.failures, "quota_hits": used.quota_hits,
                   "calls_total": a.counters.requests})
        })
        .collect();
    let clients: Vec<Value> = total
        .clients
        .iter()
        .map(|(l, c)| json!({"label": l, "requests": c.requests, "images": c.images}))
        .collect();

    Ok(json!({
        "window": {"since": query.since, "from_ms": from, "to_ms": now,
                   "totals_from": total_res_name(total_res), "step": query.step.name()},
        "business": business,
        "technical": technical,
        "totals": {
            "requests": total.requests, "succeeded": total.succeeded, "failed": total.failed(),
            "cache_hits": total.cache_hits, "cache_misses": total.cache_misses,
            "cache_bypass": total.cache_bypass, "coalesced": total.coalesced,
            "safety_blocked": total.safety_blocked, "images": total.images,
            "cached_images": total.cached_images,
            "cost_saved_usd": round(total.cost_saved_micro_usd as f64 / 1e6, 4),
            "upstream_calls": total.upstream_calls,
            "errors_by_type": total.errors, "errors_by_code": total.codes,
        },
        "performance": {
            "latency": quantiles(&total.time),
            "cache_hit_latency": {"summary": quantiles(&total.hit_time), "histogram": histogram_bars(&total.hit_time)},
            "models": models,
            "accounts": account_rows,
            "clients": clients,
        },
        "series": series,
        "live": {
            "status": "up",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": app.started.elapsed().as_secs(),
            "in_flight": app.stats.in_flight(),
            "accounts_total": accounts.len(),
            "accounts_usable": app.accounts.usable_count(now),
            "cache": cache_stats.map(|s| json!({"backend": app.config.cache.backend.name(),
                "entries": s.entries, "bytes": s.bytes, "max_bytes": s.max_bytes})),
            "safety_threshold": threshold,
        },
    }))
}

fn total_res_name(r: Resolution) -> &'static str {
    match r {
        Resolution::Minute => "minute",
        Resolution::Hour => "hour",
    }
}

/// Column-oriented series (the shape uPlot draws): `t` in unix seconds, one array per measure, a point per
/// step from `from` to `now` (empty buckets are zeros; rates and times of empty buckets are null).
fn series_json(step: Step, from: u64, now: u64, rows: &[(u64, Bucket)]) -> Value {
    let step_ms = step.ms();
    let mut buckets: BTreeMap<u64, Bucket> = BTreeMap::new();
    let mut t = from - from % step_ms;
    while t <= now {
        buckets.insert(t, Bucket::default());
        t += step_ms;
    }
    for (start, b) in rows {
        let key = start - start % step_ms;
        if let Some(slot) = buckets.get_mut(&key) {
            slot.merge(b);
        }
    }
    let mut types: Vec<String> = ["USER_ERROR", "API_ERROR", "NETWORK_ERROR", "SYSTEM_ERROR"]
        .map(String::from)
        .to_vec();
    for b in buckets.values() {
        for k in b.errors.keys() {
            if !types.contains(k) {
                types.push(k.clone());
            }
        }
    }
    let col = |f: &dyn Fn(&Bucket) -> Value| -> Vec<Value> { buckets.values().map(f).collect() };
    let errors: serde_json::Map<String, Value> = types
        .iter()
        .map(|t| {
            (
                t.clone(),
                json!(col(&|b| json!(b.errors.get(t).copied().unwrap_or(0)))),
            )
        })
        .collect();
    json!({
        "step": step.name(),
        "step_seconds": step_ms / 1000,
        "t": buckets.keys().map(|k| k / 1000).collect::<Vec<_>>(),
        "requests": col(&|b| json!(b.requests)),
        "succeeded": col(&|b| json!(b.succeeded)),
        "failed": col(&|b| json!(b.failed())),
        "error_rate": col(&|b| json!(percent(b.failed(), b.requests))),
        "cache_hits": col(&|b| json!(b.cache_hits)),
        "cache_misses": col(&|b| json!(b.cache_misses)),
        "hit_rate": col(&|b| json!(percent(b.cache_hits, b.cache_hits + b.cache_misses))),
        "safety_blocked": col(&|b| json!(b.safety_blocked)),
        "safety_rate": col(&|b| json!(percent(b.safety_blocked, b.requests))),
        "images": col(&|b| json!(b.images)),
        "cost_saved_usd": col(&|b| json!(round(b.cost_saved_micro_usd as f64 / 1e6, 4))),
        "avg_ms": col(&|b| json!(ms(b.time.mean_us()))),
        "p50_ms": col(&|b| json!(ms(b.time.quantile(0.50)))),
        "p95_ms": col(&|b| json!(ms(b.time.quantile(0.95)))),
        "p99_ms": col(&|b| json!(ms(b.time.quantile(0.99)))),
        "uptime_percent": col(&|b| json!(round((b.up_ms as f64 * 100.0 / step_ms as f64).min(100.0), 1))),
        "errors": errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_bad_ones_say_what_to_give() {
        assert_eq!(parse_since("1h"), Ok(HOUR_MS));
        assert_eq!(parse_since("24h"), Ok(DAY_MS));
        assert_eq!(parse_since("7d"), Ok(7 * DAY_MS));
        assert_eq!(parse_since("90m"), Ok(90 * MINUTE_MS));
        for bad in ["", "h", "0h", "31d", "1w", "1é", "é", "-1h", "1.5h"] {
            assert!(parse_since(bad).unwrap_err().contains("24h"), "{bad}");
        }
        let q = Query::parse(Some("since=7d")).unwrap();
        assert_eq!(q.step, Step::Hour);
        assert_eq!(Query::parse(None).unwrap().step, Step::Minute);
        assert_eq!(Query::parse(Some("since=30d")).unwrap().step, Step::Day);
        assert!(Query::parse(Some("since=7d&step=minute")).is_err());
        assert!(Query::parse(Some("since=1h&x=1")).is_err());
        assert!(Query::parse(Some("step=week")).is_err());
    }

    #[test]
    fn marks_follow_the_thresholds() {
        let m = |v| mark(Some(v), |v| v >= 95.0, |v| v < 90.0);
        assert_eq!((m(96.0), m(92.0), m(89.9)), ("OK", "WARN", "CRITICAL"));
        assert_eq!(mark(None, |_| true, |_| false), "NO DATA");
    }
}
