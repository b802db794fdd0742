//! The command line of the `tessera` binary: `tessera [serve]` runs the server (the default),
//! `tessera check-read-models` compares the live read models with a fresh rebuild from the log,
//! `tessera rebuild-read-models` drops them and folds them again.
//!
//! It lives in the library so that the end-to-end tests' copy of the binary is this same code.

use std::process::ExitCode;

use crate::config::{ServeConfig, StorageConfig};
use crate::server;
use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use tessera_projections::ReadStore;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera: event-sourced multi-tenant identity"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeConfig,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(Box<ServeConfig>),
    /// Rebuild the read models into a scratch store and compare them with the live ones.
    /// Exits 1 when they differ. Run it with the server stopped for an exact answer.
    CheckReadModels(StorageConfig),
    /// Drop the read models and fold them again from the log. Run it with the server stopped.
    RebuildReadModels(StorageConfig),
}

/// The variable that sets the log filter (`tracing_subscriber`'s `EnvFilter` syntax).
pub const LOG_VARIABLE: &str = "TESSERA_LOG";

/// Every environment variable the binary reads, from every subcommand's settings: what a
/// deployment (`docker-compose.yml`) may set. Derived from the command line's definition, so
/// that a new setting is known here without a list to keep in step.
pub fn environment_variables() -> std::collections::BTreeSet<String> {
    fn collect(command: &clap::Command, into: &mut std::collections::BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env() {
                into.insert(name.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            collect(sub, into);
        }
    }
    let mut names = std::collections::BTreeSet::from([LOG_VARIABLE.to_owned()]);
    collect(&Cli::command(), &mut names);
    names
}

/// Parses the command line and runs it to completion.
pub fn main() -> ExitCode {
    main_with(server::Extensions::default())
}

/// [`main`], serving with `extensions` (the end-to-end tests' binary moves the clock).
pub fn main_with(extensions: server::Extensions) -> ExitCode {
    // Before anything is created: every file of the data directory is private to this user.
    crate::data_dir::restrict_umask();
    // The one TLS provider every outgoing HTTPS call uses (reqwest, for upstream identity
    // providers and back-channel logout receivers): aws-lc-rs, like the rest of the crypto.
    // `Err` means a provider is installed already, which is as good.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env(LOG_VARIABLE).unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => serve(cli.serve, extensions).await,
            Some(Command::Serve(config)) => serve(*config, extensions).await,
            Some(Command::CheckReadModels(storage)) => check_read_models(storage).await,
            Some(Command::RebuildReadModels(storage)) => rebuild_read_models(storage).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServeConfig, extensions: server::Extensions) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    server::run_with(config, listener, shutdown_signal(), extensions).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when the
/// future is first polled: the server prints "listening" before it polls the future, and a
/// SIGTERM sent by a script right after that line must stop it cleanly, not kill it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = interrupt.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn check_read_models(storage: StorageConfig) -> anyhow::Result<ExitCode> {
    let mut opened = server::open_storage(&storage).await?;
    let scratch = tempfile_dir()?;
    // With a retention, both stores judge expiry at the same moment: rows past it are neither
    // rebuilt nor part of either snapshot, whatever the live sweep has reached.
    let retention = opened
        .store
        .audit_retention()
        .map(|retention| retention.at(retention.now()));
    opened.store = opened.store.with_audit_retention(retention.clone());
    let fresh = ReadStore::open_sqlite(&scratch.join("rebuild.db"))
        .await?
        .with_audit_retention(retention);
    let stats = tessera_projections::rebuild(opened.log.as_ref(), &fresh).await?;
    let live = opened.store.snapshot().await?;
    let rebuilt = fresh.snapshot().await?;
    let _ = std::fs::remove_dir_all(&scratch);
    if live == rebuilt {
        println!(
            "read models match a fresh rebuild of {} events",
            stats.events
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "read models DIFFER from a fresh rebuild of {} events",
            stats.events
        );
        println!("live:    {live}");
        println!("rebuilt: {rebuilt}");
        Ok(ExitCode::from(1))
    }
}

async fn rebuild_read_models(storage: StorageConfig) -> anyhow::Result<ExitCode> {
    let opened = server::open_storage(&storage).await?;
    let stats = tessera_projections::rebuild(opened.log.as_ref(), &opened.store).await?;
    let seconds = stats.elapsed.as_secs_f64().max(f64::EPSILON);
    println!(
        "rebuilt the read models from {} events in {:.2} s ({:.0} events/s)",
        stats.events,
        seconds,
        stats.events as f64 / seconds
    );
    Ok(ExitCode::SUCCESS)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let id = tessera_commands::IdGen::new_id(&tessera_commands::SystemIds);
    let dir = std::env::temp_dir().join(format!("tessera-check-{id}"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
