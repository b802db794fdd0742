//! Back-Channel Logout 1.0's fold (ADR 0003): which clients each session gave codes to, and,
//! when a session ends, the logout tokens owed to them.
//!
//! Pure: event in, what is owed out; no clock, no I/O. A code issued in a session
//! (`authorization_code.issued`, with its `session_id` and `client_id`) makes its client one to
//! tell when that session ends; `session.ended` hands back one [`LogoutOwed`] per such client
//! (each client once, in the order they first got a code) and forgets the session. Whether a
//! client has a `backchannel_logout_uri` is the deliverer's question, asked at delivery time
//! from the directory, so that a URI registered after the code still gets the token.
//!
//! The API's follower (`tessera_api::backchannel`) runs it over the log and delivers. Its
//! memory is one entry per session that got a code within [`FORGET_AFTER_SECS`] (by the log's
//! time) and has not ended: a session that idles out records no `session.ended`, so an entry
//! is also forgotten once its session gave no code for that long (its end, if it ever comes,
//! then tells nobody). The sweep runs by the time of the events folded, so a replay forgets
//! what the live run forgot.

use std::collections::HashMap;

use tessera_event_schemas::{Envelope, Event, Timestamp};
use uuid::Uuid;

/// A session that gave no code for this long (90 days) is forgotten.
pub const FORGET_AFTER_SECS: i64 = 90 * 86_400;
/// How often, by the log's time, forgotten sessions are swept (an hour).
const SWEEP_EVERY_SECS: i64 = 3_600;

/// A logout token owed to `client_id` for the end of `session_id` (its `sid`) of `user_id`
/// (its `sub`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutOwed {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub session_id: Uuid,
    pub user_id: Uuid,
}

#[derive(Debug)]
struct SessionGrants {
    tenant_id: Uuid,
    user_id: Uuid,
    clients: Vec<String>,
    /// When the session last gave a code (its event's `recorded_at`).
    last_code_at: Timestamp,
}

/// The sessions that gave codes, and to which clients.
#[derive(Debug, Default)]
pub struct BackchannelLogout {
    sessions: HashMap<Uuid, SessionGrants>,
    /// The log time of the next sweep of forgotten sessions.
    next_sweep: Option<Timestamp>,
}

/// Whether the fold reads events of this type: the follower decodes nothing else (most of a
/// log is tokens), as the session directory does.
pub fn folded(event_type: &str) -> bool {
    event_type == "authorization_code.issued" || event_type == "session.ended"
}

impl BackchannelLogout {
    /// Folds one event; the logout tokens it makes owed (only `session.ended` makes any).
    pub fn fold(&mut self, envelope: &Envelope, event: &Event) -> Vec<LogoutOwed> {
        self.sweep(envelope.recorded_at);
        match event {
            Event::AuthorizationCodeIssued(issued) => {
                let grants =
                    self.sessions
                        .entry(issued.session_id)
                        .or_insert_with(|| SessionGrants {
                            tenant_id: envelope.tenant_id,
                            user_id: issued.user_id,
                            clients: Vec::new(),
                            last_code_at: envelope.recorded_at,
                        });
                grants.last_code_at = grants.last_code_at.max(envelope.recorded_at);
                if !grants.clients.contains(&issued.client_id) {
                    grants.clients.push(issued.client_id.clone());
                }
                Vec::new()
            }
            Event::SessionEnded(ended) => match self.sessions.remove(&ended.session_id) {
                // A session id is a UUIDv7 of one tenant; the envelope's tenant must agree.
                Some(grants) if grants.tenant_id == envelope.tenant_id => grants
                    .clients
                    .into_iter()
                    .map(|client_id| LogoutOwed {
                        tenant_id: grants.tenant_id,
                        client_id,
                        session_id: ended.session_id,
                        user_id: grants.user_id,
                    })
                    .collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Sessions that gave codes and have not ended.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Forgets the sessions that gave no code for [`FORGET_AFTER_SECS`] before `now`, at most
    /// once per [`SWEEP_EVERY_SECS`] of log time.
    fn sweep(&mut self, now: Timestamp) {
        if self.next_sweep.is_some_and(|next| now < next) {
            return;
        }
        let horizon = now.plus_seconds(-FORGET_AFTER_SECS);
        self.sessions
            .retain(|_, grants| grants.last_code_at > horizon);
        self.next_sweep = Some(now.plus_seconds(SWEEP_EVERY_SECS));
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::{
        AuthorizationCodeIssuedV1, SessionEndReason, SessionEndedV1,
    };
    use tessera_event_schemas::streams;

    use super::*;
    use crate::tables::testing::{TENANT, envelope, sample};

    fn issued(session: u128, client: &str) -> Event {
        let Event::AuthorizationCodeIssued(sample) = sample("authorization_code.issued") else {
            panic!("the sample is a code");
        };
        Event::AuthorizationCodeIssued(AuthorizationCodeIssuedV1 {
            session_id: Uuid::from_u128(session),
            client_id: client.to_owned(),
            user_id: Uuid::from_u128(0xada),
            ..sample
        })
    }

    fn ended(session: u128) -> Event {
        Event::SessionEnded(SessionEndedV1 {
            session_id: Uuid::from_u128(session),
            reason: SessionEndReason::SignedOut,
        })
    }

    fn env() -> Envelope {
        envelope(streams::tenant(TENANT), 1, 1, 0)
    }

    #[test]
    fn a_session_that_ends_owes_each_client_it_gave_codes_to_one_token() {
        let mut fold = BackchannelLogout::default();
        for event in [
            issued(1, "photos"),
            issued(1, "mail"),
            issued(1, "photos"),
            issued(2, "mail"),
        ] {
            assert!(fold.fold(&env(), &event).is_empty());
        }
        let owed = fold.fold(&env(), &ended(1));
        let clients: Vec<&str> = owed.iter().map(|o| o.client_id.as_str()).collect();
        assert_eq!(clients, vec!["photos", "mail"]);
        assert!(owed.iter().all(|o| o.session_id == Uuid::from_u128(1)
            && o.user_id == Uuid::from_u128(0xada)
            && o.tenant_id == TENANT));
        assert_eq!(fold.sessions(), 1, "session 2 is still open");
        assert!(
            fold.fold(&env(), &ended(1)).is_empty(),
            "a session ends once; a second end owes nothing"
        );
        assert!(
            fold.fold(&env(), &ended(3)).is_empty(),
            "no codes, nothing owed"
        );
    }

    #[test]
    fn a_session_that_gave_no_code_for_ninety_days_is_forgotten() {
        let mut fold = BackchannelLogout::default();
        let at = |secs: i64| {
            let mut envelope = env();
            envelope.recorded_at = Timestamp::from_micros(1_800_000_000_000_000 + secs * 1_000_000);
            envelope
        };
        fold.fold(&at(0), &issued(1, "photos"));
        fold.fold(&at(0), &issued(2, "mail"));
        // Session 2 keeps giving codes; session 1 idles out without an end.
        fold.fold(&at(FORGET_AFTER_SECS - 10), &issued(2, "mail"));
        assert_eq!(fold.sessions(), 2);
        // The sweep runs once per hour of log time.
        let later = FORGET_AFTER_SECS + SWEEP_EVERY_SECS;
        fold.fold(&at(later), &ended(3));
        assert_eq!(
            fold.sessions(),
            1,
            "session 1 is forgotten, session 2 is not"
        );
        assert!(fold.fold(&at(later + 1), &ended(1)).is_empty());
        assert_eq!(fold.fold(&at(later + 2), &ended(2)).len(), 1);
    }

    #[test]
    fn an_end_recorded_under_another_tenant_owes_nothing() {
        let mut fold = BackchannelLogout::default();
        fold.fold(&env(), &issued(1, "photos"));
        let mut other = env();
        other.tenant_id = Uuid::from_u128(0x07e7);
        assert!(fold.fold(&other, &ended(1)).is_empty());
    }
}
