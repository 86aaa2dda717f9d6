//! Phase 4, lookup: the cache key (sha256 over the translator's namespace and the
//! canonical request) and the cache read. A broken cache degrades to a miss.

use std::sync::Arc;

use aperture_store::CacheKey;
use sha2::{Digest, Sha256};

use super::ctx::{CacheStatus, Ctx};
use super::hot::Ticket;
use crate::app::{blocking, now_ms, App};
use crate::config::threshold_name;
use crate::generated::Generated;
use crate::policy::{hex, ImageRequest, OutputFormat, SafetySetting, SafetyThreshold};

/// sha256 over every field that changes the images (not `response_format`),
/// each length-prefixed so no two requests can collide by concatenation: the
/// translator's namespace, the canonical request and the safety settings the
/// safety policy returned for it, so a policy change never serves an image made
/// under other settings, and a rollback finds the old entries again.
pub fn cache_key(
    namespace: &str,
    req: &ImageRequest,
    threshold: SafetyThreshold,
    settings: &[SafetySetting],
) -> CacheKey {
    let mut h = Sha256::new();
    let n = [req.n];
    let format: &[u8] = match req.output_format {
        None => b"",
        Some(OutputFormat::Png) => b"png",
        Some(OutputFormat::Jpeg) => b"jpeg",
        Some(OutputFormat::Webp) => b"webp",
    };
    let fields: [&[u8]; 10] = [
        namespace.as_bytes(),
        req.model.as_bytes(),
        req.upstream_model.as_bytes(),
        req.prompt.as_bytes(),
        &n,
        req.aspect_ratio.as_bytes(),
        req.image_size.as_bytes(),
        req.style.as_deref().unwrap_or("").as_bytes(),
        threshold_name(threshold).as_bytes(),
        format,
    ];
    for f in fields {
        h.update((f.len() as u64).to_le_bytes());
        h.update(f);
    }
    h.update((settings.len() as u64).to_le_bytes());
    for s in settings {
        for f in [s.category.as_bytes(), s.threshold.as_bytes()] {
            h.update((f.len() as u64).to_le_bytes());
            h.update(f);
        }
    }
    h.finalize().into()
}

/// The short form of a key used in logs.
pub fn key_prefix(key: &CacheKey) -> String {
    hex(&key[..8])
}

/// A cache hit.
pub struct Hit {
    /// What the request produced.
    pub generated: Arc<Generated>,
    /// For an entry read from the store: its creation time (unix ms) and the hot cache's ticket taken
    /// before the read. `None` for a result whose write is still pending.
    pub stored: Option<(u64, Option<Ticket>)>,
}

/// Serve a hit from the hot cache (no store read, no render), or `None`. The caller has
/// authenticated, parsed and screened the request; the hit is logged like any other.
pub fn hot(
    app: &Arc<App>,
    ctx: &mut Ctx,
    key: &CacheKey,
    format: crate::policy::ResponseFormat,
) -> Option<super::body::Chunks> {
    let (hot, cache) = (app.hot.as_ref()?, app.cache.as_ref()?);
    let now = now_ms();
    let pin = ctx.policy(app);
    let body = hot.get(key, format, &super::hot::renderer(&pin), now)?;
    ctx.cache_key = Some(key_prefix(key));
    ctx.cache = Some(CacheStatus::Hit);
    tracing::info!(request_id = %ctx.request_id, key = %key_prefix(key), hot = true, "Cache hit");
    // The hit counts for LRU order in the store too; the recorded hits are written now and then.
    if cache.touch(key, now) {
        let cache = cache.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = cache.write_access_times() {
                tracing::warn!(error = %e, "cache: could not record access times");
            }
        });
    }
    Some(body)
}

/// Read the cache unless bypassed; records HIT / MISS / BYPASS in `ctx`. A result
/// whose cache write is still in flight counts as a hit: it is in the cache, nearly.
pub async fn run(app: &Arc<App>, ctx: &mut Ctx, key: CacheKey, bypass: bool) -> Option<Hit> {
    ctx.cache_key = Some(key_prefix(&key));
    let Some(cache) = app.cache.clone() else {
        ctx.cache = Some(CacheStatus::Bypass);
        return None;
    };
    if bypass {
        ctx.cache = Some(CacheStatus::Bypass);
        tracing::info!(request_id = %ctx.request_id, key = %key_prefix(&key), "Cache bypass");
        return None;
    }
    if let Some(pending) = app.inflight.completed(&key) {
        ctx.cache = Some(CacheStatus::Hit);
        tracing::info!(request_id = %ctx.request_id, key = %key_prefix(&key), pending_write = true, "Cache hit");
        return Some(Hit {
            generated: pending,
            stored: None,
        });
    }
    let ticket = app.hot.as_ref().map(|hot| hot.ticket(&key));
    // Reading copies the entry out of redb and decoding checks it: on the blocking thread.
    let read = blocking(move || {
        cache.get_entry(&key, now_ms()).map(|found| {
            found.map(|(bytes, created)| Generated::decode(&bytes.into()).map(|g| (g, created)))
        })
    })
    .await;
    let found = match read {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::error!(request_id = %ctx.request_id, key = %key_prefix(&key), error = %e, "Cache read failed; treating as a miss");
            None
        }
        Err(e) => {
            tracing::error!(request_id = %ctx.request_id, error = %e, "Cache read failed; treating as a miss");
            None
        }
    };
    match found {
        Some(Ok((generated, created))) => {
            ctx.cache = Some(CacheStatus::Hit);
            tracing::info!(request_id = %ctx.request_id, key = %key_prefix(&key), "Cache hit");
            Some(Hit {
                generated: Arc::new(generated),
                stored: Some((created, ticket)),
            })
        }
        Some(Err(e)) => {
            tracing::error!(request_id = %ctx.request_id, key = %key_prefix(&key), error = %e, "Cache entry corrupt; removing it");
            crate::metrics::cache_corrupt();
            if let Some(cache) = app.cache.clone() {
                let _ = blocking(move || cache.remove(&key)).await;
            }
            ctx.cache = Some(CacheStatus::Miss);
            None
        }
        None => {
            ctx.cache = Some(CacheStatus::Miss);
            tracing::info!(request_id = %ctx.request_id, key = %key_prefix(&key), "Cache miss");
            None
        }
    }
}
