//! Passkeys: the tenant's WebAuthn policy, registering a passkey for a signed-in user, signing
//! in with one without typing an address (discoverable credentials), and removing one.
//!
//! Each ceremony has a start, which returns the options for `navigator.credentials.create()` or
//! `.get()` and the id of its state (kept here, see [`ceremonies`]), and a finish, which takes
//! the browser's response, verifies it against that state and records the outcome on the
//! user's second-factor stream (`{tenant}/mfa/{user}`).
//!
//! The ceremonies run on `webauthn-rs-core`, the engine of `webauthn-rs`, rather than on its
//! safe wrapper: the wrapper fixes attestation to `none`, user verification to `required` and
//! resident keys to `discouraged`, while each of those follows the tenant's policy here. So
//! this module upholds what the wrapper would:
//! - the relying party is the public URL: its host is the RP id, its origin the only origin
//!   accepted;
//! - ceremony state stays on the server, is used once and expires ([`ceremonies`]);
//! - user verification is asked for as the policy says and, once a passkey was registered
//!   with it, required at every sign-in with that passkey;
//! - the user handle of a discoverable sign-in names the user (their id, 16 bytes, never
//!   personal data), whose own passkeys alone are searched for the credential: a credential id
//!   registered by someone else cannot sign in as this user without this user's private key,
//!   so credential ids need no platform-wide uniqueness;
//! - the signature counter must move on, decided in the append (see `domain::mfa`).
//!
//! A passkey sign-in counts as multi-factor when the authenticator verified the user (PIN or
//! biometric, WebAuthn's UV flag): possession of the key plus something the person knows or
//! is. Its `amr` (RFC 8176) is `hwk` for a device-bound key or `swk` for one that can be
//! synchronised (backup eligible, so held in software by a platform's keychain), then `user`
//! (the user-presence test every ceremony requires) and `mfa` when verified.

mod ceremonies;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_cbor_2::Value as Cbor;
use tessera_domain::DomainError;
use tessera_domain::mfa::{self, MfaCommand, NewPasskey, Passkey, PasskeyAssertion};
use tessera_domain::webauthn_policy::{WebauthnPolicyCommand, WebauthnPolicyState};
use tessera_event_schemas::events::user::fields;
use tessera_event_schemas::events::{
    AttestationPreference, PASSKEY_NAME_FIELD, Requirement, WebauthnPolicyV1,
};
use tessera_event_schemas::{EventMetadata, streams};
use url::Url;
use uuid::Uuid;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AttestationFormat, COSEKey, COSEKeyType, Credential,
    ParsedAttestation, PublicKeyCredential, RegisterPublicKeyCredential, RegisteredExtensions,
    ResidentKeyRequirement, UserVerificationPolicy,
};

pub(crate) use ceremonies::Ceremonies;
use ceremonies::Ceremony;
pub use ceremonies::{CEREMONY_TTL_SECS, MAX_CEREMONIES};

use super::engine::{Address, Kind};
use super::{CommandService, Outcome};
use crate::CommandError;

impl Kind for WebauthnPolicyState {
    const KIND: &'static str = "webauthn_policy";
}

impl Address<WebauthnPolicyState> {
    fn webauthn_policy(tenant_id: Uuid) -> Self {
        Self::new(streams::webauthn_policy(tenant_id), tenant_id)
    }
}

/// The WebAuthn relying party: the server's public URL. Its host is the RP id (browsers refuse
/// an IP address as one, so a public URL for passkeys names a host, `localhost` included), its
/// origin the only origin a response may come from.
#[derive(Clone, Debug)]
pub struct RelyingParty {
    id: String,
    origin: Url,
}

impl RelyingParty {
    pub fn from_public_url(public_url: &str) -> Result<Self, CommandError> {
        let url = Url::parse(public_url)
            .map_err(|e| CommandError::Internal(format!("public URL {public_url}: {e}")))?;
        let id = url
            .host_str()
            .ok_or_else(|| CommandError::Internal(format!("public URL {public_url} has no host")))?
            .to_owned();
        let origin = Url::parse(&url.origin().ascii_serialization())
            .map_err(|e| CommandError::Internal(format!("public URL {public_url}: {e}")))?;
        Ok(Self { id, origin })
    }

    /// The RP id: the public URL's host.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The engine for one ceremony, with the tenant's display name as the RP name.
    fn core(&self, tenant_name: &str) -> WebauthnCore {
        WebauthnCore::new_unsafe_experts_only(
            tenant_name,
            &self.id,
            vec![self.origin.clone()],
            Duration::from_secs(ceremonies::CEREMONY_TTL_SECS.unsigned_abs()),
            Some(false),
            Some(false),
        )
    }
}

/// A started ceremony: the options to hand to the browser (`publicKey` for
/// `navigator.credentials.create()` or `.get()`) and the id of its state on the server, which
/// the page sends back with the browser's response.
#[derive(Clone, Debug)]
pub struct PasskeyChallenge {
    pub ceremony_id: String,
    pub options: serde_json::Value,
}

/// A registered passkey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredPasskey {
    pub credential_id: Vec<u8>,
    pub position: u64,
}

/// A passkey sign-in that verified: who signed in, with which passkey, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeySignIn {
    pub user_id: Uuid,
    pub credential_id: Vec<u8>,
    /// The authenticator verified the user (PIN or biometric).
    pub user_verified: bool,
    /// RFC 8176 authentication method references (see the module doc).
    pub amr: Vec<&'static str>,
    pub position: u64,
}

impl PasskeySignIn {
    /// Possession of the key plus user verification: it satisfies a tenant's `require_mfa`.
    pub fn multi_factor(&self) -> bool {
        self.user_verified
    }
}

fn rejected(field: &str, message: impl Into<String>) -> CommandError {
    CommandError::Rejected(DomainError::invalid(field, message))
}

fn expired() -> CommandError {
    rejected("ceremony_id", "is unknown or expired; start again")
}

fn disabled() -> CommandError {
    CommandError::Rejected(DomainError::Conflict(
        "passkeys are disabled in this tenant".to_owned(),
    ))
}

impl CommandService {
    /// The same service, able to run passkey ceremonies for `relying_party`.
    pub fn with_relying_party(mut self, relying_party: RelyingParty) -> Self {
        self.relying_party = Some(relying_party);
        self
    }

    fn relying_party(&self) -> Result<&RelyingParty, CommandError> {
        self.relying_party.as_ref().ok_or_else(|| {
            CommandError::Internal("this command service has no WebAuthn relying party".to_owned())
        })
    }

    /// Ceremonies started and not yet finished (nor expired) in this process.
    pub fn ceremonies_in_progress(&self) -> usize {
        self.ceremonies.len()
    }

    /// The tenant's WebAuthn policy, from the log (the default when it never set one).
    pub async fn webauthn_policy(&self, tenant_id: Uuid) -> Result<WebauthnPolicyV1, CommandError> {
        let address = Address::webauthn_policy(tenant_id);
        Ok(self
            .load::<WebauthnPolicyState>(&address.stream)
            .await?
            .state
            .current())
    }

    /// Replaces the tenant's WebAuthn policy. Passkeys registered under another policy stay;
    /// ceremonies follow the new one from their next start.
    pub async fn set_webauthn_policy(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        policy: WebauthnPolicyV1,
    ) -> Result<Outcome, CommandError> {
        let address = Address::webauthn_policy(tenant_id);
        let ((), position) = self
            .execute_in_open_tenant(
                &meta,
                tenant_id,
                "set the WebAuthn policy of",
                &address,
                |_, _| Ok((WebauthnPolicyCommand::Set(policy.clone()), ())),
            )
            .await?;
        Ok(Outcome { position })
    }

    /// Starts registering a passkey named `name` for a signed-in, active user. The options
    /// follow the tenant's policy, exclude the user's passkeys, and name the user to the
    /// authenticator by their address and name (on their own device, never in the log).
    pub async fn start_passkey_registration(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        name: &str,
    ) -> Result<PasskeyChallenge, CommandError> {
        let relying_party = self.relying_party()?;
        let name = mfa::passkey_name(name)?;
        let (tenant, _, _) = self
            .load_open_tenant(tenant_id, "register a passkey in")
            .await?;
        let policy = self.webauthn_policy(tenant_id).await?;
        if !policy.enabled {
            return Err(disabled());
        }
        let user = self
            .active_user(tenant_id, user_id, "register a passkey for")
            .await?;
        let key = self
            .data_key(tenant_id, user_id, "register a passkey for")
            .await?;
        let email = key.open(fields::EMAIL, &user.email)?;
        let display_name = match &user.names.name {
            Some(sealed) => key.open(fields::NAME, sealed)?,
            None => email.clone(),
        };
        let state = self.load_mfa(tenant_id, user_id).await?;
        if state.passkeys.len() >= mfa::MAX_PASSKEYS {
            return Err(CommandError::Rejected(DomainError::Conflict(format!(
                "a user may have at most {} passkeys",
                mfa::MAX_PASSKEYS
            ))));
        }
        let exclude = state
            .passkeys
            .iter()
            .map(|passkey| passkey.credential_id.clone())
            .collect();
        let core = relying_party.core(&tenant.name);
        let builder = core
            .new_challenge_register_builder(user_id.as_bytes(), &email, &display_name)
            .map_err(|e| CommandError::Internal(format!("passkey registration options: {e}")))?
            .attestation(attestation(policy.attestation_preference))
            .user_verification_policy(user_verification(policy.user_verification))
            .require_resident_key(policy.resident_key == Requirement::Required)
            .exclude_credentials(Some(exclude));
        let (mut options, registration) = core
            .generate_challenge_register(builder)
            .map_err(|e| CommandError::Internal(format!("passkey registration options: {e}")))?;
        // The engine only speaks of resident keys as required or not; WebAuthn Level 2's
        // `residentKey` also has `preferred`, which the policy may ask for.
        if let Some(selection) = &mut options.public_key.authenticator_selection {
            selection.resident_key = Some(resident_key(policy.resident_key));
        }
        let options = serde_json::to_value(&options)
            .map_err(|e| CommandError::Internal(format!("passkey registration options: {e}")))?;
        let ceremony_id = self.ceremonies.start(
            self.clock.now(),
            Ceremony::Registration {
                tenant_id,
                user_id,
                name,
                policy,
                state: Box::new(registration),
            },
        )?;
        Ok(PasskeyChallenge {
            ceremony_id,
            options,
        })
    }

    /// Finishes a registration with the browser's response (the `PublicKeyCredential` of
    /// `navigator.credentials.create()`, as JSON): verifies it against the ceremony's state and
    /// records `mfa.passkey_registered`, its name sealed under the user's data key.
    pub async fn finish_passkey_registration(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        ceremony_id: &str,
        response: serde_json::Value,
    ) -> Result<RegisteredPasskey, CommandError> {
        let relying_party = self.relying_party()?;
        let Some(Ceremony::Registration {
            tenant_id: started_in,
            user_id: started_for,
            name,
            policy,
            state,
        }) = self.ceremonies.take(ceremony_id, self.clock.now())
        else {
            return Err(expired());
        };
        if (started_in, started_for) != (tenant_id, user_id) {
            return Err(expired());
        }
        let (tenant, _, _) = self
            .load_open_tenant(tenant_id, "register a passkey in")
            .await?;
        let response: RegisterPublicKeyCredential = serde_json::from_value(response)
            .map_err(|e| rejected("credential", format!("is not a WebAuthn credential: {e}")))?;
        let credential = relying_party
            .core(&tenant.name)
            .register_credential(&response, &state, None)
            .map_err(|e| rejected("credential", format!("did not verify: {e}")))?;
        self.active_user(tenant_id, user_id, "register a passkey for")
            .await?;
        let key = self
            .data_key(tenant_id, user_id, "register a passkey for")
            .await?;
        let new = NewPasskey {
            credential_id: credential.cred_id.clone(),
            public_key: cose_key_bytes(&credential.cred)?,
            counter: credential.counter,
            name: key.seal(PASSKEY_NAME_FIELD, &name)?,
            user_verified: credential.user_verified,
            backup_eligible: credential.backup_eligible,
            backup_state: credential.backup_state,
            user_verification: policy.user_verification,
            attestation_format: attestation_format(&credential.attestation_format),
        };
        let address = Address::mfa(tenant_id, user_id);
        let ((), position) = self
            .execute_in_open_tenant(
                &meta,
                tenant_id,
                "register a passkey in",
                &address,
                |_, _| Ok((MfaCommand::RegisterPasskey(Box::new(new.clone())), ())),
            )
            .await?;
        Ok(RegisteredPasskey {
            credential_id: credential.cred_id,
            position,
        })
    }

    /// Starts a sign-in with a passkey, for no particular user: the options carry an empty
    /// `allowCredentials`, so the browser offers the passkeys it holds for this site.
    pub async fn start_passkey_sign_in(
        &self,
        tenant_id: Uuid,
    ) -> Result<PasskeyChallenge, CommandError> {
        let relying_party = self.relying_party()?;
        let (tenant, _, _) = self.load_open_tenant(tenant_id, "sign in to").await?;
        let policy = self.webauthn_policy(tenant_id).await?;
        if !policy.enabled {
            return Err(disabled());
        }
        let core = relying_party.core(&tenant.name);
        let (options, state) = core
            .new_challenge_authenticate_builder(
                Vec::new(),
                Some(user_verification(policy.user_verification)),
            )
            .and_then(|builder| core.generate_challenge_authenticate(builder))
            .map_err(|e| CommandError::Internal(format!("passkey sign-in options: {e}")))?;
        let options = serde_json::to_value(&options)
            .map_err(|e| CommandError::Internal(format!("passkey sign-in options: {e}")))?;
        let ceremony_id = self.ceremonies.start(
            self.clock.now(),
            Ceremony::SignIn {
                tenant_id,
                state: Box::new(state),
            },
        )?;
        Ok(PasskeyChallenge {
            ceremony_id,
            options,
        })
    }

    /// Finishes a passkey sign-in with the browser's response (the `PublicKeyCredential` of
    /// `navigator.credentials.get()`, as JSON): finds the user its user handle names (who must
    /// be active), verifies the assertion with that user's passkey, and records
    /// `mfa.passkey_used` at the version it was verified against. Any failure is a rejection
    /// that does not say whether the user or the passkey exists.
    pub async fn finish_passkey_sign_in(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        ceremony_id: &str,
        response: serde_json::Value,
    ) -> Result<PasskeySignIn, CommandError> {
        let relying_party = self.relying_party()?;
        let Some(Ceremony::SignIn {
            tenant_id: started_in,
            state,
        }) = self.ceremonies.take(ceremony_id, self.clock.now())
        else {
            return Err(expired());
        };
        if started_in != tenant_id {
            return Err(expired());
        }
        let unknown = || rejected("credential", "is not a passkey of this site");
        let response: PublicKeyCredential = serde_json::from_value(response)
            .map_err(|e| rejected("credential", format!("is not a WebAuthn credential: {e}")))?;
        let user_id = response
            .get_user_unique_id()
            .and_then(|handle| Uuid::from_slice(handle).ok())
            .ok_or_else(unknown)?;
        let (tenant, _, _) = self.load_open_tenant(tenant_id, "sign in to").await?;
        if !self.webauthn_policy(tenant_id).await?.enabled {
            return Err(disabled());
        }
        self.active_user(tenant_id, user_id, "sign in as")
            .await
            .map_err(|_| unknown())?;
        let core = relying_party.core(&tenant.name);
        let address = Address::mfa(tenant_id, user_id);
        let (result, position) = self
            .execute_in_open_tenant(&meta, tenant_id, "sign in to", &address, |_, mfa| {
                let passkey = mfa
                    .passkey(response.get_credential_id())
                    .ok_or_else(unknown)?;
                let result = core
                    .authenticate_single_credential(&response, &state, &credential(passkey)?)
                    .map_err(|e| rejected("credential", format!("did not verify: {e}")))?;
                let command = MfaCommand::UsePasskey(PasskeyAssertion {
                    credential_id: passkey.credential_id.clone(),
                    counter: result.counter(),
                    backup_state: result.backup_state(),
                });
                Ok((command, result))
            })
            .await?;
        let mut amr = vec![
            if result.backup_eligible() {
                "swk"
            } else {
                "hwk"
            },
            "user",
        ];
        if result.user_verified() {
            amr.push("mfa");
        }
        Ok(PasskeySignIn {
            user_id,
            credential_id: result.cred_id().clone(),
            user_verified: result.user_verified(),
            amr,
            position,
        })
    }

    /// Removes one of the user's passkeys (their own choice, from the account page; an
    /// administrator removes them all with [`CommandService::reset_mfa`]).
    pub async fn remove_passkey(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        credential_id: &[u8],
    ) -> Result<Outcome, CommandError> {
        self.live_user_of(tenant_id, user_id, "remove a passkey of")
            .await?;
        let address = Address::mfa(tenant_id, user_id);
        let ((), position) = self
            .execute_in_open_tenant(&meta, tenant_id, "remove a passkey in", &address, |_, _| {
                let command = MfaCommand::RemovePasskey {
                    credential_id: credential_id.to_vec(),
                };
                Ok((command, ()))
            })
            .await?;
        Ok(Outcome { position })
    }
}

fn attestation(preference: AttestationPreference) -> AttestationConveyancePreference {
    match preference {
        AttestationPreference::None => AttestationConveyancePreference::None,
        AttestationPreference::Indirect => AttestationConveyancePreference::Indirect,
        AttestationPreference::Direct => AttestationConveyancePreference::Direct,
    }
}

fn user_verification(requirement: Requirement) -> UserVerificationPolicy {
    match requirement {
        Requirement::Required => UserVerificationPolicy::Required,
        Requirement::Preferred => UserVerificationPolicy::Preferred,
        Requirement::Discouraged => UserVerificationPolicy::Discouraged_DO_NOT_USE,
    }
}

fn resident_key(requirement: Requirement) -> ResidentKeyRequirement {
    match requirement {
        Requirement::Required => ResidentKeyRequirement::Required,
        Requirement::Preferred => ResidentKeyRequirement::Preferred,
        Requirement::Discouraged => ResidentKeyRequirement::Discouraged,
    }
}

/// The attestation format's WebAuthn name (`none`, `packed`, ...).
fn attestation_format(format: &AttestationFormat) -> String {
    serde_json::to_value(format)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A credential public key as a COSE_Key (RFC 9052 section 7): key type (1), algorithm (3),
/// then the key type's parameters (RFC 9053 sections 7.1 and 7.2, RFC 8230 section 4).
pub(crate) fn cose_key_bytes(key: &COSEKey) -> Result<Vec<u8>, CommandError> {
    let int = |value: i128| Cbor::Integer(value);
    let mut map = BTreeMap::new();
    map.insert(int(3), int(i128::from(key.type_ as i32)));
    match &key.key {
        COSEKeyType::EC_EC2(ec) => {
            map.insert(int(1), int(2));
            map.insert(int(-1), int(ec.curve.clone() as i128));
            map.insert(int(-2), Cbor::Bytes(ec.x.clone()));
            map.insert(int(-3), Cbor::Bytes(ec.y.clone()));
        }
        COSEKeyType::EC_OKP(okp) => {
            map.insert(int(1), int(1));
            map.insert(int(-1), int(okp.curve.clone() as i128));
            map.insert(int(-2), Cbor::Bytes(okp.x.clone()));
        }
        COSEKeyType::RSA(rsa) => {
            map.insert(int(1), int(3));
            map.insert(int(-1), Cbor::Bytes(rsa.n.clone()));
            map.insert(int(-2), Cbor::Bytes(rsa.e.to_vec()));
        }
    }
    serde_cbor_2::to_vec(&Cbor::Map(map))
        .map_err(|e| CommandError::Internal(format!("encoding a COSE key: {e}")))
}

/// The engine's credential for a recorded passkey.
fn credential(passkey: &Passkey) -> Result<Credential, CommandError> {
    let cbor: Cbor = serde_cbor_2::from_slice(&passkey.public_key)
        .map_err(|e| CommandError::Internal(format!("a stored COSE key: {e}")))?;
    let cred = COSEKey::try_from(&cbor)
        .map_err(|e| CommandError::Internal(format!("a stored COSE key: {e}")))?;
    Ok(Credential {
        cred_id: passkey.credential_id.clone(),
        cred,
        counter: passkey.counter,
        transports: None,
        user_verified: passkey.user_verified,
        backup_eligible: passkey.backup_eligible,
        backup_state: passkey.backup_state,
        registration_policy: user_verification(passkey.user_verification),
        extensions: RegisteredExtensions::none(),
        attestation: ParsedAttestation::default(),
        attestation_format: AttestationFormat::None,
    })
}

#[cfg(test)]
mod tests;
