//! Authorization codes (OpenID Connect's authorization endpoint): deciding whether the person
//! must be asked for consent, and issuing the code (`{tenant}/code/{code_id}`,
//! `domain::authorization_code`), with the consent in the same append when the person just
//! gave it.
//!
//! The caller (the API) checked the tenant, the client, the redirect URI, the PKCE parameters
//! and the session; this module decides consent from the log: the person's consents stream is
//! guarded at the version read, so a consent revoked meanwhile makes the attempt run again
//! (and ask again) instead of issuing a code on a withdrawn consent.
//!
//! The tenant's stream is deliberately not read here, unlike most commands on a tenant's
//! children: this is the hot path of every sign-in at an application (one small stream read
//! and one append per code), a code is worth nothing without the token endpoint, which checks
//! the tenant and the client again at redemption, and the API refuses a tenant that does not
//! serve before it gets here.
//!
//! The code is made here (`base64url(code_id ‖ 256 random bits)`, `tessera_crypto::grants`),
//! recorded only as its keyed hash, and returned once. It is never logged: [`IssuedCode`]'s
//! `Debug` leaves it out.

use std::fmt;

use tessera_domain::Aggregate;
use tessera_domain::authorization_code::{
    self, AuthorizationCodeCommand, AuthorizationCodeState, CODE_TTL_SECS, NewCode,
};
use tessera_domain::consent::{ConsentCommand, ConsentsState};
use tessera_event_schemas::{EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::CommandService;
use super::engine::{Address, Kind, Plan};
use super::session::person;
use crate::CommandError;

impl Kind for AuthorizationCodeState {
    const KIND: &'static str = "authorization_code";
}

/// An authorization request the API validated, for a person signed in with a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRequest {
    pub tenant_id: Uuid,
    pub client_id: String,
    /// Whether the client asks people for consent (`require_consent`; first-party clients
    /// do not).
    pub require_consent: bool,
    /// `prompt=consent`: ask for every scope, even those allowed before.
    pub force_consent: bool,
    pub redirect_uri: String,
    /// The scopes requested, already checked against the client's `allowed_scopes`.
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// The session the person is signed in with.
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
}

/// A code just issued: the cleartext, shown once.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCode {
    pub code: String,
    pub code_id: Uuid,
    pub position: u64,
}

impl fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCode")
            .field("code_id", &self.code_id)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// What [`CommandService::authorize`] came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authorization {
    /// The person must be asked for these scopes (those not allowed yet, or all of them with
    /// `prompt=consent`); nothing was appended.
    ConsentNeeded {
        scopes: Vec<String>,
    },
    Issued(IssuedCode),
}

impl CommandService {
    /// Issues a code if the person's consents cover the request (or the client needs none),
    /// else answers which scopes must be asked for. Recorded with the person as the actor.
    pub async fn authorize(
        &self,
        meta: EventMetadata,
        request: &CodeRequest,
    ) -> Result<Authorization, CommandError> {
        self.issue_code(meta, request, false).await
    }

    /// The person allowed the request on the consent page: `consent.granted` (the scopes not
    /// allowed before) and the code, in one append.
    pub async fn grant_consent_and_issue(
        &self,
        meta: EventMetadata,
        request: &CodeRequest,
    ) -> Result<IssuedCode, CommandError> {
        match self.issue_code(meta, request, true).await? {
            Authorization::Issued(code) => Ok(code),
            // Granting covers every scope requested, so this cannot be asked again.
            Authorization::ConsentNeeded { .. } => Err(CommandError::Internal(
                "a granted consent still asked for consent".to_owned(),
            )),
        }
    }

    async fn issue_code(
        &self,
        meta: EventMetadata,
        request: &CodeRequest,
        grant: bool,
    ) -> Result<Authorization, CommandError> {
        let tenant_id = request.tenant_id;
        let code_id = self.ids.new_id();
        let code = self.crypto.grants().new_code(code_id)?;
        let code_hash = self.crypto.grants().code_hash(&code);
        let code_stream = streams::code(tenant_id, code_id);
        let consents = Address::consents(tenant_id, request.user_id);
        let meta = EventMetadata {
            actor: person(request.user_id),
            ..meta
        };
        // The in-process queue: a grant writes the consents stream, so grants of one person
        // queue there. A code on a remembered consent only guards that stream (its version
        // does not move), so one person's codes, on many tabs or under load, need not wait for
        // each other's appends: they queue on their own new stream, which is to say not at all.
        let queue = if grant {
            consents.stream.clone()
        } else {
            code_stream.clone()
        };
        let (meta, consents_ref, code_stream_ref) = (&meta, &consents, &code_stream);
        let (value, position) = self
            .run(&queue, move || async move {
                let loaded = self.load::<ConsentsState>(&consents_ref.stream).await?;
                let now = self.clock.now();
                let mut plan = Plan::new(None, loaded.position);
                if grant {
                    let events = loaded
                        .state
                        .decide(ConsentCommand::Grant {
                            client_id: request.client_id.clone(),
                            scopes: request.scopes.clone(),
                        })
                        .map_err(|error| loaded.reject(error, consents_ref))?;
                    if events.is_empty() {
                        plan.guard(consents_ref.stream.clone(), loaded.version);
                    } else {
                        plan.push(self.write(
                            meta,
                            now,
                            consents_ref.stream.clone(),
                            loaded.expected(),
                            tenant_id,
                            events,
                        ));
                    }
                } else if request.require_consent {
                    let missing = if request.force_consent {
                        request.scopes.clone()
                    } else {
                        loaded.state.missing(&request.client_id, &request.scopes)
                    };
                    if !missing.is_empty() {
                        return Ok(Plan::new(Some(missing), loaded.position));
                    }
                    plan.guard(consents_ref.stream.clone(), loaded.version);
                }
                let issue = AuthorizationCodeCommand::Issue(Box::new(NewCode {
                    code: authorization_code::IssuedCode {
                        code_hash,
                        client_id: request.client_id.clone(),
                        user_id: request.user_id,
                        session_id: request.session_id,
                        redirect_uri: request.redirect_uri.clone(),
                        scopes: request.scopes.clone(),
                        code_challenge: request.code_challenge.clone(),
                        nonce: request.nonce.clone(),
                        auth_time: request.auth_time,
                        amr: request.amr.clone(),
                        acr: authorization_code::acr(&request.amr).to_owned(),
                        expires_at: now.plus_seconds(CODE_TTL_SECS),
                    },
                    now,
                }));
                // A fresh code id names an empty stream: nothing to read.
                let events = AuthorizationCodeState::default().decide(issue)?;
                plan.push(self.write(
                    meta,
                    now,
                    code_stream_ref.clone(),
                    tessera_event_log::ExpectedVersion::NoStream,
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(match value {
            Some(scopes) => Authorization::ConsentNeeded { scopes },
            None => Authorization::Issued(IssuedCode {
                code,
                code_id,
                position,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_crypto::{Crypto, GrantSecrets, MasterKey};
    use tessera_event_log::{Backend, EventLog, LogConfig, MemoryStore};
    use tessera_event_schemas::{ActorKind, Event, Timestamp};

    use super::*;
    use crate::clock::{FixedClock, SystemIds};

    const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

    async fn service() -> (CommandService, Arc<dyn EventLog>, Arc<Crypto>) {
        let log = tessera_event_log::open(LogConfig::new(Backend::Memory {
            store: MemoryStore::default(),
        }))
        .await
        .unwrap();
        let crypto = Arc::new(Crypto::new(&MasterKey::from_bytes([7; 32])).unwrap());
        let service = CommandService::new(
            log.clone(),
            crypto.clone(),
            Arc::new(FixedClock::new(NOW)),
            Arc::new(SystemIds),
        );
        (service, log, crypto)
    }

    fn request() -> CodeRequest {
        CodeRequest {
            tenant_id: Uuid::from_u128(1),
            client_id: "photos".into(),
            require_consent: true,
            force_consent: false,
            redirect_uri: "https://photos.example/cb".into(),
            scopes: vec!["openid".into(), "email".into()],
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            nonce: Some("n-1".into()),
            user_id: Uuid::from_u128(2),
            session_id: Uuid::from_u128(3),
            auth_time: NOW.plus_seconds(-30),
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
        }
    }

    fn meta() -> EventMetadata {
        EventMetadata {
            actor: tessera_event_schemas::Actor::system(),
            correlation_id: "corr-1".into(),
            causation_id: None,
            source_ip: None,
            user_agent: None,
        }
    }

    async fn event_types(log: &Arc<dyn EventLog>) -> Vec<String> {
        log.read_all(0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.envelope.event_type.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_first_request_asks_for_consent_and_appends_nothing() {
        let (service, log, _) = service().await;
        let answer = service.authorize(meta(), &request()).await.unwrap();
        assert_eq!(
            answer,
            Authorization::ConsentNeeded {
                scopes: vec!["openid".into(), "email".into()]
            }
        );
        assert!(event_types(&log).await.is_empty());
    }

    #[tokio::test]
    async fn allowing_appends_the_consent_and_the_code_together_as_the_person() {
        let (service, log, crypto) = service().await;
        let issued = service
            .grant_consent_and_issue(meta(), &request())
            .await
            .unwrap();
        assert_eq!(GrantSecrets::code_id(&issued.code), Some(issued.code_id));
        assert!(
            !format!("{issued:?}").contains(&issued.code),
            "never logged"
        );
        let events = log.read_all(0, 100).await.unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].envelope.event_type, "consent.granted");
        assert_eq!(events[1].envelope.event_type, "authorization_code.issued");
        assert_eq!(
            events[1].envelope.stream_id,
            streams::code(Uuid::from_u128(1), issued.code_id)
        );
        for event in &events {
            assert_eq!(event.envelope.actor.kind, ActorKind::User);
            assert_eq!(event.envelope.actor.id, Uuid::from_u128(2).to_string());
        }
        let Event::AuthorizationCodeIssued(code) = events[1].decode().unwrap() else {
            panic!("not a code");
        };
        assert!(
            crypto
                .grants()
                .verify_code(&issued.code, code.code_hash.expose())
        );
        assert_eq!(code.acr, "2", "a second factor was proved");
        assert_eq!(code.expires_at, NOW.plus_seconds(60));
        assert_eq!(code.auth_time, NOW.plus_seconds(-30));
        assert_eq!(code.session_id, Uuid::from_u128(3));

        // Remembered: the next request gets a code, and no second consent.
        let again = service.authorize(meta(), &request()).await.unwrap();
        assert!(matches!(again, Authorization::Issued(_)));
        assert_eq!(
            event_types(&log).await,
            [
                "consent.granted",
                "authorization_code.issued",
                "authorization_code.issued"
            ]
        );
    }

    #[tokio::test]
    async fn new_scopes_and_prompt_consent_ask_again() {
        let (service, _, _) = service().await;
        service
            .grant_consent_and_issue(meta(), &request())
            .await
            .unwrap();
        let mut wider = request();
        wider.scopes.push("profile".into());
        assert_eq!(
            service.authorize(meta(), &wider).await.unwrap(),
            Authorization::ConsentNeeded {
                scopes: vec!["profile".into()]
            }
        );
        let forced = CodeRequest {
            force_consent: true,
            ..request()
        };
        assert_eq!(
            service.authorize(meta(), &forced).await.unwrap(),
            Authorization::ConsentNeeded {
                scopes: vec!["openid".into(), "email".into()]
            }
        );
    }

    #[tokio::test]
    async fn one_persons_concurrent_requests_each_get_a_code() {
        let (service, log, _) = service().await;
        service
            .grant_consent_and_issue(meta(), &request())
            .await
            .unwrap();
        let service = Arc::new(service);
        let requests = (0..20).map(|_| {
            let service = service.clone();
            tokio::spawn(async move { service.authorize(meta(), &request()).await })
        });
        let mut ids = std::collections::HashSet::new();
        for request in requests {
            let Authorization::Issued(code) = request.await.unwrap().unwrap() else {
                panic!("consent was remembered");
            };
            ids.insert(code.code_id);
        }
        assert_eq!(ids.len(), 20);
        assert_eq!(event_types(&log).await.len(), 22);
    }

    #[tokio::test]
    async fn a_client_that_needs_no_consent_gets_its_code_without_one() {
        let (service, log, _) = service().await;
        let first_party = CodeRequest {
            require_consent: false,
            ..request()
        };
        let answer = service.authorize(meta(), &first_party).await.unwrap();
        assert!(matches!(answer, Authorization::Issued(_)));
        assert_eq!(event_types(&log).await, ["authorization_code.issued"]);
    }
}
