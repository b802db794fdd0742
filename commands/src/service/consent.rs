//! Consent commands: what a person allowed each client (`{tenant}/consents/{user}`,
//! [`ConsentsState`]): listing, revoking, and the grant that the authorization endpoint appends
//! together with a code (`service/authorization.rs`).
//!
//! Consents need no read model: a person's stream is small (one event per grant or revocation)
//! and is read whole. A revocation is also what the refresh grant reads as the revocation
//! horizon of the client's refresh-token families (ADR 0003), so nothing else is appended.

use std::collections::BTreeMap;

use tessera_domain::consent::{ConsentCommand, ConsentsState};
use tessera_domain::{Aggregate, DomainError};
use tessera_event_schemas::{Event, EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::engine::{Address, Kind, PAGE};
use super::{CommandService, Outcome};
use crate::CommandError;

impl Kind for ConsentsState {
    const KIND: &'static str = "consent";
}

impl Address<ConsentsState> {
    pub(super) fn consents(tenant_id: Uuid, user_id: Uuid) -> Self {
        Self::new(streams::consents(tenant_id, user_id), user_id)
    }
}

/// One client a person allowed, as the account page and the admin API show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    pub client_id: String,
    /// Every scope allowed, in the order first granted.
    pub scopes: Vec<String>,
    /// When the last grant for this client was recorded.
    pub granted_at: Timestamp,
}

impl CommandService {
    /// A person's consents as the write side sees them (the authorization endpoint decides
    /// from this; the code it issues guards the stream at the version read).
    pub async fn load_consents(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<ConsentsState, CommandError> {
        Ok(self
            .load::<ConsentsState>(&streams::consents(tenant_id, user_id))
            .await?
            .state)
    }

    /// The clients a person allowed, by client id, each with its scopes and the time of its
    /// last grant (the envelope's). Read from the log.
    pub async fn list_consents(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<Vec<Consent>, CommandError> {
        let stream = streams::consents(tenant_id, user_id);
        let mut state = ConsentsState::default();
        let mut granted_at: BTreeMap<String, Timestamp> = BTreeMap::new();
        let mut version = 0;
        loop {
            let page = self.log.read_stream(&stream, version, PAGE).await?;
            for recorded in &page {
                let event = recorded.decode().map_err(|error| {
                    CommandError::Internal(format!(
                        "stream {stream} version {}: {error}",
                        recorded.envelope.stream_version
                    ))
                })?;
                if let Event::ConsentGranted(granted) = &event {
                    granted_at.insert(granted.client_id.clone(), recorded.envelope.recorded_at);
                }
                state.evolve(&event);
                version = recorded.envelope.stream_version;
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(state
            .clients
            .into_iter()
            .map(|(client_id, consent)| Consent {
                granted_at: granted_at
                    .get(&client_id)
                    .copied()
                    .unwrap_or(Timestamp::from_micros(0)),
                client_id,
                scopes: consent.scopes,
            })
            .collect())
    }

    /// Withdraws everything a person allowed `client_id` (the person on their account page,
    /// or an administrator). A client without a consent is `NotFound`.
    pub async fn revoke_consent(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        client_id: &str,
    ) -> Result<Outcome, CommandError> {
        let address = Address::consents(tenant_id, user_id);
        let ((), position) = self
            .execute_in_open_tenant(&meta, tenant_id, "revoke a consent", &address, |_, _| {
                Ok((
                    ConsentCommand::Revoke {
                        client_id: client_id.to_owned(),
                    },
                    (),
                ))
            })
            .await
            .map_err(|error| match error {
                CommandError::NotFound {
                    kind: "consent", ..
                }
                | CommandError::Rejected(DomainError::NotFound) => {
                    CommandError::not_found("consent", client_id)
                }
                other => other,
            })?;
        Ok(Outcome { position })
    }
}
