//! The state one emulator shares between its server tasks and its control handle: keys and quotas, injected
//! faults (by status or by name, for everyone or for one key), latency, the instance-wide answer shape, call
//! counters, the image and signature caches, and the listener that shutdown closes.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::catalog::NamedError;
use crate::config::{EmulatorConfig, KeySpec, Quota, QuotaWindow};
use crate::images::ImageCache;
use crate::quota::{Exceeded, QuotaBook};
use crate::safety::Triggers;
use crate::shape::Shape;
use crate::signatures::SignatureCache;

/// Rendered images kept for repeated prompts.
const IMAGE_CACHE_ENTRIES: usize = 16;
const IMAGE_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// How a presented API key fares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyCheck {
    Valid(Option<Quota>),
    Invalid,
}

/// A queued failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    /// The usual error body for an HTTP status.
    Status(u16),
    /// A named real error body.
    Named(NamedError),
}

impl Injected {
    fn to_json(self) -> serde_json::Value {
        match self {
            Injected::Status(s) => serde_json::json!(s),
            Injected::Named(e) => serde_json::json!(e.as_str()),
        }
    }
}

/// What one `generateContent` call learns when it arrives.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    pub latency: Duration,
    /// An injected failure to answer with, if one is queued (the key's own queue first).
    pub injected: Option<Injected>,
    /// The call's sequence number, for response ids.
    pub sequence: u64,
    /// The instance-wide answer shape at arrival.
    pub shape: Shape,
}

#[derive(Debug)]
struct State {
    /// No key list was configured: every key is valid unless it starts with `invalid`.
    open: bool,
    keys: HashMap<String, Option<Quota>>,
    quota: QuotaBook,
    fail_next: VecDeque<Injected>,
    fail_next_by_key: HashMap<String, VecDeque<Injected>>,
    latency: Duration,
    shape: Shape,
    calls: u64,
    calls_by_key: HashMap<String, u64>,
}

/// Everything an emulator instance shares.
pub(crate) struct Shared {
    pub addr: SocketAddr,
    pub triggers: Triggers,
    pub images: ImageCache,
    pub signatures: SignatureCache,
    /// Compress answers for clients that accept gzip.
    pub gzip: bool,
    state: Mutex<State>,
    listener: Mutex<Option<TcpListener>>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    pub fn new(listener: TcpListener, addr: SocketAddr, config: &EmulatorConfig) -> Self {
        let keys = config
            .keys
            .iter()
            .map(|k| (k.key.clone(), k.quota))
            .collect();
        Shared {
            addr,
            triggers: Triggers::from_config(config),
            images: ImageCache::new(IMAGE_CACHE_ENTRIES, IMAGE_CACHE_BYTES),
            signatures: SignatureCache::new(),
            gzip: config.gzip,
            state: Mutex::new(State {
                open: config.keys.is_empty(),
                keys,
                quota: QuotaBook::default(),
                fail_next: VecDeque::new(),
                fail_next_by_key: HashMap::new(),
                latency: config.latency,
                shape: config.shape.clone(),
                calls: 0,
                calls_by_key: HashMap::new(),
            }),
            listener: Mutex::new(Some(listener)),
            shutdown: watch::channel(false).0,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a `generateContent` call and takes the next injected failure, if any.
    pub fn arrive(&self, key: Option<&str>) -> Arrival {
        let mut state = self.state();
        state.calls += 1;
        let mut injected = None;
        if let Some(key) = key {
            *state.calls_by_key.entry(key.to_string()).or_insert(0) += 1;
            injected = state
                .fail_next_by_key
                .get_mut(key)
                .and_then(VecDeque::pop_front);
        }
        if injected.is_none() {
            injected = state.fail_next.pop_front();
        }
        Arrival {
            latency: state.latency,
            injected,
            sequence: state.calls,
            shape: state.shape.clone(),
        }
    }

    pub fn check_key(&self, key: &str) -> KeyCheck {
        let state = self.state();
        match state.keys.get(key) {
            Some(quota) => KeyCheck::Valid(*quota),
            None if state.open && !key.starts_with("invalid") => KeyCheck::Valid(None),
            None => KeyCheck::Invalid,
        }
    }

    pub fn admit(&self, key: &str, quota: Option<Quota>) -> Result<(), Exceeded> {
        self.state().quota.admit(key, quota, Instant::now())
    }

    /// Queues failures for every caller, or only for calls presenting `key`.
    pub fn fail_next(&self, key: Option<&str>, failures: &[Injected]) {
        let mut state = self.state();
        match key {
            None => state.fail_next.extend(failures.iter().copied()),
            Some(key) => state
                .fail_next_by_key
                .entry(key.to_string())
                .or_default()
                .extend(failures.iter().copied()),
        }
    }

    pub fn set_shape(&self, shape: Shape) {
        self.state().shape = shape;
    }

    pub fn shape(&self) -> Shape {
        self.state().shape.clone()
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// Adds or replaces a key; replacing forgets its counts and any forced exhaustion.
    pub fn add_key(&self, spec: KeySpec) {
        let mut state = self.state();
        state.quota.reset(&spec.key);
        state.keys.insert(spec.key, spec.quota);
    }

    pub fn exhaust_key(&self, key: &str, per: QuotaWindow) {
        self.state().quota.force_exhausted(key, per, Instant::now());
    }

    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    pub fn calls_for_key(&self, key: &str) -> u64 {
        self.state().calls_by_key.get(key).copied().unwrap_or(0)
    }

    /// `GET /_emulator/stats`.
    pub fn stats_json(&self) -> serde_json::Value {
        let state = self.state();
        serde_json::json!({
            "calls": state.calls,
            "calls_by_key": state.calls_by_key,
            "latency_ms": state.latency.as_millis() as u64,
            "pending_failures": state.fail_next.iter().map(|i| i.to_json()).collect::<Vec<_>>(),
            "pending_failures_by_key": state
                .fail_next_by_key
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(k, q)| (k.clone(), q.iter().map(|i| i.to_json()).collect::<Vec<_>>()))
                .collect::<HashMap<_, _>>(),
            "shape": state.shape.to_json(),
            "shut_down": *self.shutdown.borrow(),
        })
    }

    /// Polls the listener; `None` once shut down.
    pub fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::io::Result<(TcpStream, SocketAddr)>>> {
        let listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        match listener.as_ref() {
            Some(l) => l.poll_accept(cx).map(Some),
            None => Poll::Ready(None),
        }
    }

    /// Closes the listening socket now (new connections are refused) and tells every task to stop.
    pub fn shutdown(&self) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(listener);
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}
