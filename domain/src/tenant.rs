//! The tenant aggregate: identity, commercial lifecycle, settings and the signing key ring.
//!
//! One stream per tenant (`{tenant}/tenant`). The state is rebuilt from `tenant.*` events; the
//! rules below live in [`TenantState::decide`] and nowhere else. Pure: no clock, no randomness;
//! the current time and new key material arrive in the commands. Slug and domain uniqueness is
//! not decided here but by reservation streams (see [`crate::reservation`]), appended in the same
//! atomic append by the command handler.
//!
//! # Rules
//! - **Fields.** The slug matches `^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$`, and `system` is reserved
//!   for the system tenant ([`SYSTEM_TENANT_ID`]). The name is 1 to 255 characters once trimmed.
//!   The plan is 1 to 64 characters of `[a-z0-9_-]`. Domains are lowercase DNS hostnames, at most
//!   20, without duplicates. `config_json` is the text of a JSON object. Settings are bounded as
//!   documented in [`crate::validate::settings`]; every violation names its field.
//! - **Creation.** A `Demo` tenant starts in status `Demo`; a `Customer` tenant starts in `Trial`,
//!   with the trial ending [`TRIAL_DAYS`] after creation. Only the system tenant may choose its
//!   initial status (it is created `Active` by bootstrap).
//! - **Activation.** From `Demo`, `Trial` or `Frozen` to `Active`; the plan defaults to the
//!   current plan, and a contract may not end before it starts. Activating an active tenant is
//!   an illegal transition.
//! - **Cancellation.** From `Demo`, `Trial` or `Active`. With `at_period_end` and a contract that
//!   ends in the future, the cancellation is pending until the end of the contract's last day
//!   (UTC) and the status is unchanged; a later `FreezeDue` freezes the tenant once that moment
//!   has passed. Otherwise the tenant is frozen at once. Cancelling a frozen or archived tenant,
//!   or one whose cancellation is already pending, is an illegal transition.
//! - **Suspension** is an overlay, not a status: any non-archived tenant that is not suspended
//!   can be suspended, and reactivation lifts exactly that overlay (status, keys and settings are
//!   untouched). While suspended, activation and cancellation are refused (reactivate first);
//!   updates, settings and key management stay allowed so that an administrator can fix things.
//! - **Archival** is terminal and allowed from any non-archived state, suspended or not. Every
//!   command on an archived tenant is an illegal transition.
//! - **The system tenant** can never be suspended, cancelled or archived (a conflict).
//! - **Keys** (module `keys`). The ring holds at most one active key per algorithm; one of them
//!   is the default key (`active_kid`, the creation key unless rotated), which signs access
//!   tokens. Every tenant keeps an RS256 key beside its default for ID tokens: creation adds it
//!   in the same append (`tenant.signing_key_added`) unless the default is RS256. Only RS256
//!   keys are added beside the default, and adding one needs the ring to have no active RS256
//!   key (else a conflict). Rotation replaces the active key
//!   of the new key's algorithm, or the default key when that algorithm has none (the default
//!   algorithm changes); the replaced key stays published for verification, except an RS256
//!   default, which stays active as the RS256 key. Retiring needs a
//!   known kid (else not found) that is neither active (a conflict: rotate first) nor already
//!   retired (a conflict).

use tessera_event_schemas::events::{
    LockoutPolicyV1, PasswordPolicyV1, PublicJwkV1, SigningAlg, SigningKeyV1, TenantActivatedV1,
    TenantArchivedV1, TenantCancelledV1, TenantCreatedV1, TenantFrozenV1, TenantKind,
    TenantReactivatedV1, TenantSettingsChangedV1, TenantSettingsV1, TenantStatus,
    TenantSuspendedV1, TenantUpdatedV1,
};
use tessera_event_schemas::{Date, Event, SYSTEM_TENANT_ID, Timestamp};
use uuid::Uuid;

use crate::validate;
use crate::{Aggregate, DomainError};

mod keys;

pub use keys::keeps_rs256;

/// Length of a customer tenant's trial.
pub const TRIAL_DAYS: i64 = 14;

/// Longest free-text reason (cancellation, suspension) kept in an event.
const MAX_REASON_CHARS: usize = 1000;

/// Settings for a tenant created without explicit ones.
///
/// Password rules follow NIST SP 800-63B section 5.1.1.2: length matters, composition rules and
/// periodic expiry do not, so they are off by default (tenants may still turn them on).
pub fn default_settings() -> TenantSettingsV1 {
    TenantSettingsV1 {
        session_timeout_minutes: 60,
        max_sessions_per_user: 5,
        require_mfa: false,
        password_policy: PasswordPolicyV1 {
            min_length: 12,
            require_uppercase: false,
            require_lowercase: false,
            require_numbers: false,
            require_special_chars: false,
            password_history_count: 0,
            max_age_days: 0,
        },
        lockout_policy: LockoutPolicyV1 {
            max_attempts: 5,
            lockout_duration_minutes: 15,
            reset_after_minutes: 15,
        },
        allowed_email_domains: Vec::new(),
    }
}

/// Where a signing key is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyStatus {
    /// Signs new tokens. At most one key per algorithm is active.
    Active,
    /// No longer signs, still in the JWKS so that tokens it signed keep verifying.
    Published,
    /// Gone from the JWKS.
    Retired,
}

/// One key of the ring, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub public_jwk: PublicJwkV1,
    /// `nonce || ciphertext || tag` of the PKCS#8 private key, sealed under the master key.
    pub sealed_private_key: Vec<u8>,
    pub created_at: Timestamp,
    pub status: KeyStatus,
}

impl TenantKey {
    fn new(key: &SigningKeyV1, status: KeyStatus) -> Self {
        Self {
            kid: key.kid.clone(),
            alg: key.alg,
            public_jwk: key.public_jwk.clone(),
            sealed_private_key: key.sealed_private_key.expose().clone(),
            created_at: key.created_at,
            status,
        }
    }
}

/// A cancellation that takes effect later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCancellation {
    pub reason: String,
    pub effective_at: Timestamp,
}

/// A created tenant: everything its events carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub kind: TenantKind,
    pub status: TenantStatus,
    pub domains: Vec<String>,
    pub settings: TenantSettingsV1,
    pub config_json: String,
    pub sales_owner: Option<String>,
    pub erp_customer_id: Option<String>,
    pub contract_start: Option<Date>,
    pub contract_end: Option<Date>,
    pub trial_ends_at: Option<Timestamp>,
    pub pending_cancellation: Option<PendingCancellation>,
    pub suspended: bool,
    pub suspension_reason: Option<String>,
    /// Every key ever added, oldest first.
    pub keys: Vec<TenantKey>,
    /// The default key: it signs access tokens.
    pub active_kid: String,
}

impl Tenant {
    /// The default key, which signs access tokens.
    pub fn active_key(&self) -> Option<&TenantKey> {
        self.key(&self.active_kid)
    }

    /// The active key of `alg`, which signs what must use that algorithm (an ID token for a
    /// client that asked for it). None when the ring has no active key of `alg`.
    pub fn active_key_for(&self, alg: SigningAlg) -> Option<&TenantKey> {
        self.keys
            .iter()
            .find(|key| key.alg == alg && key.status == KeyStatus::Active)
    }

    pub fn key(&self, kid: &str) -> Option<&TenantKey> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    pub fn is_system(&self) -> bool {
        self.id == SYSTEM_TENANT_ID
    }

    /// Whether the tenant's keys, clients and tokens may be used: not suspended, frozen or
    /// archived.
    pub fn serves(&self) -> bool {
        !self.suspended && !matches!(self.status, TenantStatus::Frozen | TenantStatus::Archived)
    }

    /// The state a refused transition is described from: the suspension overlay wins, because
    /// it is what the caller must lift first.
    fn blocking_state(&self) -> String {
        if self.status != TenantStatus::Archived && self.suspended {
            "suspended".to_owned()
        } else {
            self.status.as_str().to_owned()
        }
    }

    fn illegal(&self, action: &'static str) -> DomainError {
        DomainError::IllegalTransition {
            from: self.blocking_state(),
            action,
        }
    }

    fn ensure_not_archived(&self, action: &'static str) -> Result<(), DomainError> {
        if self.status == TenantStatus::Archived {
            Err(self.illegal(action))
        } else {
            Ok(())
        }
    }

    fn ensure_not_system(&self, action: &'static str) -> Result<(), DomainError> {
        if self.is_system() {
            Err(DomainError::Conflict(format!(
                "the system tenant cannot {action}"
            )))
        } else {
            Ok(())
        }
    }
}

/// The tenant aggregate's state. `Default` is a tenant that has not been created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantState {
    pub tenant: Option<Tenant>,
}

impl TenantState {
    /// The tenant, for commands on other aggregates that require it to exist and not be
    /// archived (issuing an API key, for example).
    pub fn require_open(&self, action: &'static str) -> Result<&Tenant, DomainError> {
        let tenant = self.tenant.as_ref().ok_or(DomainError::NotFound)?;
        tenant.ensure_not_archived(action)?;
        Ok(tenant)
    }
}

/// Everything needed to create a tenant. The signing key is generated by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTenant {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub kind: TenantKind,
    pub domains: Vec<String>,
    pub settings: TenantSettingsV1,
    pub config_json: String,
    pub sales_owner: Option<String>,
    pub signing_key: SigningKeyV1,
    /// Keys of other algorithms added in the creation's append (`tenant.signing_key_added`):
    /// the RS256 key for ID tokens when the default is not RS256.
    pub added_keys: Vec<SigningKeyV1>,
    pub now: Timestamp,
    /// Overrides the status derived from the kind. Only the system tenant may use it.
    pub initial_status: Option<TenantStatus>,
}

/// A partial update: each `Some` field is to be set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub domains: Option<Vec<String>>,
    pub plan: Option<String>,
    pub config_json: Option<String>,
    pub sales_owner: Option<String>,
}

/// Terms of an activation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activation {
    /// Defaults to the tenant's current plan.
    pub plan: Option<String>,
    pub contract_start: Option<Date>,
    pub contract_end: Option<Date>,
    pub erp_customer_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantCommand {
    Create(Box<NewTenant>),
    Update(TenantChanges),
    ChangeSettings {
        settings: TenantSettingsV1,
    },
    Activate(Activation),
    Cancel {
        reason: String,
        at_period_end: bool,
        now: Timestamp,
    },
    /// Freezes the tenant if a pending cancellation is due at `now`; otherwise does nothing.
    FreezeDue {
        now: Timestamp,
    },
    Suspend {
        reason: Option<String>,
    },
    Reactivate,
    Archive,
    RotateKey {
        key: SigningKeyV1,
    },
    RetireKey {
        kid: String,
    },
    /// Adds an active key of an algorithm the ring has no active key for (else a conflict).
    AddKey {
        key: SigningKeyV1,
    },
    /// Adds the key unless the ring already has an active key of its algorithm, in which case
    /// it does nothing: what a start runs so that logs written before every tenant kept an
    /// RS256 key get one, once, however many servers start at once.
    EnsureKey {
        key: SigningKeyV1,
    },
}

impl Aggregate for TenantState {
    type Command = TenantCommand;

    fn evolve(&mut self, event: &Event) {
        if let Event::TenantCreated(created) = event {
            self.tenant = Some(created_tenant(created));
            return;
        }
        let Some(tenant) = self.tenant.as_mut() else {
            return;
        };
        match event {
            Event::TenantUpdated(e) => {
                if let Some(name) = &e.name {
                    tenant.name.clone_from(name);
                }
                if let Some(domains) = &e.domains {
                    tenant.domains.clone_from(domains);
                }
                if let Some(plan) = &e.plan {
                    tenant.plan.clone_from(plan);
                }
                if let Some(config_json) = &e.config_json {
                    tenant.config_json.clone_from(config_json);
                }
                if let Some(sales_owner) = &e.sales_owner {
                    tenant.sales_owner = Some(sales_owner.clone());
                }
            }
            Event::TenantSettingsChanged(e) => tenant.settings = e.settings.clone(),
            Event::TenantActivated(e) => {
                tenant.status = TenantStatus::Active;
                tenant.plan.clone_from(&e.plan);
                // An activation states the whole contract; an ERP id names the customer and
                // survives activations that do not repeat it.
                tenant.contract_start = e.contract_start;
                tenant.contract_end = e.contract_end;
                if let Some(erp) = &e.erp_customer_id {
                    tenant.erp_customer_id = Some(erp.clone());
                }
                tenant.trial_ends_at = None;
                tenant.pending_cancellation = None;
            }
            Event::TenantCancelled(e) => match e.effective_at {
                Some(effective_at) => {
                    tenant.pending_cancellation = Some(PendingCancellation {
                        reason: e.reason.clone(),
                        effective_at,
                    });
                }
                None => {
                    tenant.status = TenantStatus::Frozen;
                    tenant.pending_cancellation = None;
                }
            },
            Event::TenantFrozen(_) => {
                tenant.status = TenantStatus::Frozen;
                tenant.pending_cancellation = None;
            }
            Event::TenantSuspended(e) => {
                tenant.suspended = true;
                tenant.suspension_reason.clone_from(&e.reason);
            }
            Event::TenantReactivated(_) => {
                tenant.suspended = false;
                tenant.suspension_reason = None;
            }
            Event::TenantArchived(_) => tenant.status = TenantStatus::Archived,
            Event::SigningKeyRotated(e) => keys::evolve_rotated(tenant, e),
            Event::SigningKeyAdded(e) => {
                tenant.keys.push(TenantKey::new(&e.key, KeyStatus::Active));
            }
            Event::SigningKeyRetired(e) => {
                if let Some(key) = tenant.keys.iter_mut().find(|key| key.kid == e.kid) {
                    key.status = KeyStatus::Retired;
                }
            }
            _ => {}
        }
    }

    fn decide(&self, command: TenantCommand) -> Result<Vec<Event>, DomainError> {
        let Some(tenant) = &self.tenant else {
            return match command {
                TenantCommand::Create(new) => create(*new),
                _ => Err(DomainError::NotFound),
            };
        };
        match command {
            TenantCommand::Create(_) => {
                Err(DomainError::AlreadyExists(format!("tenant {}", tenant.id)))
            }
            TenantCommand::Update(changes) => update(tenant, changes),
            TenantCommand::ChangeSettings { settings } => change_settings(tenant, settings),
            TenantCommand::Activate(activation) => activate(tenant, activation),
            TenantCommand::Cancel {
                reason,
                at_period_end,
                now,
            } => cancel(tenant, &reason, at_period_end, now),
            TenantCommand::FreezeDue { now } => Ok(freeze_due(tenant, now)),
            TenantCommand::Suspend { reason } => suspend(tenant, reason),
            TenantCommand::Reactivate => reactivate(tenant),
            TenantCommand::Archive => archive(tenant),
            TenantCommand::RotateKey { key } => keys::rotate(tenant, key),
            TenantCommand::RetireKey { kid } => keys::retire(tenant, kid),
            TenantCommand::AddKey { key } => keys::add(tenant, key),
            TenantCommand::EnsureKey { key } => keys::ensure(tenant, key),
        }
    }
}

fn created_tenant(e: &TenantCreatedV1) -> Tenant {
    Tenant {
        id: e.tenant_id,
        slug: e.slug.clone(),
        name: e.name.clone(),
        plan: e.plan.clone(),
        kind: e.kind,
        status: e.status,
        domains: e.domains.clone(),
        settings: e.settings.clone(),
        config_json: e.config_json.clone(),
        sales_owner: e.sales_owner.clone(),
        erp_customer_id: None,
        contract_start: None,
        contract_end: None,
        trial_ends_at: e.trial_ends_at,
        pending_cancellation: None,
        suspended: false,
        suspension_reason: None,
        keys: vec![TenantKey::new(&e.signing_key, KeyStatus::Active)],
        active_kid: e.signing_key.kid.clone(),
    }
}

fn optional_text(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, DomainError> {
    value
        .map(|text| validate::display_text(field, &text, max))
        .transpose()
}

fn create(new: NewTenant) -> Result<Vec<Event>, DomainError> {
    if new.tenant_id.is_nil() {
        return Err(DomainError::invalid(
            "tenant_id",
            "must not be the nil UUID",
        ));
    }
    let is_system = new.tenant_id == SYSTEM_TENANT_ID;
    validate::slug("slug", &new.slug)?;
    if new.slug == validate::SYSTEM_SLUG && !is_system {
        return Err(DomainError::invalid(
            "slug",
            "\"system\" is reserved for the system tenant",
        ));
    }
    let name = validate::display_text("name", &new.name, 255)?;
    validate::identifier("plan", &new.plan)?;
    validate::hostnames("domains", &new.domains, validate::MAX_DOMAINS)?;
    validate::settings(&new.settings)?;
    validate::json_object("config_json", &new.config_json)?;
    let sales_owner = optional_text("sales_owner", new.sales_owner, 255)?;
    keys::validate("signing_key", &new.signing_key)?;
    let added = keys::added_at_creation(&new.signing_key, &new.added_keys)?;

    let status = match (new.initial_status, is_system) {
        (
            Some(status @ (TenantStatus::Demo | TenantStatus::Trial | TenantStatus::Active)),
            true,
        ) => status,
        (Some(_), true) => {
            return Err(DomainError::invalid(
                "initial_status",
                "must be demo, trial or active",
            ));
        }
        (Some(_), false) => {
            return Err(DomainError::invalid(
                "initial_status",
                "only the system tenant chooses its initial status",
            ));
        }
        (None, _) => match new.kind {
            TenantKind::Demo => TenantStatus::Demo,
            TenantKind::Customer => TenantStatus::Trial,
        },
    };
    let trial_ends_at =
        (status == TenantStatus::Trial).then(|| new.now.plus_seconds(TRIAL_DAYS * 86_400));

    Ok([Event::TenantCreated(TenantCreatedV1 {
        tenant_id: new.tenant_id,
        slug: new.slug,
        name,
        plan: new.plan,
        kind: new.kind,
        status,
        domains: new.domains,
        settings: new.settings,
        config_json: new.config_json,
        sales_owner,
        trial_ends_at,
        signing_key: new.signing_key,
    })]
    .into_iter()
    .chain(added)
    .collect())
}

/// Only fields that actually change are recorded; an update that changes nothing records
/// nothing, so that retried or repeated requests are harmless.
fn update(tenant: &Tenant, changes: TenantChanges) -> Result<Vec<Event>, DomainError> {
    tenant.ensure_not_archived("update")?;
    let name = optional_text("name", changes.name, 255)?.filter(|name| *name != tenant.name);
    if let Some(domains) = &changes.domains {
        validate::hostnames("domains", domains, validate::MAX_DOMAINS)?;
    }
    let domains = changes.domains.filter(|d| *d != tenant.domains);
    if let Some(plan) = &changes.plan {
        validate::identifier("plan", plan)?;
    }
    let plan = changes.plan.filter(|plan| *plan != tenant.plan);
    if let Some(config_json) = &changes.config_json {
        validate::json_object("config_json", config_json)?;
    }
    let config_json = changes.config_json.filter(|c| *c != tenant.config_json);
    let sales_owner = optional_text("sales_owner", changes.sales_owner, 255)?
        .filter(|owner| tenant.sales_owner.as_ref() != Some(owner));

    let event = TenantUpdatedV1 {
        name,
        domains,
        plan,
        config_json,
        sales_owner,
    };
    let nothing = event.name.is_none()
        && event.domains.is_none()
        && event.plan.is_none()
        && event.config_json.is_none()
        && event.sales_owner.is_none();
    if nothing {
        Ok(Vec::new())
    } else {
        Ok(vec![Event::TenantUpdated(event)])
    }
}

fn change_settings(tenant: &Tenant, settings: TenantSettingsV1) -> Result<Vec<Event>, DomainError> {
    tenant.ensure_not_archived("change settings")?;
    validate::settings(&settings)?;
    if settings == tenant.settings {
        return Ok(Vec::new());
    }
    Ok(vec![Event::TenantSettingsChanged(
        TenantSettingsChangedV1 { settings },
    )])
}

fn activate(tenant: &Tenant, activation: Activation) -> Result<Vec<Event>, DomainError> {
    if tenant.suspended || tenant.status == TenantStatus::Archived {
        return Err(tenant.illegal("activate"));
    }
    match tenant.status {
        TenantStatus::Demo | TenantStatus::Trial | TenantStatus::Frozen => {}
        TenantStatus::Active | TenantStatus::Archived => return Err(tenant.illegal("activate")),
    }
    let plan = activation.plan.unwrap_or_else(|| tenant.plan.clone());
    validate::identifier("plan", &plan)?;
    if let (Some(start), Some(end)) = (activation.contract_start, activation.contract_end)
        && end < start
    {
        return Err(DomainError::invalid(
            "contract_end",
            "must not be before contract_start",
        ));
    }
    let erp_customer_id = optional_text("erp_customer_id", activation.erp_customer_id, 128)?;
    Ok(vec![Event::TenantActivated(TenantActivatedV1 {
        previous_status: tenant.status,
        plan,
        contract_start: activation.contract_start,
        contract_end: activation.contract_end,
        erp_customer_id,
    })])
}

/// The last microsecond of `date` in UTC: a contract runs through its whole last day.
fn end_of_day(date: Date) -> Option<Timestamp> {
    date.to_naive()
        .and_hms_micro_opt(23, 59, 59, 999_999)
        .map(|at| Timestamp::from_datetime(at.and_utc()))
}

fn cancel(
    tenant: &Tenant,
    reason: &str,
    at_period_end: bool,
    now: Timestamp,
) -> Result<Vec<Event>, DomainError> {
    tenant.ensure_not_system("be cancelled")?;
    if tenant.suspended {
        return Err(tenant.illegal("cancel"));
    }
    match tenant.status {
        TenantStatus::Demo | TenantStatus::Trial | TenantStatus::Active => {}
        TenantStatus::Frozen | TenantStatus::Archived => return Err(tenant.illegal("cancel")),
    }
    if tenant.pending_cancellation.is_some() {
        return Err(DomainError::IllegalTransition {
            from: "cancellation pending".to_owned(),
            action: "cancel",
        });
    }
    let reason = validate::display_text("reason", reason, MAX_REASON_CHARS)?;
    let effective_at = if at_period_end {
        tenant
            .contract_end
            .and_then(end_of_day)
            .filter(|end| *end > now)
    } else {
        None
    };
    Ok(vec![Event::TenantCancelled(TenantCancelledV1 {
        reason,
        effective_at,
    })])
}

fn freeze_due(tenant: &Tenant, now: Timestamp) -> Vec<Event> {
    match &tenant.pending_cancellation {
        Some(pending)
            if pending.effective_at <= now
                && matches!(
                    tenant.status,
                    TenantStatus::Demo | TenantStatus::Trial | TenantStatus::Active
                ) =>
        {
            vec![Event::TenantFrozen(TenantFrozenV1 {
                reason: pending.reason.clone(),
            })]
        }
        _ => Vec::new(),
    }
}

fn suspend(tenant: &Tenant, reason: Option<String>) -> Result<Vec<Event>, DomainError> {
    tenant.ensure_not_system("be suspended")?;
    tenant.ensure_not_archived("suspend")?;
    if tenant.suspended {
        return Err(tenant.illegal("suspend"));
    }
    let reason = optional_text("reason", reason, MAX_REASON_CHARS)?;
    Ok(vec![Event::TenantSuspended(TenantSuspendedV1 { reason })])
}

fn reactivate(tenant: &Tenant) -> Result<Vec<Event>, DomainError> {
    tenant.ensure_not_archived("reactivate")?;
    if !tenant.suspended {
        return Err(tenant.illegal("reactivate"));
    }
    Ok(vec![Event::TenantReactivated(TenantReactivatedV1 {})])
}

fn archive(tenant: &Tenant) -> Result<Vec<Event>, DomainError> {
    tenant.ensure_not_system("be archived")?;
    tenant.ensure_not_archived("archive")?;
    Ok(vec![Event::TenantArchived(TenantArchivedV1 {
        previous_status: tenant.status,
    })])
}

#[cfg(test)]
mod tests;
