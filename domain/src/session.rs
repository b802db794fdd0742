//! The sessions aggregate: one person's sign-in attempts, password lockout and sessions (one
//! stream per user, `{tenant}/sessions/{user}`).
//!
//! Everything that must be decided once about signing a person in lives on this one stream, so
//! that its expected version decides it: a failure that locks password sign-in, a session that
//! pushes the oldest one past the tenant's limit, a session ended once. Whether the password
//! matched is found by the caller (an Argon2 verification is slow work with a secret); whether
//! the user may sign in at all comes from the user aggregate, which the caller reads and guards
//! in the same append. Pure: time and ids arrive in commands.
//!
//! # Rules
//! - **Password sign-in.** A disabled user, a user without a password and a locked user fail
//!   (`disabled`, `no_password`, `locked`) whatever the password; so does a wrong password
//!   (`wrong_password`). Only wrong passwords count towards a lockout: when the failures within
//!   the tenant's `reset_after_minutes`, this one included, reach `max_attempts`, password
//!   sign-in is locked for `lockout_duration_minutes` and the count starts again. A correct
//!   password forgets the failures. A locked account can still sign in by other methods (phase
//!   3's passkeys): the lock is the password's only.
//! - **A password that must change** (temporary, or past the policy's maximum age) signs the
//!   person in without a session: `sign_in.succeeded` with the `change_password` step. The
//!   session starts once they chose a new one ([`SessionsCommand::Start`]).
//! - **Sessions.** Starting one first ends those idle for longer than the tenant's
//!   `session_timeout_minutes` (as far as the log knows their use: see `session.seen`), then,
//!   beyond `max_sessions_per_user`, the oldest (`evicted`). Ending a session that is not
//!   active is `NotFound`; ending all ends each active one.
//! - **Unlock** forgets the failures and lifts a lock; with neither, it changes nothing.

use tessera_event_schemas::events::{
    LockoutPolicyV1, PasswordPolicyV1, SessionEndReason, SessionEndedV1, SessionStartedV1,
    SignInFailedV1, SignInFailure, SignInMethod, SignInStep, SignInSucceededV1, SignInUnlockedV1,
    TenantSettingsV1,
};
use tessera_event_schemas::{Event, Hash32, Timestamp};
use uuid::Uuid;

use crate::password;
use crate::user::{Password, UserStatus};
use crate::{Aggregate, DomainError};

/// RFC 8176's `amr` value for a password.
pub const AMR_PASSWORD: &str = "pwd";
/// The most failures the state remembers: the largest `max_attempts` a policy may have.
pub const MAX_FAILURES: usize = 100;

const MICROS_PER_MINUTE: i64 = 60 * 1_000_000;

/// One active session, as the log knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub session_id: Uuid,
    pub token_hash: Hash32,
    pub amr: Vec<String>,
    pub auth_time: Timestamp,
    /// Its start, or the last use recorded by `session.seen`.
    pub last_seen: Timestamp,
}

/// The aggregate's state. `Default` is a person who never tried to sign in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionsState {
    /// Times of the wrong passwords since the last correct one, unlock or lock, oldest first,
    /// at most [`MAX_FAILURES`].
    pub failures: Vec<Timestamp>,
    /// Until when password sign-in is locked (it may lie in the past).
    pub locked_until: Option<Timestamp>,
    /// Active sessions, oldest first.
    pub sessions: Vec<Session>,
}

impl SessionsState {
    /// Whether password sign-in is locked at `now`.
    pub fn locked_at(&self, now: Timestamp) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    pub fn session(&self, session_id: Uuid) -> Option<&Session> {
        self.sessions.iter().find(|s| s.session_id == session_id)
    }
}

/// The tenant's session rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRules {
    pub idle_timeout_minutes: u32,
    pub max_sessions: u16,
}

impl SessionRules {
    pub fn of(settings: &TenantSettingsV1) -> Self {
        Self {
            idle_timeout_minutes: settings.session_timeout_minutes,
            max_sessions: settings.max_sessions_per_user,
        }
    }

    /// Whether a session last seen at `last_seen` is idle past the timeout at `now`.
    pub fn idle(&self, last_seen: Timestamp, now: Timestamp) -> bool {
        let timeout = i64::from(self.idle_timeout_minutes) * MICROS_PER_MINUTE;
        now.as_micros().saturating_sub(last_seen.as_micros()) >= timeout
    }
}

/// A session to start: a fresh id and the keyed hash of its cookie's random value.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub token_hash: Hash32,
    pub amr: Vec<String>,
    pub now: Timestamp,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("session_id", &self.session_id)
            .field("user_id", &self.user_id)
            .field("amr", &self.amr)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// A password sign-in: the user as the caller read them, and whether the password matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordSignIn {
    pub status: UserStatus,
    pub password: Option<Password>,
    /// The password matched the user's current hash (false when they have none).
    pub matched: bool,
    pub lockout: LockoutPolicyV1,
    pub password_policy: PasswordPolicyV1,
    pub rules: SessionRules,
    /// The user has a second factor (an authenticator app or a passkey): they prove it before
    /// a session starts.
    pub has_second_factor: bool,
    /// The tenant's `require_mfa`: a user without a second factor sets one up first.
    pub require_mfa: bool,
    /// The session to start if the sign-in succeeds without a further step.
    pub session: NewSession,
}

impl PasswordSignIn {
    /// The step a right password still needs before a session, if any: a new password first
    /// (the second factor follows it), then the second factor, or its enrollment.
    fn pending_step(&self, password: &Password, now: Timestamp) -> Option<SignInStep> {
        if password.temporary || password::expired(&self.password_policy, password.set_at, now) {
            Some(SignInStep::ChangePassword)
        } else if self.has_second_factor {
            Some(SignInStep::SecondFactor)
        } else if self.require_mfa {
            Some(SignInStep::EnrollSecondFactor)
        } else {
            None
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionsCommand {
    PasswordSignIn(Box<PasswordSignIn>),
    /// An attempt refused before any password was checked (rate limiting): recorded, and not
    /// counted towards a lockout.
    Refuse {
        method: SignInMethod,
        reason: SignInFailure,
        now: Timestamp,
    },
    /// Starts a session for a person who proved who they are (after a required step, or by a
    /// method other than the password).
    Start {
        session: NewSession,
        rules: SessionRules,
    },
    End {
        session_id: Uuid,
        reason: SessionEndReason,
    },
    /// Ends every active session, but `except`.
    EndAll {
        reason: SessionEndReason,
        except: Option<Uuid>,
    },
    Unlock {
        now: Timestamp,
    },
}

impl Aggregate for SessionsState {
    type Command = SessionsCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::SignInFailed(failed) if failed.reason == SignInFailure::WrongPassword => {
                if failed.locked_until.is_some() {
                    self.failures.clear();
                    self.locked_until = failed.locked_until;
                } else {
                    self.failures.push(failed.at);
                    if self.failures.len() > MAX_FAILURES {
                        self.failures.remove(0);
                    }
                }
            }
            Event::SignInSucceeded(_) => self.failures.clear(),
            Event::SignInUnlocked(_) => {
                self.failures.clear();
                self.locked_until = None;
            }
            Event::SessionStarted(started) => self.sessions.push(Session {
                session_id: started.session_id,
                token_hash: *started.token_hash.expose(),
                amr: started.amr.clone(),
                auth_time: started.auth_time,
                last_seen: started.auth_time,
            }),
            Event::SessionSeen(seen) => {
                for at in &seen.sessions {
                    if let Some(session) = self
                        .sessions
                        .iter_mut()
                        .find(|s| s.session_id == at.session_id)
                    {
                        session.last_seen = session.last_seen.max(at.last_seen_at);
                    }
                }
            }
            Event::SessionEnded(ended) => {
                self.sessions.retain(|s| s.session_id != ended.session_id);
            }
            _ => {}
        }
    }

    fn decide(&self, command: SessionsCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            SessionsCommand::PasswordSignIn(attempt) => self.password_sign_in(*attempt),
            SessionsCommand::Refuse {
                method,
                reason,
                now,
            } => Ok(vec![failed(method, reason, now, None)]),
            SessionsCommand::Start { session, rules } => self.start(session, rules),
            SessionsCommand::End { session_id, reason } => {
                self.session(session_id).ok_or(DomainError::NotFound)?;
                Ok(vec![ended(session_id, reason)])
            }
            SessionsCommand::EndAll { reason, except } => Ok(self
                .sessions
                .iter()
                .filter(|s| Some(s.session_id) != except)
                .map(|s| ended(s.session_id, reason))
                .collect()),
            SessionsCommand::Unlock { now } => {
                Ok(if self.locked_at(now) || !self.failures.is_empty() {
                    vec![Event::SignInUnlocked(SignInUnlockedV1 {})]
                } else {
                    Vec::new()
                })
            }
        }
    }
}

impl SessionsState {
    fn password_sign_in(&self, attempt: PasswordSignIn) -> Result<Vec<Event>, DomainError> {
        let now = attempt.session.now;
        let fail = |reason| Ok(vec![failed(SignInMethod::Password, reason, now, None)]);
        let password = match (attempt.status, &attempt.password) {
            (UserStatus::Erased, _) => {
                return Err(DomainError::IllegalTransition {
                    from: UserStatus::Erased.as_str().to_owned(),
                    action: "sign in",
                });
            }
            (UserStatus::Disabled, _) => return fail(SignInFailure::Disabled),
            (UserStatus::Active, None) => return fail(SignInFailure::NoPassword),
            (UserStatus::Active, Some(password)) => password,
        };
        if self.locked_at(now) {
            return fail(SignInFailure::Locked);
        }
        if !attempt.matched {
            let policy = &attempt.lockout;
            let window = i64::from(policy.reset_after_minutes) * MICROS_PER_MINUTE;
            let recent = self
                .failures
                .iter()
                .filter(|at| now.as_micros().saturating_sub(at.as_micros()) < window)
                .count();
            let locked_until = (recent + 1 >= usize::from(policy.max_attempts))
                .then(|| now.plus_seconds(i64::from(policy.lockout_duration_minutes) * 60));
            return Ok(vec![failed(
                SignInMethod::Password,
                SignInFailure::WrongPassword,
                now,
                locked_until,
            )]);
        }
        if let Some(step) = attempt.pending_step(password, now) {
            return Ok(vec![Event::SignInSucceeded(SignInSucceededV1 {
                method: SignInMethod::Password,
                session_id: None,
                pending_step: Some(step),
                at: now,
            })]);
        }
        let mut events = vec![Event::SignInSucceeded(SignInSucceededV1 {
            method: SignInMethod::Password,
            session_id: Some(attempt.session.session_id),
            pending_step: None,
            at: now,
        })];
        events.extend(self.start(attempt.session, attempt.rules)?);
        Ok(events)
    }

    /// `session.started`, after the end of every idle session and before the end of the oldest
    /// ones beyond the limit.
    fn start(&self, session: NewSession, rules: SessionRules) -> Result<Vec<Event>, DomainError> {
        if self.session(session.session_id).is_some() {
            return Err(DomainError::AlreadyExists(format!(
                "session {}",
                session.session_id
            )));
        }
        let now = session.now;
        let (idle, live): (Vec<&Session>, Vec<&Session>) = self
            .sessions
            .iter()
            .partition(|s| rules.idle(s.last_seen, now));
        let mut events: Vec<Event> = idle
            .iter()
            .map(|s| ended(s.session_id, SessionEndReason::Expired))
            .collect();
        events.push(Event::SessionStarted(SessionStartedV1 {
            session_id: session.session_id,
            user_id: session.user_id,
            token_hash: session.token_hash.into(),
            amr: session.amr,
            auth_time: now,
        }));
        let over = (live.len() + 1).saturating_sub(usize::from(rules.max_sessions.max(1)));
        events.extend(
            live.iter()
                .take(over)
                .map(|s| ended(s.session_id, SessionEndReason::Evicted)),
        );
        Ok(events)
    }
}

fn failed(
    method: SignInMethod,
    reason: SignInFailure,
    at: Timestamp,
    locked_until: Option<Timestamp>,
) -> Event {
    Event::SignInFailed(SignInFailedV1 {
        method,
        reason,
        at,
        locked_until,
    })
}

fn ended(session_id: Uuid, reason: SessionEndReason) -> Event {
    Event::SessionEnded(SessionEndedV1 { session_id, reason })
}

#[cfg(test)]
mod tests;
