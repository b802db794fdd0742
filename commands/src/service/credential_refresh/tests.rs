//! A refresh and a connect flow's end, decided by expected versions on the in-memory log: of two
//! refreshes read at one version one is recorded and the other lost; a connect state ends once.

use std::sync::Arc;

use tessera_domain::DomainError;
use tessera_event_log::EventLog;
use tessera_event_schemas::events::{CredentialKind, OAuthAppSource, RefreshFailure};
use tessera_event_schemas::{Timestamp, streams};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::super::tests::{create_acme, meta, vault_service};
use super::{RefreshAppend, RefreshedTokens};
use crate::CommandError;
use crate::service::{CommandService, ConnectTokens};

const TENANT: Uuid = Uuid::from_u128(42);
const STATE: Uuid = Uuid::from_u128(99);
const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

async fn service() -> (CommandService, Arc<dyn EventLog>) {
    let (service, log) = vault_service().await;
    create_acme(&service, TENANT, None).await;
    (service, log)
}

fn connected(access: &str) -> ConnectTokens {
    ConnectTokens {
        document: Zeroizing::new(
            format!(r#"{{"access_token":"{access}","refresh_token":"r-{access}"}}"#).into_bytes(),
        ),
        scopes: vec![
            "openid".into(),
            "https://www.googleapis.com/auth/drive".into(),
        ],
        issued_at: NOW,
        expires_at: Some(NOW.plus_seconds(60)),
        refreshable: true,
        app: OAuthAppSource::Platform,
    }
}

fn refreshed(access: &str) -> RefreshedTokens {
    RefreshedTokens {
        document: Zeroizing::new(format!(r#"{{"access_token":"{access}"}}"#).into_bytes()),
        scopes: vec!["openid".into()],
        issued_at: NOW,
        expires_at: Some(NOW.plus_seconds(60)),
        refreshable: true,
    }
}

async fn types(log: &Arc<dyn EventLog>, stream: &str) -> Vec<&'static str> {
    log.read_stream(stream, 0, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|recorded| recorded.decode().unwrap().event_type())
        .collect()
}

#[tokio::test]
async fn of_two_refreshes_read_at_one_version_one_is_recorded_and_the_other_lost() {
    let (service, log) = service().await;
    service
        .complete_connect(meta(), TENANT, "saas", STATE, connected("first"))
        .await
        .unwrap();
    let (credential, version) = service
        .credential_for_refresh(TENANT, "saas")
        .await
        .unwrap()
        .unwrap();
    assert!(credential.refreshable);
    let (one, two) = tokio::join!(
        service.record_refreshed(meta(), TENANT, "saas", version, refreshed("a")),
        service.record_refreshed(meta(), TENANT, "saas", version, refreshed("b")),
    );
    let outcomes = [one.unwrap(), two.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, RefreshAppend::Appended(_)))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&RefreshAppend::Lost));
    // A failure read at the old version is lost too: the winner's tokens stand.
    let late = service
        .record_refresh_failed(meta(), TENANT, "saas", version, RefreshFailure::Unreachable)
        .await
        .unwrap();
    assert_eq!(late, RefreshAppend::Lost);
    let stream = streams::credential(TENANT, "saas");
    assert_eq!(
        types(&log, &stream).await,
        vec!["credential.stored", "credential.refreshed"]
    );
}

#[tokio::test]
async fn a_connect_state_ends_once_and_a_replay_stores_nothing() {
    let (service, log) = service().await;
    service
        .complete_connect(meta(), TENANT, "saas", STATE, connected("first"))
        .await
        .unwrap();
    assert!(service.connect_used(TENANT, STATE).await.unwrap());
    let replayed = service
        .complete_connect(meta(), TENANT, "saas", STATE, connected("second"))
        .await;
    assert!(
        matches!(
            replayed,
            Err(CommandError::Rejected(DomainError::Conflict(_)))
        ),
        "{replayed:?}"
    );
    let failed = service
        .fail_connect(meta(), TENANT, "saas", STATE, "access_denied")
        .await;
    assert!(matches!(
        failed,
        Err(CommandError::Rejected(DomainError::Conflict(_)))
    ));
    assert_eq!(
        types(&log, &streams::credential(TENANT, "saas")).await,
        vec!["credential.stored"]
    );
    assert_eq!(
        types(&log, &streams::connect(TENANT, STATE)).await,
        vec!["connect.completed"]
    );
    let (credential, _) = service
        .credential_for_refresh(TENANT, "saas")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(credential.kind, CredentialKind::Oauth);
    let opened = service
        .vault_open(
            TENANT,
            &streams::credential(TENANT, "saas"),
            &credential.sealed,
        )
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&opened).contains("first"));
}

#[tokio::test]
async fn a_refresh_of_a_removed_connection_is_lost() {
    let (service, _) = service().await;
    service
        .complete_connect(meta(), TENANT, "saas", STATE, connected("first"))
        .await
        .unwrap();
    let (_, version) = service
        .credential_for_refresh(TENANT, "saas")
        .await
        .unwrap()
        .unwrap();
    service
        .remove_credential(meta(), TENANT, "saas", false)
        .await
        .unwrap();
    let late = service
        .record_refreshed(meta(), TENANT, "saas", version, refreshed("a"))
        .await
        .unwrap();
    assert_eq!(late, RefreshAppend::Lost);
    assert!(
        service
            .credential_for_refresh(TENANT, "saas")
            .await
            .unwrap()
            .is_none()
    );
}
