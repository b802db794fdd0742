//! Tenant commands: creation (with its slug and domain reservations), changes, the lifecycle and
//! the signing key ring.

use tessera_domain::Aggregate;
use tessera_domain::tenant::{
    Activation, NewTenant, TenantChanges, TenantCommand, TenantState, default_settings,
};
use tessera_event_schemas::events::{
    ReservationKind, SigningAlg, SigningKeyV1, TenantKind, TenantSettingsV1, TenantUpdatedV1,
};
use tessera_event_schemas::{Date, Event, EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::engine::{Address, Kind, Loaded, Plan};
use super::{CommandService, Outcome};
use crate::CommandError;
use tessera_crypto as crypto;

/// Plan of a tenant created without one.
pub const DEFAULT_PLAN: &str = "starter";

impl Kind for TenantState {
    const KIND: &'static str = "tenant";
}

impl Address<TenantState> {
    pub(super) fn tenant(tenant_id: Uuid) -> Self {
        Self::new(streams::tenant(tenant_id), tenant_id)
    }
}

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

/// A created tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub tenant_id: Uuid,
    /// The kid of its first signing key.
    pub kid: String,
    /// Global position of the last event appended: wait for read models to reach it.
    pub position: u64,
}

/// A rotated signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotatedKey {
    pub kid: String,
    pub position: u64,
}

impl CommandService {
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
            crypto::new_kid(now)?,
            now,
        )?;
        let kid = signing_key.kid.clone();
        let added_keys = self.id_token_keys(&signing_key, tenant_id, now).await?;
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
            added_keys,
            now,
            initial_status: None,
        };
        let stream = streams::tenant(tenant_id);
        let (new, meta, stream_ref) = (&new, &meta, &stream);
        let ((), position) = self
            .run(&stream, move || async move {
                let tenant = self.load::<TenantState>(stream_ref).await?;
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
        let address = Address::tenant(tenant_id);
        let (changes, meta, address_ref) = (&changes, &meta, &address);
        let ((), position) = self
            .run(&address.stream, move || async move {
                let tenant = self.load::<TenantState>(&address_ref.stream).await?;
                let events = tenant
                    .state
                    .decide(TenantCommand::Update(changes.clone()))
                    .map_err(|error| tenant.reject(error, address_ref))?;
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
                    address_ref.stream.clone(),
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

    /// Generates a new signing key of `alg` and makes it active in place of the active key of
    /// that algorithm (or of the default key, when the ring has no active key of `alg`); the
    /// replaced key stays published. `alg` defaults to the algorithm of the default key.
    pub async fn rotate_signing_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        alg: Option<SigningAlg>,
    ) -> Result<RotatedKey, CommandError> {
        let now = self.clock.now();
        let address = Address::tenant(tenant_id);
        let (kid, position) = self
            .execute::<TenantState, String>(&meta, tenant_id, &address, |state| {
                let tenant = state.tenant.as_ref().ok_or_else(|| address.not_found())?;
                let alg = alg
                    .or_else(|| tenant.active_key().map(|key| key.alg))
                    .unwrap_or(SigningAlg::ES256);
                let kid = crypto::new_kid(now)?;
                let key = self
                    .crypto
                    .generate_signing_key(alg, tenant_id, kid.clone(), now)?;
                Ok((TenantCommand::RotateKey { key }, kid))
            })
            .await?;
        Ok(RotatedKey { kid, position })
    }

    /// Gives the tenant an active key of `alg` unless it has one: run at every start for
    /// tenants created before each tenant kept an RS256 key. Decided on the tenant's stream, so
    /// servers starting at once add one key between them, not one each; an archived tenant
    /// gets none.
    pub async fn ensure_signing_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        alg: SigningAlg,
    ) -> Result<Outcome, CommandError> {
        let now = self.clock.now();
        // One key for every attempt: a retry finds the key there (another node's, or this
        // one's) and adds nothing.
        let key = self
            .generate_key(alg, tenant_id, crypto::new_kid(now)?, now)
            .await?;
        self.tenant_command(&meta, tenant_id, |_| {
            Ok(TenantCommand::EnsureKey { key: key.clone() })
        })
        .await
    }

    /// The keys a new tenant gets beside its default one: an RS256 key for ID tokens, unless
    /// the default is RS256. A 2048-bit RSA key takes about a tenth of a second to generate, so
    /// it is made on a blocking thread rather than on the runtime's workers.
    pub(super) async fn id_token_keys(
        &self,
        default: &SigningKeyV1,
        tenant_id: Uuid,
        now: Timestamp,
    ) -> Result<Vec<SigningKeyV1>, CommandError> {
        if default.alg == SigningAlg::RS256 {
            return Ok(Vec::new());
        }
        let kid = crypto::new_kid(now)?;
        Ok(vec![
            self.generate_key(SigningAlg::RS256, tenant_id, kid, now)
                .await?,
        ])
    }

    /// A new signing key, generated on a blocking thread (RSA generation is slow).
    pub(super) async fn generate_key(
        &self,
        alg: SigningAlg,
        tenant_id: Uuid,
        kid: String,
        now: Timestamp,
    ) -> Result<SigningKeyV1, CommandError> {
        let crypto = self.crypto.clone();
        tokio::task::spawn_blocking(move || crypto.generate_signing_key(alg, tenant_id, kid, now))
            .await
            .map_err(|error| CommandError::Internal(format!("key generation: {error}")))?
            .map_err(CommandError::from)
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

    /// The tenant as the write side sees it (straight from the log, never stale). A tenant
    /// that does not exist is the default state (`tenant: None`).
    pub async fn load_tenant(&self, tenant_id: Uuid) -> Result<TenantState, CommandError> {
        Ok(self
            .load::<TenantState>(&streams::tenant(tenant_id))
            .await?
            .state)
    }

    /// A single-stream tenant command built from the current state.
    async fn tenant_command(
        &self,
        meta: &EventMetadata,
        tenant_id: Uuid,
        command: impl Fn(&TenantState) -> Result<TenantCommand, CommandError>,
    ) -> Result<Outcome, CommandError> {
        let ((), position) = self
            .execute::<TenantState, ()>(meta, tenant_id, &Address::tenant(tenant_id), |state| {
                command(state).map(|command| (command, ()))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// The writes that create a tenant: its stream, its slug reservation (a conflict there is a
    /// duplicate slug, final), and one reservation per domain.
    pub(super) async fn plan_create(
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
        self.plan_slug(&mut plan, meta, now, &new.slug, new.tenant_id)?;
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
}
