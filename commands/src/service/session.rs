//! Session commands: starting a session for a person who proved who they are, ending one or
//! all of a user's sessions, and lifting a password lockout.
//!
//! A user's sign-ins, lockout and sessions are one aggregate on one stream
//! (`{tenant}/sessions/{user}`, [`SessionsState`]), so a session limit or a lockout is decided
//! by that stream's expected version. Commands that change the user and must end their sessions
//! at once (disabling, erasing, setting their password) plan the ends into their own append
//! with [`CommandService::plan_end_sessions`]: the change and the ends commit together or not at
//! all.
//!
//! A session's cookie value is 256 random bits made here and handed back once
//! ([`StartedSession::token`]); only its keyed hash is recorded.

use std::fmt;

use tessera_crypto as crypto;
use tessera_domain::session::{NewSession, SessionRules, SessionsCommand, SessionsState};
use tessera_domain::user::{UserState, UserStatus};
use tessera_domain::{Aggregate, DomainError};
use tessera_event_schemas::events::{SessionEndReason, SessionSeenAtV1, SessionSeenV1};
use tessera_event_schemas::{Actor, ActorKind, Event, EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::engine::{Address, Kind, Plan};
use super::{CommandService, Outcome};
use crate::CommandError;

impl Kind for SessionsState {
    const KIND: &'static str = "session";
}

impl Address<SessionsState> {
    pub(super) fn sessions(tenant_id: Uuid, user_id: Uuid) -> Self {
        Self::new(streams::sessions(tenant_id, user_id), user_id)
    }
}

/// The envelope's actor when a person acts: their id, never their name or address.
pub fn person(user_id: Uuid) -> Actor {
    Actor {
        kind: ActorKind::User,
        id: user_id.to_string(),
        name: None,
    }
}

/// A session just started, with the cookie value that signs its browser in.
#[derive(Clone, PartialEq, Eq)]
pub struct StartedSession {
    pub session_id: Uuid,
    pub user_id: Uuid,
    /// The cookie's value: 256 random bits, base64url. Shown once; only its keyed hash is kept.
    pub token: String,
    pub amr: Vec<String>,
    pub auth_time: Timestamp,
}

impl fmt::Debug for StartedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartedSession")
            .field("session_id", &self.session_id)
            .field("user_id", &self.user_id)
            .field("amr", &self.amr)
            .finish_non_exhaustive()
    }
}

/// A session about to start: its id, cookie value and the recorded form of both.
pub(super) struct Pending {
    pub started: StartedSession,
    pub new: NewSession,
}

impl CommandService {
    /// A fresh session id and cookie value for `user_id`, authenticated by `amr` at `now`.
    pub(super) fn new_session(
        &self,
        user_id: Uuid,
        amr: Vec<String>,
        now: Timestamp,
    ) -> Result<Pending, CommandError> {
        let token = crypto::generate_secret()?;
        let session_id = self.ids.new_id();
        Ok(Pending {
            new: NewSession {
                session_id,
                user_id,
                token_hash: self.crypto.session_token_hash(&token),
                amr: amr.clone(),
                now,
            },
            started: StartedSession {
                session_id,
                user_id,
                token,
                amr,
                auth_time: now,
            },
        })
    }

    /// Starts a session for an active user of an open tenant who proved who they are by `amr`
    /// (a step after a password, or another method: phase 3's passkeys). Idle sessions end and
    /// the oldest beyond the tenant's limit is evicted in the same append; the user's stream is
    /// guarded, so a concurrent disable wins. Recorded with the person as the actor.
    pub async fn start_session(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        amr: Vec<String>,
    ) -> Result<(StartedSession, u64), CommandError> {
        let pending = self.new_session(user_id, amr, self.clock.now())?;
        let sessions = Address::sessions(tenant_id, user_id);
        let meta = EventMetadata {
            actor: person(user_id),
            ..meta
        };
        let (meta, sessions_ref, pending_ref) = (&meta, &sessions, &pending);
        let ((), position) = self
            .run(&sessions.stream, move || async move {
                let (tenant, tenant_stream, tenant_version) =
                    self.load_open_tenant(tenant_id, "start a session").await?;
                let mut plan = Plan::new((), 0);
                plan.guard(tenant_stream, tenant_version);
                self.plan_active_user(&mut plan, tenant_id, user_id).await?;
                let loaded = self.load::<SessionsState>(&sessions_ref.stream).await?;
                let events = loaded.state.decide(SessionsCommand::Start {
                    session: pending_ref.new.clone(),
                    rules: SessionRules::of(&tenant.settings),
                })?;
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    sessions_ref.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok((pending.started, position))
    }

    /// Ends one session of a user (`reason`: signed out, revoked by an administrator). A
    /// session that is not active is `NotFound`.
    pub async fn end_session(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        session_id: Uuid,
        reason: SessionEndReason,
    ) -> Result<Outcome, CommandError> {
        let address = Address::sessions(tenant_id, user_id);
        let ((), position) = self
            .execute(&meta, tenant_id, &address, |_| {
                Ok((SessionsCommand::End { session_id, reason }, ()))
            })
            .await
            .map_err(|error| match error {
                CommandError::NotFound { .. } | CommandError::Rejected(DomainError::NotFound) => {
                    CommandError::not_found("session", session_id)
                }
                other => other,
            })?;
        Ok(Outcome { position })
    }

    /// Ends every active session of a user (an administrator's "sign out everywhere"; a
    /// second-factor reset plans the same ends into its own append). A user without sessions
    /// changes nothing.
    pub async fn end_user_sessions(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        reason: SessionEndReason,
    ) -> Result<Outcome, CommandError> {
        self.require_user(tenant_id, user_id).await?;
        let address = Address::sessions(tenant_id, user_id);
        let ((), position) = self
            .execute(&meta, tenant_id, &address, |_| {
                Ok((
                    SessionsCommand::EndAll {
                        reason,
                        except: None,
                    },
                    (),
                ))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Lifts a user's password lockout and forgets their failures. A user who is not locked
    /// and has no failures changes nothing.
    pub async fn unlock_user(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        self.require_user(tenant_id, user_id).await?;
        let address = Address::sessions(tenant_id, user_id);
        let now = self.clock.now();
        let ((), position) = self
            .execute(&meta, tenant_id, &address, |_| {
                Ok((SessionsCommand::Unlock { now }, ()))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Records when sessions of a user were last used (`session.seen`): a fact, appended with
    /// expected version "any", in aggregate (the API counts uses in memory and records them
    /// once per flush interval).
    pub async fn record_session_use(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        sessions: Vec<(Uuid, Timestamp)>,
    ) -> Result<u64, CommandError> {
        let seen = SessionSeenV1 {
            sessions: sessions
                .into_iter()
                .map(|(session_id, last_seen_at)| SessionSeenAtV1 {
                    session_id,
                    last_seen_at,
                })
                .collect(),
        };
        self.record(
            meta,
            tenant_id,
            streams::sessions(tenant_id, user_id),
            Event::SessionSeen(seen),
        )
        .await
    }

    /// A user's sign-ins, lockout and sessions as the write side sees them.
    pub async fn load_sessions(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<SessionsState, CommandError> {
        Ok(self
            .load::<SessionsState>(&streams::sessions(tenant_id, user_id))
            .await?
            .state)
    }

    /// Plans, on `user_id`'s sessions stream at the version read now, the end of every active
    /// session but `except`: for commands that change the user and end their sessions in the
    /// same append. Returns how many sessions the plan ends.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn plan_end_sessions<T>(
        &self,
        plan: &mut Plan<T>,
        meta: &EventMetadata,
        now: Timestamp,
        tenant_id: Uuid,
        user_id: Uuid,
        reason: SessionEndReason,
        except: Option<Uuid>,
    ) -> Result<usize, CommandError> {
        let stream = streams::sessions(tenant_id, user_id);
        let loaded = self.load::<SessionsState>(&stream).await?;
        let events = loaded
            .state
            .decide(SessionsCommand::EndAll { reason, except })?;
        let ended = events.len();
        plan.push(self.write(meta, now, stream, loaded.expected(), tenant_id, events));
        Ok(ended)
    }

    /// Guards `user_id`'s stream at the version read now, requiring an active user: a session
    /// never starts for a user who is being disabled or erased.
    pub(super) async fn plan_active_user<T>(
        &self,
        plan: &mut Plan<T>,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), CommandError> {
        let address = Address::user(tenant_id, user_id);
        let loaded = self.load::<UserState>(&address.stream).await?;
        let user = loaded
            .state
            .require_live("start a session for")
            .map_err(|error| loaded.reject(error, &address))?;
        if user.status != UserStatus::Active {
            return Err(CommandError::Rejected(DomainError::IllegalTransition {
                from: user.status.as_str().to_owned(),
                action: "start a session for",
            }));
        }
        plan.guard(address.stream, loaded.version);
        Ok(())
    }

    /// A user that exists (erased ones included), else `NotFound`.
    async fn require_user(&self, tenant_id: Uuid, user_id: Uuid) -> Result<(), CommandError> {
        let address = Address::user(tenant_id, user_id);
        let loaded = self.load::<UserState>(&address.stream).await?;
        match loaded.state.user {
            Some(_) => Ok(()),
            None => Err(address.not_found()),
        }
    }
}
