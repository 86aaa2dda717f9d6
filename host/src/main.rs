//! The `aperture` binary: parse the command line, run the subcommand, report
//! failures (this is the only place `anyhow` is used for control flow).

use clap::Parser;

use aperture::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    aperture::memory::tune();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => aperture::serve::run(args).await,
        Command::Emulator(args) => {
            let mut config = aperture_emulator::EmulatorConfig::demo(args.keys.clone());
            config.latency = std::time::Duration::from_millis(args.latency_ms);
            if !args.block_terms.is_empty() {
                config.block_terms = args.block_terms.clone();
            }
            if !args.image_safety_terms.is_empty() {
                config.image_safety_terms = args.image_safety_terms.clone();
            }
            config.shape = aperture_emulator::Shape::from_pairs(args.shape_pairs())?;
            config.gzip = !args.no_gzip;
            aperture_emulator::run_standalone(args.listen, config).await?;
            Ok(())
        }
        Command::Accounts { remote, action } => {
            aperture::admin_client::accounts(&remote, &action).await
        }
        Command::Keys { remote, action } => aperture::admin_client::keys(&remote, &action).await,
        Command::Cache { remote, action } => aperture::admin_client::cache(&remote, &action).await,
        Command::Config { remote, action } => {
            aperture::config_client::config(&remote, &action).await
        }
        Command::Stats { since, remote } => aperture::stats::cli::run(&remote, &since).await,
        Command::Store { action } => aperture::store_cli::run(&action).await,
        Command::Policy { remote, action } => aperture::policy_cli::run(&remote, &action).await,
    }
}
