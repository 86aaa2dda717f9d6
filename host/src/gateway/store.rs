//! Phase 7, store: put a fresh result in the cache (TTL, byte cap, LRU eviction),
//! logging every eviction. A failed write is logged, never fatal to the request.
//! With the redb backend the write goes through the group commit (`group_commit.rs`).

use std::sync::Arc;

use aperture_store::{CacheKey, EvictReason, Evicted, PutOutcome};

use super::lookup::key_prefix;
use crate::app::{blocking, now_ms, App};
use crate::generated::Generated;

/// Store `generated` under `key`; returns once the write landed (or failed).
pub async fn run(app: &Arc<App>, request_id: &str, key: CacheKey, generated: &Arc<Generated>) {
    let Some(cache) = app.cache.clone() else {
        return;
    };
    if let Some(writer) = &app.cache_writer {
        writer.write(request_id, key, generated.clone()).await;
        return;
    }
    // Encoding copies megabytes: on the blocking thread, with the write.
    let generated = generated.clone();
    let written = blocking(move || {
        let payload = generated.encode();
        (payload.len(), cache.put(&key, &payload, now_ms()))
    })
    .await;
    match written {
        Ok((size, Ok(put))) => log_outcome(request_id, &key, size, Ok(put)),
        Ok((size, Err(e))) => log_outcome(request_id, &key, size, Err(&e.to_string())),
        Err(e) => tracing::error!(request_id = %request_id, error = %e, "Cache write failed"),
    }
}

/// The log lines of one cache write: `Cache store` and its evictions, a skip, or the failure.
pub fn log_outcome(
    request_id: &str,
    key: &CacheKey,
    size: usize,
    outcome: Result<PutOutcome, &str>,
) {
    match outcome {
        Ok(PutOutcome::Stored { evicted }) => {
            tracing::info!(request_id = %request_id, key = %key_prefix(key), bytes = size, "Cache store");
            log_evictions(&evicted);
        }
        Ok(PutOutcome::TooLarge) => {
            tracing::warn!(request_id = %request_id, key = %key_prefix(key), bytes = size, "Cache skip: entry larger than CACHE_MAX_SIZE_MB");
        }
        Err(e) => tracing::error!(request_id = %request_id, error = %e, "Cache write failed"),
    }
}

/// One `Cache eviction` line per evicted entry, with its key prefix and why.
pub fn log_evictions(evicted: &[Evicted]) {
    for e in evicted {
        let reason = match e.reason {
            EvictReason::Lru => "lru",
            EvictReason::Expired => "expired",
        };
        tracing::info!(key = %key_prefix(&e.key), bytes = e.size, reason, "Cache eviction");
        crate::metrics::cache_evicted(reason, 1);
    }
}
