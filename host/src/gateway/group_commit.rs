//! Group commit of cache writes: one writer thread takes every result that is ready and stores them all in
//! ONE redb write transaction (one fsync), instead of one transaction per miss. Writes stay off the
//! client's path (the response is sent first); a request's write task waits for its batch to commit, so the
//! in-flight entry (a repeat meanwhile is served as a hit) lives until the write landed, and shutdown, which
//! waits for those tasks, still waits for every pending write.
//!
//! What a crash can lose: results already answered but whose batch had not committed (at most the writes
//! queued at that moment); they are generated again on the next request. A committed batch is durable.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use aperture_store::{Cache, CacheKey, PutOutcome};

use super::store::log_outcome;
use crate::app::now_ms;
use crate::generated::Generated;

/// Most results in one transaction.
const MAX_BATCH: usize = 256;
/// Most payload bytes in one transaction: a batch is encoded (copied) at once, and redb holds its dirty
/// pages until the commit, so this bounds the memory a batch adds. One fsync per 16 MiB costs little.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// What to store: a whole result (logged as `Cache store`), or one image of a request. Queued jobs share
/// the images with the request; they are encoded only when their batch is written.
enum Payload {
    Result(Arc<Generated>),
    Image(Arc<Generated>),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Result(g) | Payload::Image(g) => g.encoded_len(),
        }
    }
}

struct Job {
    request_id: Option<String>,
    key: CacheKey,
    payload: Payload,
    /// Told whether the entry was stored.
    done: tokio::sync::oneshot::Sender<bool>,
}

/// The cache writer. Dropping it lets the thread finish what is queued and waits for it.
pub struct GroupCommit {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Start the writer thread for `cache`.
    pub fn start(cache: Cache) -> std::io::Result<GroupCommit> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("aperture-cache-writer".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut bytes = first.payload.len();
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                        match queue.try_recv() {
                            Ok(job) => {
                                bytes += job.payload.len();
                                batch.push(job);
                            }
                            Err(_) => break,
                        }
                    }
                    commit(&cache, batch);
                }
            })?;
        Ok(GroupCommit {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Store `generated` under `key` with whatever else is ready; returns once it is committed (or failed,
    /// which is logged).
    pub async fn write(&self, request_id: &str, key: CacheKey, generated: Arc<Generated>) {
        let job = |done| Job {
            request_id: Some(request_id.to_string()),
            key,
            payload: Payload::Result(generated),
            done,
        };
        if !self.submit(job).await {
            tracing::debug!(request_id = %request_id, "Cache write did not land");
        }
    }

    /// Store one image of a request (`partial.rs`) without a log line; `true` once it is committed.
    pub async fn write_image(&self, key: CacheKey, payload: Arc<Generated>) -> bool {
        self.submit(|done| Job {
            request_id: None,
            key,
            payload: Payload::Image(payload),
            done,
        })
        .await
    }

    async fn submit(&self, job: impl FnOnce(tokio::sync::oneshot::Sender<bool>) -> Job) -> bool {
        let (done, committed) = tokio::sync::oneshot::channel();
        let sent = self.jobs.as_ref().map(|j| j.send(job(done)));
        if !matches!(sent, Some(Ok(()))) {
            tracing::error!("Cache write failed: the cache writer has stopped");
            return false;
        }
        committed.await.unwrap_or(false)
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One transaction for `batch`; every job is logged and released, whatever happens.
fn commit(cache: &Cache, batch: Vec<Job>) {
    let mut jobs = Vec::with_capacity(batch.len());
    let mut entries = Vec::with_capacity(batch.len());
    for job in batch {
        let payload = match job.payload {
            Payload::Result(g) | Payload::Image(g) => g.encode(),
        };
        jobs.push((job.request_id, job.key, payload.len(), job.done));
        entries.push((job.key, payload));
    }
    let result = cache.put_many(&entries, now_ms());
    drop(entries);
    tracing::debug!(
        entries = jobs.len(),
        ok = result.is_ok(),
        "Cache batch committed"
    );
    let outcomes: Vec<Result<PutOutcome, String>> = match result {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) => jobs.iter().map(|_| Err(e.to_string())).collect(),
    };
    for ((request_id, key, size, done), outcome) in jobs.into_iter().zip(outcomes) {
        let stored = matches!(outcome, Ok(PutOutcome::Stored { .. }));
        match (&request_id, outcome) {
            (Some(id), outcome) => log_outcome(
                id,
                &key,
                size,
                outcome.as_ref().map(Clone::clone).map_err(String::as_str),
            ),
            // One image of a request: its evictions are logged; a failure by the caller.
            (None, Ok(PutOutcome::Stored { evicted })) => super::store::log_evictions(&evicted),
            (None, _) => {}
        }
        let _ = done.send(stored);
    }
}
