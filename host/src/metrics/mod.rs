//! Prometheus metrics (`GET /metrics`): one registry for the process and the
//! one-line recording functions the gateway calls (`metrics::request_done(..)`,
//! `metrics::upstream_call(..)`, ...). When `[metrics] enabled = false` nothing is
//! installed and every recording function returns at once.
//!
//! Labels are bounded by construction: models come from the model table, codes
//! are `IMG_*` names (capped), accounts are the operator's account labels; no
//! prompt, prompt hash, request id, client key or message is ever a label.
//! docs/metrics.md lists every metric.

pub mod components;
pub mod expose;
pub mod process;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::errors::{error_type_name, GatewayError};
use crate::gateway::{CacheStatus, Ctx};
use crate::pricing::Pricing;

/// Histogram buckets in seconds: 1 ms .. 2.5 ms resolve cache hits, 5 s .. 60 s (and
/// beyond, to 180 s: the default upstream timeout) resolve generations.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0,
    30.0, 45.0, 60.0, 90.0, 120.0, 180.0,
];

/// Most distinct `code` label values kept; others are counted as `IMG_OTHER`.
const MAX_CODES: usize = 64;

/// `aperture_requests_total` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `success` or `error`.
    pub outcome: &'static str,
    /// `USER_ERROR`, `API_ERROR`, `NETWORK_ERROR`, `SYSTEM_ERROR`, or empty on success.
    pub error_type: &'static str,
    /// The `IMG_*` code, or empty on success.
    pub code: String,
}

/// Model and cache status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GenerationLabels {
    /// The canonical model id (`gen_ai.request.model`).
    pub model: String,
    /// `hit`, `miss`, `bypass`.
    pub cache: &'static str,
}

/// Just a model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    /// The canonical model id.
    pub model: String,
}

/// Safety block labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SafetyLabels {
    /// `deny_list`, `upstream_prompt`, `upstream_image`.
    pub source: &'static str,
    /// `OFF`, `LOW`, `MEDIUM`, `HIGH`.
    pub threshold: &'static str,
}

/// Upstream call labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The account's label.
    pub account: String,
    /// `success`, `safety_block`, `no_image`, `rate_limited`, `quota_exhausted`, `error`, `transport_error`.
    pub outcome: &'static str,
}

/// One account.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabel {
    /// The account's label.
    pub account: String,
}

/// An account state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `active`, `cooling_down`, `exhausted`, `disabled`.
    pub state: &'static str,
}

/// Why a cache entry went.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `lru` or `expired`.
    pub reason: &'static str,
}

/// Build info labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
    /// The minimum Rust version the build targets.
    pub rust_version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

/// Every metric of the gateway.
pub struct Metrics {
    registry: Registry,
    pricing: Pricing,
    /// `aperture_requests_total`.
    pub requests: Family<RequestLabels, Counter>,
    /// `gen_ai_server_request_duration_seconds`.
    pub generation: HistogramFamily<GenerationLabels>,
    /// `aperture_requests_in_flight`.
    pub in_flight: Gauge,
    /// `aperture_coalesced_requests_total`.
    pub coalesced: Counter,
    /// `aperture_cache_hits_total`.
    pub cache_hits: Counter,
    /// `aperture_cache_misses_total`.
    pub cache_misses: Counter,
    /// `aperture_cache_evictions_total`.
    pub cache_evictions: Family<ReasonLabel, Counter>,
    /// `aperture_cache_corrupt_entries_total`.
    pub cache_corrupt: Counter,
    /// `aperture_cache_writes_skipped_total`.
    pub cache_writes_skipped: Counter,
    /// `aperture_cache_entries`.
    pub cache_entries: Gauge,
    /// `aperture_cache_bytes`.
    pub cache_bytes: Gauge,
    /// `aperture_cache_max_bytes`.
    pub cache_max_bytes: Gauge,
    /// `aperture_cache_saved_usd_total`.
    pub cache_saved_usd: Family<ModelLabel, Counter<f64, AtomicU64>>,
    /// `aperture_cache_served_images_total`.
    pub cache_served_images: Family<ModelLabel, Counter>,
    /// `aperture_safety_blocks_total`.
    pub safety_blocks: Family<SafetyLabels, Counter>,
    /// `aperture_upstream_calls_total`.
    pub upstream_calls: Family<UpstreamLabels, Counter>,
    /// `gen_ai_client_operation_duration_seconds`.
    pub upstream_duration: HistogramFamily<UpstreamLabels>,
    /// `aperture_accounts`.
    pub accounts: Family<StateLabel, Gauge>,
    /// `aperture_account_images_today`.
    pub account_images_today: Family<AccountLabel, Gauge>,
    /// Images per account since the last quota reset, and when that reset is.
    daily: Mutex<(u64, HashMap<String, u64>)>,
    codes: Mutex<Vec<String>>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The installed metrics, when enabled.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Install the process's metrics (once; later calls keep the first).
pub fn install(pricing: Pricing) -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new(pricing))
}

impl Metrics {
    fn new(pricing: Pricing) -> Metrics {
        let mut r = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        r.register(
            "aperture_requests",
            "Image generation requests answered, by outcome, error_type and IMG_* code",
            requests.clone(),
        );
        let generation: HistogramFamily<GenerationLabels> =
            Family::new_with_constructor(duration_histogram);
        r.register(
            "gen_ai_server_request_duration_seconds",
            "Time to answer an image generation request (OpenTelemetry gen_ai.server.request.duration), by model and cache status",
            generation.clone(),
        );
        let in_flight = Gauge::default();
        r.register(
            "aperture_requests_in_flight",
            "Image generation requests being handled now",
            in_flight.clone(),
        );
        let coalesced = Counter::default();
        r.register(
            "aperture_coalesced_requests",
            "Requests that waited for an identical in-flight request instead of calling the upstream",
            coalesced.clone(),
        );
        let cache_hits = Counter::default();
        r.register(
            "aperture_cache_hits",
            "Requests served from the cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        r.register(
            "aperture_cache_misses",
            "Requests looked up in the cache and not found",
            cache_misses.clone(),
        );
        let cache_evictions = Family::<ReasonLabel, Counter>::default();
        r.register(
            "aperture_cache_evictions",
            "Cache entries removed by the cache itself, by reason (lru, expired)",
            cache_evictions.clone(),
        );
        let cache_corrupt = Counter::default();
        r.register(
            "aperture_cache_corrupt_entries",
            "Cache entries found unreadable (removed)",
            cache_corrupt.clone(),
        );
        let cache_writes_skipped = Counter::default();
        r.register(
            "aperture_cache_writes_skipped",
            "Results answered but not cached because the cache writer was too far behind",
            cache_writes_skipped.clone(),
        );
        let cache_entries = Gauge::default();
        r.register(
            "aperture_cache_entries",
            "Entries in the cache",
            cache_entries.clone(),
        );
        let cache_bytes = Gauge::default();
        r.register(
            "aperture_cache_bytes",
            "Bytes stored in the cache",
            cache_bytes.clone(),
        );
        let cache_max_bytes = Gauge::default();
        r.register(
            "aperture_cache_max_bytes",
            "The cache's byte cap (CACHE_MAX_SIZE_MB)",
            cache_max_bytes.clone(),
        );
        let cache_saved_usd = Family::<ModelLabel, Counter<f64, AtomicU64>>::default();
        r.register(
            "aperture_cache_saved_usd",
            "Estimated upstream cost saved by cache hits, in USD (images served x [pricing])",
            cache_saved_usd.clone(),
        );
        let cache_served_images = Family::<ModelLabel, Counter>::default();
        r.register(
            "aperture_cache_served_images",
            "Images served from the cache",
            cache_served_images.clone(),
        );
        let safety_blocks = Family::<SafetyLabels, Counter>::default();
        r.register(
            "aperture_safety_blocks",
            "Requests refused for safety, by source (deny_list, upstream_prompt, upstream_image) and threshold",
            safety_blocks.clone(),
        );
        let upstream_calls = Family::<UpstreamLabels, Counter>::default();
        r.register(
            "aperture_upstream_calls",
            "Calls to the upstream, by account label and outcome",
            upstream_calls.clone(),
        );
        let upstream_duration: HistogramFamily<UpstreamLabels> =
            Family::new_with_constructor(duration_histogram);
        r.register(
            "gen_ai_client_operation_duration_seconds",
            "Duration of one upstream call (OpenTelemetry gen_ai.client.operation.duration), by account and outcome",
            upstream_duration.clone(),
        );
        let accounts = Family::<StateLabel, Gauge>::default();
        r.register(
            "aperture_accounts",
            "Upstream accounts by state (active, cooling_down, exhausted, disabled)",
            accounts.clone(),
        );
        let account_images_today = Family::<AccountLabel, Gauge>::default();
        r.register(
            "aperture_account_images_today",
            "Images each account generated since the last daily quota reset (midnight America/Los_Angeles)",
            account_images_today.clone(),
        );
        r.register(
            "aperture_build",
            "Build information",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                rust_version: env!("CARGO_PKG_RUST_VERSION"),
            }),
        );
        r.register_collector(Box::new(process::ProcessCollector::new()));
        r.register_collector(Box::new(components::ComponentCollector));
        // Known states are present (as 0) from the first scrape, so alerts see series.
        for state in ["active", "cooling_down", "exhausted", "disabled"] {
            accounts.get_or_create(&StateLabel { state }).set(0);
        }
        Metrics {
            registry: r,
            pricing,
            requests,
            generation,
            in_flight,
            coalesced,
            cache_hits,
            cache_misses,
            cache_evictions,
            cache_corrupt,
            cache_writes_skipped,
            cache_entries,
            cache_bytes,
            cache_max_bytes,
            cache_saved_usd,
            cache_served_images,
            safety_blocks,
            upstream_calls,
            upstream_duration,
            accounts,
            account_images_today,
            daily: Mutex::new((0, HashMap::new())),
            codes: Mutex::new(Vec::new()),
        }
    }

    /// The registry, to encode.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `code` as a label value: an `IMG_*` name seen among the first [`MAX_CODES`], else `IMG_OTHER`.
    fn code_label(&self, code: &str) -> String {
        let well_formed = code.len() <= 48
            && code.starts_with("IMG_")
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return "IMG_OTHER".into();
        }
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        if codes.iter().any(|c| c == code) {
            return code.to_string();
        }
        if codes.len() < MAX_CODES {
            codes.push(code.to_string());
            return code.to_string();
        }
        "IMG_OTHER".into()
    }
}

/// The model label of a request: its canonical model, or `unknown` before parsing.
fn model_label(ctx: &Ctx) -> String {
    match ctx.model.as_deref().and_then(aperture_models::find) {
        Some(m) => m.reported.to_string(),
        None => "unknown".into(),
    }
}

/// Record one answered image request (called by the log phase, once per request).
pub fn request_done(ctx: &Ctx, error: Option<&GatewayError>) {
    let Some(m) = get() else { return };
    let labels = match error {
        None => RequestLabels {
            outcome: "success",
            error_type: "",
            code: String::new(),
        },
        Some(e) => RequestLabels {
            outcome: "error",
            error_type: error_type_name(e.error_type()),
            code: m.code_label(e.code()),
        },
    };
    m.requests.get_or_create(&labels).inc();
    let model = model_label(ctx);
    let cache = match ctx.cache {
        Some(CacheStatus::Hit) => "hit",
        Some(CacheStatus::Miss) => "miss",
        Some(CacheStatus::Bypass) | None => "bypass",
    };
    m.generation
        .get_or_create(&GenerationLabels {
            model: model.clone(),
            cache,
        })
        .observe(ctx.started.elapsed().as_secs_f64());
    if ctx.coalesced {
        m.coalesced.inc();
    }
    match ctx.cache {
        Some(CacheStatus::Hit) => {
            m.cache_hits.inc();
            if error.is_none() {
                let images = u64::from(ctx.n.unwrap_or(1));
                let price = crate::pricing::image_price_usd(
                    &m.pricing,
                    &model,
                    ctx.image_size.as_deref().unwrap_or("-"),
                );
                let label = ModelLabel { model };
                m.cache_served_images.get_or_create(&label).inc_by(images);
                m.cache_saved_usd
                    .get_or_create(&label)
                    .inc_by(price * images as f64);
            }
        }
        Some(CacheStatus::Miss) => {
            m.cache_misses.inc();
        }
        _ => {}
    }
    if let Some(GatewayError::SafetyBlocked { local, prompt, .. }) = error {
        let source = match (*local, *prompt) {
            (true, _) => "deny_list",
            (false, true) => "upstream_prompt",
            (false, false) => "upstream_image",
        };
        m.safety_blocks
            .get_or_create(&SafetyLabels {
                source,
                threshold: ctx.safety_threshold.unwrap_or("MEDIUM"),
            })
            .inc();
    }
}

/// Counts a request in flight for as long as it lives.
pub struct InFlight(bool);

/// Mark an image request in flight until the returned guard drops.
pub fn in_flight() -> InFlight {
    match get() {
        Some(m) => {
            m.in_flight.inc();
            InFlight(true)
        }
        None => InFlight(false),
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let (true, Some(m)) = (self.0, get()) {
            m.in_flight.dec();
        }
    }
}

/// Record one upstream call by `account` (its label) that took `took`, with `outcome`
/// (see [`UpstreamLabels::outcome`]); `images` counts toward the account's day.
pub fn upstream_call(account: &str, outcome: &'static str, took: Duration, images: u64) {
    let Some(m) = get() else { return };
    let labels = UpstreamLabels {
        account: account.to_string(),
        outcome,
    };
    m.upstream_calls.get_or_create(&labels).inc();
    m.upstream_duration
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
    if images > 0 {
        let now = crate::app::now_ms();
        let mut daily = m.daily.lock().unwrap_or_else(|p| p.into_inner());
        if now >= daily.0 {
            daily.0 = crate::gateway::interpret::next_quota_reset_ms(now);
            daily.1.clear();
            m.account_images_today.clear();
        }
        let count = daily.1.entry(account.to_string()).or_default();
        *count += images;
        m.account_images_today
            .get_or_create(&AccountLabel {
                account: account.to_string(),
            })
            .set(*count as i64);
    }
}

/// Record cache evictions.
pub fn cache_evicted(reason: &'static str, count: u64) {
    if let Some(m) = get() {
        m.cache_evictions
            .get_or_create(&ReasonLabel { reason })
            .inc_by(count);
    }
}

/// Record a result not cached because the cache writer was too far behind.
pub fn cache_write_skipped() {
    if let Some(m) = get() {
        m.cache_writes_skipped.inc();
    }
}

/// Record an unreadable cache entry.
pub fn cache_corrupt() {
    if let Some(m) = get() {
        m.cache_corrupt.inc();
    }
}

/// Bring the gauges that mirror state (accounts, cache totals) up to date; blocking
/// (reads the store's totals row): call it from a blocking thread before encoding.
pub fn refresh(app: &crate::app::App) {
    let Some(m) = get() else { return };
    let now = crate::app::now_ms();
    let mut counts: HashMap<&'static str, i64> = HashMap::new();
    for a in app.accounts.list(now) {
        *counts
            .entry(crate::accounts_watch::state_name(&a.state))
            .or_default() += 1;
    }
    for state in ["active", "cooling_down", "exhausted", "disabled"] {
        m.accounts
            .get_or_create(&StateLabel { state })
            .set(counts.get(state).copied().unwrap_or(0));
    }
    {
        // The day's counters reset even without traffic.
        let mut daily = m.daily.lock().unwrap_or_else(|p| p.into_inner());
        if daily.0 != 0 && now >= daily.0 {
            daily.0 = crate::gateway::interpret::next_quota_reset_ms(now);
            daily.1.clear();
            m.account_images_today.clear();
        }
    }
    match &app.cache {
        Some(cache) => match cache.stats(now) {
            Ok(s) => {
                m.cache_entries.set(s.entries as i64);
                m.cache_bytes.set(s.bytes as i64);
                m.cache_max_bytes.set(s.max_bytes as i64);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the cache totals"),
        },
        None => {
            m.cache_max_bytes.set(0);
        }
    }
}

/// For tests of the counters in this module.
#[doc(hidden)]
pub fn encode_text() -> Option<String> {
    let m = get()?;
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, m.registry()).ok()?;
    Some(out)
}
