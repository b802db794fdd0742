//! `tessera-replay`: compliance tooling, read-only against the log.
//!
//! `tessera-replay verify` checks every hash link and every signed checkpoint and exits 1
//! naming the first bad position, 0 when the log is intact, 2 when it could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tessera_commands::crypto::{Crypto, MasterKey, verify_checkpoint_with};
use tessera_event_log::{Backend, LogConfig};
use tessera_replay_tools::verify::verify_log;

#[derive(Parser)]
#[command(
    name = "tessera-replay",
    version,
    about = "Read-only compliance tools for Tessera's event log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify every hash link, the global chain and the signed checkpoints.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    storage: Storage,
    /// The trusted checkpoint public key (64 hex digits). Defaults to the one derived from the
    /// master key.
    #[arg(long)]
    checkpoint_public_key: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Found the same way the server finds it.
#[derive(Args)]
struct Storage {
    #[arg(long, env = "TESSERA_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    #[arg(long, env = "TESSERA_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[arg(long, env = "TESSERA_MASTER_KEY", hide_env_values = true)]
    master_key: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tessera-replay: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Verify(args) => verify(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tessera-replay: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn trusted_key(args: &VerifyArgs) -> anyhow::Result<[u8; 32]> {
    if let Some(hex) = &args.checkpoint_public_key {
        let hash = tessera_event_schemas::Hash32::from_hex(hex.trim())
            .context("--checkpoint-public-key must be 64 hex digits")?;
        return Ok(hash.0);
    }
    let text = match &args.storage.master_key {
        Some(value) => value.clone(),
        None => {
            let path = args.storage.data_dir.join("master-key");
            std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "no TESSERA_MASTER_KEY, no --checkpoint-public-key, and cannot read {}",
                    path.display()
                )
            })?
        }
    };
    let master = MasterKey::from_env_value(text.trim()).context("the master key")?;
    Ok(Crypto::new(&master)?.checkpoint_public_key())
}

async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let public_key = trusted_key(&args)?;
    let backend = match &args.storage.database_url {
        Some(url) => Backend::Postgres { url: url.clone() },
        None => {
            let path = args.storage.data_dir.join("events.db");
            if !path.exists() {
                bail!("no event log at {}", path.display());
            }
            Backend::Sqlite { path }
        }
    };
    // No checkpoint signer and no `close()`: this process writes nothing to the log.
    let log = tessera_event_log::open(LogConfig::new(backend))
        .await
        .context("opening the event log")?;
    let check =
        |message: &[u8], signature: &[u8]| verify_checkpoint_with(&public_key, message, signature);
    let outcome = verify_log(log.as_ref(), &check, |_| {}).await?;
    match outcome {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::json!({ "ok": true, "report": report }));
            } else {
                println!(
                    "log verified: {} events in {} streams, {} signed checkpoints, head log_hash {}",
                    report.events, report.streams, report.checkpoints, report.last_log_hash
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(violation) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": false, "violation": violation })
                );
            } else {
                println!("log verification FAILED: {violation}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
