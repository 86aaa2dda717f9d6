//! Group commit of cache writes: one writer thread gathers the results that arrive within [`GATHER`] of
//! the first and stores them all in ONE redb write transaction, instead of one transaction per miss. Writes stay off the
//! client's path (the response is sent first); a request's write task waits for its batch to commit, so the
//! in-flight entry (a repeat meanwhile is served as a hit) lives until the write landed, and shutdown, which
//! waits for those tasks, still waits for every pending write.
//!
//! Batches commit without an fsync (visible at once to every read), and one durable commit at most
//! [`DURABLE_WITHIN`] after the first of them makes them all durable: an fsync stalls for as long as the
//! disk likes (seconds on a busy machine), and every result waiting for one holds its images in memory.
//!
//! What a crash can lose: results already answered whose batch had not committed, or had committed but
//! not yet durably — at most about the last second of writes, and whatever was queued; they are generated
//! again on the next request. redb rolls back to the last durable commit, consistently, never half a batch.
//! A clean shutdown makes everything durable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aperture_store::{Cache, CacheKey, Payload as _, PutOutcome};

use super::store::log_outcome;
use crate::app::now_ms;
use crate::generated::Generated;

/// Most results in one transaction.
const MAX_BATCH: usize = 256;
/// Most payload bytes in one transaction (a larger single entry is a batch of its own): redb holds a
/// transaction's pages until it commits.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Most payload bytes queued for the writer. A result that would queue more is answered but not cached:
/// each queued write holds its images in memory, so a disk that cannot keep up must not grow the process
/// without bound. (An empty queue always takes one, however large.)
pub const MAX_BACKLOG_BYTES: usize = 64 * 1024 * 1024;

/// Whether a write of `size` bytes may join a queue holding `queued` bytes, with at most `max` queued: an
/// empty queue takes anything.
fn admits(queued: usize, size: usize, max: usize) -> bool {
    queued == 0 || queued.saturating_add(size) <= max
}

/// How long the writer gathers results after the first of a batch before committing it. A commit costs
/// about as much CPU as writing one 1K image's pages (B-tree and allocator pages of four tables, measured
/// with redb 2.6: 340 µs per entry in one-entry transactions, 195 µs in four-entry ones), so at a steady
/// hundred misses a second, committing each result as it comes spends half the writer's time on commits.
/// Nobody waits for it: the response has been sent, and a repeat meanwhile is served from the in-flight
/// result.
pub const GATHER: Duration = Duration::from_millis(20);

/// Longest a committed batch waits for the durable commit that covers it.
pub const DURABLE_WITHIN: Duration = Duration::from_secs(1);

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

/// What the writer thread receives, in order.
enum Msg {
    Write(Job),
    /// Told once every write queued before it has committed.
    Settle(tokio::sync::oneshot::Sender<()>),
}

/// The cache writer. Dropping it lets the thread finish what is queued and waits for it.
pub struct GroupCommit {
    jobs: Option<mpsc::Sender<Msg>>,
    /// Payload bytes queued and not yet committed.
    backlog: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Start the writer thread for `cache`.
    pub fn start(cache: Cache) -> std::io::Result<GroupCommit> {
        let (jobs, queue) = mpsc::channel::<Msg>();
        let backlog = Arc::new(AtomicUsize::new(0));
        let behind = backlog.clone();
        let thread = std::thread::Builder::new()
            .name("aperture-cache-writer".into())
            .spawn(move || write_batches(&cache, &queue, &behind))?;
        Ok(GroupCommit {
            jobs: Some(jobs),
            backlog,
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

    /// Returns once every write queued before the call has committed (is visible to readers): a backup
    /// taken after a response then holds its result, [`GATHER`] or not.
    pub async fn settle(&self) {
        let (done, settled) = tokio::sync::oneshot::channel();
        if let Some(Ok(())) = self.jobs.as_ref().map(|j| j.send(Msg::Settle(done))) {
            let _ = settled.await;
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
        let job = job(done);
        let size = job.payload.len();
        let queued = self.backlog.fetch_add(size, Ordering::SeqCst);
        if !admits(queued, size, MAX_BACKLOG_BYTES) {
            self.backlog.fetch_sub(size, Ordering::SeqCst);
            crate::metrics::cache_write_skipped();
            tracing::warn!(
                request_id = job.request_id.as_deref().unwrap_or("-"),
                key = %super::lookup::key_prefix(&job.key),
                bytes = size,
                queued_bytes = queued,
                "Cache skip: the cache writer is behind (the disk is slower than the results); not cached"
            );
            return false;
        }
        let sent = self.jobs.as_ref().map(|j| j.send(Msg::Write(job)));
        if !matches!(sent, Some(Ok(()))) {
            self.backlog.fetch_sub(size, Ordering::SeqCst);
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

/// The writer thread: everything ready goes into one batch; a batch is durable when the oldest write not
/// yet durable is [`DURABLE_WITHIN`] old, and when the queue falls idle that long, an empty durable commit
/// covers what is pending. The end of the queue (shutdown) makes everything durable.
fn write_batches(cache: &Cache, queue: &mpsc::Receiver<Msg>, backlog: &AtomicUsize) {
    // When the oldest commit that is not durable yet was made.
    let mut pending: Option<Instant> = None;
    loop {
        let first = match pending {
            None => match queue.recv() {
                Ok(msg) => msg,
                Err(_) => break,
            },
            Some(since) => match queue.recv_timeout(DURABLE_WITHIN.saturating_sub(since.elapsed()))
            {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => {
                    make_durable(cache);
                    pending = None;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        let first = match first {
            Msg::Write(job) => job,
            // Nothing is waiting to be written before it.
            Msg::Settle(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let mut bytes = first.payload.len();
        let mut batch = vec![first];
        let gather_until = Instant::now() + GATHER;
        let mut closed = false;
        let mut settle = None;
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let left = gather_until.saturating_duration_since(Instant::now());
            match queue.recv_timeout(left) {
                Ok(Msg::Write(job)) => {
                    bytes += job.payload.len();
                    batch.push(job);
                }
                Ok(Msg::Settle(done)) => {
                    settle = Some(done);
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        let durable = pending.is_some_and(|since| since.elapsed() >= DURABLE_WITHIN);
        commit(cache, batch, durable);
        backlog.fetch_sub(bytes, Ordering::SeqCst);
        if let Some(done) = settle {
            let _ = done.send(());
        }
        pending = match (durable, pending) {
            (true, _) => None,
            (false, since) => Some(since.unwrap_or_else(Instant::now)),
        };
        if closed {
            break;
        }
    }
    if pending.is_some() {
        make_durable(cache);
    }
}

/// One empty durable commit: every earlier commit is on disk once it returns.
fn make_durable(cache: &Cache) {
    if let Err(e) = cache.flush() {
        tracing::error!(error = %e, "Cache write failed: the durable commit of recent cache writes failed; they are kept until the next one");
    }
}

/// One transaction for `batch`; every job is logged and released, whatever happens.
fn commit(cache: &Cache, batch: Vec<Job>, durable: bool) {
    let mut jobs = Vec::with_capacity(batch.len());
    let mut entries = Vec::with_capacity(batch.len());
    for job in batch {
        // Written by the store straight into its page: no encoded copy in between.
        let payload = match job.payload {
            Payload::Result(g) | Payload::Image(g) => g.encoded(),
        };
        jobs.push((job.request_id, job.key, payload.len(), job.done));
        entries.push((job.key, payload));
    }
    let bytes: usize = entries.iter().map(|(_, p)| p.len()).sum();
    let started = std::time::Instant::now();
    let result = cache.put_many(&entries, now_ms(), durable);
    drop(entries);
    tracing::debug!(
        entries = jobs.len(),
        bytes,
        took_ms = started.elapsed().as_millis() as u64,
        durable,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settle_waits_for_the_writes_queued_before_it() {
        let store = aperture_store::Store::in_memory().unwrap();
        let cache = store.cache(aperture_store::CacheLimits {
            max_bytes: 1 << 20,
            ttl_ms: 0,
        });
        let writer = Arc::new(GroupCommit::start(cache.clone()).unwrap());
        // Nothing queued: settles at once.
        tokio::time::timeout(Duration::from_secs(5), writer.settle())
            .await
            .unwrap();
        let generated = Arc::new(Generated {
            revised_prompt: Some("a kettle".into()),
            ..Generated::default()
        });
        let writes: Vec<_> = (0..3u8)
            .map(|i| {
                let (writer, generated) = (writer.clone(), generated.clone());
                tokio::spawn(async move { writer.write("req", [i; 32], generated).await })
            })
            .collect();
        // The writes are queued before the settle, which returns once they are readable: the writer
        // gathers for GATHER before committing, so they are not yet when the queue takes them.
        while writer.backlog.load(Ordering::SeqCst) == 0 && cache.stats(0).unwrap().entries < 3 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        writer.settle().await;
        assert_eq!(cache.stats(0).unwrap().entries, 3);
        for w in writes {
            w.await.unwrap();
        }
    }

    #[test]
    fn the_backlog_is_bounded_but_never_refuses_an_empty_queue() {
        assert!(
            admits(0, 100 << 20, 64 << 20),
            "one huge result is still cached"
        );
        assert!(admits(60 << 20, 4 << 20, 64 << 20));
        assert!(!admits(60 << 20, (4 << 20) + 1, 64 << 20));
        assert!(!admits(1, usize::MAX, 64 << 20));
    }
}
