//! Second factors: an authenticator app (TOTP), recovery codes, an administrator's reset, and
//! the queries the sign-in flow asks ("has this user a second factor; must they enroll").
//!
//! The TOTP secret is generated here, sealed into its event under the TOTP sub-key of the
//! master key, and opened only to compute the codes of the window around the current time
//! step; the domain then decides on the step a code matched (see `domain::mfa`), in the append
//! at the version the secret was read at. Codes are RFC 6238's defaults that authenticator
//! apps expect: HMAC-SHA-1, 6 digits, 30 seconds.
//!
//! Recovery codes are generated here and returned once, in clear, to be shown; only their keyed
//! hashes are recorded (`tessera_crypto::mfa` says why a keyed hash is enough).
//!
//! A code that does not verify is a rejection naming the field `code`; the sign-in flow answers
//! it with its generic failure and counts it against the account's attempts.

use qrcode::QrCode;
use qrcode::render::svg;
use tessera_crypto::DataKey;
use tessera_crypto::mfa::{generate_recovery_codes, generate_totp_secret};
use tessera_domain::mfa::{
    self, MfaCommand, MfaState, RECOVERY_CODES, TOTP_DIGITS, TOTP_SKEW_STEPS, TOTP_STEP_SECS,
    TotpCheck,
};
use tessera_domain::user::{User, UserState, UserStatus};
use tessera_domain::{Aggregate, DomainError};
use tessera_event_schemas::events::SessionEndReason;
use tessera_event_schemas::events::user::fields;
use tessera_event_schemas::{EventMetadata, Hash32, Timestamp, streams};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::engine::{Address, Kind, Plan};
use super::{CommandService, Outcome};
use crate::CommandError;

impl Kind for MfaState {
    const KIND: &'static str = "mfa";
}

impl Address<MfaState> {
    pub(super) fn mfa(tenant_id: Uuid, user_id: Uuid) -> Self {
        Self::new(streams::mfa(tenant_id, user_id), user_id)
    }
}

/// A started authenticator-app enrollment: what the person scans or types into their app.
/// Shown once; the secret is never shown again.
pub struct TotpEnrollment {
    /// The secret in base32 (RFC 4648, no padding), for manual entry.
    pub secret_base32: Zeroizing<String>,
    /// `otpauth://totp/{issuer}:{address}?secret=...&issuer=...`, the tenant's display name as
    /// the issuer.
    pub otpauth_uri: Zeroizing<String>,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
    pub position: u64,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrollment")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// A new set of recovery codes, in clear: shown once, never again.
pub struct RecoveryCodes {
    pub codes: Vec<Zeroizing<String>>,
    pub position: u64,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCodes")
            .field("count", &self.codes.len())
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// A second factor that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondFactorVerified {
    /// RFC 8176 method references: `otp` (a TOTP code, or a recovery code, which is a one-time
    /// password too). The sign-in flow adds `pwd` and `mfa`.
    pub amr: Vec<&'static str>,
    /// Recovery codes still unused after this one.
    pub recovery_codes_left: usize,
    pub position: u64,
}

/// What a user has as second factors, from the log: what the sign-in flow asks before it grants
/// a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondFactors {
    /// An authenticator app is confirmed or a passkey registered.
    pub has_second_factor: bool,
    /// The tenant requires MFA and the user has no second factor: they must enroll one before
    /// a session is granted.
    pub must_enroll: bool,
    pub totp: bool,
    pub totp_pending: bool,
    pub recovery_codes_left: usize,
    pub passkeys: usize,
}

/// What an administrator's reset removed, and the sessions it ended with them. Nothing removed
/// recorded nothing and ended no session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MfaReset {
    pub totp: bool,
    pub recovery_codes: usize,
    pub passkeys: usize,
    /// The user's sessions the reset ended (in the same append).
    pub sessions_ended: usize,
    pub position: u64,
}

impl MfaReset {
    /// Whether the reset removed anything.
    pub fn changed(&self) -> bool {
        self.totp || self.recovery_codes > 0 || self.passkeys > 0
    }
}

/// The TOTP generator for `secret` (RFC 6238 with the parameters of `domain::mfa`), labelled
/// for an `otpauth://` URI when `label` is given. A `:` would end the issuer in the URI's
/// label, so it is replaced in both parts.
fn totp(secret: &[u8], label: Option<(&str, &str)>) -> Result<Totp, CommandError> {
    let mut builder = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(TOTP_DIGITS)
        .with_skew(u16::try_from(TOTP_SKEW_STEPS).unwrap_or(1))
        .with_step_duration(TOTP_STEP_SECS)
        .with_secret(Secret::from(secret.to_vec()));
    if let Some((issuer, account)) = label {
        builder = builder
            .with_issuer(Some(issuer.replace(':', " ")))
            .with_account_name(account.replace(':', " "));
    }
    builder
        .build()
        .map_err(|e| CommandError::Internal(format!("TOTP generator: {e}")))
}

/// Seconds since the Unix epoch.
fn unix_seconds(now: Timestamp) -> u64 {
    u64::try_from(now.as_micros() / 1_000_000).unwrap_or(0)
}

impl CommandService {
    /// Starts setting up an authenticator app for an active user: a fresh secret, sealed into
    /// `mfa.totp_enrollment_started`, and what their app needs (the `otpauth://` URI, its QR
    /// code, the secret for manual entry). It replaces an unconfirmed secret; an app already
    /// set up must be removed first.
    pub async fn begin_totp_enrollment(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<TotpEnrollment, CommandError> {
        let action = "set up an authenticator app for";
        let (tenant, _, _) = self.load_open_tenant(tenant_id, action).await?;
        let user = self.active_user(tenant_id, user_id, action).await?;
        let key = self.data_key(tenant_id, user_id, action).await?;
        let email = key.open(fields::EMAIL, &user.email)?;
        let secret = generate_totp_secret()?;
        let sealed_secret = self.crypto.seal_totp_secret(tenant_id, user_id, &secret)?;
        let generator = totp(&secret, Some((&tenant.name, &email)))?;
        let otpauth_uri = Zeroizing::new(
            generator
                .to_url()
                .map_err(|e| CommandError::Internal(format!("otpauth URI: {e}")))?,
        );
        let qr_svg = QrCode::new(otpauth_uri.as_bytes())
            .map_err(|e| CommandError::Internal(format!("QR code: {e}")))?
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        let address = Address::mfa(tenant_id, user_id);
        let ((), position) = self
            .execute_in_open_tenant(&meta, tenant_id, action, &address, |_, _| {
                let command = MfaCommand::BeginTotp {
                    sealed_secret: sealed_secret.clone(),
                };
                Ok((command, ()))
            })
            .await?;
        Ok(TotpEnrollment {
            secret_base32: Zeroizing::new(generator.secret().to_base32()),
            otpauth_uri,
            qr_svg,
            position,
        })
    }

    /// Confirms the pending authenticator app with a code from it, and issues the user's first
    /// recovery codes (returned here, once).
    pub async fn confirm_totp_enrollment(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        code: &str,
    ) -> Result<RecoveryCodes, CommandError> {
        let action = "set up an authenticator app for";
        self.active_user(tenant_id, user_id, action).await?;
        let (codes, hashes) = self.new_recovery_codes(tenant_id, user_id)?;
        let now = unix_seconds(self.clock.now());
        let address = Address::mfa(tenant_id, user_id);
        let ((), position) = self
            .execute_in_open_tenant(&meta, tenant_id, action, &address, |_, state| {
                let Some(sealed) = &state.pending_totp else {
                    return Err(CommandError::Rejected(DomainError::Conflict(
                        "no authenticator app is being set up".to_owned(),
                    )));
                };
                let check = self.check_code(tenant_id, user_id, sealed, code, now)?;
                let command = MfaCommand::ConfirmTotp {
                    check,
                    recovery_code_hashes: hashes.clone(),
                };
                Ok((command, ()))
            })
            .await?;
        Ok(RecoveryCodes { codes, position })
    }

    /// Verifies a code from the user's authenticator app, as a second factor: accepted once,
    /// for its time step, which is recorded (`mfa.totp_used`) so that no code of that step or
    /// an earlier one is accepted again.
    pub async fn verify_totp(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        code: &str,
    ) -> Result<SecondFactorVerified, CommandError> {
        let action = "verify a code of";
        self.active_user(tenant_id, user_id, action).await?;
        let now = unix_seconds(self.clock.now());
        let address = Address::mfa(tenant_id, user_id);
        let (left, position) = self
            .execute_in_open_tenant(&meta, tenant_id, action, &address, |_, state| {
                let Some(totp) = &state.totp else {
                    return Err(CommandError::Rejected(DomainError::Conflict(
                        "no authenticator app is set up".to_owned(),
                    )));
                };
                let check = self.check_code(tenant_id, user_id, &totp.sealed_secret, code, now)?;
                Ok((MfaCommand::UseTotp(check), state.recovery_codes_left()))
            })
            .await?;
        Ok(SecondFactorVerified {
            amr: vec!["otp"],
            recovery_codes_left: left,
            position,
        })
    }

    /// Removes the user's authenticator app (or an unconfirmed one); their recovery codes go
    /// with it when no passkey remains.
    pub async fn remove_totp(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let action = "remove the authenticator app of";
        self.live_user_of(tenant_id, user_id, action).await?;
        let address = Address::mfa(tenant_id, user_id);
        let ((), position) = self
            .execute_in_open_tenant(&meta, tenant_id, action, &address, |_, _| {
                Ok((MfaCommand::RemoveTotp, ()))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Replaces the user's recovery codes with a new set (returned here, once). The user must
    /// have a second factor for them to back up.
    pub async fn regenerate_recovery_codes(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<RecoveryCodes, CommandError> {
        let action = "generate recovery codes for";
        self.active_user(tenant_id, user_id, action).await?;
        let (codes, hashes) = self.new_recovery_codes(tenant_id, user_id)?;
        let address = Address::mfa(tenant_id, user_id);
        let ((), position) = self
            .execute_in_open_tenant(&meta, tenant_id, action, &address, |_, _| {
                Ok((MfaCommand::GenerateRecoveryCodes(hashes.clone()), ()))
            })
            .await?;
        Ok(RecoveryCodes { codes, position })
    }

    /// Verifies a recovery code as a second factor: each code is accepted once.
    pub async fn use_recovery_code(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        code: &str,
    ) -> Result<SecondFactorVerified, CommandError> {
        let action = "use a recovery code of";
        self.active_user(tenant_id, user_id, action).await?;
        let hash = self.crypto.recovery_code_hash(tenant_id, user_id, code);
        let address = Address::mfa(tenant_id, user_id);
        let (left, position) = self
            .execute_in_open_tenant(&meta, tenant_id, action, &address, |_, state| {
                let left = state.recovery_codes_left().saturating_sub(1);
                Ok((MfaCommand::UseRecoveryCode(hash), left))
            })
            .await?;
        Ok(SecondFactorVerified {
            amr: vec!["otp"],
            recovery_codes_left: left,
            position,
        })
    }

    /// An administrator removes every second factor of a user (authenticator app, recovery
    /// codes, passkeys), for instance after they lost their phone, and ends the user's sessions
    /// in the same append: whoever holds a session may have passed the factors just removed
    /// (`session.ended` with reason `revoked`, an administrator's doing). Returns what was
    /// removed and ended; a user without factors changes nothing, sessions included.
    pub async fn reset_mfa(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<MfaReset, CommandError> {
        let action = "reset the second factors of";
        self.live_user_of(tenant_id, user_id, action).await?;
        let address = Address::mfa(tenant_id, user_id);
        let (meta, address_ref) = (&meta, &address);
        let (mut reset, position) = self
            .run(&address.stream, move || async move {
                let (_, tenant_stream, tenant_version) =
                    self.load_open_tenant(tenant_id, action).await?;
                let loaded = self.load::<MfaState>(&address_ref.stream).await?;
                let state = &loaded.state;
                let mut reset = MfaReset {
                    totp: state.totp.is_some() || state.pending_totp.is_some(),
                    recovery_codes: state.recovery_codes_left(),
                    passkeys: state.passkeys.len(),
                    sessions_ended: 0,
                    position: 0,
                };
                let events = state
                    .decide(MfaCommand::Reset)
                    .map_err(|error| loaded.reject(error, address_ref))?;
                let now = self.clock.now();
                let mut plan = Plan::new((), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                if !events.is_empty() {
                    reset.sessions_ended = self
                        .plan_end_sessions(
                            &mut plan,
                            meta,
                            now,
                            tenant_id,
                            user_id,
                            SessionEndReason::Revoked,
                            None,
                        )
                        .await?;
                }
                let mut plan = plan.with_value(reset);
                plan.push(self.write(
                    meta,
                    now,
                    address_ref.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        reset.position = position;
        Ok(reset)
    }

    /// The user's second factors and, with the tenant's `require_mfa`, whether they must enroll
    /// one before a session is granted. Read from the log.
    pub async fn second_factors(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<SecondFactors, CommandError> {
        let (tenant, _, _) = self.load_open_tenant(tenant_id, "sign in to").await?;
        self.live_user_of(tenant_id, user_id, "sign in as").await?;
        let state = self.load_mfa(tenant_id, user_id).await?;
        Ok(SecondFactors {
            has_second_factor: state.has_second_factor(),
            must_enroll: mfa::must_enroll(tenant.settings.require_mfa, &state),
            totp: state.totp.is_some(),
            totp_pending: state.pending_totp.is_some(),
            recovery_codes_left: state.recovery_codes_left(),
            passkeys: state.passkeys.len(),
        })
    }

    /// The user's second-factor stream, folded.
    pub(super) async fn load_mfa(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<MfaState, CommandError> {
        Ok(self
            .load::<MfaState>(&streams::mfa(tenant_id, user_id))
            .await?
            .state)
    }

    /// The user, required to exist and not be erased (`action` names the command in a
    /// refusal).
    pub(super) async fn live_user_of(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        action: &'static str,
    ) -> Result<User, CommandError> {
        let loaded = self
            .load::<UserState>(&streams::user(tenant_id, user_id))
            .await?;
        match loaded.state.require_live(action) {
            Ok(user) => Ok(user.clone()),
            Err(DomainError::NotFound) => Err(CommandError::not_found("user", user_id)),
            Err(other) => Err(CommandError::Rejected(other)),
        }
    }

    /// The user, required to be active: a disabled user neither signs in nor changes factors.
    pub(super) async fn active_user(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        action: &'static str,
    ) -> Result<User, CommandError> {
        let user = self.live_user_of(tenant_id, user_id, action).await?;
        if user.status != UserStatus::Active {
            return Err(CommandError::Rejected(DomainError::IllegalTransition {
                from: user.status.as_str().to_owned(),
                action,
            }));
        }
        Ok(user)
    }

    /// The user's data key; gone means erased.
    pub(super) async fn data_key(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        action: &'static str,
    ) -> Result<std::sync::Arc<DataKey>, CommandError> {
        self.people()?
            .keys
            .get(tenant_id, user_id)
            .await?
            .ok_or_else(|| {
                CommandError::Rejected(DomainError::IllegalTransition {
                    from: "erased".to_owned(),
                    action,
                })
            })
    }

    /// Checks `code` against the sealed secret: which step of the window around `now` it is
    /// the code of, if any.
    fn check_code(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        sealed_secret: &[u8],
        code: &str,
        now: u64,
    ) -> Result<TotpCheck, CommandError> {
        let secret = self
            .crypto
            .open_totp_secret(tenant_id, user_id, sealed_secret)?;
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        Ok(TotpCheck {
            now_step: mfa::totp_step(now),
            matched_step: totp(&secret, None)?.check(&code, now),
        })
    }

    /// A fresh set of recovery codes, in clear, and their keyed hashes.
    fn new_recovery_codes(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<(Vec<Zeroizing<String>>, Vec<Hash32>), CommandError> {
        let codes = generate_recovery_codes(RECOVERY_CODES)?;
        let hashes = codes
            .iter()
            .map(|code| self.crypto.recovery_code_hash(tenant_id, user_id, code))
            .collect();
        Ok((codes, hashes))
    }
}

#[cfg(test)]
mod tests;
