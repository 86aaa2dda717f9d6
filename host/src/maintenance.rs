//! Periodic store upkeep while serving: save account changes that could not be written when they happened
//! (a full disk) and probe the store, which reopens it after an I/O failure, so storage recovers by itself
//! once there is room again.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

/// How often the upkeep runs.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Start the upkeep task; it ends with the runtime.
pub fn spawn(app: Arc<App>) {
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
