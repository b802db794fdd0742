//! The OpenID Connect settings' rules, through registration and update of a public client.

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{ClientType, OidcClientSettingsV1, SigningAlg};

use crate::DomainError;
use crate::oauth_client::{
    ClientChanges, GRANT_AUTHORIZATION_CODE, NewClient, OAuthClientCommand, OAuthClientState,
};
use crate::testing::given;

fn spa(oidc: OidcClientSettingsV1) -> NewClient {
    NewClient {
        client_id: "spa".into(),
        name: "Web app".into(),
        client_type: ClientType::Public,
        grant_types: vec![GRANT_AUTHORIZATION_CODE.into()],
        redirect_uris: vec!["https://app.example.com/cb".into()],
        allowed_scopes: vec!["openid".into()],
        access_token_ttl_secs: None,
        secret_hash: None,
        created_by: "admin".into(),
        oidc,
    }
}

fn register(oidc: OidcClientSettingsV1) -> Result<Vec<Event>, DomainError> {
    given::<OAuthClientState>([]).when(OAuthClientCommand::Register(Box::new(spa(oidc))))
}

fn refused_field(result: Result<Vec<Event>, DomainError>) -> Option<String> {
    match result {
        Err(DomainError::Validation { field, .. }) => Some(field),
        _ => None,
    }
}

#[test]
fn the_default_settings_and_full_ones_register() {
    assert!(register(OidcClientSettingsV1::default()).is_ok());
    let full = OidcClientSettingsV1 {
        post_logout_redirect_uris: vec![
            "https://app.example.com/bye".into(),
            "http://127.0.0.1/bye".into(),
        ],
        require_consent: false,
        refresh_token_ttl_secs: 86_400,
        refresh_token_idle_secs: 86_400,
        refresh_without_offline_access: true,
        id_token_signed_response_alg: SigningAlg::ES256,
        backchannel_logout_uri: Some("https://app.example.com/backchannel".into()),
    };
    let events = register(full.clone());
    assert!(
        matches!(&events, Ok(events) if matches!(&events[..], [Event::OAuthClientRegistered(e)] if e.oidc == full)),
        "{events:?}"
    );
}

#[test]
fn each_broken_setting_names_its_field() {
    let cases: Vec<(OidcClientSettingsV1, &str)> = vec![
        (
            OidcClientSettingsV1 {
                post_logout_redirect_uris: vec!["http://app.example.com/bye".into()],
                ..Default::default()
            },
            "post_logout_redirect_uris[0]",
        ),
        (
            OidcClientSettingsV1 {
                post_logout_redirect_uris: vec![
                    "https://a.example/bye".into(),
                    "https://a.example/bye#x".into(),
                ],
                ..Default::default()
            },
            "post_logout_redirect_uris[1]",
        ),
        (
            OidcClientSettingsV1 {
                post_logout_redirect_uris: vec![
                    "https://a.example/bye".into(),
                    "https://a.example/bye".into(),
                ],
                ..Default::default()
            },
            "post_logout_redirect_uris[1]",
        ),
        (
            OidcClientSettingsV1 {
                refresh_token_ttl_secs: 299,
                refresh_token_idle_secs: 60,
                ..Default::default()
            },
            "refresh_token_ttl_secs",
        ),
        (
            OidcClientSettingsV1 {
                refresh_token_ttl_secs: 366 * 86_400,
                ..Default::default()
            },
            "refresh_token_ttl_secs",
        ),
        (
            OidcClientSettingsV1 {
                refresh_token_ttl_secs: 3600,
                refresh_token_idle_secs: 3601,
                ..Default::default()
            },
            "refresh_token_idle_secs",
        ),
        (
            OidcClientSettingsV1 {
                refresh_token_idle_secs: 59,
                ..Default::default()
            },
            "refresh_token_idle_secs",
        ),
        (
            OidcClientSettingsV1 {
                id_token_signed_response_alg: SigningAlg::EdDSA,
                ..Default::default()
            },
            "id_token_signed_response_alg",
        ),
        (
            OidcClientSettingsV1 {
                backchannel_logout_uri: Some("http://rp.example/logout".into()),
                ..Default::default()
            },
            "backchannel_logout_uri",
        ),
        (
            OidcClientSettingsV1 {
                backchannel_logout_uri: Some("https://rp.example/logout#frag".into()),
                ..Default::default()
            },
            "backchannel_logout_uri",
        ),
    ];
    for (oidc, field) in cases {
        assert_eq!(
            refused_field(register(oidc.clone())),
            Some(field.to_owned()),
            "{oidc:?}"
        );
    }
    assert!(
        register(OidcClientSettingsV1 {
            backchannel_logout_uri: Some("http://localhost:9000/logout".into()),
            ..Default::default()
        })
        .is_ok(),
        "a loopback http back-channel URI is allowed"
    );
}

#[test]
fn an_update_is_checked_on_the_merged_settings() {
    let registered = register(OidcClientSettingsV1::default()).unwrap_or_default();
    let state = given::<OAuthClientState>(registered);
    // The default absolute lifetime is 30 days: an idle timeout of 31 days exceeds it.
    let too_idle = state.when(OAuthClientCommand::Update(ClientChanges {
        refresh_token_idle_secs: Some(31 * 86_400),
        ..ClientChanges::default()
    }));
    assert_eq!(
        refused_field(too_idle),
        Some("refresh_token_idle_secs".to_owned())
    );
    let removed = state.when(OAuthClientCommand::Update(ClientChanges {
        backchannel_logout_uri: Some(None),
        ..ClientChanges::default()
    }));
    assert_eq!(
        removed,
        Ok(Vec::new()),
        "removing what is absent changes nothing"
    );
}
