//! A user's second factors (one stream per user, `{tenant}/mfa/{user}`): an authenticator app
//! (TOTP, RFC 6238), ten recovery codes, and passkeys (WebAuthn credentials).
//!
//! Secrets reach this crate sealed or hashed (the TOTP secret sealed, recovery codes as keyed
//! hashes, a passkey's name sealed under the user's data key), and anything that needs the
//! secret itself (computing a TOTP code, verifying a WebAuthn signature) is done by `commands`,
//! which hands the outcome in: which time step a code matched, which counter an authenticator
//! signed. Every rule about those outcomes is decided here, against the stream's state, and so
//! in the append that records it (the stream's expected version): a code or a step is
//! accepted once, whatever the number of servers. Pure: no clock, no randomness.
//!
//! # Rules
//! - **Authenticator app.** Enrollment starts with a sealed secret (replacing an unconfirmed
//!   one; refused while an app is set up) and is confirmed by a valid code, which also issues
//!   the first recovery codes. A code is valid for its time step and [`TOTP_SKEW_STEPS`] either
//!   side of the current one (RFC 6238 section 5.2), and only if its step is newer than the
//!   last step accepted for this user (the confirming code included): the same code, or an
//!   older one, is never accepted twice.
//! - **Recovery codes.** [`RECOVERY_CODES`] per set; a new set replaces the old one and needs a
//!   second factor to back up. Each code is accepted once.
//! - **Passkeys.** At most [`MAX_PASSKEYS`], each credential id once. A sign-in must carry a
//!   signature counter newer than the stored one, unless both are 0 (authenticators that keep
//!   no counter, as most synchronised passkeys): a counter that does not move on is a sign of
//!   a cloned authenticator (WebAuthn Level 3, section 7.2, step 21), and is refused.
//! - **Removal.** Removing the authenticator app or a passkey that was the user's last second
//!   factor also revokes the recovery codes, which only ever back up another factor. An
//!   administrator's reset removes everything at once.
//! - **`require_mfa`.** A user has a second factor when an authenticator app is confirmed or a
//!   passkey registered; in a tenant that requires MFA, a user without one must enroll before
//!   a session is granted ([`must_enroll`]).

use std::ops::RangeInclusive;

use tessera_event_schemas::events::{
    MfaResetV1, PasskeyRegisteredV1, PasskeyRemovedV1, PasskeyUsedV1, RecoveryCodeUsedV1,
    RecoveryCodesGeneratedV1, RecoveryCodesRevokedV1, Requirement, TotpEnrolledV1,
    TotpEnrollmentStartedV1, TotpRemovedV1, TotpUsedV1,
};
use tessera_event_schemas::{Event, Hash32};

use crate::{Aggregate, DomainError, validate};

/// Seconds per TOTP time step (RFC 6238 section 4.1's default, which authenticator apps use).
pub const TOTP_STEP_SECS: u64 = 30;
/// Digits of a TOTP code, as authenticator apps show them.
pub const TOTP_DIGITS: u8 = 6;
/// Steps accepted either side of the current one, for clock drift and typing time (RFC 6238
/// section 5.2 recommends at most one).
pub const TOTP_SKEW_STEPS: u64 = 1;
/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;
/// Passkeys one user may have.
pub const MAX_PASSKEYS: usize = 20;
/// Longest passkey name.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;
/// Longest credential id WebAuthn allows (Level 3, section 5.1: at most 1023 bytes).
pub const MAX_CREDENTIAL_ID_BYTES: usize = 1023;

/// A confirmed authenticator app.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// The secret, sealed under the TOTP sub-key of the master key.
    pub sealed_secret: Vec<u8>,
    /// The newest time step a code was accepted for.
    pub last_used_step: u64,
}

impl std::fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpFactor")
            .field("last_used_step", &self.last_used_step)
            .finish_non_exhaustive()
    }
}

/// One recovery code: its keyed hash, and whether it was used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryCode {
    pub hash: Hash32,
    pub used: bool,
}

/// A registered passkey, as the log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passkey {
    pub credential_id: Vec<u8>,
    /// COSE_Key, CBOR-encoded.
    pub public_key: Vec<u8>,
    pub counter: u32,
    /// Its name, sealed under the user's data key.
    pub name: Vec<u8>,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub user_verification: Requirement,
    pub attestation_format: String,
}

/// A user's second factors. `Default` is a user who has none (and a stream that does not
/// exist yet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MfaState {
    /// A secret awaiting its first code, sealed.
    pub pending_totp: Option<Vec<u8>>,
    pub totp: Option<TotpFactor>,
    pub recovery_codes: Vec<RecoveryCode>,
    pub passkeys: Vec<Passkey>,
}

impl MfaState {
    /// An authenticator app is confirmed or a passkey registered.
    pub fn has_second_factor(&self) -> bool {
        self.totp.is_some() || !self.passkeys.is_empty()
    }

    /// Recovery codes not used yet.
    pub fn recovery_codes_left(&self) -> usize {
        self.recovery_codes.iter().filter(|code| !code.used).count()
    }

    pub fn passkey(&self, credential_id: &[u8]) -> Option<&Passkey> {
        self.passkeys
            .iter()
            .find(|passkey| passkey.credential_id == credential_id)
    }

    /// Anything at all to remove.
    fn is_empty(&self) -> bool {
        self.pending_totp.is_none()
            && self.totp.is_none()
            && self.recovery_codes.is_empty()
            && self.passkeys.is_empty()
    }

    /// The events removing a factor records: the removal, and the recovery codes' revocation
    /// when no other second factor remains for them to back up.
    fn removal(&self, removed: Event, others_remain: bool) -> Vec<Event> {
        let mut events = vec![removed];
        if !others_remain && !self.recovery_codes.is_empty() {
            events.push(Event::RecoveryCodesRevoked(RecoveryCodesRevokedV1 {}));
        }
        events
    }
}

/// Whether a user of a tenant with `require_mfa` must enroll a second factor before a session
/// is granted.
pub fn must_enroll(require_mfa: bool, state: &MfaState) -> bool {
    require_mfa && !state.has_second_factor()
}

/// The time step of `unix_seconds`.
pub fn totp_step(unix_seconds: u64) -> u64 {
    unix_seconds / TOTP_STEP_SECS
}

/// The steps a code may belong to when the current step is `now_step`.
pub fn totp_window(now_step: u64) -> RangeInclusive<u64> {
    now_step.saturating_sub(TOTP_SKEW_STEPS)..=now_step.saturating_add(TOTP_SKEW_STEPS)
}

/// A TOTP code as `commands` checked it against the secret: the current step, and the step of
/// [`totp_window`] whose code it equals, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TotpCheck {
    pub now_step: u64,
    pub matched_step: Option<u64>,
}

/// A passkey to register, its name checked ([`passkey_name`]) and sealed, its credential
/// verified by the WebAuthn ceremony.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPasskey {
    pub credential_id: Vec<u8>,
    pub public_key: Vec<u8>,
    pub counter: u32,
    pub name: Vec<u8>,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub user_verification: Requirement,
    pub attestation_format: String,
}

/// A passkey sign-in whose assertion verified: what the authenticator signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyAssertion {
    pub credential_id: Vec<u8>,
    pub counter: u32,
    pub backup_state: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MfaCommand {
    BeginTotp {
        sealed_secret: Vec<u8>,
    },
    /// Confirms the pending secret with a code, issuing the first recovery codes.
    ConfirmTotp {
        check: TotpCheck,
        recovery_code_hashes: Vec<Hash32>,
    },
    UseTotp(TotpCheck),
    RemoveTotp,
    GenerateRecoveryCodes(Vec<Hash32>),
    /// A presented code, by its keyed hash.
    UseRecoveryCode(Hash32),
    RegisterPasskey(Box<NewPasskey>),
    UsePasskey(PasskeyAssertion),
    RemovePasskey {
        credential_id: Vec<u8>,
    },
    Reset,
}

impl Aggregate for MfaState {
    type Command = MfaCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::TotpEnrollmentStarted(e) => {
                self.pending_totp = Some(e.sealed_secret.expose().clone());
            }
            Event::TotpEnrolled(e) => {
                if let Some(sealed_secret) = self.pending_totp.take() {
                    self.totp = Some(TotpFactor {
                        sealed_secret,
                        last_used_step: e.step,
                    });
                }
            }
            Event::TotpUsed(e) => {
                if let Some(totp) = &mut self.totp {
                    totp.last_used_step = e.step;
                }
            }
            Event::TotpRemoved(_) => {
                self.pending_totp = None;
                self.totp = None;
            }
            Event::RecoveryCodesGenerated(e) => {
                self.recovery_codes = e
                    .code_hashes
                    .iter()
                    .map(|hash| RecoveryCode {
                        hash: *hash,
                        used: false,
                    })
                    .collect();
            }
            Event::RecoveryCodeUsed(e) => {
                if let Some(code) = self.recovery_codes.get_mut(usize::from(e.index)) {
                    code.used = true;
                }
            }
            Event::RecoveryCodesRevoked(_) => self.recovery_codes.clear(),
            Event::PasskeyRegistered(e) => self.passkeys.push(Passkey {
                credential_id: e.credential_id.clone(),
                public_key: e.public_key.clone(),
                counter: e.counter,
                name: e.name.expose().clone(),
                user_verified: e.user_verified,
                backup_eligible: e.backup_eligible,
                backup_state: e.backup_state,
                user_verification: e.user_verification,
                attestation_format: e.attestation_format.clone(),
            }),
            Event::PasskeyUsed(e) => {
                if let Some(passkey) = self
                    .passkeys
                    .iter_mut()
                    .find(|passkey| passkey.credential_id == e.credential_id)
                {
                    passkey.counter = e.counter;
                    passkey.backup_state = e.backup_state;
                }
            }
            Event::PasskeyRemoved(e) => self
                .passkeys
                .retain(|passkey| passkey.credential_id != e.credential_id),
            Event::MfaReset(_) => *self = MfaState::default(),
            _ => {}
        }
    }

    fn decide(&self, command: MfaCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            MfaCommand::BeginTotp { sealed_secret } => {
                if self.totp.is_some() {
                    return Err(DomainError::Conflict(
                        "an authenticator app is already set up; remove it first".to_owned(),
                    ));
                }
                if sealed_secret.is_empty() {
                    return Err(DomainError::invalid("sealed_secret", "must not be empty"));
                }
                Ok(vec![Event::TotpEnrollmentStarted(
                    TotpEnrollmentStartedV1 {
                        sealed_secret: sealed_secret.into(),
                    },
                )])
            }
            MfaCommand::ConfirmTotp {
                check,
                recovery_code_hashes,
            } => {
                if self.pending_totp.is_none() {
                    return Err(DomainError::Conflict(
                        "no authenticator app is being set up".to_owned(),
                    ));
                }
                let step = accepted_step(check, None)?;
                Ok(vec![
                    Event::TotpEnrolled(TotpEnrolledV1 { step }),
                    recovery_codes(recovery_code_hashes)?,
                ])
            }
            MfaCommand::UseTotp(check) => {
                let totp = self.totp.as_ref().ok_or_else(|| {
                    DomainError::Conflict("no authenticator app is set up".to_owned())
                })?;
                let step = accepted_step(check, Some(totp.last_used_step))?;
                Ok(vec![Event::TotpUsed(TotpUsedV1 { step })])
            }
            MfaCommand::RemoveTotp => {
                if self.totp.is_none() && self.pending_totp.is_none() {
                    return Ok(Vec::new());
                }
                let removed = Event::TotpRemoved(TotpRemovedV1 {});
                Ok(self.removal(removed, !self.passkeys.is_empty()))
            }
            MfaCommand::GenerateRecoveryCodes(hashes) => {
                if !self.has_second_factor() {
                    return Err(DomainError::Conflict(
                        "recovery codes back up a second factor: set one up first".to_owned(),
                    ));
                }
                Ok(vec![recovery_codes(hashes)?])
            }
            MfaCommand::UseRecoveryCode(hash) => {
                let index = self.matching_code(&hash).ok_or_else(invalid_code)?;
                let index = u16::try_from(index).map_err(|_| invalid_code())?;
                Ok(vec![Event::RecoveryCodeUsed(RecoveryCodeUsedV1 { index })])
            }
            MfaCommand::RegisterPasskey(new) => self.register_passkey(*new),
            MfaCommand::UsePasskey(assertion) => {
                let passkey = self
                    .passkey(&assertion.credential_id)
                    .ok_or(DomainError::NotFound)?;
                let counted = assertion.counter > 0 || passkey.counter > 0;
                if counted && assertion.counter <= passkey.counter {
                    return Err(DomainError::Conflict(
                        "the passkey's signature counter did not advance: the authenticator may have been cloned"
                            .to_owned(),
                    ));
                }
                Ok(vec![Event::PasskeyUsed(PasskeyUsedV1 {
                    credential_id: assertion.credential_id,
                    counter: assertion.counter,
                    backup_state: assertion.backup_state,
                })])
            }
            MfaCommand::RemovePasskey { credential_id } => {
                if self.passkey(&credential_id).is_none() {
                    return Err(DomainError::NotFound);
                }
                let others = self.totp.is_some() || self.passkeys.len() > 1;
                let removed = Event::PasskeyRemoved(PasskeyRemovedV1 { credential_id });
                Ok(self.removal(removed, others))
            }
            MfaCommand::Reset => Ok(if self.is_empty() {
                Vec::new()
            } else {
                vec![Event::MfaReset(MfaResetV1 {})]
            }),
        }
    }
}

impl MfaState {
    fn register_passkey(&self, new: NewPasskey) -> Result<Vec<Event>, DomainError> {
        if new.credential_id.is_empty() || new.credential_id.len() > MAX_CREDENTIAL_ID_BYTES {
            return Err(DomainError::invalid(
                "credential_id",
                format!("must be 1 to {MAX_CREDENTIAL_ID_BYTES} bytes"),
            ));
        }
        if new.public_key.is_empty() {
            return Err(DomainError::invalid("public_key", "must not be empty"));
        }
        if new.name.is_empty() {
            return Err(DomainError::invalid("name", "must not be empty"));
        }
        if self.passkey(&new.credential_id).is_some() {
            return Err(DomainError::AlreadyExists("passkey".to_owned()));
        }
        if self.passkeys.len() >= MAX_PASSKEYS {
            return Err(DomainError::Conflict(format!(
                "a user may have at most {MAX_PASSKEYS} passkeys"
            )));
        }
        Ok(vec![Event::PasskeyRegistered(PasskeyRegisteredV1 {
            credential_id: new.credential_id,
            public_key: new.public_key,
            counter: new.counter,
            name: new.name.into(),
            user_verified: new.user_verified,
            backup_eligible: new.backup_eligible,
            backup_state: new.backup_state,
            user_verification: new.user_verification,
            attestation_format: new.attestation_format,
        })])
    }

    /// The index of the unused code whose hash is `hash`. Every stored hash is compared in
    /// full, so the time taken does not tell how much of a guess matched.
    fn matching_code(&self, hash: &Hash32) -> Option<usize> {
        let mut found = None;
        for (index, code) in self.recovery_codes.iter().enumerate() {
            let equal = constant_time_eq(&code.hash.0, &hash.0);
            if equal && !code.used && found.is_none() {
                found = Some(index);
            }
        }
        found
    }
}

/// The step a checked code is accepted for: it matched a step of the window around the
/// current one, newer than the last accepted step (if any).
fn accepted_step(check: TotpCheck, last_used: Option<u64>) -> Result<u64, DomainError> {
    let step = check
        .matched_step
        .filter(|step| totp_window(check.now_step).contains(step))
        .ok_or_else(invalid_code)?;
    if last_used.is_some_and(|last| step <= last) {
        return Err(DomainError::invalid("code", "was already used"));
    }
    Ok(step)
}

fn recovery_codes(hashes: Vec<Hash32>) -> Result<Event, DomainError> {
    if hashes.len() != RECOVERY_CODES {
        return Err(DomainError::invalid(
            "recovery_codes",
            format!("a set holds exactly {RECOVERY_CODES} codes"),
        ));
    }
    Ok(Event::RecoveryCodesGenerated(RecoveryCodesGeneratedV1 {
        code_hashes: hashes.into(),
    }))
}

fn invalid_code() -> DomainError {
    DomainError::invalid("code", "is not valid")
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A passkey's name (`"YubiKey 5"`, `"Ada's phone"`): 1 to [`MAX_PASSKEY_NAME_CHARS`]
/// characters once trimmed, without control characters. Returns it trimmed, to be sealed.
pub fn passkey_name(value: &str) -> Result<String, DomainError> {
    validate::display_text("name", value, MAX_PASSKEY_NAME_CHARS)
}

#[cfg(test)]
mod tests;
