//! The wasmtime engine the policy components run on: pooling allocator (fresh,
//! cheap instance per call), epoch interruption (a deadline per call) and a memory
//! cap per instance, plus a WASI linker that grants no authority at all.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    UpdateDeadline,
};
use wasmtime_wasi::cli::{WasiCliCtx, WasiCliCtxView, WasiCliView};

/// How often the epoch advances; call deadlines are whole multiples of it.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits applied to every component call.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Budget of one call, in the CPU time of the thread running it, before it is interrupted.
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

/// Per-call store state: the WASI cli context (no environment, no arguments,
/// stdin empty, stdout/stderr discarded) and the resource table of its streams.
/// Only the cli interfaces are linked ([`add_policy_wasi`]), so no full `WasiCtx`
/// (clocks, random generators seeded per call, filesystem, sockets) is built.
pub struct CallState {
    cli: WasiCliCtx,
    table: ResourceTable,
    /// Set when a call running on an async worker used up [`WORKER_ALLOWANCE`] and
    /// was stopped, to be redone off the worker (see [`OnWorker`]).
    overran: bool,
    /// Keeps the epoch ticker running while this store exists.
    _ticking: Ticking,
}

impl CallState {
    /// Whether the call was stopped for using up its allowance on the async worker.
    pub(crate) fn overran(&self) -> bool {
        self.overran
    }
}

/// CPU time a call may use on an async worker; past it the call is stopped and redone
/// where blocking is allowed, with the whole budget ([`CallLimits::timeout`]).
pub const WORKER_ALLOWANCE: Duration = EPOCH_TICK;

thread_local! {
    static ON_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While held, component calls made on this thread run on it, an async worker of a
/// multi-thread tokio runtime, with the small [`WORKER_ALLOWANCE`]. A call costs tens of
/// microseconds, less than the two thread wake-ups of a hop to a blocking thread and
/// back; one that runs past the allowance (a loop, a pathological input) is stopped
/// after at most two epoch ticks and redone inside `tokio::task::block_in_place`, so
/// the worker's other tasks move to another thread while it runs. Components are pure
/// functions of their inputs, so the redo gives the answer the first run would have.
pub(crate) struct OnWorker(bool);

impl OnWorker {
    /// Mark this thread; only on a worker of a multi-thread runtime (`block_in_place`
    /// panics anywhere else).
    pub(crate) fn enter() -> OnWorker {
        OnWorker(ON_WORKER.with(|w| w.replace(true)))
    }

    /// Whether calls on this thread run inline on an async worker.
    pub(crate) fn here() -> bool {
        ON_WORKER.with(|w| w.get())
    }
}

impl Drop for OnWorker {
    fn drop(&mut self) {
        ON_WORKER.with(|w| w.set(self.0));
    }
}

impl WasiCliView for CallState {
    fn cli(&mut self) -> WasiCliCtxView<'_> {
        WasiCliCtxView {
            ctx: &mut self.cli,
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
    ticker: Arc<Ticker>,
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

    /// A free slot, waiting for one off the async worker if the call runs on one
    /// ([`OnWorker`]): a worker must not park on the condition variable.
    pub(crate) fn admit(&self) -> Permit<'_> {
        if !OnWorker::here() {
            return self.enter();
        }
        self.try_enter()
            .unwrap_or_else(|| tokio::task::block_in_place(|| self.enter()))
    }

    /// A free slot, if there is one now.
    fn try_enter(&self) -> Option<Permit<'_>> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        (*free > 0).then(|| {
            *free -= 1;
            Permit(self)
        })
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
        // Reset a used slot by scanning for the pages the call dirtied (Linux
        // PAGEMAP_SCAN, kernel 6.7+) and restoring only those, instead of
        // `madvise`-ing the whole memory away and taking a page fault on every page
        // the next call touches. Memory and tables still start each call exactly as
        // a fresh instance's (zeroed, or the module's initial image); the cap is
        // `max_memory_size`, unchanged. Measured with
        // `BENCH_ONLY=component cargo bench --locked -p aperture --bench gateway`
        // (translator.parse-request, fresh instance per call, median of 5000):
        // 31-33 us at first; 30.3 us once a call no longer builds a whole WasiCtx
        // (see CallState); then table_keep_resident(64 KiB) alone 24.9 us;
        // linear_memory_keep_resident(4 MiB) without the scan 38.2 us (it memsets
        // the whole prefix); scan + 2 MiB memory + 64 KiB tables 12.5-13.0 us.
        // 1, 2, 4 and 8 MiB measured the same; decommit batching, a 4 GiB
        // reservation and Cranelift speed-and-size changed nothing.
        // What stays resident is bounded: at most 2 MiB of dirtied pages per
        // memory, in the slots in use plus at most 32 unused warm ones (calls run
        // at most `concurrent_calls` at once, so each component needs only that
        // many slots; the default of 100 warm slots let old versions' slots linger).
        pool.table_keep_resident(64 << 10).max_unused_warm_slots(32);
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(2 << 20);
        }
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
        let ticker = Ticker::start({
            let engine = engine.clone();
            move || engine.increment_epoch()
        });
        let concurrent_calls = Runtime::concurrent_calls(limits.max_instances);
        Ok(Runtime {
            engine,
            linker,
            limits,
            gate: Gate::new(concurrent_calls),
            concurrent_calls,
            ticker,
        })
    }

    /// How many component calls may run at once: twice the cores (at most the
    /// pool size). Calls are short and CPU-bound: more at once than the cores can
    /// run only adds threads competing for them (each call's wall time stretches)
    /// and blocking threads parked in the gate.
    pub(crate) fn concurrent_calls(max_instances: u32) -> u32 {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
        cores.saturating_mul(2).clamp(1, max_instances.max(1))
    }

    /// A fresh store for one call, with the call deadline armed.
    ///
    /// The budget counts the CPU time of the calling thread, not wall time: on a
    /// saturated machine a call that is descheduled (or waits for a page) is not
    /// stopped for time it did not run. The first epoch tick after the start takes
    /// the thread's CPU clock as the baseline (so a call done within a tick, nearly
    /// all of them, reads no clock at all); later ticks compare against it, and
    /// the call is interrupted once it has used the budget, less the one tick
    /// before the baseline.
    ///
    /// On an async worker ([`OnWorker`]) the budget is [`WORKER_ALLOWANCE`], and a call
    /// that uses it up is marked [`CallState::overran`] (the caller redoes it with
    /// [`Runtime::store_off_worker`]).
    pub(crate) fn store(&self) -> Store<CallState> {
        self.store_with(OnWorker::here())
    }

    /// A fresh store with the whole budget, for a call redone off the worker.
    pub(crate) fn store_off_worker(&self) -> Store<CallState> {
        self.store_with(false)
    }

    fn store_with(&self, on_worker: bool) -> Store<CallState> {
        let state = CallState {
            cli: WasiCliCtx::default(),
            table: ResourceTable::new(),
            overran: false,
            _ticking: self.ticker.hold(),
        };
        let mut store = Store::new(&self.engine, state);
        let whole = self.limits.timeout.saturating_sub(EPOCH_TICK);
        // Never more on the worker than the call's own deadline allows.
        let budget = if on_worker {
            WORKER_ALLOWANCE.min(whole)
        } else {
            whole
        };
        let mut baseline: Option<Duration> = None;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            Ok(match next_check(budget, &mut baseline, thread_cpu_time()) {
                Some(ticks) => UpdateDeadline::Continue(ticks),
                None => {
                    ctx.data_mut().overran = on_worker;
                    UpdateDeadline::Interrupt
                }
            })
        });
        store
    }
}

/// The WASI a policy component may import: what Rust's std runtime needs (cli
/// environment/exit/stdio/terminal, io streams/poll/error) — and nothing else. No
/// clocks, randomness, filesystem or sockets are linked, so a component that asks
/// for them is refused when it is loaded, and every component stays a pure function.
/// The cli context behind these grants nothing: empty environment, no arguments,
/// stdin empty, stdout/stderr discarded.
fn add_policy_wasi(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::WasiCli;
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
    // Streams and poll through `wasi_io::Guarded`: their blocking functions must not run on
    // an async worker (they stop the call there, to be redone off it; see `OnWorker`).
    struct GuardedIo;
    impl wasmtime::component::HasData for GuardedIo {
        type Data<'a> = super::wasi_io::Guarded<'a>;
    }
    fn guarded(t: &mut CallState) -> super::wasi_io::Guarded<'_> {
        super::wasi_io::Guarded {
            table: &mut t.table,
            overran: &mut t.overran,
        }
    }
    sync::io::poll::add_to_linker::<CallState, GuardedIo>(l, guarded)?;
    sync::io::streams::add_to_linker::<CallState, GuardedIo>(l, guarded)?;
    Ok(())
}

/// At an epoch deadline of a call whose budget is `budget` of CPU time, with the
/// thread's CPU clock reading `now`: the ticks until the next check, or `None` to
/// interrupt the call. The first check only takes the baseline.
fn next_check(budget: Duration, baseline: &mut Option<Duration>, now: Duration) -> Option<u64> {
    let used = match *baseline {
        None => {
            *baseline = Some(now);
            Duration::ZERO
        }
        Some(start) => now.saturating_sub(start),
    };
    if used >= budget {
        return None;
    }
    let left = budget - used;
    Some(left.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1) as u64)
}

/// CPU time used by the calling thread so far.
#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Elsewhere, wall time since the process started stands in for it.
#[cfg(not(unix))]
fn thread_cpu_time() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// A background thread advancing the engine epoch while any store exists (a call
/// is running or about to), parked otherwise: an idle gateway, or one serving hits
/// whose component results are memoized, is not woken 200 times a second. It stops
/// when dropped.
struct Ticker {
    shared: Arc<TickerShared>,
    thread: std::thread::Thread,
}

struct TickerShared {
    /// Stores alive; the thread ticks while this is above zero.
    live: AtomicUsize,
    stop: AtomicBool,
}

/// Held by each store ([`CallState`]); the ticker runs while any is held.
pub(crate) struct Ticking {
    shared: Arc<TickerShared>,
}

impl Drop for Ticking {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Ticker {
    /// Call `tick` every [`EPOCH_TICK`] while a [`Ticking`] is held.
    fn start(tick: impl Fn() + Send + 'static) -> Arc<Ticker> {
        let shared = Arc::new(TickerShared {
            live: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let state = shared.clone();
        let handle = std::thread::Builder::new()
            .name("aperture-epoch".into())
            .spawn(move || {
                while !state.stop.load(Ordering::Acquire) {
                    if state.live.load(Ordering::Acquire) == 0 {
                        // `hold` unparks after raising the count; an unpark that came
                        // before this park makes it return at once (std's token).
                        std::thread::park();
                        continue;
                    }
                    // The first tick comes at most one tick after a call starts, as
                    // with a free-running ticker, so the deadline arithmetic holds.
                    std::thread::sleep(EPOCH_TICK);
                    tick();
                }
            })
            .expect("spawning the epoch thread");
        Arc::new(Ticker {
            shared,
            thread: handle.thread().clone(),
        })
    }

    /// Keep the epoch advancing until the returned guard drops.
    fn hold(&self) -> Ticking {
        if self.shared.live.fetch_add(1, Ordering::AcqRel) == 0 {
            self.thread.unpark();
        }
        Ticking {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_ticker_ticks_only_while_a_store_is_held() {
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = Ticker::start({
            let ticks = ticks.clone();
            move || {
                ticks.fetch_add(1, Ordering::SeqCst);
            }
        });
        let count = || ticks.load(Ordering::SeqCst);
        std::thread::sleep(30 * MS);
        assert_eq!(count(), 0, "no store: the ticker is parked");
        let held = [ticker.hold(), ticker.hold()];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while count() < 3 {
            assert!(std::time::Instant::now() < deadline, "no ticks while held");
            std::thread::sleep(MS);
        }
        drop(held);
        // At most the tick already under way lands after the last guard is gone.
        std::thread::sleep(2 * EPOCH_TICK);
        let settled = count();
        std::thread::sleep(30 * MS);
        assert_eq!(count(), settled, "parked again once every store is gone");
        // And it wakes for the next store.
        let _again = ticker.hold();
        while count() == settled {
            assert!(std::time::Instant::now() < deadline, "not woken again");
            std::thread::sleep(MS);
        }
    }

    #[test]
    fn the_deadline_counts_cpu_time_not_waiting() {
        let budget = 495 * MS;
        let mut baseline = None;
        // The first tick takes the baseline and waits out the whole budget.
        assert_eq!(next_check(budget, &mut baseline, 40 * MS), Some(99));
        // Much later in wall time, but only 100 ms more CPU: not stopped, checked again later.
        assert_eq!(next_check(budget, &mut baseline, 140 * MS), Some(79));
        assert_eq!(next_check(budget, &mut baseline, 534 * MS), Some(1));
        // The budget used up: interrupted.
        assert_eq!(next_check(budget, &mut baseline, 535 * MS), None);
        assert_eq!(next_check(budget, &mut baseline, 900 * MS), None);
        // A zero budget stops a call at its first tick.
        assert_eq!(next_check(Duration::ZERO, &mut None, MS), None);
    }

    #[test]
    fn an_endless_loop_is_still_stopped() {
        let limits = CallLimits {
            timeout: Duration::from_millis(50),
            ..CallLimits::default()
        };
        let runtime = Runtime::new(limits).expect("runtime");
        let bytes = wat::parse_str(
            r#"(component
                (core module $m (func (export "spin") (loop $l (br $l))))
                (core instance $i (instantiate $m))
                (func (export "spin") (canon lift (core func $i "spin"))))"#,
        )
        .expect("wat");
        let component =
            wasmtime::component::Component::new(&runtime.engine, &bytes).expect("compile");
        let pre = runtime.linker.instantiate_pre(&component).expect("link");
        let mut store = runtime.store();
        let instance = pre.instantiate(&mut store).expect("instantiate");
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .expect("export");
        let started = thread_cpu_time();
        let err = spin.call(&mut store, ()).expect_err("stopped");
        assert_eq!(
            err.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::Interrupt)
        );
        assert!(thread_cpu_time() - started >= Duration::from_millis(45));
    }
}
