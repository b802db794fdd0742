//! `tessera-replay`: compliance tooling, read-only against the log.
//!
//! - `verify` checks every hash link and every signed checkpoint and exits 1 naming the first
//!   bad position, 0 when the log is intact.
//! - `as-of` rebuilds a tenant as it was at a time or position (its users' personal fields
//!   opened through the key table while their key exists, `erased` after); `diff` compares two
//!   moments;
//!   `history` prints a tenant's timeline; `export` writes an evidence export (JSON Lines or
//!   CSV) that a third party can re-verify. They exit 1 when the tenant is unknown (or did not
//!   exist at the moment asked).
//!
//! Every subcommand exits 2 when it could not run. The logic lives in the other modules; this
//! one only parses arguments, opens the log read-only and prints. It is a library module (the
//! binary's `main` calls [`main`]) so that the end-to-end tests can build the same tool under
//! another name.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::asof::fold_tenant;
use crate::diff::diff;
use crate::export::{CSV_HEADER, ExportRecord, Format};
use crate::history::{HistoryEntry, HistoryFilter, tenant_events};
use crate::people;
use crate::source::{Bound, PAGE, TenantRef, backend, open_read_only, resolve_tenant};
use crate::verify::verify_log;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tessera_crypto::{Crypto, MasterKey, PersonalKeys, verify_checkpoint_with};
use tessera_event_log::EventLog;
use tessera_projections::ReadStore;
use uuid::Uuid;

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
    /// Rebuild a tenant as it was at a moment: settings, status, keys, clients, API keys and
    /// the tokens valid then.
    AsOf(AsOfArgs),
    /// Print the timeline of a tenant's changes. With --json, one JSON object per line.
    History(HistoryArgs),
    /// Show what changed in a tenant between two moments.
    Diff(DiffArgs),
    /// Write every event of a tenant in a window with its full envelope, hashes and payload,
    /// so that a third party can re-verify each hash.
    Export(ExportArgs),
    /// Drop the read models and fold them again from the log, offline (stop the server
    /// first), reporting events/s. The log itself is only read.
    Rebuild(RebuildArgs),
}

#[derive(Args)]
struct RebuildArgs {
    #[command(flatten)]
    storage: Storage,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// A tenant's id or slug.
#[derive(Args)]
struct TenantArg {
    /// The tenant's id, or its slug (the tenant latest created with it at the moment asked).
    #[arg(long)]
    tenant: TenantRef,
}

#[derive(Args)]
struct AsOfArgs {
    #[command(flatten)]
    storage: Storage,
    #[command(flatten)]
    tenant: TenantArg,
    /// An RFC 3339 time (events with recorded_at <= it) or a global position (events at or
    /// before it).
    #[arg(long)]
    at: Bound,
    /// Print the state as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct HistoryArgs {
    #[command(flatten)]
    storage: Storage,
    #[command(flatten)]
    tenant: TenantArg,
    /// Only this stream: a full stream id, one relative to the tenant (`tenant`,
    /// `api-key/<id>`), or a kind (`api-key`, `oauth-client`, `tokens`).
    #[arg(long)]
    stream: Option<String>,
    /// Inclusive lower bound: an RFC 3339 time or a global position.
    #[arg(long)]
    since: Option<Bound>,
    /// Inclusive upper bound: an RFC 3339 time or a global position.
    #[arg(long)]
    until: Option<Bound>,
    /// One JSON object per line (JSON Lines).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DiffArgs {
    #[command(flatten)]
    storage: Storage,
    #[command(flatten)]
    tenant: TenantArg,
    /// The first moment: an RFC 3339 time or a global position.
    #[arg(long)]
    from: Bound,
    /// The second moment: an RFC 3339 time or a global position.
    #[arg(long)]
    to: Bound,
    /// Print the differences as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    storage: Storage,
    #[command(flatten)]
    tenant: TenantArg,
    /// Inclusive lower bound: an RFC 3339 time or a global position.
    #[arg(long)]
    since: Option<Bound>,
    /// Inclusive upper bound: an RFC 3339 time or a global position.
    #[arg(long)]
    until: Option<Bound>,
    /// `jsonl` (one JSON object per line) or `csv`.
    #[arg(long, default_value = "jsonl")]
    format: Format,
    /// Write here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
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

/// Parses the command line, runs the subcommand and returns its exit code.
pub fn main() -> ExitCode {
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
            Command::AsOf(args) => as_of(args).await,
            Command::History(args) => history(args).await,
            Command::Diff(args) => diff_command(args).await,
            Command::Export(args) => export(args).await,
            Command::Rebuild(args) => rebuild(args).await,
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
    Ok(crypto(&args.storage)
        .context("no --checkpoint-public-key")?
        .checkpoint_public_key())
}

/// The crypto of the master key the server uses: `TESSERA_MASTER_KEY`, else
/// `<data-dir>/master-key`.
fn crypto(storage: &Storage) -> anyhow::Result<Crypto> {
    let text = match &storage.master_key {
        Some(value) => value.clone(),
        None => {
            let path = storage.data_dir.join("master-key");
            std::fs::read_to_string(&path).with_context(|| {
                format!("no TESSERA_MASTER_KEY, and cannot read {}", path.display())
            })?
        }
    };
    let master = MasterKey::from_env_value(text.trim()).context("the master key")?;
    Ok(Crypto::new(&master)?)
}

/// The per-person keys, to open personal fields with; `None` (every user shown `sealed`) when
/// there is no master key or no key table, which `as-of` reports instead of failing.
async fn personal_keys(storage: &Storage) -> anyhow::Result<Option<Arc<PersonalKeys>>> {
    let crypto = match crypto(storage) {
        Ok(crypto) => crypto,
        Err(error) => {
            eprintln!("tessera-replay: personal data stays sealed: {error:#}");
            return Ok(None);
        }
    };
    let backend = backend(&storage.data_dir, storage.database_url.as_deref())?;
    let table = tessera_event_log::keys::open_existing(&backend)
        .await
        .context("opening the key table")?;
    Ok(table.map(|table| Arc::new(PersonalKeys::new(Arc::new(crypto), table))))
}

async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let public_key = trusted_key(&args)?;
    let log = open(&args.storage).await?;
    let check =
        |message: &[u8], signature: &[u8]| verify_checkpoint_with(&public_key, message, signature);
    let outcome = verify_log(log, PAGE, &check, |_| {}).await?;
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

/// The log, opened read-only: no checkpoint signer and no `close()`, so this process writes
/// nothing to it.
async fn open(storage: &Storage) -> anyhow::Result<std::sync::Arc<dyn EventLog>> {
    open_read_only(backend(&storage.data_dir, storage.database_url.as_deref())?).await
}

/// A bar over the log's positions on stderr; hidden for JSON output or when stderr is not a
/// terminal.
async fn progress_bar(log: &dyn EventLog, json: bool) -> anyhow::Result<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let head = log.head_position().await?;
    let bar = ProgressBar::with_draw_target(Some(head), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    Ok(bar)
}

/// The tenant's id, or `None` after saying on stderr that it is unknown.
async fn tenant_id(
    log: &dyn EventLog,
    tenant: &TenantRef,
    at: Option<Bound>,
    bar: &ProgressBar,
) -> anyhow::Result<Option<Uuid>> {
    if matches!(tenant, TenantRef::Slug(_)) {
        bar.set_message("resolving slug");
        bar.set_position(0);
    }
    let id = resolve_tenant(log, tenant, at, |p| bar.set_position(p)).await?;
    if id.is_none() {
        bar.finish_and_clear();
        eprintln!("tessera-replay: no tenant {tenant}");
    }
    Ok(id)
}

async fn as_of(args: AsOfArgs) -> anyhow::Result<ExitCode> {
    let log = open(&args.storage).await?;
    let bar = progress_bar(log.as_ref(), args.json).await?;
    let Some(id) = tenant_id(log.as_ref(), &args.tenant.tenant, Some(args.at), &bar).await? else {
        return Ok(ExitCode::from(1));
    };
    bar.set_message("replaying");
    bar.set_position(0);
    let snapshots = fold_tenant(log.as_ref(), id, &[args.at], |p| bar.set_position(p)).await?;
    bar.finish_and_clear();
    let Some(snapshot) = snapshots.first() else {
        return Ok(ExitCode::from(1));
    };
    let Some(mut view) = snapshot.view(args.at) else {
        eprintln!("tessera-replay: tenant {id} did not exist at {}", args.at);
        return Ok(ExitCode::from(1));
    };
    if !snapshot.users.is_empty() {
        let keys = personal_keys(&args.storage).await?;
        view.users = people::users(id, snapshot.users.values(), keys.as_ref()).await?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", view.render());
    }
    Ok(ExitCode::SUCCESS)
}

async fn rebuild(args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let log = open(&args.storage).await?;
    let store = match &args.storage.database_url {
        Some(url) => ReadStore::open_postgres(url).await,
        None => ReadStore::open_sqlite(&args.storage.data_dir.join("readmodels.db")).await,
    }
    .context("opening the read models")?;
    let head = log.head_position().await.context("reading the log head")?;
    let bar = if args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_message(format!("folding {head} events into fresh read models"));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let stats = tessera_projections::rebuild(log.as_ref(), &store)
        .await
        .context("rebuilding the read models")?;
    bar.finish_and_clear();
    let seconds = stats.elapsed.as_secs_f64().max(f64::EPSILON);
    let rate = stats.events as f64 / seconds;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "events": stats.events,
                "seconds": seconds,
                "events_per_second": rate.round(),
            })
        );
    } else {
        println!(
            "rebuilt the read models from {} events in {seconds:.2} s ({rate:.0} events/s)",
            stats.events
        );
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let log = open(&args.storage).await?;
    let bar = progress_bar(log.as_ref(), args.json).await?;
    let Some(id) = tenant_id(log.as_ref(), &args.tenant.tenant, args.until, &bar).await? else {
        return Ok(ExitCode::from(1));
    };
    let filter = HistoryFilter {
        tenant_id: id,
        stream: args.stream,
        since: args.since,
        until: args.until,
    };
    bar.set_message("reading");
    bar.set_position(0);
    let stdout = std::io::stdout();
    let interleave = !bar.is_hidden() && stdout.is_terminal();
    let mut out = std::io::BufWriter::new(stdout.lock());
    tenant_events(
        log.as_ref(),
        &filter,
        |p| bar.set_position(p),
        |recorded, event| {
            let entry = HistoryEntry::new(recorded, event);
            if args.json {
                serde_json::to_writer(&mut out, &entry)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", entry.render())?;
                if interleave {
                    // Lines and the bar share one terminal: print each line above the bar.
                    bar.suspend(|| out.flush())?;
                }
            }
            Ok(())
        },
    )
    .await?;
    out.flush()?;
    bar.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}

async fn diff_command(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let log = open(&args.storage).await?;
    let bar = progress_bar(log.as_ref(), args.json).await?;
    let Some(id) = tenant_id(log.as_ref(), &args.tenant.tenant, Some(args.to), &bar).await? else {
        return Ok(ExitCode::from(1));
    };
    bar.set_message("replaying");
    bar.set_position(0);
    let snapshots = fold_tenant(log.as_ref(), id, &[args.from, args.to], |p| {
        bar.set_position(p)
    })
    .await?;
    bar.finish_and_clear();
    let [from, to] = snapshots.as_slice() else {
        anyhow::bail!("expected two snapshots");
    };
    let changes = diff(from, args.from, to, args.to);
    if !changes.existed_before && !changes.exists_after {
        eprintln!(
            "tessera-replay: tenant {id} existed neither at {} nor at {}",
            args.from, args.to
        );
        return Ok(ExitCode::from(1));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&changes)?);
    } else {
        print!("{}", changes.render(args.from, args.to));
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let log = open(&args.storage).await?;
    let bar = progress_bar(log.as_ref(), false).await?;
    let Some(id) = tenant_id(log.as_ref(), &args.tenant.tenant, args.until, &bar).await? else {
        return Ok(ExitCode::from(1));
    };
    let filter = HistoryFilter {
        tenant_id: id,
        stream: None,
        since: args.since,
        until: args.until,
    };
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(sink);
    if args.format == Format::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    bar.set_message("exporting");
    bar.set_position(0);
    let mut count = 0u64;
    tenant_events(
        log.as_ref(),
        &filter,
        |p| bar.set_position(p),
        |recorded, _| {
            let record = ExportRecord::new(recorded);
            match args.format {
                Format::Jsonl => {
                    serde_json::to_writer(&mut out, &record)?;
                    writeln!(out)?;
                }
                Format::Csv => writeln!(out, "{}", record.to_csv_row())?,
            }
            count += 1;
            Ok(())
        },
    )
    .await?;
    out.flush()?;
    bar.finish_and_clear();
    if let Some(path) = &args.output {
        eprintln!("exported {count} events to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
