//! One writer thread for the log lines, so that logging costs a request a memcpy: the line is
//! appended to a shared buffer, and the thread writes whatever has gathered to every
//! destination (stderr and the log file) in one `write` each, at most once per [`LINGER`].
//! A burst of requests then costs one wake-up and two writes, not two writes (one of them
//! on the request's own thread) and a wake-up per line.
//!
//! Nothing is dropped: past [`MAX_PENDING`] bytes a line waits for the writer, as a
//! synchronous write would. Dropping the [`SinkGuard`] writes out what is queued and stops
//! the thread; what a crash can lose is the last [`LINGER`] of lines.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the writer lets lines gather after the first one of a batch.
pub const LINGER: Duration = Duration::from_millis(10);

/// Bytes queued at most; past this a line waits for the writer rather than being dropped.
pub const MAX_PENDING: usize = 4 << 20;

/// A destination of the lines: written to in batches of whole lines, flushed after each.
pub type Destination = Box<dyn Write + Send>;

struct Queue {
    lines: Vec<u8>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The queue became non-empty, or closed.
    ready: Condvar,
    /// The queue was taken by the writer: room again.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves plain bytes behind: keep logging.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where log lines are appended; cheap to clone. Implements `MakeWriter` for tracing.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

/// Stops the writer when dropped, after it has written everything queued.
#[must_use = "dropping the guard stops the log writer"]
pub struct SinkGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogSink {
    /// Start the writer thread for `destinations`.
    pub fn start(destinations: Vec<Destination>) -> std::io::Result<(LogSink, SinkGuard)> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                lines: Vec::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
        });
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("aperture-log-writer".into())
            .spawn(move || write_batches(&writer, destinations))?;
        Ok((
            LogSink {
                shared: shared.clone(),
            },
            SinkGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Queue `line` (whole lines only, so batches never split one).
    pub fn append(&self, line: &[u8]) {
        let mut queue = self.shared.lock();
        while queue.lines.len() >= MAX_PENDING && !queue.closed {
            queue = self
                .shared
                .room
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
        }
        let first = queue.lines.is_empty();
        queue.lines.extend_from_slice(line);
        drop(queue);
        // Only the first line of a batch wakes the writer; it collects the rest.
        if first {
            self.shared.ready.notify_one();
        }
    }
}

/// The writer thread: wait for a first line, let more gather, write them all, repeat.
fn write_batches(shared: &Shared, mut destinations: Vec<Destination>) {
    let mut spare = Vec::new();
    loop {
        let mut queue = shared.lock();
        while queue.lines.is_empty() && !queue.closed {
            queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
        }
        if queue.lines.is_empty() {
            return; // closed, and nothing left
        }
        if !queue.closed {
            drop(queue);
            std::thread::sleep(LINGER);
            queue = shared.lock();
        }
        let batch = std::mem::replace(&mut queue.lines, std::mem::take(&mut spare));
        drop(queue);
        shared.room.notify_all();
        for destination in &mut destinations {
            // A destination that fails (a closed stderr, a full disk) must not stop the others.
            let _ = destination.write_all(&batch);
            let _ = destination.flush();
        }
        spare = batch;
        spare.clear();
        // Do not keep a burst's worth of capacity for ever.
        if spare.capacity() > 1 << 20 {
            spare = Vec::new();
        }
    }
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The per-event writer tracing asks for: the formatter writes the whole line in one call.
pub struct SinkLine<'a>(&'a LogSink);

impl Write for SinkLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = SinkLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        SinkLine(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination that keeps what it is given, and counts the writes.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Kept {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut k = self.0.lock().unwrap();
            k.0.extend_from_slice(buf);
            k.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_reaches_every_destination_in_order_and_a_burst_is_batched() {
        let (a, b) = (Kept::default(), Kept::default());
        let (sink, guard) = LogSink::start(vec![Box::new(a.clone()), Box::new(b.clone())]).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        sink.append(format!("t={t} i={i}\n").as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard); // writes out the rest
        let (text, writes) = a.0.lock().unwrap().clone();
        assert_eq!(text, b.0.lock().unwrap().0);
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.lines().count(), 20_000);
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("t={t} i=")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(
                mine,
                (0..5000).collect::<Vec<_>>(),
                "thread {t}'s lines in order"
            );
        }
        assert!(
            writes < 20_000,
            "{writes} writes for 20000 lines: not batched"
        );
    }

    #[test]
    fn a_failing_destination_does_not_stop_the_others() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::Error::other("disk full"))
            }
        }
        let kept = Kept::default();
        let (sink, guard) = LogSink::start(vec![Box::new(Broken), Box::new(kept.clone())]).unwrap();
        sink.append(b"one\n");
        std::thread::sleep(LINGER * 5);
        sink.append(b"two\n");
        drop(guard);
        assert_eq!(kept.0.lock().unwrap().0, b"one\ntwo\n");
    }

    #[test]
    fn a_full_queue_waits_for_the_writer_instead_of_dropping_lines() {
        struct Slow(Kept);
        impl Write for Slow {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(20));
                self.0.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let kept = Kept::default();
        let (sink, guard) = LogSink::start(vec![Box::new(Slow(kept.clone()))]).unwrap();
        let line = vec![b'x'; 1 << 20];
        for _ in 0..12 {
            sink.append(&line);
        }
        drop(guard);
        assert_eq!(kept.0.lock().unwrap().0.len(), 12 << 20);
    }
}
