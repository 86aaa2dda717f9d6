//! The `Emulator` handle the gateway's demo mode and the tests hold: start it on a listener, steer its faults,
//! read its counters, shut it down; and `run_standalone` for `aperture emulator`.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::catalog::NamedError;
use crate::config::{EmulatorConfig, KeySpec, QuotaWindow};
use crate::server;
use crate::shape::{Shape, ShapeError};
use crate::state::{Injected, Shared};

/// A running emulator. Clones control the same instance; dropping handles does not stop it, `shutdown` does.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.shared.addr)
            .finish()
    }
}

impl Emulator {
    /// Serves on `listener` from a spawned task (call within a tokio runtime).
    pub async fn start(listener: TcpListener, config: EmulatorConfig) -> Emulator {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let shared = Arc::new(Shared::new(listener, addr, &config));
        tokio::spawn(server::accept_loop(shared.clone()));
        tracing::info!(%addr, "Gemini emulator started");
        Emulator { shared }
    }

    /// Binds `addr` (port 0 picks a free port) and starts serving.
    pub async fn bind(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Emulator::start(listener, config).await)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://IP:PORT`, with a wildcard bind address replaced by loopback so it can be dialled.
    pub fn base_url(&self) -> String {
        let mut addr = self.shared.addr;
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            _ => {}
        }
        format!("http://{addr}")
    }

    /// The next `generateContent` calls answer these HTTP statuses, in order, with the real error bodies
    /// (429 is the per-minute quota body).
    pub fn fail_next(&self, statuses: &[u16]) {
        let queued: Vec<Injected> = statuses.iter().map(|s| Injected::Status(*s)).collect();
        self.shared.fail_next(None, &queued);
    }

    /// The next `generateContent` calls answer these named real errors (`429-limit0`, `503-overloaded`, ...;
    /// see `docs/emulator.md`), in order. Nothing is queued if a name is unknown.
    pub fn fail_next_named(&self, names: &[&str]) -> Result<(), ShapeError> {
        let queued = named(names)?;
        self.shared.fail_next(None, &queued);
        Ok(())
    }

    /// Like `fail_next_named`, but only calls presenting `key` take these (before the shared queue).
    pub fn fail_next_named_for_key(&self, key: &str, names: &[&str]) -> Result<(), ShapeError> {
        let queued = named(names)?;
        self.shared.fail_next(Some(key), &queued);
        Ok(())
    }

    /// The instance-wide answer shape from now on (per-call `emu:` directives still override it).
    pub fn set_shape(&self, shape: Shape) {
        self.shared.set_shape(shape);
    }

    /// The instance-wide answer shape.
    pub fn shape(&self) -> Shape {
        self.shared.shape()
    }

    /// Latency added before answering each `generateContent` call from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.set_latency(latency);
    }

    /// Accepts another key (or replaces one: its quota counts and forced exhaustion are reset). With an open
    /// key list (no keys configured) this only attaches the quota.
    pub fn add_key(&self, spec: KeySpec) {
        self.shared.add_key(spec);
    }

    /// From now on `key` gets the 429 quota body with the per-minute or per-day `quotaId` (until `add_key`
    /// replaces it). The retry delay counts down through repeating windows starting now.
    pub fn exhaust_key(&self, key: &str, per: QuotaWindow) {
        self.shared.exhaust_key(key, per);
    }

    /// `generateContent` calls received, whatever their outcome.
    pub fn calls(&self) -> u64 {
        self.shared.calls()
    }

    /// `generateContent` calls that presented `key`, whatever their outcome.
    pub fn calls_for_key(&self, key: &str) -> u64 {
        self.shared.calls_for_key(key)
    }

    /// Closes the listener (new connections are refused from the moment this returns) and drops open
    /// connections, including idle keep-alive ones.
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }
}

fn named(names: &[&str]) -> Result<Vec<Injected>, ShapeError> {
    names
        .iter()
        .map(|name| {
            NamedError::parse(name)
                .map(Injected::Named)
                .ok_or_else(|| ShapeError::InvalidValue {
                    name: "error".to_string(),
                    value: name.to_string(),
                    expected: "a named error (see docs/emulator.md)",
                })
        })
        .collect()
}

/// Runs an emulator on `addr` until ctrl-c (or SIGTERM), printing `Gemini emulator listening on http://ADDR`
/// with the bound address.
pub async fn run_standalone(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<()> {
    let emulator = Emulator::bind(addr, config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "Gemini emulator listening on http://{}",
        emulator.addr()
    )?;
    stdout.flush()?;
    drop(stdout);
    wait_for_stop_signal().await?;
    emulator.shutdown();
    Ok(())
}

#[cfg(unix)]
async fn wait_for_stop_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
