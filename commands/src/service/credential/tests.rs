//! Connections end to end on the command side, on the in-memory log: stored sealed, read,
//! opened, accessed (recorded on the access stream), removed; rotation, rewrap (of any holder)
//! and offboarding.

use std::sync::Arc;

use tessera_domain::DomainError;
use tessera_domain::credential::CredentialStatus;
use tessera_event_log::EventLog;
use tessera_event_schemas::events::{CredentialKind, OAuthAppSource, VaultRewrapStartedV1};
use tessera_event_schemas::{Event, Timestamp, streams};
use uuid::Uuid;

use super::super::tests::{create_acme, meta, vault_service};
use super::{CredentialSecret, StoreCredentialInput};
use crate::CommandError;
use crate::service::CommandService;

const TENANT: Uuid = Uuid::from_u128(42);
const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
const KEY: Uuid = Uuid::from_u128(7);

async fn service() -> (CommandService, Arc<dyn EventLog>) {
    let (service, log) = vault_service().await;
    create_acme(&service, TENANT, None).await;
    (service, log)
}

fn tokens(access: &str) -> StoreCredentialInput {
    StoreCredentialInput {
        kind: CredentialKind::Oauth,
        secret: CredentialSecret {
            access_token: Some(access.into()),
            refresh_token: Some(format!("refresh-{access}")),
            token_type: Some("Bearer".into()),
            api_key: None,
        },
        scopes: vec!["read".into()],
        expires_at: Some(NOW.plus_seconds(3_600)),
        app: OAuthAppSource::None,
    }
}

async fn events(log: &Arc<dyn EventLog>, stream: &str) -> Vec<Event> {
    log.read_stream(stream, 0, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|recorded| recorded.decode().unwrap())
        .collect()
}

#[tokio::test]
async fn a_stored_connection_is_sealed_read_opened_accessed_and_removed() {
    let (service, log) = service().await;
    service
        .store_credential(meta(), TENANT, "notion", tokens("secret-access-1"))
        .await
        .unwrap();
    let stream = streams::credential(TENANT, "notion");
    let recorded = events(&log, &stream).await;
    let Event::CredentialStored(stored) = &recorded[0] else {
        panic!("{recorded:?}")
    };
    assert!(stored.refreshable);
    assert!(!stored.sealed.expose().contains("secret-access-1"));

    let read = service
        .read_credential(TENANT, "notion")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.version, 1);
    assert_eq!(read.credential.status, CredentialStatus::Active);
    let secret = service
        .open_credential(TENANT, "notion", &read.credential)
        .await
        .unwrap();
    assert_eq!(secret.access_token.as_deref(), Some("secret-access-1"));
    assert_eq!(format!("{secret:?}"), "CredentialSecret(..)");

    service
        .record_credential_access(meta(), TENANT, "notion", KEY, false)
        .await
        .unwrap();
    let accesses = events(&log, &streams::credential_access(TENANT, "notion")).await;
    assert!(matches!(&accesses[..], [Event::CredentialAccessed(a)] if a.api_key_id == KEY));
    assert_eq!(
        events(&log, &stream).await.len(),
        1,
        "never on the connection's stream"
    );

    service
        .remove_credential(meta(), TENANT, "notion", false)
        .await
        .unwrap();
    assert!(
        service
            .read_credential(TENANT, "notion")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        service
            .remove_credential(meta(), TENANT, "notion", false)
            .await,
        Err(CommandError::Rejected(DomainError::NotFound) | CommandError::NotFound { .. })
    ));
    assert!(matches!(
        service
            .store_credential(meta(), TENANT, "Not Valid", tokens("x"))
            .await,
        Err(CommandError::Rejected(DomainError::Validation { .. }))
    ));
}

#[tokio::test]
async fn a_rotation_and_rewrap_move_every_secret_and_offboarding_leaves_nothing_to_open() {
    let (service, log) = service().await;
    for integration in ["notion", "github", "slack"] {
        service
            .store_credential(meta(), TENANT, integration, tokens(integration))
            .await
            .unwrap();
    }
    let (version, _) = service.rotate_vault_key(meta(), TENANT).await.unwrap();
    assert_eq!(version, 2);
    let (vault, _) = service.start_vault_rewrap(meta(), TENANT, 3).await.unwrap();
    assert_eq!(vault.newest, 2);
    // Asking again resumes: no second start.
    service.start_vault_rewrap(meta(), TENANT, 3).await.unwrap();
    let started = events(&log, &streams::vault(TENANT))
        .await
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::VaultRewrapStarted(VaultRewrapStartedV1 { to_version: 2, .. })
            )
        })
        .count();
    assert_eq!(started, 1);

    for integration in ["notion", "github", "slack"] {
        let stream = streams::credential(TENANT, integration);
        assert!(
            service
                .rewrap_secret(meta(), TENANT, &stream)
                .await
                .unwrap()
        );
        assert!(
            !service
                .rewrap_secret(meta(), TENANT, &stream)
                .await
                .unwrap()
        );
        let read = service
            .read_credential(TENANT, integration)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.credential.key_version, 2);
        let secret = service
            .open_credential(TENANT, integration, &read.credential)
            .await
            .unwrap();
        assert_eq!(secret.access_token.as_deref(), Some(integration));
    }
    // Nothing is left below version 2: the minimum retires version 1.
    service
        .set_vault_minimum(meta(), TENANT, 2, 0, false)
        .await
        .unwrap();
    let read = service
        .read_credential(TENANT, "notion")
        .await
        .unwrap()
        .unwrap();
    assert!(
        service
            .open_credential(TENANT, "notion", &read.credential)
            .await
            .is_ok()
    );

    service.destroy_vault(meta(), TENANT).await.unwrap();
    assert!(matches!(
        service
            .open_credential(TENANT, "notion", &read.credential)
            .await,
        Err(CommandError::Rejected(
            DomainError::IllegalTransition { .. }
        ))
    ));
    assert!(service.rotate_vault_key(meta(), TENANT).await.is_err());
    assert!(
        service
            .store_credential(meta(), TENANT, "notion", tokens("again"))
            .await
            .is_err()
    );
}
