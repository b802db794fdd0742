//! Signing in with a password, decided on the write side and recorded whatever the outcome;
//! and the password changes a signed-in person makes (their own, and the one a sign-in
//! required).
//!
//! A password sign-in finds the user by the keyed hash of the address (the email reservation
//! names its owner), verifies the password once with Argon2 on the bounded blocking pool, then
//! decides on the user's sessions stream ([`SessionsState`]) with the user's and the tenant's
//! streams guarded: a lockout after too many failures and the eviction of the oldest session
//! are decided by that stream's expected version, never by a lock in this process.
//!
//! **No account enumeration.** An unknown address, a user without a password, a disabled and a
//! locked user all cost the same Argon2 verification as a wrong password (against a dummy hash
//! when there is none), and all come back as [`SignInOutcome::Failed`]: the caller tells the
//! person the same thing. An unknown address is recorded on the tenant's `{tenant}/sign-ins`
//! stream with nothing of the address typed.
//!
//! **Who acted.** A successful sign-in is recorded with the person as the envelope's actor
//! (their id only); a failed one with the server, since nobody proved who they are.

use std::fmt;

use tessera_domain::mfa::MfaState;
use tessera_domain::reservation::ReservationState;
use tessera_domain::session::{
    AMR_PASSWORD, PasswordSignIn, SessionRules, SessionsCommand, SessionsState,
};
use tessera_domain::user::{User, UserCommand, UserState};
use tessera_domain::{Aggregate, DomainError};
use tessera_event_schemas::events::{
    ReservationKind, SessionEndReason, SignInFailedV1, SignInFailure, SignInMethod, SignInStep,
};
use tessera_event_schemas::{Event, EventMetadata, Hash32, streams};
use uuid::Uuid;

use super::CommandService;
use super::engine::{Address, Plan};
use super::session::{StartedSession, person};
use crate::CommandError;

/// What a sign-in came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignInOutcome {
    /// Signed in: a session started.
    SignedIn(StartedSession),
    /// The password is right but must change before a session starts (it is temporary or past
    /// the policy's maximum age): [`CommandService::complete_password_change`] follows.
    ChangePassword { user_id: Uuid },
    /// The password is right and the user has a second factor: a session starts once it is
    /// proved ([`CommandService::verify_totp`] or [`CommandService::use_recovery_code`], then
    /// [`CommandService::start_session`]).
    SecondFactor { user_id: Uuid },
    /// The password is right, the tenant requires a second factor and the user has none: they
    /// set one up before a session starts.
    EnrollSecondFactor { user_id: Uuid },
    /// Not signed in. The reason is for the audit trail only: the person is told the same
    /// thing whatever it is.
    Failed(SignInFailure),
}

/// A sign-in's outcome and the position of what it recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInResult {
    pub outcome: SignInOutcome,
    pub position: u64,
}

/// An address and a password, as typed.
#[derive(Clone)]
pub struct PasswordCredentials {
    pub email: String,
    pub password: String,
}

impl fmt::Debug for PasswordCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordCredentials(..)")
    }
}

impl CommandService {
    /// Signs a person in with an address and a password (see the module's doc). `meta`'s actor
    /// is replaced by the person on success.
    pub async fn sign_in_with_password(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        credentials: &PasswordCredentials,
    ) -> Result<SignInResult, CommandError> {
        let people = self.people()?;
        self.load_open_tenant(tenant_id, "sign in").await?;
        let Some(user) = self.user_by_email(tenant_id, &credentials.email).await? else {
            people
                .passwords
                .verify_or_dummy(&credentials.password, None)
                .await?;
            return self
                .record_unknown_address(meta, tenant_id, SignInFailure::UnknownAddress)
                .await;
        };
        let user_id = user.user_id;
        let hash_of = |user: &User| user.password.as_ref().map(|p| p.hash.clone());
        let verified = hash_of(&user);
        let matched = people
            .passwords
            .verify_or_dummy(&credentials.password, verified.as_deref())
            .await?;
        let pending = self.new_session(user_id, vec![AMR_PASSWORD.to_owned()], self.clock.now())?;
        let sessions = Address::sessions(tenant_id, user_id);
        let (meta, sessions_ref, pending_ref, verified) = (&meta, &sessions, &pending, &verified);
        let (outcome, position) = self
            .run(&sessions.stream, move || async move {
                let (tenant, tenant_stream, tenant_version) =
                    self.load_open_tenant(tenant_id, "sign in").await?;
                let address = Address::user(tenant_id, user_id);
                let loaded_user = self.load::<UserState>(&address.stream).await?;
                let user = loaded_user
                    .state
                    .require_live("sign in")
                    .map_err(|error| loaded_user.reject(error, &address))?;
                // A factor set up or removed meanwhile changes the step: its stream is guarded.
                let mfa_stream = streams::mfa(tenant_id, user_id);
                let factors = self.load::<MfaState>(&mfa_stream).await?;
                // The password changed since it was verified: verify again (rare).
                let current = hash_of(user);
                let matched = if current == *verified {
                    matched
                } else {
                    people
                        .passwords
                        .verify_or_dummy(&credentials.password, current.as_deref())
                        .await?
                };
                let now = self.clock.now();
                let mut session = pending_ref.new.clone();
                session.now = now;
                let loaded = self.load::<SessionsState>(&sessions_ref.stream).await?;
                let events = loaded
                    .state
                    .decide(SessionsCommand::PasswordSignIn(Box::new(PasswordSignIn {
                        status: user.status,
                        password: user.password.clone(),
                        matched,
                        lockout: tenant.settings.lockout_policy.clone(),
                        password_policy: tenant.settings.password_policy.clone(),
                        rules: SessionRules::of(&tenant.settings),
                        has_second_factor: factors.state.has_second_factor(),
                        require_mfa: tenant.settings.require_mfa,
                        session,
                    })))?;
                let outcome = outcome_of(&events, &pending_ref.started, now);
                let meta = match outcome {
                    SignInOutcome::Failed(_) => meta.clone(),
                    _ => EventMetadata {
                        actor: person(user_id),
                        ..meta.clone()
                    },
                };
                let mut plan = Plan::new(outcome, loaded.position);
                plan.guard(tenant_stream, tenant_version);
                plan.guard(address.stream, loaded_user.version);
                plan.guard(mfa_stream, factors.version);
                plan.push(self.write(
                    &meta,
                    now,
                    sessions_ref.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(SignInResult { outcome, position })
    }

    /// Records a sign-in refused before any password was checked (`reason`: rate limited),
    /// on the user's sessions stream when the address is someone's, else on the tenant's
    /// sign-ins stream. A fact: it counts towards no lockout.
    pub async fn record_sign_in_refusal(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        email: &str,
        reason: SignInFailure,
    ) -> Result<u64, CommandError> {
        let now = self.clock.now();
        match self.user_by_email(tenant_id, email).await? {
            Some(user) => {
                let events = SessionsState::default().decide(SessionsCommand::Refuse {
                    method: SignInMethod::Password,
                    reason,
                    now,
                })?;
                let mut position = 0;
                for event in events {
                    position = self
                        .record(
                            meta.clone(),
                            tenant_id,
                            streams::sessions(tenant_id, user.user_id),
                            event,
                        )
                        .await?;
                }
                Ok(position)
            }
            None => Ok(self
                .record_unknown_address(meta, tenant_id, reason)
                .await?
                .position),
        }
    }

    /// Sets the new password a sign-in required and, in the same append, starts the session,
    /// with the person as the actor. The password follows the tenant's policy (history
    /// included). When the user has a second factor, or the tenant requires one they lack, no
    /// session starts yet: the outcome names that step instead.
    pub async fn complete_password_change(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        new_password: &str,
    ) -> Result<(SignInOutcome, u64), CommandError> {
        let address = Address::user(tenant_id, user_id);
        let (tenant, current, key) = self
            .live_user(tenant_id, &address, "change the password of")
            .await?;
        let new = self
            .prepare_password(&tenant, &current, &key, new_password, false)
            .await?;
        let pending = self.new_session(user_id, vec![AMR_PASSWORD.to_owned()], new.now)?;
        let meta = EventMetadata {
            actor: person(user_id),
            ..meta
        };
        let sessions = streams::sessions(tenant_id, user_id);
        let (meta, address_ref, new, pending_ref, sessions) =
            (&meta, &address, &new, &pending, &sessions);
        self.run(&address.stream, move || async move {
            let (tenant, tenant_stream, tenant_version) = self
                .load_open_tenant(tenant_id, "change a password")
                .await?;
            let loaded_user = self.load::<UserState>(&address_ref.stream).await?;
            loaded_user
                .state
                .require_live("change the password of")
                .map_err(|error| loaded_user.reject(error, address_ref))?;
            let user_events = loaded_user
                .state
                .decide(UserCommand::SetPassword(new.clone()))?;
            let mfa_stream = streams::mfa(tenant_id, user_id);
            let factors = self.load::<MfaState>(&mfa_stream).await?;
            let now = self.clock.now();
            let step = if factors.state.has_second_factor() {
                Some(SignInOutcome::SecondFactor { user_id })
            } else if tenant.settings.require_mfa {
                Some(SignInOutcome::EnrollSecondFactor { user_id })
            } else {
                None
            };
            let loaded = self.load::<SessionsState>(sessions).await?;
            let mut plan = Plan::new(
                step.clone()
                    .unwrap_or_else(|| SignInOutcome::SignedIn(pending_ref.started.clone())),
                loaded.position,
            );
            plan.guard(tenant_stream, tenant_version);
            plan.guard(mfa_stream, factors.version);
            plan.push(self.write(
                meta,
                now,
                address_ref.stream.clone(),
                loaded_user.expected(),
                tenant_id,
                user_events,
            ));
            if step.is_none() {
                let session_events = loaded.state.decide(SessionsCommand::Start {
                    session: pending_ref.new.clone(),
                    rules: SessionRules::of(&tenant.settings),
                })?;
                plan.push(self.write(
                    meta,
                    now,
                    sessions.clone(),
                    loaded.expected(),
                    tenant_id,
                    session_events,
                ));
            }
            Ok(plan)
        })
        .await
    }

    /// A signed-in person changes their own password: the current one must match (else
    /// `Rejected`, on the field `current_password`), the new one follows the tenant's policy,
    /// and every other session of theirs ends in the same append (`keep` stays).
    pub async fn change_own_password(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        current_password: &str,
        new_password: &str,
        keep: Uuid,
    ) -> Result<u64, CommandError> {
        let people = self.people()?;
        let address = Address::user(tenant_id, user_id);
        let (tenant, current, key) = self
            .live_user(tenant_id, &address, "change the password of")
            .await?;
        let hash = current.password.as_ref().map(|p| p.hash.as_str());
        if !people
            .passwords
            .verify_or_dummy(current_password, hash)
            .await?
        {
            return Err(CommandError::Rejected(DomainError::invalid(
                "current_password",
                "is not your current password",
            )));
        }
        let new = self
            .prepare_password(&tenant, &current, &key, new_password, false)
            .await?;
        let meta = EventMetadata {
            actor: person(user_id),
            ..meta
        };
        self.set_password_ending_sessions(
            meta,
            tenant_id,
            user_id,
            new,
            SessionEndReason::PasswordChanged,
            Some(keep),
        )
        .await
        .map(|outcome| outcome.position)
    }

    /// The live user who holds the address `email` in `tenant_id`, found through the
    /// reservation of its keyed hash; `None` for an address nobody holds.
    pub(super) async fn user_by_email(
        &self,
        tenant_id: Uuid,
        email: &str,
    ) -> Result<Option<User>, CommandError> {
        let hash: Hash32 = self.email_hash(tenant_id, email);
        let reservation = streams::reservation(ReservationKind::UserEmail.as_str(), &hash.to_hex());
        let Some(user_id) = self
            .load::<ReservationState>(&reservation)
            .await?
            .state
            .holder
        else {
            return Ok(None);
        };
        let state = self.load_user(tenant_id, user_id).await?;
        Ok(state.user.filter(|user| {
            user.status != tessera_domain::user::UserStatus::Erased && user.email_hash == hash
        }))
    }

    /// Records a failed sign-in for an address nobody holds, on the tenant's sign-ins stream.
    async fn record_unknown_address(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        reason: SignInFailure,
    ) -> Result<SignInResult, CommandError> {
        let event = Event::SignInFailed(SignInFailedV1 {
            method: SignInMethod::Password,
            reason,
            at: self.clock.now(),
            locked_until: None,
        });
        let position = self
            .record(meta, tenant_id, streams::sign_ins(tenant_id), event)
            .await?;
        Ok(SignInResult {
            outcome: SignInOutcome::Failed(reason),
            position,
        })
    }
}

/// What the decided events of a password sign-in mean for the caller.
fn outcome_of(
    events: &[Event],
    started: &StartedSession,
    now: tessera_event_schemas::Timestamp,
) -> SignInOutcome {
    match events.first() {
        Some(Event::SignInSucceeded(succeeded)) => match succeeded.pending_step {
            Some(SignInStep::ChangePassword) => SignInOutcome::ChangePassword {
                user_id: started.user_id,
            },
            Some(SignInStep::SecondFactor) => SignInOutcome::SecondFactor {
                user_id: started.user_id,
            },
            Some(SignInStep::EnrollSecondFactor) => SignInOutcome::EnrollSecondFactor {
                user_id: started.user_id,
            },
            None => SignInOutcome::SignedIn(StartedSession {
                auth_time: now,
                ..started.clone()
            }),
        },
        Some(Event::SignInFailed(failed)) => SignInOutcome::Failed(failed.reason),
        _ => SignInOutcome::Failed(SignInFailure::WrongPassword),
    }
}

#[cfg(test)]
mod tests;
