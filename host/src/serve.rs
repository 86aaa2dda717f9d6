//! `aperture serve`: assemble the configuration (file, environment, flags), set
//! up demo mode, build the gateway, announce it, and run until a stop signal.

use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio::net::TcpListener;

use crate::app::{now_ms, App};
use crate::cli::ServeArgs;
use crate::config::{default_data_dir, Config};
use crate::reload::{ConfigSource, DemoSettings};

/// Demo accounts: (label, email, emulator key).
const DEMO_ACCOUNTS: [(&str, &str, &str); 3] = [
    ("demo-1", "demo-1@aperture.local", "demo-gemini-key-1"),
    ("demo-2", "demo-2@aperture.local", "demo-gemini-key-2"),
    ("demo-3", "demo-3@aperture.local", "demo-gemini-key-3"),
];

fn generated_key(prefix: &str) -> String {
    format!(
        "{prefix}{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// Run the gateway.
pub async fn run(args: ServeArgs) -> Result<()> {
    // Every problem of the file, the environment and the validation is reported at once.
    // A reload (`reload.rs`) reads the same sources the same way.
    let mut source = ConfigSource::from_args(&args);
    let (mut raw, errors) = source.read();

    let mut announcements = Vec::new();
    let emulator = if args.demo {
        let keys = DEMO_ACCOUNTS
            .iter()
            .map(|(_, _, k)| k.to_string())
            .collect();
        let emulator = aperture_emulator::Emulator::bind(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            aperture_emulator::EmulatorConfig::demo(keys),
        )
        .await
        .context("starting the embedded Gemini emulator")?;
        let demo = DemoSettings {
            base_url: emulator.base_url(),
            data_dir: default_data_dir().join("demo"),
            api_key: generated_key("ap-demo-"),
            admin_key: generated_key("ap-admin-"),
        };
        let (api_key, admin_key) = demo.apply(&mut raw);
        if api_key {
            announcements.push(format!(
                "Demo client key (APERTURE_API_KEY): {}",
                demo.api_key
            ));
        }
        if admin_key {
            announcements.push(format!(
                "Demo admin key (APERTURE_ADMIN_KEY): {}",
                demo.admin_key
            ));
        }
        source.demo = Some(demo);
        Some(emulator)
    } else {
        None
    };

    let config = match Config::validate(raw, errors) {
        Ok(c) => c,
        Err(problems) => {
            let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
            bail!(
                "the configuration has {} problem(s):\n{}",
                problems.len(),
                list.join("\n")
            );
        }
    };
    let (_log, reopen) = crate::logging::init_rotating(Some(&config.data_dir), config.logs)
        .context("opening the log file")?;
    crate::log_rotation::reopen_on_sigusr1(reopen);

    let app = tokio::task::spawn_blocking(move || App::build(config))
        .await
        .context("start-up task")??;
    app.reloader.install(source);
    let app = Arc::new(app);

    if let Some(emulator) = &emulator {
        tracing::info!(upstream = %emulator.base_url(), "Demo mode: Gemini emulator started");
        let existing: Vec<String> = app
            .accounts
            .list(now_ms())
            .into_iter()
            .map(|a| a.label)
            .collect();
        for (label, email, key) in DEMO_ACCOUNTS {
            if !existing.iter().any(|l| l == label) {
                app.accounts
                    .add(label, Some(email), key, now_ms())
                    .context("adding demo accounts")?;
            }
        }
    }
    if args.demo {
        app.dashboard
            .set_demo_key(app.config.api_keys.first().cloned());
    }
    if !app.keys.any() {
        bail!("no client API key is configured: set APERTURE_API_KEY (comma-separated for several), or run with --demo");
    }
    let usable = app.accounts.usable_count(now_ms());
    if usable == 0 {
        tracing::warn!("no usable upstream account: add one with `aperture accounts add --label NAME` (needs APERTURE_ADMIN_KEY)");
    }
    if app.admin_key.is_none() {
        tracing::info!("Admin API off (set APERTURE_ADMIN_KEY to manage accounts while running)");
    }

    let cache_desc = match (&app.cache, app.config.cache.backend) {
        (None, _) => "none".to_string(),
        (Some(_), backend) => format!(
            "{} max_size_mb={:.2} ttl_seconds={}",
            backend.name(),
            app.config.cache.max_bytes as f64 / (1024.0 * 1024.0),
            app.config.cache.ttl.as_secs()
        ),
    };
    tracing::info!("Cache backend: {cache_desc}");
    if let Some(cache) = app.cache.clone() {
        let evicted = tokio::task::spawn_blocking(move || cache.enforce(now_ms())).await?;
        match evicted {
            Ok(evicted) => crate::gateway::store::log_evictions(&evicted),
            Err(e) => tracing::error!(error = %e, "Cache check at start-up failed"),
        }
    }
    for c in app.policies.active() {
        tracing::info!(slot = c.slot, source = %c.source, sha256 = %c.sha256, "Component loaded");
    }

    let listener = TcpListener::bind(app.config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (in use? try --listen 127.0.0.1:0)",
                app.config.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let admin_listener = match app.config.admin_listen {
        Some(admin_addr) => {
            let l = TcpListener::bind(admin_addr).await.with_context(|| {
                format!("cannot listen on admin_listen {admin_addr} (in use? try 127.0.0.1:0)")
            })?;
            let bound = l.local_addr()?;
            announcements.push(format!("Admin API listening on http://{bound}"));
            tracing::info!(admin_listen = %bound, "Admin API listening on http://{bound} (not on {addr})");
            Some(l)
        }
        None => None,
    };
    // Before the start line: from then on SIGHUP reloads instead of ending the process.
    crate::reload::spawn_sighup(app.clone());
    {
        let mut out = std::io::stdout().lock();
        for line in &announcements {
            writeln!(out, "{line}")?;
        }
        writeln!(out, "Proxy server started on http://{addr}")?;
        out.flush()?;
    }
    tracing::info!(
        listen = %addr,
        upstream = %app.gemini.base_url(),
        data_dir = %app.config.data_dir.display(),
        "Proxy server started on http://{addr}"
    );

    crate::maintenance::spawn(app.clone());
    // Account state changes that happen by themselves (a cool-down ends) get their line too.
    tokio::spawn({
        let app = app.clone();
        async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                app.accounts_watch.check(&app.accounts, now_ms());
            }
        }
    });
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            stop_signal().await;
            stop.cancel();
        }
    });
    let admin_server = admin_listener.map(|l| {
        tokio::spawn(crate::server::serve_as(
            app.clone(),
            l,
            stop.clone().cancelled_owned(),
            crate::server::Role::Admin,
        ))
    });
    let usage_writer = tokio::spawn(crate::limiter::flush_periodically(app.limiter.clone()));
    let stats_writer = tokio::spawn(crate::stats::flush_periodically(app.clone()));
    crate::server::serve(app.clone(), listener, stop.clone().cancelled_owned()).await;
    if let Some(admin_server) = admin_server {
        let _ = admin_server.await;
    }
    app.background.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), app.background.wait()).await;
    usage_writer.abort();
    stats_writer.abort();

    let (cache, accounts, limiter) = (app.cache.clone(), app.accounts.clone(), app.limiter.clone());
    let stats = app.stats.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = stats.flush(&accounts, now_ms()) {
            tracing::error!(error = %e, "could not write the traffic statistics at shutdown");
        }
        if let Some(c) = cache {
            let _ = c.flush();
        }
        let _ = accounts.flush();
        if let Err(e) = limiter.flush() {
            tracing::error!(error = %e, "could not write the client keys' usage counters at shutdown");
        }
    })
    .await;
    if let Some(emulator) = emulator {
        emulator.shutdown();
    }
    tracing::info!("Proxy server stopped");
    Ok(())
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
