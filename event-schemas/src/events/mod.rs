//! The event registry: every event type, its stable name, its current schema version, and how
//! stored bytes of every version ever shipped decode into today's types.
//!
//! Adding an event type means adding a payload struct in its aggregate's module, a line in
//! `registry!` below, and a sample in [`samples`]; the golden-fixture test then asks for its
//! fixture to be blessed. Changing a shipped payload means a new `...V2` struct, a new line here
//! with `v2`, the old struct kept and decoded through `legacy_decode` with a typed upcast.
//!
//! The exception is a version that leaves facts to its envelope, which an upcast (payload
//! bytes in, payload out) cannot see: `token.issued` v2 takes its client from the stream and
//! its times from `recorded_at`. Its v1 then stays a variant of its own
//! (`Event::TokenIssuedV1`), decoded and shown exactly as it was recorded (audit rows, Kafka
//! messages and exports of old events do not change), and readers take what either version
//! says through `IssuedTokenFacts`.

pub mod api_key;
pub mod audit;
pub mod email;
pub mod federation;
pub mod grant;
pub mod invitation;
pub mod mfa;
pub mod oauth;
pub mod registry;
pub mod reservation;
pub mod samples;
pub mod session;
pub mod tenant;
pub mod user;
pub mod vault;
pub mod webauthn_policy;

use schemars::{Schema, SchemaGenerator};

use crate::redact::Without;

pub use api_key::*;
pub use audit::*;
pub use email::{EmailFailedV1, EmailQueuedV1, EmailSentV1, EmailTemplate};
pub use federation::*;
pub use grant::*;
pub use invitation::{
    InvitationAcceptedV1, InvitationCreatedV1, InvitationResentV1, InvitationRevokedV1,
};
pub use mfa::*;
pub use oauth::*;
pub use registry::{
    EntitlementExpiredV1, EntitlementGrantedV1, EntitlementRevokedV1, EntitlementTrialStartedV1,
    OAuthClientTokenClaimsSetV1, ProductDefinedV1, ProductRemovedV1, ProductRequestedV1,
    ProductUpdatedV1, TenantClaimsChoice,
};
pub use reservation::*;
pub use session::*;
pub use tenant::*;
pub use user::*;
pub use vault::*;
pub use webauthn_policy::*;

/// Why stored bytes could not be turned into an [`Event`].
#[derive(Clone, Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {event_type} version {schema_version}")]
    Unknown {
        event_type: String,
        schema_version: u16,
    },
    #[error("malformed {event_type} v{schema_version} payload: {source}")]
    Malformed {
        event_type: String,
        schema_version: u16,
        source: postcard::Error,
    },
}

macro_rules! registry {
    ( $( $variant:ident => $name:literal @ $version:literal : $payload:ty, )* ) => {
        /// Every event Tessera records, at its current schema version.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Event {
            $( $variant($payload), )*
        }

        impl Event {
            /// The stable type name stored next to the payload, e.g. `tenant.created`.
            pub fn event_type(&self) -> &'static str {
                match self { $( Event::$variant(_) => $name, )* }
            }

            /// The schema version this value encodes as.
            pub fn schema_version(&self) -> u16 {
                match self { $( Event::$variant(_) => $version, )* }
            }

            /// The postcard encoding of the payload.
            pub fn encode(&self) -> Vec<u8> {
                // Encoding owned, plain data into a Vec cannot fail; an empty payload would
                // fail decoding loudly rather than silently.
                match self { $( Event::$variant(p) => postcard::to_allocvec(p).unwrap_or_default(), )* }
            }

            /// Serializes the payload alone (no type or version: those travel beside it).
            fn serialize_payload<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self { $( Event::$variant(p) => serde::Serialize::serialize(p, serializer), )* }
            }

            /// Decodes stored bytes of any shipped version into the current type.
            pub fn decode(event_type: &str, schema_version: u16, bytes: &[u8]) -> Result<Event, DecodeError> {
                let malformed = |source| DecodeError::Malformed {
                    event_type: event_type.to_owned(),
                    schema_version,
                    source,
                };
                match (event_type, schema_version) {
                    $( ($name, $version) => postcard::from_bytes::<$payload>(bytes).map(Event::$variant).map_err(malformed), )*
                    _ => legacy_decode(event_type, schema_version, bytes),
                }
            }

            /// Every (type, version) with a variant of its own, in registry order: those written
            /// today, and superseded versions kept as they were (see the module doc).
            pub fn current_types() -> &'static [(&'static str, u16)] {
                &[ $( ($name, $version), )* ]
            }

            /// The JSON Schema of each current event type's public `data`
            /// ([`crate::json::public_data`]: secret- and personal-typed fields left out).
            pub fn json_schemas() -> Vec<(&'static str, u16, Schema)> {
                vec![ $( ($name, $version, public_schema(SchemaGenerator::default().into_root_schema_for::<$payload>())), )* ]
            }
        }
    };
}

registry! {
    TenantCreated => "tenant.created" @ 1: TenantCreatedV1,
    TenantUpdated => "tenant.updated" @ 1: TenantUpdatedV1,
    TenantSettingsChanged => "tenant.settings_changed" @ 1: TenantSettingsChangedV1,
    TenantActivated => "tenant.activated" @ 1: TenantActivatedV1,
    TenantCancelled => "tenant.cancelled" @ 1: TenantCancelledV1,
    TenantFrozen => "tenant.frozen" @ 1: TenantFrozenV1,
    TenantSuspended => "tenant.suspended" @ 1: TenantSuspendedV1,
    TenantReactivated => "tenant.reactivated" @ 1: TenantReactivatedV1,
    TenantArchived => "tenant.archived" @ 1: TenantArchivedV1,
    SigningKeyRotated => "tenant.signing_key_rotated" @ 1: SigningKeyRotatedV1,
    SigningKeyRetired => "tenant.signing_key_retired" @ 1: SigningKeyRetiredV1,
    SigningKeyAdded => "tenant.signing_key_added" @ 1: SigningKeyAddedV1,
    ApiKeyIssued => "api_key.issued" @ 1: ApiKeyIssuedV1,
    ApiKeyRevoked => "api_key.revoked" @ 1: ApiKeyRevokedV1,
    ApiKeyUsed => "api_key.used" @ 1: ApiKeyUsedV1,
    OAuthClientRegistered => "oauth_client.registered" @ 2: OAuthClientRegisteredV2,
    OAuthClientUpdated => "oauth_client.updated" @ 2: OAuthClientUpdatedV2,
    OAuthClientSecretRegenerated => "oauth_client.secret_regenerated" @ 1: OAuthClientSecretRegeneratedV1,
    OAuthClientDeactivated => "oauth_client.deactivated" @ 1: OAuthClientDeactivatedV1,
    TokenIssuedV1 => "token.issued" @ 1: TokenIssuedV1,
    TokenIssued => "token.issued" @ 2: TokenIssuedV2,
    TokenRevoked => "token.revoked" @ 1: TokenRevokedV1,
    ReservationClaimed => "reservation.claimed" @ 1: ReservationClaimedV1,
    ReservationReleased => "reservation.released" @ 1: ReservationReleasedV1,
    AuditRecorded => "audit.recorded" @ 1: AuditRecordedV1,
    UserCreated => "user.created" @ 1: UserCreatedV1,
    UserUpdated => "user.updated" @ 1: UserUpdatedV1,
    UserEmailChanged => "user.email_changed" @ 1: UserEmailChangedV1,
    UserDisabled => "user.disabled" @ 1: UserDisabledV1,
    UserEnabled => "user.enabled" @ 1: UserEnabledV1,
    UserPasswordSet => "user.password_set" @ 1: UserPasswordSetV1,
    UserErased => "user.erased" @ 1: UserErasedV1,
    SignInSucceeded => "sign_in.succeeded" @ 1: SignInSucceededV1,
    SignInFailed => "sign_in.failed" @ 1: SignInFailedV1,
    SignInUnlocked => "sign_in.unlocked" @ 1: SignInUnlockedV1,
    SessionStarted => "session.started" @ 1: SessionStartedV1,
    SessionSeen => "session.seen" @ 1: SessionSeenV1,
    SessionEnded => "session.ended" @ 1: SessionEndedV1,
    TotpEnrollmentStarted => "mfa.totp_enrollment_started" @ 1: TotpEnrollmentStartedV1,
    TotpEnrolled => "mfa.totp_enrolled" @ 1: TotpEnrolledV1,
    TotpUsed => "mfa.totp_used" @ 1: TotpUsedV1,
    TotpRemoved => "mfa.totp_removed" @ 1: TotpRemovedV1,
    RecoveryCodesGenerated => "mfa.recovery_codes_generated" @ 1: RecoveryCodesGeneratedV1,
    RecoveryCodeUsed => "mfa.recovery_code_used" @ 1: RecoveryCodeUsedV1,
    RecoveryCodesRevoked => "mfa.recovery_codes_revoked" @ 1: RecoveryCodesRevokedV1,
    PasskeyRegistered => "mfa.passkey_registered" @ 1: PasskeyRegisteredV1,
    PasskeyUsed => "mfa.passkey_used" @ 1: PasskeyUsedV1,
    PasskeyRemoved => "mfa.passkey_removed" @ 1: PasskeyRemovedV1,
    MfaReset => "mfa.reset" @ 1: MfaResetV1,
    WebauthnPolicyChanged => "webauthn_policy.changed" @ 1: WebauthnPolicyChangedV1,
    AuthorizationCodeIssued => "authorization_code.issued" @ 1: AuthorizationCodeIssuedV1,
    AuthorizationCodeRedeemed => "authorization_code.redeemed" @ 1: AuthorizationCodeRedeemedV1,
    AuthorizationCodeReused => "authorization_code.reused" @ 1: AuthorizationCodeReusedV1,
    ConsentGranted => "consent.granted" @ 1: ConsentGrantedV1,
    ConsentRevoked => "consent.revoked" @ 1: ConsentRevokedV1,
    RefreshTokenIssued => "refresh_token.issued" @ 1: RefreshTokenIssuedV1,
    RefreshTokenRotated => "refresh_token.rotated" @ 1: RefreshTokenRotatedV1,
    RefreshTokenRevoked => "refresh_token.revoked" @ 1: RefreshTokenRevokedV1,
    UserPasswordResetRequested => "user.password_reset_requested" @ 1: UserPasswordResetRequestedV1,
    UserEmailVerificationRequested => "user.email_verification_requested" @ 1: UserEmailVerificationRequestedV1,
    UserEmailVerified => "user.email_verified" @ 1: UserEmailVerifiedV1,
    TenantAdminInviteFailed => "tenant.admin_invite_failed" @ 1: TenantAdminInviteFailedV1,
    InvitationCreated => "invitation.created" @ 1: InvitationCreatedV1,
    InvitationResent => "invitation.resent" @ 1: InvitationResentV1,
    InvitationAccepted => "invitation.accepted" @ 1: InvitationAcceptedV1,
    InvitationRevoked => "invitation.revoked" @ 1: InvitationRevokedV1,
    EmailQueued => "email.queued" @ 1: EmailQueuedV1,
    EmailSent => "email.sent" @ 1: EmailSentV1,
    EmailFailed => "email.failed" @ 1: EmailFailedV1,
    ProductDefined => "product.defined" @ 1: ProductDefinedV1,
    ProductUpdated => "product.updated" @ 1: ProductUpdatedV1,
    ProductRemoved => "product.removed" @ 1: ProductRemovedV1,
    ProductRequested => "product.requested" @ 1: ProductRequestedV1,
    EntitlementGranted => "entitlement.granted" @ 1: EntitlementGrantedV1,
    EntitlementTrialStarted => "entitlement.trial_started" @ 1: EntitlementTrialStartedV1,
    EntitlementRevoked => "entitlement.revoked" @ 1: EntitlementRevokedV1,
    EntitlementExpired => "entitlement.expired" @ 1: EntitlementExpiredV1,
    OAuthClientTokenClaimsSet => "oauth_client.token_claims_set" @ 1: OAuthClientTokenClaimsSetV1,
    FederationConfigured => "federation.configured" @ 1: FederationConfiguredV1,
    FederationRemoved => "federation.removed" @ 1: FederationRemovedV1,
    FederationSignedIn => "federation.signed_in" @ 1: FederationSignedInV1,
    FederationLinked => "federation.linked" @ 1: FederationLinkedV1,
    FederationLinkRequested => "federation.link_requested" @ 1: FederationLinkRequestedV1,
    FederationRefused => "federation.refused" @ 1: FederationRefusedV1,
    VaultKeyAdded => "vault.key_added" @ 1: VaultKeyAddedV1,
    VaultMinimumSet => "vault.minimum_set" @ 1: VaultMinimumSetV1,
    VaultRewrapStarted => "vault.rewrap_started" @ 1: VaultRewrapStartedV1,
    VaultDestroyed => "vault.destroyed" @ 1: VaultDestroyedV1,
    IntegrationDefined => "integration.defined" @ 1: IntegrationDefinedV1,
    IntegrationRemoved => "integration.removed" @ 1: IntegrationRemovedV1,
    IntegrationAppSet => "integration_app.set" @ 1: IntegrationAppSetV1,
    IntegrationAppRemoved => "integration_app.removed" @ 1: IntegrationAppRemovedV1,
    CredentialStored => "credential.stored" @ 1: CredentialStoredV1,
    CredentialRefreshed => "credential.refreshed" @ 1: CredentialRefreshedV1,
    CredentialRefreshFailed => "credential.refresh_failed" @ 1: CredentialRefreshFailedV1,
    CredentialNeedsReauth => "credential.needs_reauth" @ 1: CredentialNeedsReauthV1,
    CredentialRewrapped => "credential.rewrapped" @ 1: CredentialRewrappedV1,
    CredentialRemoved => "credential.removed" @ 1: CredentialRemovedV1,
    CredentialAccessed => "credential.accessed" @ 1: CredentialAccessedV1,
    ConnectCompleted => "connect.completed" @ 1: ConnectCompletedV1,
    ConnectFailed => "connect.failed" @ 1: ConnectFailedV1,
    ProviderKeySet => "provider_key.set" @ 1: ProviderKeySetV1,
    ProviderKeyInvalidated => "provider_key.invalidated" @ 1: ProviderKeyInvalidatedV1,
    ProviderKeyRemoved => "provider_key.removed" @ 1: ProviderKeyRemovedV1,
}

fn public_schema(mut schema: Schema) -> Schema {
    if let Some(map) = schema.as_object_mut() {
        crate::json::strip_sensitive_properties(map);
    }
    schema
}

/// Versions that are no longer current, each decoded as its frozen type and upcast.
fn legacy_decode(
    event_type: &str,
    schema_version: u16,
    bytes: &[u8],
) -> Result<Event, DecodeError> {
    let malformed = |source| DecodeError::Malformed {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    };
    match (event_type, schema_version) {
        ("oauth_client.registered", 1) => postcard::from_bytes::<OAuthClientRegisteredV1>(bytes)
            .map(|v1| Event::OAuthClientRegistered(v1.into()))
            .map_err(malformed),
        ("oauth_client.updated", 1) => postcard::from_bytes::<OAuthClientUpdatedV1>(bytes)
            .map(|v1| Event::OAuthClientUpdated(v1.into()))
            .map_err(malformed),
        _ => Err(DecodeError::Unknown {
            event_type: event_type.to_owned(),
            schema_version,
        }),
    }
}

/// An event's payload as `Serialize`: what its postcard bytes and every JSON form encode.
#[derive(Clone, Copy)]
pub struct Payload<'a>(pub &'a Event);

impl serde::Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_payload(serializer)
    }
}

impl Event {
    /// The payload alone, to serialize.
    pub fn payload(&self) -> Payload<'_> {
        Payload(self)
    }

    /// The payload as JSON, sensitive values included: the `data` of the internal JSON form
    /// ([`crate::json::EventJson`], exports). What leaves the server is
    /// [`crate::json::public_data`] instead.
    pub fn data_json(&self) -> serde_json::Value {
        serde_json::to_value(self.payload()).unwrap_or_default()
    }

    /// The payload's public JSON as text: without its secret- and personal-typed values (see
    /// [`crate::sensitive`]) and without the fields `omit` names, at any depth; keys in
    /// declaration order, built without an intermediate `Value` (see [`crate::redact`]).
    pub fn public_json_without(&self, omit: &impl Fn(&str) -> bool) -> String {
        serde_json::to_string(&Without::new(&self.payload(), omit))
            .unwrap_or_else(|_| "null".to_owned())
    }

    /// The aggregate an event type belongs to: the part of its name before the dot
    /// (`tenant`, `api_key`, `oauth_client`, `token`, `reservation`, `audit`, `user`, `sign_in`,
    /// `session`, `mfa`, `webauthn_policy`).
    pub fn category(&self) -> &'static str {
        let name = self.event_type();
        name.split_once('.').map_or(name, |(category, _)| category)
    }
}
