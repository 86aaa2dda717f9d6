//! A global cap on upstream calls in flight, with a bounded queue: past it,
//! requests are shed (503 with `Retry-After`) rather than piling up in memory.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Upstream call slots shared by every request.
#[derive(Debug)]
pub struct CallLimit {
    slots: Arc<Semaphore>,
    waiting: AtomicU32,
    max_waiting: u32,
}

/// The queue is full: shed this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// Counts a waiter for as long as it waits.
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CallLimit {
    /// `max_calls` in flight, `max_waiting` queued behind them.
    pub fn new(max_calls: u32, max_waiting: u32) -> CallLimit {
        CallLimit {
            slots: Arc::new(Semaphore::new(max_calls.max(1) as usize)),
            waiting: AtomicU32::new(0),
            max_waiting,
        }
    }

    /// A slot for one call, waiting in the queue if all are taken; `Overloaded`
    /// when the queue is full too. The slot is freed when the permit drops.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, Overloaded> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Overloaded);
        }
        let _waiting = Waiting(&self.waiting);
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Overloaded)
    }

    /// Calls waiting for a slot now.
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_past_the_slots_queue_and_past_the_queue_are_shed() {
        let limit = Arc::new(CallLimit::new(1, 1));
        let first = limit.admit().await.unwrap();
        let queued = tokio::spawn({
            let limit = limit.clone();
            async move { limit.admit().await.map(|_| ()) }
        });
        while limit.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(limit.admit().await.err(), Some(Overloaded));
        drop(first);
        assert_eq!(queued.await.unwrap(), Ok(()));
        assert_eq!(limit.waiting(), 0);
        assert!(limit.admit().await.is_ok());
    }
}
