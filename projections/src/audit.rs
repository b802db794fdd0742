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
mod tests;
