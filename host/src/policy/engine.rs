//! The wasmtime engine the policy components run on: pooling allocator (fresh,
//! cheap instance per call), epoch interruption (a deadline per call) and a memory
//! cap per instance, plus a WASI linker that grants no authority at all.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

/// How often the epoch advances; call deadlines are whole multiples of it.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits applied to every component call.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Wall-clock budget of one call before it is interrupted.
    pub timeout: Duration,
    /// Linear-memory cap of one instance, in bytes.
    pub max_memory_bytes: usize,
    /// How many instances may be alive at once (the pool size).
    pub max_instances: u32,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            timeout: Duration::from_millis(500),
            max_memory_bytes: 64 << 20,
            max_instances: 256,
        }
    }
}

/// Per-call store state: a WASI context with no preopens, no environment, no
/// arguments, no network; stdio goes nowhere.
pub struct CallState {
    wasi: wasmtime_wasi::WasiCtx,
    table: ResourceTable,
}

impl wasmtime_wasi::WasiView for CallState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The engine, the linker and the epoch ticker, shared by every component slot.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
    pub(crate) limits: CallLimits,
    /// Admits at most [`Runtime::concurrent_calls`] calls at once, so a burst waits
    /// for a pool slot instead of failing with "instance limit reached".
    pub(crate) gate: Gate,
    /// How many calls may run at once.
    pub(crate) concurrent_calls: u32,
    _ticker: Arc<Ticker>,
}

/// A counting semaphore for blocking threads (component calls run off the async workers).
pub(crate) struct Gate {
    free: std::sync::Mutex<u32>,
    freed: std::sync::Condvar,
}

/// A held admission; dropping it admits the next call.
pub(crate) struct Permit<'a>(&'a Gate);

impl Gate {
    fn new(permits: u32) -> Gate {
        Gate {
            free: std::sync::Mutex::new(permits),
            freed: std::sync::Condvar::new(),
        }
    }

    /// Wait for a free slot.
    pub(crate) fn enter(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

impl Runtime {
    /// Build the engine and the authority-free WASI linker.
    pub fn new(limits: CallLimits) -> wasmtime::Result<Runtime> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.max_instances)
            .total_core_instances(limits.max_instances * 8)
            .total_memories(limits.max_instances * 2)
            .total_tables(limits.max_instances * 8)
            .total_stacks(limits.max_instances)
            .max_memory_size(limits.max_memory_bytes)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_core_instances_per_component(16);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Small reservations keep the pool's virtual footprint modest; bounds
            // checks become explicit, which costs little for policy code.
            .memory_reservation(limits.max_memory_bytes as u64)
            .memory_guard_size(64 << 10)
            .memory_reservation_for_growth(0);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        add_policy_wasi(&mut linker)?;
        let ticker = Ticker::start(engine.clone());
        let concurrent_calls = Runtime::concurrent_calls(limits.max_instances);
        Ok(Runtime {
            engine,
            linker,
            limits,
            gate: Gate::new(concurrent_calls),
            concurrent_calls,
            _ticker: ticker,
        })
    }

    /// How many component calls may run at once: twice the cores (at most the
    /// pool size). Calls are short and CPU-bound, so more at once only adds
    /// threads competing for the cores: each call then takes longer, and on a
    /// saturated machine 256 admitted calls made a call's wall time many times
    /// its own CPU time.
    pub(crate) fn concurrent_calls(max_instances: u32) -> u32 {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
        cores.saturating_mul(2).clamp(1, max_instances.max(1))
    }

    /// A fresh store for one call, with the call deadline armed.
    pub(crate) fn store(&self) -> Store<CallState> {
        let state = CallState {
            wasi: wasmtime_wasi::WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        let ticks = (self.limits.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store
    }
}

/// The WASI a policy component may import: what Rust's std runtime needs (cli
/// environment/exit/stdio/terminal, io streams/poll/error) — and nothing else. No
/// clocks, randomness, filesystem or sockets are linked, so a component that asks
/// for them is refused when it is loaded, and every component stays a pure function.
/// The `WasiCtx` behind these grants nothing: empty environment, no arguments,
/// stdin empty, stdout/stderr discarded.
fn add_policy_wasi(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::p2::bindings::{cli, sync};

    struct Io;
    impl wasmtime::component::HasData for Io {
        type Data<'a> = &'a mut ResourceTable;
    }

    let l = linker;
    cli::exit::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::environment::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::stdin::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::stdout::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::stderr::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_input::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_output::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_stdin::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_stdout::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_stderr::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<CallState, Io>(l, |t| {
        &mut t.table
    })?;
    sync::io::poll::add_to_linker::<CallState, Io>(l, |t| &mut t.table)?;
    sync::io::streams::add_to_linker::<CallState, Io>(l, |t| &mut t.table)?;
    Ok(())
}

/// A background thread advancing the engine epoch; it stops when dropped.
struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine) -> Arc<Ticker> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("aperture-epoch".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Arc::new(Ticker { stop })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
