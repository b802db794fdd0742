//! The audit projection's pure part: one [`AuditRow`] per event, with secrets redacted.
//!
//! Every event becomes exactly one row, keyed by its global position, and rows never change
//! afterwards, so the writer inserts them and never loads anything back. The only state a row
//! needs beyond its own event is a tenant's slug (the target name of `tenant.*` events), which
//! the batch fold supplies from the tenant rows it already holds.
//!
//! A row's summary is the payload's public JSON ([`Event::public_json_without`]: no secret- or
//! personal-typed field, whatever its name) less the fields [`omitted_for_size`] names; a
//! `token.issued` v2 summary also leaves out what the row already says (the token id is its
//! target, no audience means the issuer). The one payload without types, the free-form
//! metadata of `audit.recorded`, is judged by key name ([`is_secret_field`]).
//!
//! Every row says who recorded its event ([`Recorder`]): the envelope's actor, which for
//! Tessera's own events is also the row's actor. An `audit.recorded` entry's actor columns show
//! whom the product says acted, when it names a kind and an id, and its summary keeps the
//! envelope's actor beside the product's metadata, so the appender shows however the entry was
//! worded.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_event_schemas::events::{AccessedCredential, Event};
use tessera_event_schemas::{Envelope, StreamId};

use crate::views::{AuditRow, AuditView};

/// Whether a payload field stays out of every summary to keep it small, not because it is
/// secret: a public JWK is a few hundred bytes that anyone can fetch from the tenant's JWKS, and
/// would otherwise be most of the summary of a tenant's creation or key rotation.
pub fn omitted_for_size(name: &str) -> bool {
    name.eq_ignore_ascii_case("public_jwk")
}

/// Whether a key of free-form metadata (`audit.recorded`, which has no types) stays out of the
/// summary: secret-like names ([`tessera_event_schemas::json::is_secret_field`]) and the size
/// rule ([`omitted_for_size`]).
pub fn is_secret_field(name: &str) -> bool {
    tessera_event_schemas::json::is_secret_field(name) || omitted_for_size(name)
}

/// Removes every secret-like key of free-form JSON (see [`is_secret_field`]) at any depth.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|name, _| !is_secret_field(name));
            for child in map.values_mut() {
                redact(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The `(type, id, name)` an event is about, and the product it concerns.
struct Target {
    kind: Option<&'static str>,
    id: Option<String>,
    name: Option<String>,
    product: Option<String>,
}

impl Target {
    fn new(kind: &'static str, id: Option<String>, name: Option<String>) -> Self {
        Self {
            kind: Some(kind),
            id,
            name,
            product: None,
        }
    }
}

/// What an event's stream names after its kind: the key id of an API key stream, the client
/// id of an OAuth client's, the value of a reservation's, the user id of a user's (or of their
/// sessions stream); `None` for any other stream.
fn stream_target_id(envelope: &Envelope, kind: &str) -> Option<String> {
    match (StreamId::parse(&envelope.stream_id)?, kind) {
        (StreamId::ApiKey { key_id, .. }, "api_key") => Some(key_id.to_string()),
        (StreamId::OAuthClient { client_id, .. }, "oauth_client") => Some(client_id),
        (StreamId::Reservation { value, .. }, "reservation") => Some(value),
        (
            StreamId::User { user_id, .. }
            | StreamId::Sessions { user_id, .. }
            | StreamId::Mfa { user_id, .. }
            | StreamId::Consents { user_id, .. },
            "user",
        ) => Some(user_id.to_string()),
        (StreamId::Code { code_id, .. }, "authorization_code") => Some(code_id.to_string()),
        (StreamId::Refresh { family_id, .. }, "refresh_token") => Some(family_id.to_string()),
        (StreamId::Invitation { invitation_id, .. }, "invitation") => {
            Some(invitation_id.to_string())
        }
        (StreamId::Email { email_id, .. }, "email") => Some(email_id.to_string()),
        (StreamId::IdentityProvider { alias, .. }, "identity_provider") => Some(alias),
        (StreamId::Integration(name), "integration")
        | (
            StreamId::IntegrationApp {
                integration: name, ..
            }
            | StreamId::Credential {
                integration: name, ..
            }
            | StreamId::CredentialAccess {
                integration: name, ..
            },
            "integration",
        ) => Some(name),
        (
            StreamId::ProviderKey { provider, .. } | StreamId::ProviderKeyAccess { provider, .. },
            "provider_key",
        ) => Some(provider),
        (StreamId::Product(key), "product")
        | (StreamId::Entitlement { product: key, .. }, "product") => Some(key),
        _ => None,
    }
}

fn target(envelope: &Envelope, event: &Event, tenant_slug: Option<&str>) -> Target {
    let tenant = |slug: Option<&str>| {
        Target::new(
            "tenant",
            Some(envelope.tenant_id.to_string()),
            slug.map(str::to_owned),
        )
    };
    let api_key =
        |name: Option<String>| Target::new("api_key", stream_target_id(envelope, "api_key"), name);
    let client = |name: Option<String>| {
        Target::new(
            "oauth_client",
            stream_target_id(envelope, "oauth_client"),
            name,
        )
    };
    match event {
        Event::TenantCreated(created) => tenant(Some(&created.slug)),
        Event::TenantUpdated(_)
        | Event::TenantSettingsChanged(_)
        | Event::TenantActivated(_)
        | Event::TenantCancelled(_)
        | Event::TenantFrozen(_)
        | Event::TenantSuspended(_)
        | Event::TenantReactivated(_)
        | Event::TenantArchived(_)
        | Event::SigningKeyRotated(_)
        | Event::SigningKeyRetired(_)
        | Event::SigningKeyAdded(_) => tenant(tenant_slug),
        Event::ApiKeyIssued(issued) => Target {
            id: Some(issued.key_id.to_string()),
            product: issued.product.clone(),
            ..api_key(Some(issued.name.clone()))
        },
        Event::ApiKeyRevoked(_) | Event::ApiKeyUsed(_) => api_key(None),
        Event::OAuthClientRegistered(registered) => Target {
            id: Some(registered.client_id.clone()),
            ..client(Some(registered.name.clone()))
        },
        Event::OAuthClientUpdated(updated) => client(updated.name.clone()),
        Event::OAuthClientSecretRegenerated(_) | Event::OAuthClientDeactivated(_) => client(None),
        Event::TokenIssuedV1(issued) => Target::new("token", Some(issued.jti.to_string()), None),
        Event::TokenIssued(issued) => Target::new("token", Some(issued.jti.to_string()), None),
        Event::TokenRevoked(revoked) => Target::new("token", Some(revoked.jti.to_string()), None),
        Event::ReservationClaimed(claimed) => {
            Target::new("reservation", Some(claimed.value.clone()), None)
        }
        // `{system}/reservation/{kind}/{value}`: the value is named only by the stream.
        Event::ReservationReleased(_) => Target::new(
            "reservation",
            stream_target_id(envelope, "reservation"),
            None,
        ),
        // A user is named by id only: their name and address are personal data, which no audit
        // row carries.
        Event::UserCreated(created) => Target::new("user", Some(created.user_id.to_string()), None),
        Event::UserUpdated(_)
        | Event::UserEmailChanged(_)
        | Event::UserDisabled(_)
        | Event::UserEnabled(_)
        | Event::UserPasswordSet(_)
        | Event::UserErased(_) => Target::new("user", stream_target_id(envelope, "user"), None),
        // Sign-ins and sessions name the user they concern (the stream `{tenant}/sessions/{user}`);
        // an attempt for an address no user has (`{tenant}/sign-ins`) names the tenant.
        Event::SignInSucceeded(_)
        | Event::SignInFailed(_)
        | Event::SignInUnlocked(_)
        | Event::SessionStarted(_)
        | Event::SessionSeen(_)
        | Event::SessionEnded(_) => match stream_target_id(envelope, "user") {
            Some(user_id) => Target::new("user", Some(user_id), None),
            None => tenant(tenant_slug),
        },
        // A person's second factors are about that person, named by id like their other events.
        Event::TotpEnrollmentStarted(_)
        | Event::TotpEnrolled(_)
        | Event::TotpUsed(_)
        | Event::TotpRemoved(_)
        | Event::RecoveryCodesGenerated(_)
        | Event::RecoveryCodeUsed(_)
        | Event::RecoveryCodesRevoked(_)
        | Event::PasskeyRegistered(_)
        | Event::PasskeyUsed(_)
        | Event::PasskeyRemoved(_)
        | Event::MfaReset(_) => Target::new("user", stream_target_id(envelope, "user"), None),
        // The fold supplies slugs to `tenant.*` events only: the tenant is named by id.
        Event::WebauthnPolicyChanged(_) => tenant(None),
        // A code and a refresh-token family are named by their stream's id; a consent by the
        // person who gave it (the client is in the summary).
        Event::AuthorizationCodeIssued(_)
        | Event::AuthorizationCodeRedeemed(_)
        | Event::AuthorizationCodeReused(_) => Target::new(
            "authorization_code",
            stream_target_id(envelope, "authorization_code"),
            None,
        ),
        Event::ConsentGranted(_) | Event::ConsentRevoked(_) => {
            Target::new("user", stream_target_id(envelope, "user"), None)
        }
        Event::RefreshTokenIssued(_)
        | Event::RefreshTokenRotated(_)
        | Event::RefreshTokenRevoked(_) => Target::new(
            "refresh_token",
            stream_target_id(envelope, "refresh_token"),
            None,
        ),
        // Reset and verification links are about the user whose stream records them.
        Event::UserPasswordResetRequested(_)
        | Event::UserEmailVerificationRequested(_)
        | Event::UserEmailVerified(_) => {
            Target::new("user", stream_target_id(envelope, "user"), None)
        }
        Event::TenantAdminInviteFailed(_) => tenant(None),
        // An invitation and a mail are named by their stream's id: the address is personal
        // data.
        Event::InvitationCreated(_)
        | Event::InvitationResent(_)
        | Event::InvitationAccepted(_)
        | Event::InvitationRevoked(_) => {
            Target::new("invitation", stream_target_id(envelope, "invitation"), None)
        }
        Event::EmailQueued(_) | Event::EmailSent(_) | Event::EmailFailed(_) => {
            Target::new("email", stream_target_id(envelope, "email"), None)
        }
        // A product and a tenant's entitlement to it are named by the product's key, which is
        // also the row's product, so that seed 003's `product` filter finds them.
        Event::ProductDefined(_)
        | Event::ProductUpdated(_)
        | Event::ProductRemoved(_)
        | Event::ProductRequested(_)
        | Event::EntitlementGranted(_)
        | Event::EntitlementTrialStarted(_)
        | Event::EntitlementRevoked(_)
        | Event::EntitlementExpired(_) => {
            let key = stream_target_id(envelope, "product");
            Target {
                kind: Some("product"),
                id: key.clone(),
                name: None,
                product: key,
            }
        }
        Event::OAuthClientTokenClaimsSet(_) => client(None),
        Event::FederationConfigured(_) | Event::FederationRemoved(_) => Target::new(
            "identity_provider",
            stream_target_id(envelope, "identity_provider"),
            None,
        ),
        // A federated sign-in is about the person it signed in (by id), or, refused, about
        // the provider it came through.
        Event::FederationSignedIn(e) => Target::new("user", Some(e.user_id.to_string()), None),
        Event::FederationLinked(e) => Target::new("user", Some(e.user_id.to_string()), None),
        Event::FederationLinkRequested(e) => Target::new("user", Some(e.user_id.to_string()), None),
        Event::FederationRefused(e) => {
            Target::new("identity_provider", Some(e.alias.clone()), None)
        }
        Event::VaultKeyAdded(_)
        | Event::VaultMinimumSet(_)
        | Event::VaultRewrapStarted(_)
        | Event::VaultDestroyed(_) => {
            Target::new("vault", Some(envelope.tenant_id.to_string()), None)
        }
        // The vault's secrets are about the integration or provider they belong to, by name; a
        // rewrap is about whichever its stream holds.
        Event::IntegrationDefined(_)
        | Event::IntegrationRemoved(_)
        | Event::IntegrationAppSet(_)
        | Event::IntegrationAppRemoved(_)
        | Event::CredentialStored(_)
        | Event::CredentialRefreshed(_)
        | Event::CredentialRefreshFailed(_)
        | Event::CredentialNeedsReauth(_)
        | Event::CredentialRemoved(_) => Target::new(
            "integration",
            stream_target_id(envelope, "integration"),
            None,
        ),
        Event::CredentialRewrapped(_) => match stream_target_id(envelope, "provider_key") {
            Some(provider) => Target::new("provider_key", Some(provider), None),
            None => Target::new(
                "integration",
                stream_target_id(envelope, "integration"),
                None,
            ),
        },
        Event::CredentialAccessed(e) => match e.source {
            AccessedCredential::Integration => {
                Target::new("integration", Some(e.name.clone()), None)
            }
            AccessedCredential::TenantProviderKey | AccessedCredential::PlatformProviderKey => {
                Target::new("provider_key", Some(e.name.clone()), None)
            }
        },
        Event::ConnectCompleted(e) => Target::new("integration", Some(e.integration.clone()), None),
        Event::ConnectFailed(e) => Target::new("integration", Some(e.integration.clone()), None),
        Event::ProviderKeySet(_)
        | Event::ProviderKeyInvalidated(_)
        | Event::ProviderKeyRemoved(_) => Target::new(
            "provider_key",
            stream_target_id(envelope, "provider_key"),
            None,
        ),
        Event::AuditRecorded(recorded) => Target {
            kind: None,
            id: recorded.target_id.clone(),
            name: recorded.target_name.clone(),
            product: recorded.product.clone(),
        },
    }
}

/// The audit row of one event. `tenant_slug` is the slug of the envelope's tenant when the
/// caller knows it (only `tenant.*` events use it).
pub fn audit_row(envelope: &Envelope, event: &Event, tenant_slug: Option<&str>) -> AuditRow {
    let Target {
        kind,
        id,
        name,
        product,
    } = target(envelope, event, tenant_slug);
    let actor = &envelope.actor;
    let mut row = AuditView {
        position: envelope.global_position,
        event_id: envelope.event_id,
        tenant_id: envelope.tenant_id,
        event_type: envelope.event_type.clone(),
        action: envelope.event_type.clone(),
        actor_kind: actor.kind.as_str().to_owned(),
        actor_id: actor.id.clone(),
        actor_name: actor.name.clone(),
        target_type: kind.map(str::to_owned),
        target_id: id,
        target_name: name,
        product,
        project_id: None,
        correlation_id: envelope.correlation_id.clone(),
        source_ip: envelope.source_ip.clone(),
        user_agent: envelope.user_agent.clone(),
        recorded_at: envelope.recorded_at,
        summary: String::new(),
    };
    if let Event::AuditRecorded(recorded) = event {
        row.action.clone_from(&recorded.action);
        row.target_type.clone_from(&recorded.target_type);
        row.project_id = recorded.project_id;
        // The product names the acting principal (its own user, say) as a kind and an id
        // together; without both, the entry's actor is whoever appended it. A claimed id never
        // pairs with the appender's kind, where it would read as another API key, say.
        if let (Some(kind), Some(id)) = (&recorded.actor_type, &recorded.actor_id) {
            row.actor_kind.clone_from(kind);
            row.actor_id.clone_from(id);
            row.actor_name.clone_from(&recorded.actor_name);
        }
        // The write side stores an object; text that is not JSON is kept as a string.
        let mut metadata = serde_json::from_str(&recorded.metadata_json)
            .unwrap_or_else(|_| Value::String(recorded.metadata_json.clone()));
        redact(&mut metadata);
        row.summary = serde_json::to_string(&RecordedSummary {
            metadata,
            recorded_by: Recorder {
                kind: actor.kind.as_str().to_owned(),
                id: actor.id.clone(),
                name: actor.name.clone(),
            },
        })
        .unwrap_or_else(|_| "null".to_owned());
    } else if let Event::TokenIssued(issued) = event {
        // The token id is the row's target, and an empty audience means the issuer: neither is
        // repeated in the summary of the most frequent event of all.
        let no_audience = issued.audience.is_empty();
        row.summary = event.public_json_without(&|name: &str| {
            omitted_for_size(name) || name == "jti" || (no_audience && name == "audience")
        });
    } else {
        row.summary = event.public_json_without(&omitted_for_size);
    }
    row
}

/// Who recorded an event: its envelope's actor, authenticated by Tessera.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorder {
    /// `system`, `api_key`, `client`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The summary of an `audit.recorded` row: the product's metadata (redacted) and who appended
/// the entry.
#[derive(Serialize, Deserialize)]
struct RecordedSummary {
    metadata: Value,
    recorded_by: Recorder,
}

impl AuditView {
    /// Takes the entry's metadata out of the row, and says who recorded its event. For
    /// Tessera's own events the metadata is the summary and the recorder is the row's actor; for
    /// `audit.recorded`, both are in the summary ([`audit_row`]).
    pub fn take_metadata_and_recorder(&mut self) -> (Value, Recorder) {
        let summary = std::mem::take(&mut self.summary);
        let own = |summary| {
            (
                summary,
                Recorder {
                    kind: self.actor_kind.clone(),
                    id: self.actor_id.clone(),
                    name: self.actor_name.clone(),
                },
            )
        };
        if self.event_type != "audit.recorded" {
            return own(summary);
        }
        match serde_json::from_value::<RecordedSummary>(summary.clone()) {
            Ok(recorded) => (recorded.metadata, recorded.recorded_by),
            Err(_) => own(summary),
        }
    }
}

/// Whether `tenant_id` is worth a lookup for `event`'s audit row (its slug is the target name).
pub fn needs_tenant_slug(event: &Event) -> bool {
    !matches!(event, Event::TenantCreated(_)) && event.category() == "tenant"
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::samples;
    use tessera_event_schemas::primitives::Timestamp;
    use tessera_event_schemas::testing::sensitive_values;
    use tessera_event_schemas::{SYSTEM_TENANT_ID, streams};
    use uuid::Uuid;

    use super::*;

    const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);

    fn envelope(stream_id: String, event: &Event) -> Envelope {
        Envelope::builder()
            .event_id(Uuid::from_u128(7))
            .stream(stream_id)
            .position(42)
            .tenant(TENANT)
            .event(event)
            .recorded_at(Timestamp::from_micros(1_795_000_000_000_000))
            .correlation_id("corr-1")
            .source_ip("10.0.0.1")
            .user_agent("curl/8")
            .build()
    }

    fn stream_of(event: &Event) -> String {
        match event.category() {
            "tenant" => streams::tenant(TENANT),
            "api_key" => streams::api_key(
                TENANT,
                Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002),
            ),
            "oauth_client" => streams::oauth_client(TENANT, "0193a000-0000-7000-8000-00000000c11e"),
            "token" => streams::client_tokens(TENANT, "0193a000-0000-7000-8000-00000000c11e"),
            "reservation" => streams::reservation("tenant-slug", "acme-corp"),
            "user" => streams::user(
                TENANT,
                Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005),
            ),
            "mfa" => streams::mfa(
                TENANT,
                Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005),
            ),
            "webauthn_policy" => streams::webauthn_policy(TENANT),
            "authorization_code" => streams::code(TENANT, Uuid::from_u128(0xc0de)),
            "consent" => streams::consents(
                TENANT,
                Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005),
            ),
            "refresh_token" => streams::refresh(TENANT, Uuid::from_u128(0xfa01)),
            "invitation" => streams::invitation(TENANT, Uuid::from_u128(0x1a1a)),
            "email" => streams::email(TENANT, Uuid::from_u128(0xe1a1)),
            "product" => streams::product("compliance-suite"),
            "entitlement" => streams::entitlement(TENANT, "compliance-suite"),
            "federation" => streams::identity_provider(TENANT, "default"),
            "vault" => streams::vault(TENANT),
            "integration" => streams::integration("notion"),
            "integration_app" => streams::integration_app(TENANT, "notion"),
            "credential" => streams::credential(TENANT, "github"),
            "connect" => streams::connect(TENANT, Uuid::from_u128(0xc0c0)),
            "provider_key" => streams::provider_key(TENANT, "openai"),
            _ => streams::audit(TENANT),
        }
    }

    #[test]
    fn no_sample_leaks_a_secret_and_every_sample_has_a_target() {
        for event in samples::current() {
            let row = audit_row(
                &envelope(stream_of(&event), &event),
                &event,
                Some("acme-corp"),
            );
            let text = row.summary.to_string();
            for needle in ["secret", "sealed", "token_hash", "public_jwk"] {
                assert!(!text.contains(needle), "{}: {text}", event.event_type());
            }
            assert!(row.target_id.is_some(), "{}", event.event_type());
            assert!(row.target_type.is_some(), "{}", event.event_type());
            assert_eq!(row.position, 42);
            assert_eq!(row.correlation_id, "corr-1");
            assert_eq!(row.source_ip.as_deref(), Some("10.0.0.1"));
            assert_eq!(row.user_agent.as_deref(), Some("curl/8"));
            if event.event_type() != "audit.recorded" {
                assert_eq!(row.action, event.event_type());
                assert_eq!(row.actor_kind, "system");
            }
        }
    }

    #[test]
    fn no_summary_carries_a_sensitive_value_found_by_type() {
        // Found by type, not by name: a secret under an innocent name is caught too. The
        // other public forms are checked in `tessera_event_schemas::sensitive::tests`.
        let mut checked = 0;
        for event in samples::current() {
            let row = audit_row(
                &envelope(stream_of(&event), &event),
                &event,
                Some("acme-corp"),
            );
            for value in sensitive_values(&event.payload()) {
                let at = format!("{}: {}", event.event_type(), value.path);
                assert!(value.is_distinctive(), "{at}: {}", value.json);
                if let Some(leak) = value.leaked_in(&row.summary) {
                    panic!("{at}: the audit summary carries {leak}: {}", row.summary);
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 6,
            "only {checked} sensitive values in the samples"
        );
    }

    #[test]
    fn public_jwks_are_left_out_for_size_but_the_rest_of_the_key_stays() {
        let event = samples::current().remove(0);
        let row = audit_row(&envelope(stream_of(&event), &event), &event, None);
        let summary: Value = serde_json::from_str(&row.summary).unwrap();
        let key = &summary["signing_key"];
        assert!(key.get("public_jwk").is_none(), "{key}");
        assert_eq!(key["kid"], "k-2026-11-23-a");
        assert_eq!(key["alg"], "ES256");
    }

    #[test]
    fn targets_follow_the_event_type() {
        let find = |name: &str| {
            let event = samples::current()
                .into_iter()
                .find(|e| e.event_type() == name)
                .unwrap();
            audit_row(
                &envelope(stream_of(&event), &event),
                &event,
                Some("acme-corp"),
            )
        };
        let t = |row: &AuditRow| {
            (
                row.target_type.clone(),
                row.target_id.clone(),
                row.target_name.clone(),
                row.product.clone(),
            )
        };
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            t(&find("tenant.suspended")),
            (s("tenant"), Some(TENANT.to_string()), s("acme-corp"), None)
        );
        assert_eq!(
            t(&find("api_key.issued")),
            (
                s("api_key"),
                s("01930000-0000-7000-8000-000000000002"),
                s("CI pipeline"),
                s("billing")
            )
        );
        assert_eq!(
            t(&find("api_key.revoked")),
            (
                s("api_key"),
                s("01930000-0000-7000-8000-000000000002"),
                None,
                None
            )
        );
        assert_eq!(
            t(&find("oauth_client.registered")),
            (
                s("oauth_client"),
                s("0193a000-0000-7000-8000-00000000c11e"),
                s("Billing worker"),
                None
            )
        );
        assert_eq!(
            t(&find("token.issued")),
            (
                s("token"),
                s("01930000-0000-7000-8000-000000000003"),
                None,
                None
            )
        );
        assert_eq!(
            t(&find("reservation.released")),
            (s("reservation"), s("acme-corp"), None, None)
        );
        let recorded = find("audit.recorded");
        assert_eq!(
            t(&recorded),
            (s("invoice"), s("inv-1001"), s("Invoice 1001"), s("billing"))
        );
        assert_eq!(recorded.action, "invoice.paid");
        assert_eq!(
            (recorded.actor_kind.as_str(), recorded.actor_id.as_str()),
            ("user", "user-42")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&recorded.summary).unwrap(),
            serde_json::json!({
                "metadata": {"amount": 1200, "currency": "EUR"},
                "recorded_by": {"type": "system", "id": "tessera"},
            })
        );
        assert_eq!(recorded.tenant_id, TENANT);
        assert_ne!(recorded.tenant_id, SYSTEM_TENANT_ID);
    }

    /// A row as a query returns it: the summary parsed.
    fn read_back(row: AuditRow) -> AuditView {
        AuditView {
            summary: serde_json::from_str(&row.summary).unwrap(),
            position: row.position,
            event_id: row.event_id,
            tenant_id: row.tenant_id,
            event_type: row.event_type,
            action: row.action,
            actor_kind: row.actor_kind,
            actor_id: row.actor_id,
            actor_name: row.actor_name,
            target_type: row.target_type,
            target_id: row.target_id,
            target_name: row.target_name,
            product: row.product,
            project_id: row.project_id,
            correlation_id: row.correlation_id,
            source_ip: row.source_ip,
            user_agent: row.user_agent,
            recorded_at: row.recorded_at,
        }
    }

    /// An `audit.recorded` entry that a key appended, claiming `actor_type` and `actor_id`.
    fn appended(actor_type: Option<&str>, actor_id: Option<&str>) -> AuditView {
        let event = Event::AuditRecorded(tessera_event_schemas::events::AuditRecordedV1 {
            action: "invoice.paid".into(),
            project_id: None,
            actor_id: actor_id.map(str::to_owned),
            actor_name: actor_id.map(|_| "Ada".to_owned()),
            actor_type: actor_type.map(str::to_owned),
            target_id: None,
            target_type: None,
            target_name: None,
            product: None,
            metadata_json: r#"{"amount":12,"apiKey":"tsr_x"}"#.into(),
        });
        let mut envelope = envelope(streams::audit(TENANT), &event);
        envelope.actor = tessera_event_schemas::Actor {
            kind: tessera_event_schemas::ActorKind::ApiKey,
            id: "key-1".into(),
            name: Some("writer".into()),
        };
        read_back(audit_row(&envelope, &event, None))
    }

    #[test]
    fn an_appended_entry_shows_its_claimed_actor_and_always_who_appended_it() {
        let writer = Recorder {
            kind: "api_key".into(),
            id: "key-1".into(),
            name: Some("writer".into()),
        };
        let mut claimed = appended(Some("user"), Some("user-7"));
        assert_eq!(
            (claimed.actor_kind.as_str(), claimed.actor_id.as_str()),
            ("user", "user-7")
        );
        let (metadata, recorder) = claimed.take_metadata_and_recorder();
        assert_eq!(metadata, serde_json::json!({"amount": 12}));
        assert_eq!(recorder, writer);

        // A claim without a kind (recorded before kinds were required) does not borrow the
        // appender's kind: the entry's actor is the appender.
        for (kind, id) in [(None, Some("key-2")), (Some("user"), None), (None, None)] {
            let mut partial = appended(kind, id);
            assert_eq!(
                (partial.actor_kind.as_str(), partial.actor_id.as_str()),
                ("api_key", "key-1"),
                "{kind:?} {id:?}"
            );
            assert_eq!(partial.take_metadata_and_recorder().1, writer);
        }
    }

    #[test]
    fn tessera_s_own_events_are_recorded_by_their_actor() {
        let event = samples::current()
            .into_iter()
            .find(|e| e.event_type() == "tenant.suspended")
            .unwrap();
        let mut view = read_back(audit_row(
            &envelope(stream_of(&event), &event),
            &event,
            None,
        ));
        let summary = view.summary.clone();
        let (metadata, recorder) = view.take_metadata_and_recorder();
        assert_eq!(metadata, summary);
        assert_eq!(
            recorder,
            Recorder {
                kind: "system".into(),
                id: "tessera".into(),
                name: None
            }
        );
    }

    #[test]
    fn a_v2_token_summary_leaves_out_what_the_row_already_says() {
        let event = samples::current()
            .into_iter()
            .find(|e| (e.event_type(), e.schema_version()) == ("token.issued", 2))
            .unwrap();
        let row = audit_row(&envelope(stream_of(&event), &event), &event, None);
        assert_eq!(
            row.target_id.as_deref(),
            Some("01930000-0000-7000-8000-000000000005")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&row.summary).unwrap(),
            serde_json::json!({
                "grant_type": "client_credentials",
                "scopes": ["invoices:read"],
                "kid": "k-2026-11-23-b",
                "ttl_secs": 3600,
            })
        );
    }

    #[test]
    fn redaction_drops_secret_fields_at_any_depth_and_keeps_the_rest() {
        let mut value = serde_json::json!({
            "name": "x",
            "secret_hash": "aa",
            "client_secret": "bb",
            "signing_key": {"kid": "k1", "sealed_private_key": [1], "public_jwk": {"x": "y"}},
            "keys": [{"token_hash": "cc", "jti": "j"}],
            "password_policy": {"min_length": 12},
        });
        redact(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "name": "x",
                "signing_key": {"kid": "k1"},
                "keys": [{"jti": "j"}],
                "password_policy": {"min_length": 12},
            })
        );
    }
}
