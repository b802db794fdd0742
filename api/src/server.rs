//! Startup and shutdown: opens the log and read models, loads the master key, bootstraps an
//! empty log, starts the projector runtime and serves HTTP on an already-bound listener until the
//! shutdown future resolves (so tests can bind port 0).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tessera_commands::{
    Clock, CommandService, IdGen, People, RelyingParty, SystemClock, SystemIds,
};
use tessera_crypto::{Crypto, MasterKey, Passwords, PersonalKeys, VaultKeys};
use tessera_event_log::{Backend, EventLog, KeyTable, LogConfig};
use tessera_event_schemas::EventMetadata;
use tessera_event_schemas::events::SigningAlg;
use tessera_projections::{
    Directory, KafkaPublisher, ProjectionRuntime, PublisherLease, ReadStore, Registry,
    RetentionTask, SessionDirectory,
};
use tokio::net::TcpListener;
use utoipa::OpenApi;

use crate::backchannel::BackchannelTask;
use crate::config::{ServeConfig, StorageConfig};
use crate::error::ApiError;
use crate::mail::MailTask;
use crate::mail::smtp::MailSettings;
use crate::rate_limit::SignInLimiter;
use crate::state::AppState;
use crate::usage::UsageRecorder;
use crate::{
    activity, catch_up, config, correlation, data_dir, http, lifecycle, oauth, openapi, pages,
    registry_expiry, routes, usage,
};

/// Largest request body accepted; larger ones get 413.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// Storage opened from [`StorageConfig`]: shared by `serve` and the offline subcommands.
pub struct Storage {
    pub log: Arc<dyn EventLog>,
    pub store: ReadStore,
    pub crypto: Arc<Crypto>,
    /// Per-person data keys, on the log's backend (`keys.db` beside `events.db`, or
    /// `person_keys`).
    pub keys: Arc<dyn KeyTable>,
}

/// Loads the master key: `TESSERA_MASTER_KEY`, or (embedded only) a generated one.
pub fn master_key(config: &StorageConfig) -> anyhow::Result<MasterKey> {
    if let Some(value) = &config.master_key {
        return MasterKey::from_env_value(value.expose()).context("TESSERA_MASTER_KEY");
    }
    if config.database_url.is_some() {
        bail!(
            "TESSERA_MASTER_KEY must be set when TESSERA_DATABASE_URL is: a production deployment supplies its own master key"
        );
    }
    data_dir::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let (key, generated) = MasterKey::load_or_generate(&config.data_dir)
        .context("loading the master key from the data directory")?;
    if generated {
        tracing::warn!(
            path = %config.data_dir.join(tessera_crypto::MASTER_KEY_FILE).display(),
            "TESSERA_MASTER_KEY is not set: generated a master key into the data directory; production should supply its own"
        );
    }
    Ok(key)
}

/// Opens storage with the system clock stamping the log's checkpoints.
pub async fn open_storage(config: &StorageConfig) -> anyhow::Result<Storage> {
    open_storage_with(config, Arc::new(SystemClock)).await
}

/// Opens storage; the log stamps its checkpoints with `clock`.
pub async fn open_storage_with(
    config: &StorageConfig,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Storage> {
    if config.database_url.is_none() {
        // The SQLite files are created private before anything opens them (see `data_dir`).
        data_dir::prepare(&config.data_dir).with_context(|| {
            format!("preparing the data directory {}", config.data_dir.display())
        })?;
    }
    let crypto =
        Arc::new(Crypto::new(&master_key(config)?).context("deriving keys from the master key")?);
    let backend = match &config.database_url {
        Some(url) => Backend::Postgres {
            url: url.expose().to_owned(),
        },
        None => Backend::Sqlite {
            path: config.data_dir.join(data_dir::EVENTS_DB),
        },
    };
    let keys = tessera_event_log::keys::open(&backend)
        .await
        .context("opening the key table")?;
    let mut log_config = LogConfig::new(backend);
    log_config.checkpoint_signer = Some(crypto.checkpoint_signer());
    log_config.clock = Arc::new({
        let clock = clock.clone();
        move || clock.now()
    });
    log_config.wal_limit_bytes = config.wal_limit_bytes();
    log_config.listen = config.log_listen;
    let log = tessera_event_log::open(log_config)
        .await
        .context("opening the event log")?;
    let retention = config.audit_retention(Arc::new({
        let clock = clock.clone();
        move || clock.now()
    }));
    let store = match &config.database_url {
        Some(url) if config.tenant_isolation => ReadStore::open_postgres(url.expose()).await,
        Some(url) => ReadStore::open_postgres_without_isolation(url.expose()).await,
        None => {
            let path = config.data_dir.join(data_dir::READ_MODELS_DB);
            ReadStore::open_sqlite_bounded(&path, config.wal_limit_bytes()).await
        }
    }
    .context("opening the read models")?
    .with_audit_retention(retention);
    Ok(Storage {
        log,
        store,
        crypto,
        keys,
    })
}

/// Builds the router. Public so router tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::ApiDoc::openapi()) }),
        )
        .merge(routes::federation::router())
        .merge(routes::provider_keys::router())
        .merge(routes::federation_auth::router())
        .merge(routes::integrations::router())
        .merge(routes::connect::router())
        .merge(routes::tenants::router())
        .merge(routes::api_keys::router())
        .merge(routes::clients::router())
        .merge(routes::audit::router())
        .merge(routes::users::router())
        .merge(routes::invitations::router())
        .merge(routes::mfa::router())
        .merge(routes::sessions::router())
        .merge(routes::consents::router())
        .merge(routes::catalog::router())
        .merge(routes::entitlements::router())
        .merge(routes::claims::router())
        .merge(routes::credentials::router())
        .merge(routes::vault::router())
        .merge(routes::seed_aliases::router())
        .merge(oauth::router())
        .merge(pages::router())
        // A provider's own `redirect_path` (issue 19), else the API's 404.
        .fallback(pages::federation::callback_at_redirect_path)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            catch_up::refetch_not_found,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.ids.clone(),
            correlation::middleware,
        ))
        .with_state(state)
}

/// Gives every tenant that has none an RS256 key for ID tokens: tenants created before every
/// tenant kept one. Each is a command decided on the tenant's stream (nothing when the key is
/// there), so servers starting at once add one key per tenant between them. Serves only once
/// the directory and the read models hold the keys added.
async fn ensure_id_token_keys(
    commands: &CommandService,
    directory: &Directory,
    projections: &ProjectionRuntime,
) -> anyhow::Result<()> {
    let missing = directory.tenants_without_active_key(SigningAlg::RS256);
    if missing.is_empty() {
        return Ok(());
    }
    tracing::info!(
        tenants = missing.len(),
        "adding an RS256 signing key to tenants without one"
    );
    let mut head = 0;
    for tenant_id in missing {
        let meta = EventMetadata::system(format!("id-token-key-{tenant_id}"));
        let done = commands
            .ensure_signing_key(meta, tenant_id, SigningAlg::RS256)
            .await
            .with_context(|| format!("adding an RS256 key to tenant {tenant_id}"))?;
        head = head.max(done.position);
    }
    directory
        .wait_for(head, Duration::from_secs(60))
        .await
        .map_err(|_| anyhow::anyhow!("the OAuth directory did not fold the new RS256 keys"))?;
    projections
        .wait_for(head, Duration::from_secs(60))
        .await
        .map_err(|_| anyhow::anyhow!("read models did not project the new RS256 keys"))?;
    Ok(())
}

fn write_bootstrap_key(data_dir: &Path, plaintext: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    data_dir::create_private_dir(data_dir)?;
    let path = data_dir.join(data_dir::BOOTSTRAP_ADMIN_KEY);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(plaintext.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}

/// What a build of the server adds to it: the end-to-end tests' binary gives it a clock the
/// tests can move and routes of its own (moving that clock, waiting for the read models). The
/// production binary adds nothing.
#[derive(Default)]
pub struct Extensions {
    /// The clock of the process instead of the wall clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// Routes merged into the server's, outside every tenant's and the admin API's paths; they
    /// get the server's state.
    pub routes: Option<Router<AppState>>,
}

/// Serves until `shutdown` resolves, then drains requests and closes the log cleanly.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(config, listener, shutdown, Extensions::default()).await
}

/// [`run`], with `extensions`.
pub async fn run_with(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    extensions: Extensions,
) -> anyhow::Result<()> {
    // The one clock and the one id source of the process: every time and id the server
    // writes comes from these two.
    let clock: Arc<dyn Clock> = extensions.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let ids: Arc<dyn IdGen> = Arc::new(SystemIds);
    // Before anything is opened or bootstrapped: a Kafka setting librdkafka refuses stops the
    // start with nothing written.
    let kafka_settings = config
        .kafka
        .settings()
        .map_err(|message| anyhow::anyhow!(message))?;
    let Storage {
        log,
        store,
        crypto,
        keys,
    } = open_storage_with(&config.storage, clock.clone()).await?;
    let public_url = config::public_url(config.public_url.as_deref(), listener.local_addr()?)
        .map_err(|message| anyhow::anyhow!(message))?;
    // Tenants' vault keys live in the same key table as the per-person keys (ADR 0007).
    let vault_keys = Arc::new(VaultKeys::new(crypto.clone(), keys.clone()));
    let personal = Arc::new(PersonalKeys::new(crypto.clone(), keys));
    let passwords =
        Passwords::sized_to_cores(config.argon2.config()).context("TESSERA_ARGON2_* settings")?;
    let commands = Arc::new(
        CommandService::new(log.clone(), crypto.clone(), clock.clone(), ids.clone())
            .with_people(People {
                keys: personal.clone(),
                passwords,
            })
            .with_vault(vault_keys)
            // Passkeys are registered with the public URL's host, from its origin.
            .with_relying_party(
                RelyingParty::from_public_url(&public_url).context("TESSERA_PUBLIC_URL")?,
            )
            // Emailed links (resets, verifications, invitations) point at the public URL.
            .with_public_url(&public_url),
    );
    let mail_settings =
        MailSettings::from_config(&config.mail, &public_url, &config.storage.data_dir)
            .map_err(|message| anyhow::anyhow!(message))?;

    let preset = config
        .bootstrap_admin_key
        .as_ref()
        .map(|k| k.expose().trim().to_owned())
        .filter(|k| !k.is_empty());
    if let Some(issued) = commands
        .bootstrap(preset.clone())
        .await
        .context("bootstrapping the system tenant")?
    {
        if preset.is_none() {
            write_bootstrap_key(&config.storage.data_dir, &issued.plaintext)?;
            // Printed once, on purpose: this is the only way an operator learns a generated key.
            println!(
                "Bootstrap platform admin API key (shown once, also written to {}): {}",
                config
                    .storage
                    .data_dir
                    .join(data_dir::BOOTSTRAP_ADMIN_KEY)
                    .display(),
                issued.plaintext
            );
        }
        tracing::info!(key_id = %issued.key_id, "created the system tenant and the platform admin key");
    }

    let projections = Arc::new(
        ProjectionRuntime::start(log.clone(), store.clone())
            .await
            .context("starting projections")?,
    );
    let retention = RetentionTask::start(store.clone());
    // The directory starts from its last snapshot and folds only the log after it.
    let (directory, directory_task) = Directory::open(log.clone(), store.directory_snapshots())
        .await
        .context("opening the OAuth directory")?;
    // The session directory likewise starts from its own last snapshot.
    let (sessions, sessions_task) = SessionDirectory::open(log.clone(), store.session_snapshots())
        .await
        .context("opening the session directory")?;
    // The registry (catalog, entitlements, claims choices) folds the log from the start.
    let registry = Registry::new();
    let registry_task = registry.follow(log.clone());
    // Serve only once the read models and the OAuth directory hold every event committed
    // before this start, so that no acknowledged write is missing after a crash and restart.
    let head = log.head_position().await.context("reading the log head")?;
    tracing::info!(head, "catching up read models and the OAuth directory");
    projections
        .wait_for(head, Duration::from_secs(3600))
        .await
        .map_err(|_| anyhow::anyhow!("read models did not catch up with the log"))?;
    directory
        .wait_for(head, Duration::from_secs(3600))
        .await
        .map_err(|_| anyhow::anyhow!("the OAuth directory did not catch up with the log"))?;
    sessions
        .wait_for(head, Duration::from_secs(3600))
        .await
        .map_err(|_| anyhow::anyhow!("the session directory did not catch up with the log"))?;
    registry
        .wait_for(head, Duration::from_secs(3600))
        .await
        .map_err(|_| anyhow::anyhow!("the registry did not catch up with the log"))?;
    ensure_id_token_keys(&commands, &directory, &projections).await?;
    let kafka = match kafka_settings {
        Some(settings) => {
            tracing::info!(brokers = %settings.brokers, topic = %settings.topic, "starting the Kafka audit publisher");
            // Nodes sharing a PostgreSQL database publish one at a time.
            let lease = config
                .storage
                .database_url
                .as_ref()
                .map(|url| PublisherLease::postgres(url.expose(), &settings.checkpoint_name()));
            Some(Arc::new(
                KafkaPublisher::start(log.clone(), store.clone(), settings, lease)
                    .await
                    .context("starting the Kafka audit publisher")?,
            ))
        }
        None => None,
    };
    let usage_recorder = Arc::new(UsageRecorder::default());
    let store_for_shutdown = store.clone();
    let state = AppState {
        commands,
        store,
        projections: projections.clone(),
        log: log.clone(),
        crypto,
        personal,
        clock,
        ids: ids.clone(),
        read_your_writes_timeout: Duration::from_millis(config.read_your_writes_timeout_ms),
        directory,
        signers: Arc::default(),
        verifier: Arc::default(),
        usage: usage_recorder.clone(),
        secure_cookies: config::secure_cookies(&public_url),
        public_url: public_url.into(),
        kafka: kafka.clone(),
        sessions: sessions.clone(),
        sign_in_limiter: Arc::new(SignInLimiter::new(
            config.sign_in.sign_in_attempts_per_account,
            config.sign_in.sign_in_attempts_per_source,
        )),
        pending_sign_ins: Arc::default(),
        user_views: Arc::default(),
        refresh_grace_secs: config.refresh_grace_secs,
        registry,
        key_cache: Arc::default(),
        head_reads: Arc::default(),
        upstream: Arc::new(
            crate::federation::upstream::Upstream::new()
                .map_err(|message| anyhow::anyhow!(message))?,
        ),
        federation: config
            .federation
            .resolve()
            .map_err(|message| anyhow::anyhow!(message))?,
        tenant_credentials_strict: config
            .provider_keys
            .strict()
            .map_err(|message| anyhow::anyhow!(message))?,
        connect: Arc::new(
            crate::connect::Connect::new(crate::vault_refresh::RefreshSettings {
                lead_secs: config.credential_refresh_lead_secs.max(0),
                tick: Duration::from_millis(config.credential_refresh_tick_ms.max(10)),
            })
            .map_err(|message| anyhow::anyhow!(message))?,
        ),
    };
    let usage_flusher = tokio::spawn(usage::run(
        usage_recorder.clone(),
        state.commands.clone(),
        ids.clone(),
        Duration::from_secs(config.usage_flush_secs.max(1)),
    ));
    let session_use_flusher = tokio::spawn(activity::run(
        sessions.clone(),
        state.commands.clone(),
        ids.clone(),
        state.clock.clone(),
        Duration::from_secs(config.session_use_flush_secs.max(1)),
    ));
    let commands_for_shutdown = state.commands.clone();
    // Back-Channel Logout: posts logout tokens for sessions that end, from its checkpoint.
    let backchannel = BackchannelTask::start(state.clone());
    // OAuth connections refreshed before they expire, from the log (issue 20).
    let credential_refresh = crate::vault_refresh::RefreshTask::start(state.clone());
    // The outbox: sends queued mail, from `rm_emails`, whatever was pending before this start.
    let mailer = MailTask::start(state.clone(), mail_settings);
    let sweeper = tokio::spawn(lifecycle::run(
        state.clone(),
        Duration::from_secs(config.lifecycle_interval_secs.max(1)),
    ));
    // Entitlements reaching their expiry, on the lifecycle sweep's interval; the first sweep
    // runs at once, so what fell due while the server was down expires at the start.
    let expiry = tokio::spawn(registry_expiry::run(
        state.clone(),
        Duration::from_secs(config.lifecycle_interval_secs.max(1)),
    ));
    // Vault rewraps a previous run left unfinished (a restart in the middle) go on.
    crate::vault_rewrap::resume_all(state.clone());

    let app = match extensions.routes {
        Some(routes) => router(state.clone()).merge(routes.with_state(state)),
        None => router(state),
    };
    let address = listener.local_addr()?;
    tracing::info!(%address, "tessera listening");
    // A stable line on stdout that scripts and tests wait for (the port may have been 0).
    println!("tessera listening on http://{address}");
    http::serve(listener, app, shutdown).await;

    sweeper.abort();
    expiry.abort();
    backchannel.shutdown().await;
    credential_refresh.shutdown().await;
    mailer.shutdown().await;
    usage_flusher.abort();
    session_use_flusher.abort();
    // A clean stop records every counted use, of API keys and of sessions.
    usage_recorder.flush(&commands_for_shutdown, &*ids).await;
    activity::flush(&sessions, &commands_for_shutdown, &*ids).await;
    // Let the read models absorb the last writes, so a clean stop leaves them complete.
    if let Ok(head) = log.head_position().await {
        let _ = projections.wait_for(head, Duration::from_secs(10)).await;
    }
    if let Ok(runtime) = Arc::try_unwrap(projections) {
        runtime.shutdown().await;
    }
    if let Some(kafka) = kafka {
        // Publish the last writes if the broker takes them promptly; whatever it does not is
        // sent again at the next start.
        // (A node standing by for another's lease has nothing of its own to publish.)
        if kafka.status().publishing
            && let Ok(head) = log.head_position().await
        {
            kafka.wait_for(head, Duration::from_secs(5)).await;
        }
        kafka.shutdown().await;
    }
    // Folds the last writes and takes a snapshot, so that the next start folds nothing.
    directory_task.shutdown().await;
    sessions_task.shutdown().await;
    registry_task.shutdown().await;
    if let Some(retention) = retention {
        retention.shutdown().await;
    }
    // Closing the read store folds its WAL into the file, so a stopped server leaves none.
    store_for_shutdown.close().await;
    log.close().await;
    tracing::info!("tessera stopped");
    Ok(())
}
