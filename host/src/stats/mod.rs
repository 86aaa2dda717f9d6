//! The gateway's own traffic statistics, for operators without a monitoring stack: every request is counted
//! in memory at the log phase (a lock held for a few map updates), and the per-minute buckets are merged into
//! the store's rollups ([`aperture_store::Rollups`]) every [`FLUSH_EVERY`] and at shutdown. A crash loses at
//! most the counts of the last [`FLUSH_EVERY`]; the time the gateway was down shows as lost uptime.
//! `GET /admin/stats`, `aperture stats` and the dashboard read them through [`report`].

pub mod cli;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aperture_store::{AccountPool, AccountUse, Bucket, Counters, Rollups, StoreError, MINUTE_MS};

use crate::errors::{error_type_name, GatewayError};
use crate::gateway::{CacheStatus, Ctx};

/// How often the counts in memory are written to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Counts of the requests since the last flush, and the live numbers.
pub struct Stats {
    rollups: Rollups,
    /// Minute start (unix ms) -> counts not yet in the store.
    pending: Mutex<BTreeMap<u64, Bucket>>,
    /// Image requests being handled now.
    in_flight: AtomicU64,
    /// Image requests begun since the start.
    started: AtomicU64,
    /// Account counters at the last flush, by label: the next flush records what they gained.
    accounts_seen: Mutex<HashMap<String, Counters>>,
    /// When uptime was last counted (unix ms).
    up_since_ms: AtomicU64,
    /// Upstream prices, for the cost the cache saved (`[pricing]`).
    pricing: crate::pricing::Pricing,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats")
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

/// Held while a request is in flight.
pub struct InFlight(Arc<Stats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn minute_of(ms: u64) -> u64 {
    ms - ms % MINUTE_MS
}

impl Stats {
    /// Statistics written to `rollups`; `accounts` gives the counters' starting point, `pricing` what a
    /// cache hit saved.
    pub fn new(
        rollups: Rollups,
        accounts: &AccountPool,
        pricing: crate::pricing::Pricing,
        now_ms: u64,
    ) -> Stats {
        let seen = accounts
            .list(now_ms)
            .into_iter()
            .map(|a| (a.label, a.counters))
            .collect();
        Stats {
            rollups,
            pending: Mutex::new(BTreeMap::new()),
            in_flight: AtomicU64::new(0),
            started: AtomicU64::new(0),
            accounts_seen: Mutex::new(seen),
            up_since_ms: AtomicU64::new(now_ms),
            pricing,
        }
    }

    /// Count a request as in flight until the guard drops, and let the log phase record it here.
    pub fn begin(self: &Arc<Self>, ctx: &mut Ctx) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        ctx.stats = Some(self.clone());
        InFlight(self.clone())
    }

    /// Image requests being handled now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Image requests begun since the start.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Count one finished request (the log phase calls this).
    pub fn record(&self, ctx: &Ctx, status: u16, error: Option<&GatewayError>, now_ms: u64) {
        let us = ctx.started.elapsed().as_micros() as u64;
        let images = u64::from(ctx.n.unwrap_or(0));
        let hit = ctx.cache == Some(CacheStatus::Hit);
        let saved = match (hit && error.is_none(), &ctx.model, &ctx.image_size) {
            (true, Some(model), Some(size)) => {
                let usd = crate::pricing::image_price_usd(&self.pricing, model, size);
                (usd * 1e6).round() as u64 * images
            }
            _ => 0,
        };
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let b = pending.entry(minute_of(now_ms)).or_default();
        b.requests += 1;
        match error {
            None if status < 400 => {
                b.succeeded += 1;
                b.images += images;
                b.time.record(us);
                if let Some(model) = &ctx.model {
                    aperture_store::add_named(&mut b.models, model, |h| h.record(us));
                }
                if hit {
                    b.hit_time.record(us);
                    b.cached_images += images;
                    b.cost_saved_micro_usd += saved;
                }
            }
            _ => {
                let (kind, code) = match error {
                    Some(e) => (error_type_name(e.error_type()), e.code().to_string()),
                    None => ("SYSTEM_ERROR", format!("HTTP_{status}")),
                };
                aperture_store::add_named(&mut b.errors, kind, |c| *c += 1);
                aperture_store::add_named(&mut b.codes, &code, |c| *c += 1);
                if code == "IMG_SAFETY_BLOCKED" {
                    b.safety_blocked += 1;
                }
            }
        }
        match ctx.cache {
            Some(CacheStatus::Hit) => b.cache_hits += 1,
            Some(CacheStatus::Miss) => b.cache_misses += 1,
            Some(CacheStatus::Bypass) => b.cache_bypass += 1,
            None => {}
        }
        b.coalesced += u64::from(ctx.coalesced);
        b.upstream_calls += u64::from(ctx.upstream_calls);
        if let Some(client) = &ctx.client {
            let served = if error.is_none() { images } else { 0 };
            aperture_store::add_named(&mut b.clients, client, |c| {
                c.requests += 1;
                c.images += served;
            });
        }
    }

    /// Write what was counted since the last flush to the store (blocking: call it off the async workers),
    /// with the uptime since the last flush and what each upstream account's counters gained. On failure the
    /// counts stay in memory for the next flush (at most a day of them).
    pub fn flush(&self, accounts: &AccountPool, now_ms: u64) -> Result<(), StoreError> {
        let mut batch =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let current = batch.entry(minute_of(now_ms)).or_default();
        self.account_deltas(accounts, now_ms, current);
        // Uptime, split at minute boundaries so each minute holds the time the gateway ran in it.
        let mut from = self.up_since_ms.swap(now_ms, Ordering::Relaxed).min(now_ms);
        while from < now_ms {
            let end = (minute_of(from) + MINUTE_MS).min(now_ms);
            batch.entry(minute_of(from)).or_default().up_ms += end - from;
            from = end;
        }
        let rows: Vec<(u64, Bucket)> = batch.into_iter().collect();
        match self.rollups.record(&rows, now_ms) {
            Ok(()) => Ok(()),
            Err(e) => {
                let keep_from = now_ms.saturating_sub(aperture_store::MINUTE_RETENTION_MS);
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                for (start, b) in rows {
                    if start >= keep_from {
                        pending.entry(start).or_default().merge(&b);
                    }
                }
                Err(e)
            }
        }
    }

    fn account_deltas(&self, accounts: &AccountPool, now_ms: u64, into: &mut Bucket) {
        let mut seen = self.accounts_seen.lock().unwrap_or_else(|p| p.into_inner());
        for a in accounts.list(now_ms) {
            let before = seen.get(&a.label).cloned().unwrap_or_default();
            let c = &a.counters;
            // A counter lower than before is a new account under an old label: count it from zero.
            let delta = |now: u64, was: u64| if now >= was { now - was } else { now };
            let used = AccountUse {
                calls: delta(c.requests, before.requests),
                successes: delta(c.successes, before.successes),
                failures: delta(c.failures, before.failures),
                quota_hits: delta(c.quota_hits, before.quota_hits),
            };
            if used != AccountUse::default() {
                aperture_store::add_named(&mut into.accounts, &a.label, |u| {
                    u.calls += used.calls;
                    u.successes += used.successes;
                    u.failures += used.failures;
                    u.quota_hits += used.quota_hits;
                });
            }
            seen.insert(a.label, a.counters);
        }
    }

    /// The rollups this writes to.
    pub fn rollups(&self) -> &Rollups {
        &self.rollups
    }
}

/// The log phase's hook: count the request in the statistics it was started with (if any).
pub fn record(ctx: &Ctx, status: u16, error: Option<&GatewayError>) {
    if let Some(stats) = &ctx.stats {
        stats.record(ctx, status, error, crate::app::now_ms());
    }
}

/// Flush the statistics every [`FLUSH_EVERY`] until the task is aborted.
pub async fn flush_periodically(app: Arc<crate::app::App>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let app = app.clone();
        match tokio::task::spawn_blocking(move || {
            app.stats.flush(&app.accounts, crate::app::now_ms())
        })
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not write the traffic statistics; they are kept in memory and retried")
            }
            Err(e) => tracing::error!(error = %e, "the statistics writer failed"),
        }
    }
}
