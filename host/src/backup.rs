//! `GET /admin/store/backup[?cache=false]`: a consistent snapshot of the store while the gateway serves,
//! made by copying every table as one redb read transaction sees it into a fresh file in the data dir,
//! then sent as the response body (`application/octet-stream`) and removed. The body is held in memory
//! while it is sent (the server's bodies are buffered), so a large cache costs its size in memory once;
//! `cache=false` leaves the cache out.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::app::{blocking, App};
use crate::errors::GatewayError;

/// Whether the query asks to leave the cache out (`cache=false`).
pub fn include_cache(query: Option<&str>) -> bool {
    !query
        .unwrap_or("")
        .split('&')
        .any(|pair| pair == "cache=false" || pair == "cache=0")
}

/// Take the snapshot and answer with it.
pub async fn snapshot(
    app: &Arc<App>,
    include_cache: bool,
    request_id: &str,
) -> Result<Response<Full<Bytes>>, GatewayError> {
    // Results already answered are in it: the cache writer gathers them for a moment before committing.
    if let (true, Some(writer)) = (include_cache, &app.cache_writer) {
        writer.settle().await;
    }
    let store = app.store.clone();
    let tmp = app
        .config
        .data_dir
        .join(format!(".backup-{:016x}.redb", rand::random::<u64>()));
    let inventory = blocking(move || {
        let result = store
            .backup_to(&tmp, include_cache)
            .map_err(GatewayError::from)
            .and_then(|inv| {
                std::fs::read(&tmp)
                    .map(|bytes| (inv, bytes))
                    .map_err(|e| GatewayError::Storage(format!("reading the snapshot: {e}")))
            });
        let _ = std::fs::remove_file(&tmp);
        result
    })
    .await??;
    let (inventory, bytes) = inventory;
    tracing::info!(
        bytes = bytes.len(),
        accounts = inventory.accounts,
        client_keys = inventory.client_keys,
        cache_entries = inventory.cache_entries,
        include_cache,
        "Store backup taken by operator"
    );
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        http::header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"aperture-backup.redb\""),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cache_is_left_out_only_when_asked() {
        assert!(super::include_cache(None));
        assert!(super::include_cache(Some("cache=true")));
        assert!(!super::include_cache(Some("cache=false")));
        assert!(!super::include_cache(Some("x=1&cache=0")));
    }
}
