//! Given events, when a command, then events: the integration's rules and the catalogue.

use super::*;

fn define(definition: Definition, secret: Option<&str>) -> IntegrationCommand {
    IntegrationCommand::Define {
        definition,
        sealed_client_secret: secret.map(str::to_owned),
    }
}

fn github() -> Definition {
    Definition {
        provider: "github".into(),
        client_id: "Iv1.abc".into(),
        ..Definition::default()
    }
}

fn generic() -> Definition {
    Definition {
        provider: "generic_oauth2".into(),
        authorization_url: Some("http://127.0.0.1:8080/t/acme/oauth/authorize".into()),
        token_url: Some("http://127.0.0.1:8080/t/acme/oauth/token".into()),
        revocation_url: Some("http://127.0.0.1:8080/t/acme/oauth/revoke".into()),
        client_id: "connector".into(),
        scopes: Some(vec!["openid".into(), "offline_access".into()]),
    }
}

#[test]
fn a_built_in_provider_is_resolved_from_the_catalogue_with_its_default_scopes() {
    let events = IntegrationState::default()
        .decide(define(github(), Some("tsr:v1:secret")))
        .unwrap();
    let integration = IntegrationState::replay(&events).integration.unwrap();
    assert_eq!(
        integration.token_url,
        "https://github.com/login/oauth/access_token"
    );
    assert_eq!(integration.scopes, vec!["read:user".to_owned()]);
    assert!(integration.pkce);
    assert_eq!(integration.sealed_client_secret, "tsr:v1:secret");
}

#[test]
fn google_asks_for_offline_access_and_can_revoke() {
    let google = resolve(&Definition {
        provider: "google".into(),
        client_id: "x.apps.googleusercontent.com".into(),
        ..Definition::default()
    })
    .unwrap();
    assert!(google.authorization_url.contains("access_type=offline"));
    assert_eq!(
        google.revocation_url.as_deref(),
        Some("https://oauth2.googleapis.com/revoke")
    );
    let notion = resolve(&Definition {
        provider: "notion".into(),
        client_id: "n".into(),
        ..Definition::default()
    })
    .unwrap();
    assert_eq!(notion.revocation_url, None);
    assert!(!notion.refreshes);
}

#[test]
fn generic_oauth2_needs_its_urls_and_a_hosted_provider_refuses_them() {
    assert!(resolve(&generic()).is_ok());
    let missing = resolve(&Definition {
        token_url: None,
        ..generic()
    });
    assert!(matches!(missing, Err(DomainError::Validation { field, .. }) if field == "token_url"));
    let plain_http = resolve(&Definition {
        authorization_url: Some("http://provider.example/authorize".into()),
        ..generic()
    });
    assert!(
        matches!(plain_http, Err(DomainError::Validation { field, .. }) if field == "authorization_url")
    );
    let overridden = resolve(&Definition {
        token_url: Some("https://evil.example/token".into()),
        ..github()
    });
    assert!(
        matches!(overridden, Err(DomainError::Validation { field, .. }) if field == "token_url")
    );
    let unknown = resolve(&Definition {
        provider: "dropbox".into(),
        ..github()
    });
    assert!(matches!(unknown, Err(DomainError::Validation { field, .. }) if field == "provider"));
}

#[test]
fn a_first_definition_needs_a_secret_and_the_same_one_again_appends_nothing() {
    let state = IntegrationState::default();
    assert!(matches!(
        state.decide(define(generic(), None)),
        Err(DomainError::Validation { field, .. }) if field == "client_secret"
    ));
    let first = state.decide(define(generic(), Some("tsr:v1:a"))).unwrap();
    let state = IntegrationState::replay(&first);
    assert!(state.decide(define(generic(), None)).unwrap().is_empty());
    let changed = state
        .decide(define(
            Definition {
                scopes: Some(vec!["openid".into()]),
                ..generic()
            },
            None,
        ))
        .unwrap();
    let state = IntegrationState::replay(first.iter().chain(&changed));
    let integration = state.integration.clone().unwrap();
    assert_eq!(integration.sealed_client_secret, "tsr:v1:a");
    assert_eq!(integration.scopes, vec!["openid".to_owned()]);
    let removed = state.decide(IntegrationCommand::Remove).unwrap();
    let state = IntegrationState::replay(first.iter().chain(&changed).chain(&removed));
    assert_eq!(state.integration, None);
    assert_eq!(
        state.decide(IntegrationCommand::Remove),
        Err(DomainError::NotFound)
    );
}

#[test]
fn scopes_may_be_urls_but_not_contain_spaces_or_quotes() {
    assert!(scope("scopes", "https://www.googleapis.com/auth/drive").is_ok());
    assert!(scope("scopes", "chat:write").is_ok());
    assert!(scope("scopes", "two words").is_err());
    assert!(scope("scopes", "quo\"te").is_err());
    assert!(scope("scopes", "").is_err());
}

#[test]
fn a_connection_records_a_providers_url_scopes() {
    use crate::credential::{CredentialCommand, CredentialState, StoreCredential};
    use tessera_event_schemas::Timestamp;
    use tessera_event_schemas::events::{CredentialKind, OAuthAppSource};
    let stored =
        CredentialState::default().decide(CredentialCommand::Store(Box::new(StoreCredential {
            kind: CredentialKind::Oauth,
            sealed: "tsr:v1:abc".into(),
            key_version: 1,
            scopes: vec!["https://www.googleapis.com/auth/drive.readonly".into()],
            issued_at: Timestamp::from_micros(0),
            expires_at: None,
            refreshable: true,
            app: OAuthAppSource::Platform,
        })));
    assert!(stored.is_ok(), "{stored:?}");
}
