//! Everything a handler needs, built once at startup and passed with axum's `State`.
//! No globals: tests build their own.

use std::sync::Arc;
use std::time::Duration;

use tessera_commands::{Clock, CommandService, IdGen};
use tessera_crypto::{Crypto, PersonalKeys};
use tessera_event_log::EventLog;
use tessera_projections::{
    Directory, KafkaPublisher, ProjectionRuntime, ReadStore, Registry, SessionDirectory,
};

use crate::catch_up::HeadReads;
use crate::error::ApiError;
use crate::key_cache::KeyCache;
use crate::oauth::token::Signers;
use crate::oauth::verify::Verifier;
use crate::pages::pending::PendingSignIns;
use crate::pages::user_views::UserViews;
use crate::rate_limit::SignInLimiter;
use crate::usage::UsageRecorder;

#[derive(Clone)]
pub struct AppState {
    pub commands: Arc<CommandService>,
    pub store: ReadStore,
    pub projections: Arc<ProjectionRuntime>,
    pub log: Arc<dyn EventLog>,
    pub crypto: Arc<Crypto>,
    /// Per-person data keys: how the API opens users' sealed personal fields for display.
    pub personal: Arc<PersonalKeys>,
    /// Every time the API reads (token lifetimes, usage, due cancellations).
    pub clock: Arc<dyn Clock>,
    /// Every id the API makes up itself (token ids, correlation and causation ids).
    pub ids: Arc<dyn IdGen>,
    pub read_your_writes_timeout: Duration,
    /// The in-memory OAuth directory the authorization server reads.
    pub directory: Arc<Directory>,
    /// Parsed signing keys, unsealed once per process.
    pub signers: Arc<Signers>,
    /// Parsed public keys, and the access tokens recently verified or issued (bounded).
    pub verifier: Arc<Verifier>,
    /// API key uses not yet recorded on the log.
    pub usage: Arc<UsageRecorder>,
    /// The externally reachable base URL, without a trailing slash.
    pub public_url: Arc<str>,
    /// The Kafka audit publisher, when brokers are configured.
    pub kafka: Option<Arc<KafkaPublisher>>,
    /// The in-memory session directory the hosted pages read.
    pub sessions: Arc<SessionDirectory>,
    /// Sign-in rate limits (in memory, per node).
    pub sign_in_limiter: Arc<SignInLimiter>,
    /// Sign-ins waiting for a step (a password change) before their session starts.
    pub pending_sign_ins: Arc<PendingSignIns>,
    /// The user rows the hosted pages show, in memory until a user changes (bounded).
    pub user_views: Arc<UserViews>,
    /// How long the refresh token just rotated out still gets grace answers
    /// (`TESSERA_REFRESH_GRACE_SECS`).
    pub refresh_grace_secs: u32,
    /// API keys recently looked up (see [`crate::key_cache`]).
    pub key_cache: Arc<KeyCache>,
    /// The in-memory catalog, entitlements and clients' claims choices (issue 21).
    pub registry: Arc<Registry>,
    /// Cookies are `Secure` with the `__Host-` prefix (the public URL is not plain http).
    pub secure_cookies: bool,
    /// The log head reads that catching up after a miss shares (see [`crate::catch_up`]).
    pub head_reads: Arc<HeadReads>,
    /// Upstream identity providers' client and JWKS cache (issue 19).
    pub upstream: Arc<crate::federation::upstream::Upstream>,
    /// Federated sign-in settings (state lifetime, redirect grace period).
    pub federation: crate::federation::FederationConfig,
    /// Strict mode for tenants' LLM provider keys: no fallback to the platform's key
    /// (`TESSERA_TENANT_CREDENTIALS_STRICT`).
    pub tenant_credentials_strict: bool,
    /// The OAuth connect flow's provider client, and the connections' refresh locks and
    /// settings (issue 20).
    pub connect: Arc<crate::connect::Connect>,
}

impl AppState {
    /// Read-your-writes: waits until the read models, the OAuth directory, the session
    /// directory and the registry reflect `position`.
    pub async fn projected(&self, position: u64) -> Result<(), ApiError> {
        let (read_models, directory, sessions, registry) = tokio::join!(
            self.projections
                .wait_for(position, self.read_your_writes_timeout),
            self.directory
                .wait_for(position, self.read_your_writes_timeout),
            self.sessions
                .wait_for(position, self.read_your_writes_timeout),
            self.registry
                .wait_for(position, self.read_your_writes_timeout),
        );
        read_models
            .and(directory)
            .and(sessions)
            .and(registry)
            .map_err(|_| {
                ApiError::Unavailable(format!(
                    "read models did not reach position {position} in time; the write is durable"
                ))
            })
    }
}
