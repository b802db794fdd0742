//! The command service: load a stream, fold it, decide, append with an expected version.
//!
//! Every public method is one use case the API calls. Each attempt reads the streams it needs
//! from the event log, folds them with the domain's `evolve`, asks the domain to `decide`, and
//! appends the resulting events in ONE atomic `append` (several streams when a reservation is
//! involved), each stream guarded by the version it was read at. A version conflict means
//! someone else wrote in between: the attempt is thrown away and redone from a fresh read, up to
//! [`MAX_RETRIES`] times. A conflict on a slug reservation is not a race but a duplicate, and is
//! reported at once.
//!
//! Commands on one stream are also serialized within this process, so that concurrent requests
//! for one tenant queue instead of conflicting; retries then only absorb races with other
//! processes sharing the log (several nodes on PostgreSQL).
//!
//! Rules live in `tessera-domain`; this module only gathers inputs (time, ids, key material,
//! secrets) and does I/O. It knows nothing of HTTP or read models.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tessera_domain::api_key::{ApiKeyCommand, ApiKeyState, NewApiKey};
use tessera_domain::reservation::{self, ReservationState};
use tessera_domain::tenant::{
    Activation, NewTenant, TenantChanges, TenantCommand, TenantState, default_settings,
};
use tessera_domain::{Aggregate, DomainError};
use tessera_event_log::{AppendError, EventLog, ExpectedVersion, LogError, StreamWrite};
use tessera_event_schemas::events::{
    ReservationKind, SigningAlg, TenantKind, TenantSettingsV1, TenantStatus, TenantUpdatedV1,
};
use tessera_event_schemas::{
    Date, Event, EventMetadata, ProposedEvent, SYSTEM_TENANT_ID, Timestamp, streams,
};
use uuid::Uuid;

use crate::CommandError;
use crate::clock::{Clock, IdGen};
use crate::crypto::{self, Crypto, CryptoError};

/// Retries after a version conflict before giving up with [`CommandError::Concurrency`].
pub const MAX_RETRIES: u32 = 5;
/// Plan of a tenant created without one.
pub const DEFAULT_PLAN: &str = "starter";
/// Events read per `read_stream` call while loading an aggregate.
const PAGE: usize = 512;

// ---- inputs and outputs ----------------------------------------------------------------------

/// Input of [`CommandService::create_tenant`].
#[derive(Clone, Debug)]
pub struct CreateTenant {
    /// None: a new UUIDv7.
    pub tenant_id: Option<Uuid>,
    pub slug: String,
    pub name: String,
    /// None: [`DEFAULT_PLAN`].
    pub plan: Option<String>,
    pub kind: TenantKind,
    pub domains: Vec<String>,
    /// None: [`default_settings`].
    pub settings: Option<TenantSettingsV1>,
    /// JSON object text; None: `{}`.
    pub config_json: Option<String>,
    pub sales_owner: Option<String>,
    /// None: ES256.
    pub signing_alg: Option<SigningAlg>,
}

/// Input of [`CommandService::update_tenant`]: each `Some` field is to be set.
#[derive(Clone, Debug, Default)]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub domains: Option<Vec<String>>,
    pub plan: Option<String>,
    pub config_json: Option<String>,
    pub sales_owner: Option<String>,
}

/// Input of [`CommandService::activate`].
#[derive(Clone, Debug, Default)]
pub struct ActivateTenant {
    /// None: the tenant's current plan.
    pub plan: Option<String>,
    pub contract_start: Option<Date>,
    pub contract_end: Option<Date>,
    pub erp_customer_id: Option<String>,
}

/// Input of [`CommandService::cancel`].
#[derive(Clone, Debug)]
pub struct CancelTenant {
    pub reason: String,
    /// Freeze at the end of the contract instead of now (when there is a contract end ahead).
    pub at_period_end: bool,
}

/// Input of [`CommandService::issue_api_key`].
#[derive(Clone)]
pub struct IssueApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub product: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
    /// None: a new UUIDv7.
    pub key_id: Option<Uuid>,
    /// None: a new random key. Some: an operator-chosen key (`TESSERA_BOOTSTRAP_ADMIN_KEY`).
    pub plaintext: Option<String>,
}

impl fmt::Debug for IssueApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssueApiKey")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("product", &self.product)
            .field("expires_at", &self.expires_at)
            .field("created_by", &self.created_by)
            .field("key_id", &self.key_id)
            .field("plaintext", &self.plaintext.as_ref().map(|_| ".."))
            .finish()
    }
}

/// A created tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub tenant_id: Uuid,
    /// The kid of its first signing key.
    pub kid: String,
    /// Global position of the last event appended: wait for read models to reach it.
    pub position: u64,
}

/// The result of a command that returns nothing but where it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Global position of the last event appended, or, when the command changed nothing, of
    /// the last event of the stream: read models at this position reflect the command.
    pub position: u64,
}

/// A rotated signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotatedKey {
    pub kid: String,
    pub position: u64,
}

/// An issued API key. The plaintext is returned once and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedApiKey {
    pub key_id: Uuid,
    pub plaintext: String,
    pub prefix: String,
    pub position: u64,
}

impl fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("key_id", &self.key_id)
            .field("prefix", &self.prefix)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

// ---- the service -----------------------------------------------------------------------------

/// Executes commands against the event log.
pub struct CommandService {
    log: Arc<dyn EventLog>,
    crypto: Arc<Crypto>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    locks: StreamLocks,
}

impl fmt::Debug for CommandService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandService").finish_non_exhaustive()
    }
}

impl CommandService {
    pub fn new(
        log: Arc<dyn EventLog>,
        crypto: Arc<Crypto>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
    ) -> Self {
        Self {
            log,
            crypto,
            clock,
            ids,
            locks: StreamLocks::default(),
        }
    }

    /// Creates a tenant with its first signing key, and reserves its slug and domains, in one
    /// atomic append. A taken slug or domain is `Rejected(AlreadyExists)`.
    pub async fn create_tenant(
        &self,
        meta: EventMetadata,
        input: CreateTenant,
    ) -> Result<Created, CommandError> {
        let now = self.clock.now();
        let tenant_id = input.tenant_id.unwrap_or_else(|| self.ids.new_id());
        let signing_key = self.crypto.generate_signing_key(
            input.signing_alg.unwrap_or(SigningAlg::ES256),
            tenant_id,
            crypto::new_kid(now).map_err(internal)?,
            now,
        )?;
        let kid = signing_key.kid.clone();
        let new = NewTenant {
            tenant_id,
            slug: input.slug,
            name: input.name,
            plan: input.plan.unwrap_or_else(|| DEFAULT_PLAN.to_owned()),
            kind: input.kind,
            domains: input.domains,
            settings: input.settings.unwrap_or_else(default_settings),
            config_json: input.config_json.unwrap_or_else(|| "{}".to_owned()),
            sales_owner: input.sales_owner,
            signing_key,
            now,
            initial_status: None,
        };
        let stream = streams::tenant(tenant_id);
        let (new, meta) = (&new, &meta);
        let ((), position) = self
            .run(&stream, move || async move {
                let tenant = self
                    .load::<TenantState>(&streams::tenant(tenant_id))
                    .await?;
                self.plan_create(meta, new, tenant).await
            })
            .await?;
        Ok(Created {
            tenant_id,
            kid,
            position,
        })
    }

    /// Changes name, domains, plan, configuration or sales owner. New domains are reserved and
    /// removed ones released in the same append as the change.
    pub async fn update_tenant(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        input: UpdateTenant,
    ) -> Result<Outcome, CommandError> {
        let changes = TenantChanges {
            name: input.name,
            domains: input.domains,
            plan: input.plan,
            config_json: input.config_json,
            sales_owner: input.sales_owner,
        };
        let stream = streams::tenant(tenant_id);
        let (changes, meta, stream_ref) = (&changes, &meta, &stream);
        let ((), position) = self
            .run(&stream, move || async move {
                let tenant = self.load::<TenantState>(stream_ref).await?;
                let events = tenant
                    .state
                    .decide(TenantCommand::Update(changes.clone()))
                    .map_err(|error| rejected(error, tenant.version))?;
                let now = self.clock.now();
                let mut plan = Plan::new((), tenant.position);
                let new_domains = events.iter().find_map(|event| match event {
                    Event::TenantUpdated(TenantUpdatedV1 {
                        domains: Some(domains),
                        ..
                    }) => Some(domains),
                    _ => None,
                });
                if let (Some(current), Some(new_domains)) = (&tenant.state.tenant, new_domains) {
                    for added in new_domains.iter().filter(|d| !current.domains.contains(d)) {
                        self.plan_claim(
                            &mut plan,
                            meta,
                            now,
                            ReservationKind::TenantDomain,
                            added,
                            tenant_id,
                        )
                        .await?;
                    }
                    for removed in current.domains.iter().filter(|d| !new_domains.contains(d)) {
                        self.plan_release(
                            &mut plan,
                            meta,
                            now,
                            ReservationKind::TenantDomain,
                            removed,
                            tenant_id,
                        )
                        .await?;
                    }
                }
                plan.push(self.write(
                    meta,
                    now,
                    stream_ref.clone(),
                    tenant.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Replaces the tenant's security settings.
    pub async fn change_settings(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        settings: TenantSettingsV1,
    ) -> Result<Outcome, CommandError> {
        self.tenant_command(&meta, tenant_id, |_| {
            Ok(TenantCommand::ChangeSettings {
                settings: settings.clone(),
            })
        })
        .await
    }

    /// Moves a demo, trial or frozen tenant to active.
    pub async fn activate(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        input: ActivateTenant,
    ) -> Result<Outcome, CommandError> {
        let activation = Activation {
            plan: input.plan,
            contract_start: input.contract_start,
            contract_end: input.contract_end,
            erp_customer_id: input.erp_customer_id,
        };
        self.tenant_command(&meta, tenant_id, |_| {
            Ok(TenantCommand::Activate(activation.clone()))
        })
        .await
    }

    /// Cancels now, or at the end of the contract.
    pub async fn cancel(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        input: CancelTenant,
    ) -> Result<Outcome, CommandError> {
        let now = self.clock.now();
        self.tenant_command(&meta, tenant_id, |_| {
            Ok(TenantCommand::Cancel {
                reason: input.reason.clone(),
                at_period_end: input.at_period_end,
                now,
            })
        })
        .await
    }

    /// Freezes the tenant if a scheduled cancellation is due; otherwise changes nothing.
    pub async fn freeze_due(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let now = self.clock.now();
        self.tenant_command(&meta, tenant_id, |_| Ok(TenantCommand::FreezeDue { now }))
            .await
    }

    pub async fn suspend(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        reason: Option<String>,
    ) -> Result<Outcome, CommandError> {
        self.tenant_command(&meta, tenant_id, |_| {
            Ok(TenantCommand::Suspend {
                reason: reason.clone(),
            })
        })
        .await
    }

    pub async fn reactivate(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        self.tenant_command(&meta, tenant_id, |_| Ok(TenantCommand::Reactivate))
            .await
    }

    pub async fn archive(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        self.tenant_command(&meta, tenant_id, |_| Ok(TenantCommand::Archive))
            .await
    }

    /// Generates a new signing key and makes it active; the previous key stays published.
    /// `alg` defaults to the algorithm of the current active key.
    pub async fn rotate_signing_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        alg: Option<SigningAlg>,
    ) -> Result<RotatedKey, CommandError> {
        let now = self.clock.now();
        let (kid, position) = self
            .execute::<TenantState, String>(
                &meta,
                tenant_id,
                &streams::tenant(tenant_id),
                |state| {
                    let tenant = state.tenant.as_ref().ok_or(CommandError::NotFound)?;
                    let alg = alg
                        .or_else(|| tenant.active_key().map(|key| key.alg))
                        .unwrap_or(SigningAlg::ES256);
                    let kid = crypto::new_kid(now).map_err(internal)?;
                    let key = self
                        .crypto
                        .generate_signing_key(alg, tenant_id, kid.clone(), now)?;
                    Ok((TenantCommand::RotateKey { key }, kid))
                },
            )
            .await?;
        Ok(RotatedKey { kid, position })
    }

    /// Takes a published (no longer active) key out of the JWKS.
    pub async fn retire_signing_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        kid: String,
    ) -> Result<Outcome, CommandError> {
        self.tenant_command(&meta, tenant_id, |_| {
            Ok(TenantCommand::RetireKey { kid: kid.clone() })
        })
        .await
    }

    /// Issues an API key on an existing, non-archived tenant. Only the keyed hash of the
    /// plaintext is stored; the plaintext is in the result, once.
    pub async fn issue_api_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        input: IssueApiKey,
    ) -> Result<IssuedApiKey, CommandError> {
        let now = self.clock.now();
        let (new, plaintext) = self.prepare_api_key(input, now)?;
        let key_stream = streams::api_key(tenant_id, new.key_id);
        let tenant_stream = streams::tenant(tenant_id);
        let (new_ref, meta, key_stream_ref, tenant_stream) =
            (&new, &meta, &key_stream, &tenant_stream);
        let ((), position) = self
            .run(&key_stream, move || async move {
                let tenant = self.load::<TenantState>(tenant_stream).await?;
                tenant
                    .state
                    .require_open("issue an api key")
                    .map_err(|error| rejected(error, tenant.version))?;
                let key = self.load::<ApiKeyState>(key_stream_ref).await?;
                let events = key
                    .state
                    .decide(ApiKeyCommand::Issue(Box::new(new_ref.clone())))?;
                let now = self.clock.now();
                let mut plan = Plan::new((), key.position);
                // The tenant was read as open: appending nothing to its stream, but at the
                // version read, makes a concurrent archival conflict instead of slipping past.
                plan.guard(tenant_stream.clone(), tenant.version);
                plan.push(self.write(
                    meta,
                    now,
                    key_stream_ref.clone(),
                    key.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(IssuedApiKey {
            key_id: new.key_id,
            prefix: new.prefix,
            plaintext,
            position,
        })
    }

    /// Revokes an API key; it stops authenticating at once.
    pub async fn revoke_api_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        key_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let ((), position) = self
            .execute::<ApiKeyState, ()>(
                &meta,
                tenant_id,
                &streams::api_key(tenant_id, key_id),
                |_| Ok((ApiKeyCommand::Revoke { reason: None }, ())),
            )
            .await?;
        Ok(Outcome { position })
    }

    /// The tenant as the write side sees it (straight from the log, never stale). A tenant
    /// that does not exist is the default state (`tenant: None`).
    pub async fn load_tenant(&self, tenant_id: Uuid) -> Result<TenantState, CommandError> {
        Ok(self
            .load::<TenantState>(&streams::tenant(tenant_id))
            .await?
            .state)
    }

    /// On an empty log, creates the system tenant (slug `system`, active, plan `platform`) and a
    /// `platform:admin` API key on it, in one atomic append, so that a crash cannot leave a
    /// system tenant without an administrator. Uses `admin_key_plaintext` as the key when given.
    /// On a log that already has events, does nothing and returns `None`, so restarts are
    /// harmless.
    pub async fn bootstrap(
        &self,
        admin_key_plaintext: Option<String>,
    ) -> Result<Option<IssuedApiKey>, CommandError> {
        if self.log.head_position().await.map_err(log_error)? != 0 {
            return Ok(None);
        }
        let meta = EventMetadata::system(format!("bootstrap-{}", self.ids.new_id()));
        let now = self.clock.now();
        let signing_key = self.crypto.generate_signing_key(
            SigningAlg::ES256,
            SYSTEM_TENANT_ID,
            crypto::new_kid(now).map_err(internal)?,
            now,
        )?;
        let new = NewTenant {
            tenant_id: SYSTEM_TENANT_ID,
            slug: tessera_domain::validate::SYSTEM_SLUG.to_owned(),
            name: "System".to_owned(),
            plan: "platform".to_owned(),
            kind: TenantKind::Customer,
            domains: Vec::new(),
            settings: default_settings(),
            config_json: "{}".to_owned(),
            sales_owner: None,
            signing_key,
            now,
            initial_status: Some(TenantStatus::Active),
        };
        let (key, plaintext) = self.prepare_api_key(
            IssueApiKey {
                name: "bootstrap admin".to_owned(),
                scopes: vec!["platform:admin".to_owned()],
                product: None,
                expires_at: None,
                created_by: "bootstrap".to_owned(),
                key_id: None,
                plaintext: admin_key_plaintext,
            },
            now,
        )?;
        let stream = streams::tenant(SYSTEM_TENANT_ID);
        let (new_ref, key_ref, meta) = (&new, &key, &meta);
        let (created, position) = self
            .run(&stream, move || async move {
                let tenant = self
                    .load::<TenantState>(&streams::tenant(SYSTEM_TENANT_ID))
                    .await?;
                if tenant.state.tenant.is_some() {
                    // Another process bootstrapped between our head check and now.
                    return Ok(Plan::new(false, tenant.position));
                }
                let mut plan = self
                    .plan_create(meta, new_ref, tenant)
                    .await?
                    .with_value(true);
                let events = ApiKeyState::default()
                    .decide(ApiKeyCommand::Issue(Box::new(key_ref.clone())))?;
                let stream = streams::api_key(SYSTEM_TENANT_ID, key_ref.key_id);
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    stream,
                    ExpectedVersion::NoStream,
                    SYSTEM_TENANT_ID,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(created.then(|| IssuedApiKey {
            key_id: key.key_id,
            prefix: key.prefix.clone(),
            plaintext,
            position,
        }))
    }

    // ---- internals ---------------------------------------------------------------------------

    /// A single-stream tenant command built from the current state.
    async fn tenant_command(
        &self,
        meta: &EventMetadata,
        tenant_id: Uuid,
        command: impl Fn(&TenantState) -> Result<TenantCommand, CommandError>,
    ) -> Result<Outcome, CommandError> {
        let ((), position) = self
            .execute::<TenantState, ()>(meta, tenant_id, &streams::tenant(tenant_id), |state| {
                command(state).map(|command| (command, ()))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Load, decide, append on one stream, with retries. `command` builds the command (and a
    /// value to return) from the current state; it runs again on every retry.
    async fn execute<A, T>(
        &self,
        meta: &EventMetadata,
        tenant_id: Uuid,
        stream_id: &str,
        command: impl Fn(&A) -> Result<(A::Command, T), CommandError>,
    ) -> Result<(T, u64), CommandError>
    where
        A: Aggregate,
    {
        let command = &command;
        self.run(stream_id, move || async move {
            let loaded = self.load::<A>(stream_id).await?;
            let (command, value) = command(&loaded.state)?;
            let events = loaded
                .state
                .decide(command)
                .map_err(|error| rejected(error, loaded.version))?;
            let mut plan = Plan::new(value, loaded.position);
            plan.push(self.write(
                meta,
                self.clock.now(),
                stream_id.to_owned(),
                loaded.expected(),
                tenant_id,
                events,
            ));
            Ok(plan)
        })
        .await
    }

    /// Runs `attempt` and appends its plan, redoing both after a version conflict. Holds the
    /// in-process lock of `lock_stream` throughout.
    async fn run<T, F, Fut>(
        &self,
        lock_stream: &str,
        mut attempt: F,
    ) -> Result<(T, u64), CommandError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Plan<T>, CommandError>>,
    {
        let _serialized = self.locks.lock(lock_stream).await;
        let mut retries = 0;
        loop {
            let plan = attempt().await?;
            if plan.writes.iter().all(|write| write.events.is_empty()) {
                return Ok((plan.value, plan.position));
            }
            match self.log.append(plan.writes).await {
                Ok(outcome) => return Ok((plan.value, outcome.last_position)),
                Err(AppendError::Conflict {
                    stream_id,
                    expected,
                    actual,
                }) => {
                    if let Some((_, error)) = plan
                        .final_conflicts
                        .into_iter()
                        .find(|(stream, _)| *stream == stream_id)
                    {
                        return Err(CommandError::Rejected(error));
                    }
                    if retries >= MAX_RETRIES {
                        tracing::warn!(%stream_id, retries, "giving up after repeated version conflicts");
                        return Err(CommandError::Concurrency);
                    }
                    retries += 1;
                    tracing::debug!(%stream_id, ?expected, actual, retries, "version conflict; retrying");
                    tokio::time::sleep(backoff(retries)).await;
                }
                Err(AppendError::Unavailable(cause)) => {
                    return Err(CommandError::Unavailable(cause));
                }
                Err(other) => return Err(CommandError::Internal(other.to_string())),
            }
        }
    }

    /// Reads a whole stream and folds it.
    async fn load<A: Aggregate>(&self, stream_id: &str) -> Result<Loaded<A>, CommandError> {
        let mut loaded = Loaded {
            state: A::default(),
            version: 0,
            position: 0,
        };
        loop {
            let page = self
                .log
                .read_stream(stream_id, loaded.version, PAGE)
                .await
                .map_err(log_error)?;
            for recorded in &page {
                let event = recorded.decode().map_err(|error| {
                    CommandError::Internal(format!(
                        "stream {stream_id} version {}: {error}",
                        recorded.envelope.stream_version
                    ))
                })?;
                loaded.state.evolve(&event);
                loaded.version = recorded.envelope.stream_version;
                loaded.position = recorded.envelope.global_position;
            }
            if page.len() < PAGE {
                return Ok(loaded);
            }
        }
    }

    /// The writes that create a tenant: its stream, its slug reservation (a conflict there is a
    /// duplicate slug, final), and one reservation per domain.
    async fn plan_create(
        &self,
        meta: &EventMetadata,
        new: &NewTenant,
        tenant: Loaded<TenantState>,
    ) -> Result<Plan<()>, CommandError> {
        let events = tenant
            .state
            .decide(TenantCommand::Create(Box::new(new.clone())))?;
        let now = self.clock.now();
        let mut plan = Plan::new((), tenant.position);
        plan.push(self.write(
            meta,
            now,
            streams::tenant(new.tenant_id),
            tenant.expected(),
            new.tenant_id,
            events,
        ));
        // Slugs are never released, so the reservation stream must not exist at all.
        let kind = ReservationKind::TenantSlug;
        let slug_stream = streams::reservation(kind.as_str(), &new.slug);
        let claim =
            reservation::claim(&ReservationState::default(), kind, &new.slug, new.tenant_id)?;
        plan.push(self.write(
            meta,
            now,
            slug_stream.clone(),
            ExpectedVersion::NoStream,
            SYSTEM_TENANT_ID,
            claim,
        ));
        plan.final_conflicts.push((
            slug_stream,
            DomainError::AlreadyExists(format!("slug {:?}", new.slug)),
        ));
        for domain in &new.domains {
            self.plan_claim(
                &mut plan,
                meta,
                now,
                ReservationKind::TenantDomain,
                domain,
                new.tenant_id,
            )
            .await?;
        }
        Ok(plan)
    }

    async fn plan_claim<T>(
        &self,
        plan: &mut Plan<T>,
        meta: &EventMetadata,
        now: Timestamp,
        kind: ReservationKind,
        value: &str,
        owner: Uuid,
    ) -> Result<(), CommandError> {
        let stream = streams::reservation(kind.as_str(), value);
        let loaded = self.load::<ReservationState>(&stream).await?;
        let events = reservation::claim(&loaded.state, kind, value, owner)?;
        plan.push(self.write(
            meta,
            now,
            stream,
            loaded.expected(),
            SYSTEM_TENANT_ID,
            events,
        ));
        Ok(())
    }

    async fn plan_release<T>(
        &self,
        plan: &mut Plan<T>,
        meta: &EventMetadata,
        now: Timestamp,
        kind: ReservationKind,
        value: &str,
        owner: Uuid,
    ) -> Result<(), CommandError> {
        let stream = streams::reservation(kind.as_str(), value);
        let loaded = self.load::<ReservationState>(&stream).await?;
        let events = reservation::release(&loaded.state, owner)?;
        plan.push(self.write(
            meta,
            now,
            stream,
            loaded.expected(),
            SYSTEM_TENANT_ID,
            events,
        ));
        Ok(())
    }

    /// Wraps decided events for the log: a fresh UUIDv7 each, the time, the request metadata.
    fn write(
        &self,
        meta: &EventMetadata,
        now: Timestamp,
        stream_id: String,
        expected: ExpectedVersion,
        tenant_id: Uuid,
        events: Vec<Event>,
    ) -> StreamWrite {
        let events = events
            .iter()
            .map(|event| ProposedEvent::new(event, self.ids.new_id(), tenant_id, now, meta.clone()))
            .collect();
        StreamWrite {
            stream_id,
            expected,
            events,
        }
    }

    /// Chooses the key id and plaintext and hashes the plaintext.
    fn prepare_api_key(
        &self,
        input: IssueApiKey,
        now: Timestamp,
    ) -> Result<(NewApiKey, String), CommandError> {
        let plaintext = match input.plaintext {
            Some(plaintext) => {
                check_chosen_key(&plaintext)?;
                plaintext
            }
            None => crypto::generate_api_key().map_err(internal)?,
        };
        let new = NewApiKey {
            key_id: input.key_id.unwrap_or_else(|| self.ids.new_id()),
            name: input.name,
            prefix: crypto::api_key_prefix(&plaintext),
            secret_hash: self.crypto.secret_hash(&plaintext),
            scopes: input.scopes,
            product: input.product,
            expires_at: input.expires_at,
            created_by: input.created_by,
            now,
        };
        Ok((new, plaintext))
    }
}

/// An operator-chosen API key must be as hard to guess as a generated one is likely to be:
/// at least 32 printable ASCII characters without spaces (OWASP ASVS 2.9.2 asks for at least
/// 128 bits of entropy in secrets; 32 random base64 characters carry 192).
fn check_chosen_key(plaintext: &str) -> Result<(), CommandError> {
    let ok =
        (32..=256).contains(&plaintext.len()) && plaintext.bytes().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(CommandError::Rejected(DomainError::invalid(
            "plaintext",
            "a chosen API key must be 32 to 256 printable ASCII characters without spaces",
        )))
    }
}

/// A stream as loaded: the folded state, its version and the global position of its last event.
struct Loaded<A> {
    state: A,
    version: u64,
    position: u64,
}

impl<A> Loaded<A> {
    fn expected(&self) -> ExpectedVersion {
        if self.version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(self.version)
        }
    }
}

/// What one attempt wants to append, and what to return once it has.
struct Plan<T> {
    writes: Vec<StreamWrite>,
    /// Streams on which a version conflict is a final answer rather than a race to retry.
    final_conflicts: Vec<(String, DomainError)>,
    value: T,
    /// The position to report when the plan appends nothing.
    position: u64,
}

impl<T> Plan<T> {
    fn new(value: T, position: u64) -> Self {
        Self {
            writes: Vec::new(),
            final_conflicts: Vec::new(),
            value,
            position,
        }
    }

    fn with_value<U>(self, value: U) -> Plan<U> {
        Plan {
            writes: self.writes,
            final_conflicts: self.final_conflicts,
            value,
            position: self.position,
        }
    }

    /// Adds a write if it has events.
    fn push(&mut self, write: StreamWrite) {
        if !write.events.is_empty() {
            self.writes.push(write);
        }
    }

    /// Requires `stream_id` to still be at `version` when the append commits, writing nothing
    /// to it.
    fn guard(&mut self, stream_id: String, version: u64) {
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        self.writes.push(StreamWrite {
            stream_id,
            expected,
            events: Vec::new(),
        });
    }
}

/// A missing aggregate is `NotFound`; anything else the domain refuses is `Rejected`.
fn rejected(error: DomainError, version: u64) -> CommandError {
    match error {
        DomainError::NotFound if version == 0 => CommandError::NotFound,
        other => CommandError::Rejected(other),
    }
}

fn log_error(error: LogError) -> CommandError {
    match error {
        LogError::Unavailable(cause) => CommandError::Unavailable(cause),
        LogError::Corrupt(cause) => CommandError::Internal(cause),
    }
}

fn internal(error: CryptoError) -> CommandError {
    CommandError::Internal(error.to_string())
}

impl From<CryptoError> for CommandError {
    fn from(error: CryptoError) -> Self {
        internal(error)
    }
}

/// Exponential backoff with full jitter (1, 2, 4, 8, 16 ms ceilings), so that processes that
/// collided do not collide again in lockstep.
fn backoff(retry: u32) -> Duration {
    let ceiling_micros = 1000u64 << retry.saturating_sub(1).min(10);
    Duration::from_micros(crypto::jitter(ceiling_micros) + 1)
}

/// One async mutex per stream id, so that commands on one aggregate queue within a process.
/// Entries are weak and swept when the map grows, so idle streams cost nothing.
#[derive(Default)]
struct StreamLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl StreamLocks {
    async fn lock(&self, stream_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = {
            // The map holds no invariant a panic could break, so a poisoned lock is still fine.
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            if locks.len() >= 1024 {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(stream_id).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    let mutex = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(stream_id.to_owned(), Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        mutex.lock_owned().await
    }
}

mod audit;
mod oauth;

pub use audit::{MAX_ACTION_LEN, MAX_FIELD_LEN, MAX_METADATA_BYTES, RecordAudit};
pub use oauth::{RegeneratedSecret, RegisterClient, RegisteredClient};

#[cfg(test)]
mod tests;
