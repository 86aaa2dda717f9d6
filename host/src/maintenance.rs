//! Periodic upkeep while serving: save account changes that could not be written when they happened
//! (a full disk) and probe the store, which reopens it after an I/O failure, so storage recovers by itself
//! once there is room again; and, while no image request is in flight, hand the allocator's free pages back
//! to the system (`memory.rs`), so the process returns near its idle size after a burst.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

/// How often the upkeep runs.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// How often free memory is handed back while idle (cheap when there is nothing to give).
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Start the upkeep tasks; they end with the runtime.
pub fn spawn(app: Arc<App>) {
    let stats = app.stats.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TRIM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Ticks since an image request was last seen (started or in flight).
        let (mut quiet, mut seen) = (u32::MAX, stats.started());
        loop {
            tick.tick().await;
            let started = stats.started();
            if started != seen || stats.in_flight() > 0 {
                (quiet, seen) = (0, started);
                continue;
            }
            quiet = quiet.saturating_add(1);
            // Right after a burst, and for a few ticks more while its cache writes land.
            if quiet <= 3 {
                let _ = tokio::task::spawn_blocking(crate::memory::trim).await;
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let app = app.clone();
            let _ = tokio::task::spawn_blocking(move || upkeep(&app)).await;
        }
    });
}

fn upkeep(app: &App) {
    if let Err(e) = app.store.probe() {
        tracing::debug!(error = %e, "store probe failed");
        return;
    }
    if app.accounts.unsaved() > 0 {
        match app.accounts.flush() {
            Ok(()) => tracing::info!("Account state kept in memory is saved"),
            Err(e) => tracing::debug!(error = %e, "account state still not saved"),
        }
    }
}
