//! Traffic rollups: what the gateway served, per minute for the last day and per hour for the last 30 days,
//! kept in the store so `aperture stats` and the dashboard have numbers without a monitoring stack and after
//! a restart.
//!
//! The host aggregates requests in memory into [`Bucket`]s (one per minute) and hands them to
//! [`Rollups::record`] every few seconds; one transaction merges each minute into its minute row and its
//! hour row and prunes rows past their retention. The tables are therefore bounded: at most
//! [`MINUTE_ROWS`] minute rows and [`HOUR_ROWS`] hour rows, each row bounded by [`MAX_NAMES`] names per map.
//!
//! Generation times are kept as fixed-bucket histograms ([`Histogram`], bounds [`BOUNDS_US`]) so p50/p95/p99
//! can be computed over any range by adding buckets: see [`Histogram::quantile`] for the precision.

use std::collections::BTreeMap;

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::Store;
use crate::tables;

/// One minute, in ms.
pub const MINUTE_MS: u64 = 60_000;
/// One hour, in ms.
pub const HOUR_MS: u64 = 3_600_000;
/// Minute rows are kept for one day.
pub const MINUTE_RETENTION_MS: u64 = 24 * HOUR_MS;
/// Hour rows are kept for 30 days.
pub const HOUR_RETENTION_MS: u64 = 30 * 24 * HOUR_MS;
/// The most minute rows the table holds (one day, plus the minute in progress).
pub const MINUTE_ROWS: u64 = MINUTE_RETENTION_MS / MINUTE_MS + 1;
/// The most hour rows the table holds (30 days, plus the hour in progress).
pub const HOUR_ROWS: u64 = HOUR_RETENTION_MS / HOUR_MS + 1;
/// The most distinct names (error types, codes, models, accounts, clients) one map of a bucket keeps; the
/// rest are counted under [`OTHER`], so a row's size stays bounded whatever the traffic.
pub const MAX_NAMES: usize = 64;
/// The name counts past [`MAX_NAMES`] are added to.
pub const OTHER: &str = "(other)";

const MANTISSAS: [u64; 10] = [100, 125, 150, 200, 250, 300, 400, 500, 600, 800];
/// Number of finite histogram bounds.
pub const BOUND_COUNT: usize = 70;
/// Upper bounds (inclusive) of the histogram buckets, in microseconds: 100 µs, 125, 150, 200, 250, 300, 400,
/// 500, 600, 800 µs, then the same steps ×10 per decade up to 800 s. A last bucket holds anything slower.
/// Neighbouring bounds are at most ×1.33 apart (×1.25 for most), and 5 s and 10 s (the runbook's target and
/// critical generation times) are bounds.
pub const BOUNDS_US: [u64; BOUND_COUNT] = {
    let mut b = [0u64; BOUND_COUNT];
    let mut i = 0;
    let mut scale = 1u64;
    while i < BOUND_COUNT {
        b[i] = MANTISSAS[i % 10] * scale;
        i += 1;
        if i % 10 == 0 {
            scale *= 10;
        }
    }
    b
};

/// A latency histogram over [`BOUNDS_US`], with the exact count, sum and maximum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "HistogramRepr", into = "HistogramRepr")]
pub struct Histogram {
    counts: [u64; BOUND_COUNT + 1],
    /// Values recorded.
    pub count: u64,
    /// Sum of the values, µs.
    pub sum_us: u64,
    /// Largest value, µs.
    pub max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BOUND_COUNT + 1],
            count: 0,
            sum_us: 0,
            max_us: 0,
        }
    }
}

/// The stored form: only the buckets that counted something, as `[index, count]`.
#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct HistogramRepr {
    n: u64,
    sum: u64,
    max: u64,
    b: Vec<(u8, u64)>,
}

impl From<HistogramRepr> for Histogram {
    fn from(r: HistogramRepr) -> Self {
        let mut h = Histogram {
            count: r.n,
            sum_us: r.sum,
            max_us: r.max,
            ..Histogram::default()
        };
        for (i, c) in r.b {
            if let Some(slot) = h.counts.get_mut(i as usize) {
                *slot += c;
            }
        }
        h
    }
}

impl From<Histogram> for HistogramRepr {
    fn from(h: Histogram) -> Self {
        HistogramRepr {
            n: h.count,
            sum: h.sum_us,
            max: h.max_us,
            b: h.buckets().map(|(i, c)| (i as u8, c)).collect(),
        }
    }
}

impl Histogram {
    /// Count one value (µs).
    pub fn record(&mut self, us: u64) {
        let i = BOUNDS_US.partition_point(|&b| b < us);
        self.counts[i] += 1;
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.max_us = self.max_us.max(us);
    }

    /// Add `other` into this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The non-empty buckets as `(index, count)`; index `i` counts values in
    /// `(BOUNDS_US[i-1], BOUNDS_US[i]]` (the last index: above the last bound).
    pub fn buckets(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i, *c))
    }

    /// The exact mean, µs.
    pub fn mean_us(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_us as f64 / self.count as f64)
    }

    /// The `q`-quantile (0 < q ≤ 1), µs, interpolated linearly inside the bucket holding it and never above
    /// the largest value seen. The estimate lies in the same bucket as the true value, so its error is below
    /// the bucket's width: at most 33% of the value (25% for most buckets), 100 µs under 100 µs.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).max(1.0);
        let mut before = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if (before + c) as f64 >= rank {
                let lower = if i == 0 { 0 } else { BOUNDS_US[i - 1] } as f64;
                let upper = if i < BOUND_COUNT {
                    BOUNDS_US[i] as f64
                } else {
                    self.max_us as f64
                };
                let fraction = (rank - before as f64) / c as f64;
                let v = lower + (upper - lower) * fraction;
                return Some(v.min(self.max_us as f64));
            }
            before += c;
        }
        Some(self.max_us as f64)
    }
}

/// Upstream use of one account in a bucket (deltas of its counters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountUse {
    /// Upstream calls made with it.
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Times the upstream said its quota was used up.
    pub quota_hits: u64,
}

impl AccountUse {
    fn merge(&mut self, o: &AccountUse) {
        self.calls += o.calls;
        self.successes += o.successes;
        self.failures += o.failures;
        self.quota_hits += o.quota_hits;
    }
}

/// Use of one client key in a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientUse {
    /// Requests it made.
    pub requests: u64,
    /// Images it was served.
    pub images: u64,
}

/// What happened in one time bucket. Every field adds up: the bucket of an hour is the sum of its minutes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bucket {
    /// Image requests answered (every status).
    pub requests: u64,
    /// Requests answered with images (2xx).
    pub succeeded: u64,
    /// Failed requests by error_type (USER_ERROR, API_ERROR, NETWORK_ERROR, SYSTEM_ERROR).
    pub errors: BTreeMap<String, u64>,
    /// Failed requests by IMG_* code.
    pub codes: BTreeMap<String, u64>,
    /// Requests served from the cache.
    pub cache_hits: u64,
    /// Requests looked up and not found.
    pub cache_misses: u64,
    /// Requests that did not read the cache (no-cache, or the cache is off).
    pub cache_bypass: u64,
    /// Requests that shared an identical request's upstream call.
    pub coalesced: u64,
    /// Requests refused as IMG_SAFETY_BLOCKED.
    pub safety_blocked: u64,
    /// Images served.
    pub images: u64,
    /// Images served from the cache.
    pub cached_images: u64,
    /// Upstream price of the images served from the cache, micro-USD.
    pub cost_saved_micro_usd: u64,
    /// Upstream calls made.
    pub upstream_calls: u64,
    /// Milliseconds of the bucket the gateway was running (for uptime).
    pub up_ms: u64,
    /// Time to answer successful requests.
    pub time: Histogram,
    /// Time to answer cache hits.
    pub hit_time: Histogram,
    /// Time to answer successful requests, by model.
    pub models: BTreeMap<String, Histogram>,
    /// Upstream use by account label.
    pub accounts: BTreeMap<String, AccountUse>,
    /// Requests by client key label.
    pub clients: BTreeMap<String, ClientUse>,
}

/// Add `v` under `name` in `map`, keeping at most [`MAX_NAMES`] names (the rest go to [`OTHER`]).
pub fn add_named<V: Default>(map: &mut BTreeMap<String, V>, name: &str, add: impl FnOnce(&mut V)) {
    if let Some(v) = map.get_mut(name) {
        add(v);
        return;
    }
    let key = if map.len() >= MAX_NAMES - 1 && name != OTHER {
        OTHER
    } else {
        name
    };
    add(map.entry(key.to_string()).or_default());
}

impl Bucket {
    /// Add `other` into this bucket.
    pub fn merge(&mut self, o: &Bucket) {
        self.requests += o.requests;
        self.succeeded += o.succeeded;
        for (k, v) in &o.errors {
            add_named(&mut self.errors, k, |c| *c += v);
        }
        for (k, v) in &o.codes {
            add_named(&mut self.codes, k, |c| *c += v);
        }
        self.cache_hits += o.cache_hits;
        self.cache_misses += o.cache_misses;
        self.cache_bypass += o.cache_bypass;
        self.coalesced += o.coalesced;
        self.safety_blocked += o.safety_blocked;
        self.images += o.images;
        self.cached_images += o.cached_images;
        self.cost_saved_micro_usd += o.cost_saved_micro_usd;
        self.upstream_calls += o.upstream_calls;
        self.up_ms += o.up_ms;
        self.time.merge(&o.time);
        self.hit_time.merge(&o.hit_time);
        for (k, h) in &o.models {
            add_named(&mut self.models, k, |m| m.merge(h));
        }
        for (k, a) in &o.accounts {
            add_named(&mut self.accounts, k, |m| m.merge(a));
        }
        for (k, c) in &o.clients {
            add_named(&mut self.clients, k, |m| {
                m.requests += c.requests;
                m.images += c.images;
            });
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == Bucket::default()
    }

    /// Failed requests (every error type).
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Which table a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// One row per minute, kept one day.
    Minute,
    /// One row per hour, kept 30 days.
    Hour,
}

impl Resolution {
    /// The bucket width, ms.
    pub fn width_ms(self) -> u64 {
        match self {
            Resolution::Minute => MINUTE_MS,
            Resolution::Hour => HOUR_MS,
        }
    }

    /// How long rows are kept, ms.
    pub fn retention_ms(self) -> u64 {
        match self {
            Resolution::Minute => MINUTE_RETENTION_MS,
            Resolution::Hour => HOUR_RETENTION_MS,
        }
    }

    fn table(self) -> redb::TableDefinition<'static, u64, &'static [u8]> {
        match self {
            Resolution::Minute => tables::ROLLUP_MINUTES,
            Resolution::Hour => tables::ROLLUP_HOURS,
        }
    }
}

/// Row counts and stored bytes (keys and values, before redb's page overhead) of the rollup tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RollupSizes {
    /// Minute rows.
    pub minute_rows: u64,
    /// Bytes in minute rows.
    pub minute_bytes: u64,
    /// Hour rows.
    pub hour_rows: u64,
    /// Bytes in hour rows.
    pub hour_bytes: u64,
}

/// The rollup tables of a [`Store`].
#[derive(Clone)]
pub struct Rollups {
    store: Store,
}

fn decode(start: u64, bytes: &[u8]) -> Result<Bucket, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("rollup row at {start} ms: {e}")))
}

impl Store {
    /// The traffic rollups.
    pub fn rollups(&self) -> Rollups {
        Rollups {
            store: self.clone(),
        }
    }
}

impl Rollups {
    /// Merge per-minute buckets (keyed by the minute's start, unix ms) into the minute and hour rows, and
    /// drop rows older than their retention at `now_ms`; one durable transaction. Minutes already past the
    /// minute retention only reach the hour rows. A row that cannot be decoded is replaced, not merged
    /// (counts of that one bucket are lost; nothing else is).
    pub fn record(&self, minutes: &[(u64, Bucket)], now_ms: u64) -> Result<(), StoreError> {
        let mut hours: BTreeMap<u64, Bucket> = BTreeMap::new();
        for (start, b) in minutes {
            hours.entry(start - start % HOUR_MS).or_default().merge(b);
        }
        let minute_cutoff = now_ms.saturating_sub(MINUTE_RETENTION_MS);
        let hour_cutoff = now_ms.saturating_sub(HOUR_RETENTION_MS);
        self.store.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(tables::ROLLUP_MINUTES)?;
                for (start, b) in minutes {
                    let start = start - start % MINUTE_MS;
                    if start + MINUTE_MS <= minute_cutoff {
                        continue;
                    }
                    merge_row(&mut table, start, b)?;
                }
                table.retain_in(..minute_cutoff - minute_cutoff % MINUTE_MS, |_, _| false)?;
                let mut table = txn.open_table(tables::ROLLUP_HOURS)?;
                for (start, b) in &hours {
                    if start + HOUR_MS <= hour_cutoff {
                        continue;
                    }
                    merge_row(&mut table, *start, b)?;
                }
                table.retain_in(..hour_cutoff - hour_cutoff % HOUR_MS, |_, _| false)?;
            }
            txn.commit()?;
            Ok(())
        })
    }

    /// The rows of `resolution` whose bucket starts in `[from_ms, to_ms)`, oldest first. A row that cannot be
    /// decoded is skipped with a warning.
    pub fn range(
        &self,
        resolution: Resolution,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(u64, Bucket)>, StoreError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(resolution.table())?;
            let mut out = Vec::new();
            for row in table.range(from_ms..to_ms)? {
                let (k, v) = row?;
                match decode(k.value(), v.value()) {
                    Ok(b) => out.push((k.value(), b)),
                    Err(e) => tracing::warn!(error = %e, "skipping a rollup row"),
                }
            }
            Ok(out)
        })
    }

    /// How many rows and bytes the rollup tables hold.
    pub fn sizes(&self) -> Result<RollupSizes, StoreError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            let mut sizes = RollupSizes::default();
            for (res, rows, bytes) in [
                (
                    Resolution::Minute,
                    &mut sizes.minute_rows,
                    &mut sizes.minute_bytes,
                ),
                (
                    Resolution::Hour,
                    &mut sizes.hour_rows,
                    &mut sizes.hour_bytes,
                ),
            ] {
                let table = txn.open_table(res.table())?;
                *rows = table.len()?;
                for row in table.iter()? {
                    let (_, v) = row?;
                    *bytes += 8 + v.value().len() as u64;
                }
            }
            Ok(sizes)
        })
    }
}

fn merge_row(
    table: &mut redb::Table<u64, &[u8]>,
    start: u64,
    add: &Bucket,
) -> Result<(), StoreError> {
    let mut bucket = match table.get(start)? {
        Some(v) => decode(start, v.value()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "replacing a rollup row that cannot be decoded");
            Bucket::default()
        }),
        None => Bucket::default(),
    };
    bucket.merge(add);
    let bytes = serde_json::to_vec(&bucket).map_err(StoreError::Encode)?;
    table.insert(start, bytes.as_slice())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_795_687_200_000; // an hour boundary

    fn bucket(requests: u64, ms: &[u64]) -> Bucket {
        let mut b = Bucket {
            requests,
            succeeded: ms.len() as u64,
            ..Bucket::default()
        };
        for m in ms {
            b.time.record(m * 1000);
            add_named(&mut b.models, "gemini-3-pro-image", |h| h.record(m * 1000));
        }
        b
    }

    #[test]
    fn bounds_are_increasing_and_include_the_runbook_thresholds() {
        assert!(BOUNDS_US.windows(2).all(|w| w[0] < w[1]));
        assert!(BOUNDS_US
            .windows(2)
            .all(|w| w[1] as f64 / w[0] as f64 <= 1.34));
        assert!(BOUNDS_US.contains(&5_000_000));
        assert!(BOUNDS_US.contains(&10_000_000));
        assert_eq!(BOUNDS_US[0], 100);
        assert_eq!(BOUNDS_US[BOUND_COUNT - 1], 800_000_000);
    }

    #[test]
    fn quantiles_are_within_a_bucket_of_the_truth() {
        let mut h = Histogram::default();
        let values: Vec<u64> = (1..=1000).map(|i| i * 7_000).collect(); // 7 ms .. 7 s
        for v in &values {
            h.record(*v);
        }
        for q in [0.5, 0.95, 0.99] {
            let truth = values[(q * 1000.0) as usize - 1] as f64;
            let est = h.quantile(q).unwrap();
            assert!(
                (est - truth).abs() / truth <= 0.34,
                "q={q} est={est} truth={truth}"
            );
        }
        assert_eq!(h.mean_us().unwrap(), 3_503_500.0);
        assert_eq!(h.quantile(1.0).unwrap(), 7_000_000.0);
        assert_eq!(Histogram::default().quantile(0.5), None);
        // Slower than every bound: the maximum is the answer.
        let mut slow = Histogram::default();
        slow.record(900_000_000);
        assert_eq!(slow.quantile(0.5).unwrap(), 900_000_000.0);
    }

    #[test]
    fn histograms_survive_their_stored_form() {
        let b = bucket(3, &[1, 5_000, 12_000]);
        let json = serde_json::to_vec(&b).unwrap();
        let back: Bucket = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.time.count, 3);
    }

    #[test]
    fn names_past_the_cap_are_counted_as_other() {
        let mut b = Bucket::default();
        for i in 0..200 {
            add_named(&mut b.codes, &format!("IMG_{i}"), |c| *c += 1);
        }
        assert_eq!(b.codes.len(), MAX_NAMES);
        assert_eq!(b.codes.values().sum::<u64>(), 200);
        assert_eq!(b.codes[OTHER], 200 - (MAX_NAMES as u64 - 1));
    }

    #[test]
    fn minutes_add_up_into_hours_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.redb");
        {
            let store = Store::open(&path).unwrap();
            let r = store.rollups();
            r.record(
                &[
                    (T0, bucket(2, &[10, 20])),
                    (T0 + MINUTE_MS, bucket(1, &[30])),
                ],
                T0 + 90_000,
            )
            .unwrap();
            // The same minute again (a later flush) adds up.
            r.record(&[(T0 + MINUTE_MS, bucket(1, &[40]))], T0 + 100_000)
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let r = store.rollups();
        let minutes = r.range(Resolution::Minute, T0, T0 + HOUR_MS).unwrap();
        assert_eq!(minutes.len(), 2);
        assert_eq!(minutes[1].0, T0 + MINUTE_MS);
        assert_eq!(minutes[1].1.requests, 2);
        assert_eq!(minutes[1].1.time.count, 2);
        let hours = r.range(Resolution::Hour, T0, T0 + HOUR_MS).unwrap();
        assert_eq!(hours.len(), 1);
        assert_eq!(hours[0].1.requests, 4);
        assert_eq!(hours[0].1.models["gemini-3-pro-image"].count, 4);
        assert_eq!(hours[0].1.time.max_us, 40_000);
    }

    /// One minute at 10 requests a second: 600 requests over two models, three accounts, two clients, 40%
    /// cache hits (1-9 ms), generations of 2-30 s, a few errors of three types.
    fn busy_minute(minute: u64) -> Bucket {
        let mut b = Bucket::default();
        for i in 0..600u64 {
            let x = (minute * 600 + i).wrapping_mul(2_654_435_761) % 1000;
            b.requests += 1;
            add_named(
                &mut b.clients,
                if i % 3 == 0 { "team-a" } else { "team-b" },
                |c| {
                    c.requests += 1;
                    c.images += 1;
                },
            );
            if x < 30 {
                let (kind, code) = [
                    ("USER_ERROR", "IMG_SAFETY_BLOCKED"),
                    ("API_ERROR", "IMG_QUOTA_EXHAUSTED"),
                    ("NETWORK_ERROR", "IMG_UPSTREAM_TIMEOUT"),
                ][(x % 3) as usize];
                add_named(&mut b.errors, kind, |c| *c += 1);
                add_named(&mut b.codes, code, |c| *c += 1);
                continue;
            }
            b.succeeded += 1;
            b.images += 1;
            let model = if x.is_multiple_of(2) {
                "gemini-3-pro-image"
            } else {
                "gemini-2.5-flash-image"
            };
            let us = if x < 430 {
                b.cache_hits += 1;
                b.cached_images += 1;
                b.cost_saved_micro_usd += 134_000;
                let us = 1_000 + x * 20;
                b.hit_time.record(us);
                us
            } else {
                b.cache_misses += 1;
                b.upstream_calls += 1;
                2_000_000 + x * 28_000
            };
            b.time.record(us);
            add_named(&mut b.models, model, |h| h.record(us));
        }
        for a in ["acct-1", "acct-2", "acct-3"] {
            add_named(&mut b.accounts, a, |u| {
                u.calls += 57;
                u.successes += 55;
                u.failures += 2;
            });
        }
        b.up_ms = MINUTE_MS;
        b
    }

    #[test]
    fn a_day_at_ten_requests_a_second_stays_small() {
        let store = Store::in_memory().unwrap();
        let r = store.rollups();
        // 31 days of traffic, flushed every 10 minutes, so both tables are full.
        let minutes = 31 * 24 * 60;
        for batch in 0..minutes / 10 {
            let rows: Vec<_> = (batch * 10..batch * 10 + 10)
                .map(|m| (T0 + m * MINUTE_MS, busy_minute(m)))
                .collect();
            r.record(&rows, T0 + (batch * 10 + 10) * MINUTE_MS).unwrap();
        }
        let s = r.sizes().unwrap();
        // On disk: a compact copy (a backup) of a store holding nothing else.
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.redb");
        store.backup_to(&copy, false).unwrap();
        let file = std::fs::metadata(&copy).unwrap().len();
        eprintln!("rollups after 31 days at 10 req/s: {s:?}; a compact store file holding them: {file} bytes");
        assert_eq!(s.minute_rows, MINUTE_ROWS - 1);
        assert_eq!(s.hour_rows, HOUR_ROWS - 1);
        // A minute row is about 2 KB, an hour row about as large (the histograms fill, not grow).
        assert!(s.minute_bytes / s.minute_rows < 4096, "{s:?}");
        assert!(s.hour_bytes / s.hour_rows < 4096, "{s:?}");
    }

    #[test]
    fn old_rows_are_pruned_so_the_tables_stay_bounded() {
        let store = Store::in_memory().unwrap();
        let r = store.rollups();
        // Two days and a bit of one request a minute, flushed every 10 minutes.
        let end = T0 + 2 * 24 * HOUR_MS + 30 * MINUTE_MS;
        let mut t = T0;
        while t < end {
            let batch: Vec<_> = (0..10)
                .map(|i| (t + i * MINUTE_MS, bucket(1, &[5])))
                .collect();
            t += 10 * MINUTE_MS;
            r.record(&batch, t).unwrap();
        }
        let s = r.sizes().unwrap();
        assert!(s.minute_rows <= MINUTE_ROWS, "{s:?}");
        assert!(s.minute_rows >= MINUTE_ROWS - 2, "{s:?}");
        assert_eq!(s.hour_rows, 49);
        // 40 days later only hours within the retention are left.
        r.record(
            &[(end + 40 * 24 * HOUR_MS, bucket(1, &[5]))],
            end + 40 * 24 * HOUR_MS,
        )
        .unwrap();
        let s = r.sizes().unwrap();
        assert_eq!((s.minute_rows, s.hour_rows), (1, 1));
        // A minute older than the retention is not written as a minute row (only its hour, if kept).
        let now = end + 40 * 24 * HOUR_MS;
        r.record(&[(now - 2 * 24 * HOUR_MS, bucket(1, &[5]))], now)
            .unwrap();
        let s = r.sizes().unwrap();
        assert_eq!((s.minute_rows, s.hour_rows), (1, 2));
        assert!(r
            .range(Resolution::Minute, 0, now - MINUTE_RETENTION_MS)
            .unwrap()
            .is_empty());
    }
}
