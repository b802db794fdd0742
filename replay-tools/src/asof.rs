//! `as-of`: a tenant rebuilt exactly as it was at one moment of the log.
//!
//! [`TenantSnapshot`] is a pure fold, fed every event the moment admits in global order
//! ([`TenantSnapshot::observe`]); it keeps the events of one tenant, routed by stream id, and
//! folds them with the domain's own `evolve`:
//! - `{tenant}/tenant` → [`TenantState`] (status, suspension, settings, key ring);
//! - `{tenant}/api-key/{key}` → one [`ApiKeyState`] per key (plus its recorded uses);
//! - `{tenant}/oauth-client/{client}` → one [`OAuthClientState`] per client;
//! - `{tenant}/tokens/{client}` → every token issued, and whether it was revoked;
//! - `{tenant}/user/{user}` → one [`UserState`] per user (personal fields still sealed: the
//!   report opens them through the key table, see [`crate::people`]).
//!
//! Because the aggregates are the write side's own, the snapshot at a position equals what
//! the command service loaded at that position. [`TenantSnapshot::view`] turns a snapshot into
//! the report `as-of` prints (no secret hashes, no sealed keys), with the tokens that were
//! valid at the moment: issued, not revoked and not yet expired (`expires_at > moment`).

use std::collections::BTreeMap;

use serde::Serialize;
use tessera_domain::Aggregate;
use tessera_domain::api_key::ApiKeyState;
use tessera_domain::oauth_client::OAuthClientState;
use tessera_domain::tenant::{KeyStatus, TenantState};
use tessera_domain::user::UserState;
use tessera_event_schemas::events::{
    ClientType, IssuedTokenFacts, SigningAlg, TenantKind, TenantSettingsV1, TenantStatus,
};
use tessera_event_schemas::{
    Date, DecodeError, Envelope, Event, RecordedEvent, StreamId, Timestamp,
};
use uuid::Uuid;

use crate::people::UserView;
use crate::source::Bound;

/// The stream `stream_id` names if it is one of `tenant_id`'s that a snapshot folds (its
/// tenant, API key, OAuth client and token streams); `None` for any other stream.
pub fn tenant_stream(stream_id: &str, tenant_id: Uuid) -> Option<StreamId> {
    StreamId::parse(stream_id).filter(|stream| folded(stream) && stream.tenant_id() == tenant_id)
}

/// Whether a snapshot folds the events of a kind of stream.
fn folded(stream: &StreamId) -> bool {
    match stream {
        StreamId::Tenant(_)
        | StreamId::ApiKey { .. }
        | StreamId::OAuthClient { .. }
        | StreamId::Tokens { .. }
        | StreamId::User { .. } => true,
        // Sign-ins and sessions say nothing about a tenant's configuration; second factors and
        // the WebAuthn policy are no part of a tenant's snapshot (yet): `history` shows them.
        StreamId::Audit(_)
        | StreamId::Reservation { .. }
        | StreamId::Sessions { .. }
        | StreamId::SignIns(_)
        | StreamId::Mfa { .. }
        | StreamId::WebauthnPolicy(_)
        | StreamId::Code { .. }
        | StreamId::Consents { .. }
        | StreamId::Refresh { .. }
        | StreamId::Invitation { .. }
        | StreamId::Email { .. }
        // Entitlements and the catalog are the registry's commercial side (issue 21): no part
        // of a tenant's configuration snapshot yet; `history` shows them.
        | StreamId::Entitlement { .. }
        | StreamId::Product(_)
        // Identity providers and federated sign-ins (issue 19): `history` shows them.
        | StreamId::IdentityProvider { .. }
        | StreamId::FederatedSignIn { .. }
        // The credential vault (issue 20): `history` shows it.
        | StreamId::Vault(_)
        | StreamId::Integration(_)
        | StreamId::IntegrationApp { .. }
        | StreamId::Credential { .. }
        | StreamId::CredentialAccess { .. }
        | StreamId::Connect { .. }
        | StreamId::ProviderKey { .. }
        | StreamId::ProviderKeyAccess { .. } => false,
    }
}

/// A token as far as the log knows at the moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub issued: IssuedTokenFacts,
    pub revoked: bool,
}

/// One tenant folded from the events a moment admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantSnapshot {
    pub tenant_id: Uuid,
    pub tenant: TenantState,
    pub api_keys: BTreeMap<Uuid, ApiKeyState>,
    /// Uses recorded by `api_key.used`, per key.
    pub api_key_uses: BTreeMap<Uuid, u64>,
    pub clients: BTreeMap<String, OAuthClientState>,
    pub tokens: BTreeMap<Uuid, TokenRecord>,
    pub users: BTreeMap<Uuid, UserState>,
    /// The last global position observed (any tenant's).
    pub position: u64,
    /// `recorded_at` of the event at [`Self::position`].
    pub last_recorded_at: Option<Timestamp>,
    /// How many of the tenant's events were applied.
    pub events: u64,
}

impl TenantSnapshot {
    pub fn new(tenant_id: Uuid) -> Self {
        Self {
            tenant_id,
            tenant: TenantState::default(),
            api_keys: BTreeMap::new(),
            api_key_uses: BTreeMap::new(),
            clients: BTreeMap::new(),
            tokens: BTreeMap::new(),
            users: BTreeMap::new(),
            position: 0,
            last_recorded_at: None,
            events: 0,
        }
    }

    /// Feeds one event of the log (any tenant's, in global order). Only events of this
    /// tenant's streams are decoded and applied.
    pub fn observe(&mut self, recorded: &RecordedEvent) -> Result<(), DecodeError> {
        let e = &recorded.envelope;
        if e.global_position >= self.position {
            self.position = e.global_position;
            self.last_recorded_at = Some(e.recorded_at);
        }
        let Some(stream) = tenant_stream(&e.stream_id, self.tenant_id) else {
            return Ok(());
        };
        let event = recorded.decode()?;
        self.apply(e, &stream, &event);
        Ok(())
    }

    /// Applies one decoded event of one of this tenant's streams (see [`tenant_stream`]),
    /// recorded with `envelope`.
    pub fn apply(&mut self, envelope: &Envelope, stream: &StreamId, event: &Event) {
        if !folded(stream) {
            return;
        }
        self.events += 1;
        match stream {
            StreamId::Tenant(_) => self.tenant.evolve(event),
            StreamId::ApiKey { key_id, .. } => {
                if let Event::ApiKeyUsed(used) = event {
                    *self.api_key_uses.entry(*key_id).or_default() += used.uses;
                }
                self.api_keys.entry(*key_id).or_default().evolve(event);
            }
            StreamId::OAuthClient { client_id, .. } => {
                self.clients
                    .entry(client_id.clone())
                    .or_default()
                    .evolve(event);
            }
            StreamId::Tokens { .. } => match event {
                Event::TokenIssuedV1(_) | Event::TokenIssued(_) => {
                    let Some(issued) = event.issued_token(envelope) else {
                        return;
                    };
                    let revoked = self
                        .tokens
                        .get(&issued.jti)
                        .is_some_and(|token| token.revoked);
                    self.tokens
                        .insert(issued.jti, TokenRecord { issued, revoked });
                }
                Event::TokenRevoked(revoked) => {
                    if let Some(token) = self.tokens.get_mut(&revoked.jti) {
                        token.revoked = true;
                    }
                }
                _ => {}
            },
            StreamId::User { user_id, .. } => {
                self.users.entry(*user_id).or_default().evolve(event);
            }
            StreamId::Audit(_)
            | StreamId::Reservation { .. }
            | StreamId::Sessions { .. }
            | StreamId::SignIns(_)
            | StreamId::Mfa { .. }
            | StreamId::WebauthnPolicy(_)
            | StreamId::Code { .. }
            | StreamId::Consents { .. }
            | StreamId::Refresh { .. }
            | StreamId::Invitation { .. }
            | StreamId::Email { .. }
            | StreamId::Entitlement { .. }
            | StreamId::Product(_)
            | StreamId::IdentityProvider { .. }
            | StreamId::FederatedSignIn { .. }
            | StreamId::Vault(_)
            | StreamId::Integration(_)
            | StreamId::IntegrationApp { .. }
            | StreamId::Credential { .. }
            | StreamId::CredentialAccess { .. }
            | StreamId::Connect { .. }
            | StreamId::ProviderKey { .. }
            | StreamId::ProviderKeyAccess { .. } => {}
        }
    }

    /// The time tokens and API keys are judged at: the bound's time, or for a position the
    /// `recorded_at` of the event there.
    pub fn moment(&self, bound: Bound) -> Timestamp {
        match bound {
            Bound::Time(time) => time,
            Bound::Position(_) => self.last_recorded_at.unwrap_or_default(),
        }
    }

    /// Tokens issued, not revoked and not expired at `moment`.
    pub fn valid_tokens(&self, moment: Timestamp) -> impl Iterator<Item = &TokenRecord> {
        self.tokens
            .values()
            .filter(move |token| !token.revoked && token.issued.expires_at > moment)
    }

    /// The readable report; `None` if the tenant did not exist at that moment.
    pub fn view(&self, bound: Bound) -> Option<AsOfView> {
        let tenant = self.tenant.tenant.as_ref()?;
        let moment = self.moment(bound);
        Some(AsOfView {
            tenant_id: tenant.id,
            as_of: AsOfMoment {
                bound: bound.to_string(),
                position: self.position,
                moment,
            },
            tenant: TenantView {
                slug: tenant.slug.clone(),
                name: tenant.name.clone(),
                plan: tenant.plan.clone(),
                kind: tenant.kind,
                status: tenant.status,
                suspended: tenant.suspended,
                suspension_reason: tenant.suspension_reason.clone(),
                domains: tenant.domains.clone(),
                settings: tenant.settings.clone(),
                config_json: tenant.config_json.clone(),
                sales_owner: tenant.sales_owner.clone(),
                erp_customer_id: tenant.erp_customer_id.clone(),
                contract_start: tenant.contract_start,
                contract_end: tenant.contract_end,
                trial_ends_at: tenant.trial_ends_at,
                pending_cancellation: tenant.pending_cancellation.as_ref().map(|pending| {
                    PendingCancellationView {
                        reason: pending.reason.clone(),
                        effective_at: pending.effective_at,
                    }
                }),
                active_kid: tenant.active_kid.clone(),
            },
            keys: tenant
                .keys
                .iter()
                .map(|key| KeyView {
                    kid: key.kid.clone(),
                    alg: key.alg,
                    status: key_status(key.status),
                    created_at: key.created_at,
                })
                .collect(),
            clients: self
                .clients
                .values()
                .filter_map(|state| state.client.as_ref())
                .map(|client| ClientView {
                    client_id: client.client_id.clone(),
                    name: client.name.clone(),
                    client_type: client.client_type,
                    grant_types: client.grant_types.clone(),
                    redirect_uris: client.redirect_uris.clone(),
                    allowed_scopes: client.allowed_scopes.clone(),
                    access_token_ttl_secs: client.access_token_ttl_secs,
                    has_secret: client.secret_hash.is_some(),
                    created_by: client.created_by.clone(),
                    active: client.active,
                    deactivation_reason: client.deactivation_reason.clone(),
                })
                .collect(),
            api_keys: self
                .api_keys
                .iter()
                .filter_map(|(id, state)| state.key.as_ref().map(|key| (id, key)))
                .map(|(id, key)| ApiKeyView {
                    key_id: key.key_id,
                    name: key.name.clone(),
                    prefix: key.prefix.clone(),
                    scopes: key.scopes.clone(),
                    product: key.product.clone(),
                    expires_at: key.expires_at,
                    expired: key.expires_at.is_some_and(|at| at <= moment),
                    created_by: key.created_by.clone(),
                    revoked: key.revoked,
                    revoke_reason: key.revoke_reason.clone(),
                    uses: self.api_key_uses.get(id).copied().unwrap_or(0),
                })
                .collect(),
            valid_tokens: self
                .valid_tokens(moment)
                .map(|token| TokenView::new(&token.issued))
                .collect(),
            users: self
                .users
                .values()
                .filter_map(|state| state.user.as_ref())
                .map(UserView::sealed)
                .collect(),
        })
    }
}

pub fn key_status(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "active",
        KeyStatus::Published => "published",
        KeyStatus::Retired => "retired",
    }
}

/// What `as-of --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AsOfView {
    pub tenant_id: Uuid,
    pub as_of: AsOfMoment,
    pub tenant: TenantView,
    pub keys: Vec<KeyView>,
    pub clients: Vec<ClientView>,
    pub api_keys: Vec<ApiKeyView>,
    pub valid_tokens: Vec<TokenView>,
    /// Personal fields sealed until opened (see [`crate::people::users`]).
    pub users: Vec<UserView>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AsOfMoment {
    /// The bound as given (`position N` or an RFC 3339 time).
    pub bound: String,
    /// The last global position the moment admits.
    pub position: u64,
    /// The time tokens and key expiries are judged at.
    pub moment: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantView {
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub kind: TenantKind,
    pub status: TenantStatus,
    pub suspended: bool,
    pub suspension_reason: Option<String>,
    pub domains: Vec<String>,
    pub settings: TenantSettingsV1,
    pub config_json: String,
    pub sales_owner: Option<String>,
    pub erp_customer_id: Option<String>,
    pub contract_start: Option<Date>,
    pub contract_end: Option<Date>,
    pub trial_ends_at: Option<Timestamp>,
    pub pending_cancellation: Option<PendingCancellationView>,
    pub active_kid: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PendingCancellationView {
    pub reason: String,
    pub effective_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyView {
    pub kid: String,
    pub alg: SigningAlg,
    pub status: &'static str,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub client_type: ClientType,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub access_token_ttl_secs: u32,
    pub has_secret: bool,
    pub created_by: String,
    pub active: bool,
    pub deactivation_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiKeyView {
    pub key_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub product: Option<String>,
    pub expires_at: Option<Timestamp>,
    /// Past its expiry at the moment.
    pub expired: bool,
    pub created_by: String,
    pub revoked: bool,
    pub revoke_reason: Option<String>,
    pub uses: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenView {
    pub jti: Uuid,
    pub client_id: String,
    pub grant_type: String,
    pub scopes: Vec<String>,
    pub kid: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

impl TokenView {
    pub fn new(issued: &IssuedTokenFacts) -> Self {
        Self {
            jti: issued.jti,
            client_id: issued.client_id.clone(),
            grant_type: issued.grant_type.clone(),
            scopes: issued.scopes.clone(),
            kid: issued.kid.clone(),
            issued_at: issued.issued_at,
            expires_at: issued.expires_at,
        }
    }
}

impl AsOfView {
    /// The human-readable report.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let t = &self.tenant;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "tenant {} ({}) as of {} (position {}, moment {})",
            t.slug, self.tenant_id, self.as_of.bound, self.as_of.position, self.as_of.moment
        );
        let _ = writeln!(out, "  name:       {}", t.name);
        let _ = writeln!(out, "  kind/plan:  {:?} / {}", t.kind, t.plan);
        let suspended = if t.suspended {
            format!(
                ", SUSPENDED ({})",
                t.suspension_reason.as_deref().unwrap_or("no reason")
            )
        } else {
            String::new()
        };
        let _ = writeln!(out, "  status:     {}{suspended}", t.status.as_str());
        if let Some(pending) = &t.pending_cancellation {
            let _ = writeln!(
                out,
                "  cancelling: at {} ({})",
                pending.effective_at, pending.reason
            );
        }
        let _ = writeln!(out, "  domains:    {}", t.domains.join(", "));
        let s = &t.settings;
        let _ = writeln!(
            out,
            "  settings:   session {} min, {} sessions/user, mfa {}, password min {}, lockout {} attempts / {} min",
            s.session_timeout_minutes,
            s.max_sessions_per_user,
            s.require_mfa,
            s.password_policy.min_length,
            s.lockout_policy.max_attempts,
            s.lockout_policy.lockout_duration_minutes
        );
        let _ = writeln!(out, "  signing keys ({}):", self.keys.len());
        for key in &self.keys {
            let _ = writeln!(
                out,
                "    {} {} {} (created {})",
                key.kid,
                key.alg.as_str(),
                key.status,
                key.created_at
            );
        }
        let _ = writeln!(out, "  oauth clients ({}):", self.clients.len());
        for c in &self.clients {
            let _ = writeln!(
                out,
                "    {} {:?} {} [{}] scopes [{}] ttl {}s{}",
                c.client_id,
                c.name,
                c.client_type.as_str(),
                c.grant_types.join(" "),
                c.allowed_scopes.join(" "),
                c.access_token_ttl_secs,
                if c.active { "" } else { " DEACTIVATED" }
            );
        }
        let _ = writeln!(out, "  api keys ({}):", self.api_keys.len());
        for k in &self.api_keys {
            let state = match (k.revoked, k.expired) {
                (true, _) => " REVOKED",
                (false, true) => " EXPIRED",
                (false, false) => "",
            };
            let _ = writeln!(
                out,
                "    {} {:?} {}… scopes [{}] uses {}{state}",
                k.key_id,
                k.name,
                k.prefix,
                k.scopes.join(" "),
                k.uses
            );
        }
        let _ = writeln!(out, "  valid tokens ({}):", self.valid_tokens.len());
        for token in &self.valid_tokens {
            let _ = writeln!(
                out,
                "    {} client {} scopes [{}] kid {} expires {}",
                token.jti,
                token.client_id,
                token.scopes.join(" "),
                token.kid,
                token.expires_at
            );
        }
        let _ = writeln!(out, "  users ({}):", self.users.len());
        for user in &self.users {
            let personal = match (&user.email, user.personal_data) {
                (Some(email), _) => {
                    let name = user
                        .name
                        .as_deref()
                        .map(|n| format!(" {n:?}"))
                        .unwrap_or_default();
                    format!("{email}{name}")
                }
                (None, personal) => personal.as_str().to_owned(),
            };
            let _ = writeln!(
                out,
                "    {} {} roles [{}] {}",
                user.user_id,
                user.status,
                user.roles.join(" "),
                personal
            );
        }
        out
    }
}

/// Folds the tenant at each of `bounds` in one pass over the log.
pub async fn fold_tenant(
    log: &dyn tessera_event_log::EventLog,
    tenant_id: Uuid,
    bounds: &[Bound],
    progress: impl FnMut(u64),
) -> anyhow::Result<Vec<TenantSnapshot>> {
    let mut snapshots: Vec<TenantSnapshot> = bounds
        .iter()
        .map(|_| TenantSnapshot::new(tenant_id))
        .collect();
    // A time bound may admit any position; only position bounds let the scan stop early.
    let last = bounds
        .iter()
        .map(Bound::last_position)
        .try_fold(0u64, |max, last| last.map(|last| max.max(last)));
    crate::source::scan(
        log,
        last,
        |recorded| {
            for (snapshot, bound) in snapshots.iter_mut().zip(bounds) {
                if bound.admits_up_to(&recorded.envelope) {
                    snapshot.observe(recorded)?;
                }
            }
            Ok(())
        },
        progress,
    )
    .await?;
    Ok(snapshots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_event_schemas::events::samples;
    use tessera_event_schemas::{Envelope, streams};

    const TENANT: Uuid = Uuid::from_u128(42);

    fn recorded(position: u64, stream_id: String, event: &Event) -> RecordedEvent {
        Envelope::builder()
            .event_id(Uuid::from_u128(u128::from(position)))
            .stream(stream_id)
            .position(position)
            .tenant(TENANT)
            .recorded_at(Timestamp::from_micros(
                i64::try_from(position).unwrap_or(0) * 1_000_000,
            ))
            .correlation_id("c")
            .recorded(event)
    }

    fn sample(event_type: &str) -> Event {
        samples::current()
            .into_iter()
            .find(|e| e.event_type() == event_type)
            .unwrap()
    }

    #[test]
    fn streams_route_to_their_aggregates_and_others_are_ignored() {
        assert_eq!(
            tenant_stream(&streams::tenant(TENANT), TENANT),
            Some(StreamId::Tenant(TENANT))
        );
        assert_eq!(
            tenant_stream(&streams::client_tokens(TENANT, "c1"), TENANT),
            Some(StreamId::Tokens {
                tenant_id: TENANT,
                client_id: "c1".to_owned()
            })
        );
        assert_eq!(
            tenant_stream(&streams::tenant(Uuid::from_u128(7)), TENANT),
            None
        );
        assert_eq!(
            tenant_stream(&streams::reservation("slug", "x"), TENANT),
            None
        );
        // Products' audit entries are not part of the snapshot.
        assert_eq!(tenant_stream(&streams::audit(TENANT), TENANT), None);
    }

    #[test]
    fn tokens_are_valid_until_revoked_or_expired() {
        let Event::TokenIssuedV1(mut issued) = sample("token.issued") else {
            panic!("no sample");
        };
        issued.expires_at = Timestamp::from_micros(10_000_000);
        let stream = streams::client_tokens(TENANT, &issued.client_id);
        let mut snapshot = TenantSnapshot::new(TENANT);
        snapshot
            .observe(&recorded(
                1,
                stream.clone(),
                &Event::TokenIssuedV1(issued.clone()),
            ))
            .unwrap();
        // Nothing of the tenant stream yet: no view.
        assert!(snapshot.view(Bound::Position(1)).is_none());
        assert_eq!(
            snapshot
                .valid_tokens(Timestamp::from_micros(9_999_999))
                .count(),
            1
        );
        assert_eq!(
            snapshot
                .valid_tokens(Timestamp::from_micros(10_000_000))
                .count(),
            0
        );
        let revoked = Event::TokenRevoked(tessera_event_schemas::events::TokenRevokedV1 {
            jti: issued.jti,
            client_id: issued.client_id.clone(),
            expires_at: issued.expires_at,
        });
        snapshot.observe(&recorded(2, stream, &revoked)).unwrap();
        assert_eq!(snapshot.valid_tokens(Timestamp::from_micros(0)).count(), 0);
        assert_eq!(snapshot.position, 2);
        assert_eq!(
            snapshot.moment(Bound::Position(2)),
            Timestamp::from_micros(2_000_000)
        );
    }

    #[test]
    fn the_tenant_folds_with_the_domain_evolve() {
        let created = sample("tenant.created");
        let Event::TenantCreated(c) = &created else {
            panic!("no sample");
        };
        let mut c = c.clone();
        c.tenant_id = TENANT;
        let created = Event::TenantCreated(c);
        let suspended = sample("tenant.suspended");
        let mut snapshot = TenantSnapshot::new(TENANT);
        let mut expected = TenantState::default();
        for (i, event) in [&created, &suspended].into_iter().enumerate() {
            snapshot
                .observe(&recorded(i as u64 + 1, streams::tenant(TENANT), event))
                .unwrap();
            expected.evolve(event);
        }
        assert_eq!(snapshot.tenant, expected);
        let view = snapshot.view(Bound::Position(2));
        assert!(view.as_ref().is_some_and(|v| v.tenant.suspended));
        assert!(view.is_some_and(|v| v.render().contains("SUSPENDED")));
    }
}
