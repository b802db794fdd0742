//! Unit tests of the OAuth client aggregate and of the token request scope rule.

use proptest::prelude::*;
use tessera_event_schemas::events::{
    ApiKeyRevokedV1, ClientType, OAuthClientDeactivatedV1, OAuthClientRegisteredV2,
    OAuthClientSecretRegeneratedV1, OAuthClientUpdatedV2,
};
use tessera_event_schemas::{Event, Hash32};

use super::*;
use crate::testing::given;

const SECRET: Hash32 = Hash32([7; 32]);
const NEW_SECRET: Hash32 = Hash32([8; 32]);

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

/// A confidential machine-to-machine client.
fn backend() -> NewClient {
    NewClient {
        client_id: "cli_Backend-01.x".into(),
        name: "  Billing backend ".into(),
        client_type: ClientType::Confidential,
        grant_types: strings(&[GRANT_CLIENT_CREDENTIALS]),
        redirect_uris: vec![],
        allowed_scopes: strings(&["billing.read", "billing:write"]),
        access_token_ttl_secs: None,
        secret_hash: Some(SECRET),
        created_by: " admin ".into(),
        oidc: Default::default(),
    }
}

fn backend_registered() -> Event {
    Event::OAuthClientRegistered(OAuthClientRegisteredV2 {
        client_id: "cli_Backend-01.x".into(),
        name: "Billing backend".into(),
        client_type: ClientType::Confidential,
        grant_types: strings(&[GRANT_CLIENT_CREDENTIALS]),
        redirect_uris: vec![],
        allowed_scopes: strings(&["billing.read", "billing:write"]),
        access_token_ttl_secs: DEFAULT_ACCESS_TOKEN_TTL_SECS,
        secret_hash: Some(SECRET).into(),
        created_by: "admin".into(),
        oidc: Default::default(),
    })
}

/// A public single-page app using the authorization code flow.
fn spa() -> NewClient {
    NewClient {
        client_id: "spa".into(),
        name: "Web app".into(),
        client_type: ClientType::Public,
        grant_types: strings(&[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN]),
        redirect_uris: strings(&[
            "https://app.example.com/callback",
            "http://localhost:8080/cb",
        ]),
        allowed_scopes: strings(&["openid", "profile"]),
        access_token_ttl_secs: Some(900),
        secret_hash: None,
        created_by: "admin".into(),
        oidc: Default::default(),
    }
}

fn spa_registered() -> Event {
    Event::OAuthClientRegistered(OAuthClientRegisteredV2 {
        client_id: "spa".into(),
        name: "Web app".into(),
        client_type: ClientType::Public,
        grant_types: strings(&[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN]),
        redirect_uris: strings(&[
            "https://app.example.com/callback",
            "http://localhost:8080/cb",
        ]),
        allowed_scopes: strings(&["openid", "profile"]),
        access_token_ttl_secs: 900,
        secret_hash: None.into(),
        created_by: "admin".into(),
        oidc: Default::default(),
    })
}

fn deactivated(reason: Option<&str>) -> Event {
    Event::OAuthClientDeactivated(OAuthClientDeactivatedV1 {
        reason: reason.map(str::to_owned),
    })
}

fn register(new: NewClient) -> OAuthClientCommand {
    OAuthClientCommand::Register(Box::new(new))
}

fn update(changes: ClientChanges) -> OAuthClientCommand {
    OAuthClientCommand::Update(changes)
}

fn invalid_field(result: Result<Vec<Event>, DomainError>) -> Option<String> {
    match result {
        Err(DomainError::Validation { field, .. }) => Some(field),
        _ => None,
    }
}

/// Decides `command` and folds its events into `state`, failing the test if it is refused.
fn apply(state: &mut OAuthClientState, command: OAuthClientCommand) -> Vec<Event> {
    let events = state.decide(command).expect("command accepted");
    for event in &events {
        state.evolve(event);
    }
    events
}

// --- Registration ---

#[test]
fn a_confidential_client_is_registered_with_trimmed_text_and_the_default_ttl() {
    assert_eq!(
        given::<OAuthClientState>([]).when(register(backend())),
        Ok(vec![backend_registered()])
    );
}

#[test]
fn a_public_client_is_registered_with_its_redirect_uris_and_chosen_ttl() {
    assert_eq!(
        given::<OAuthClientState>([]).when(register(spa())),
        Ok(vec![spa_registered()])
    );
}

#[test]
fn a_client_is_registered_only_once() {
    assert_eq!(
        given::<OAuthClientState>([backend_registered()]).when(register(backend())),
        Err(DomainError::AlreadyExists(
            "oauth client cli_Backend-01.x".into()
        ))
    );
}

#[test]
fn registration_builds_an_active_client() {
    let state = given::<OAuthClientState>([spa_registered()]).state;
    assert_eq!(
        state.client,
        Some(OAuthClient {
            client_id: "spa".into(),
            name: "Web app".into(),
            client_type: ClientType::Public,
            grant_types: strings(&[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN]),
            redirect_uris: strings(&[
                "https://app.example.com/callback",
                "http://localhost:8080/cb"
            ]),
            allowed_scopes: strings(&["openid", "profile"]),
            access_token_ttl_secs: 900,
            secret_hash: None,
            created_by: "admin".into(),
            active: true,
            deactivation_reason: None,
            oidc: Default::default(),
        })
    );
}

#[test]
fn invalid_registration_fields_are_named() {
    let state = given::<OAuthClientState>([]);
    let cases: Vec<(NewClient, &str)> = vec![
        // client_id
        (
            NewClient {
                client_id: "".into(),
                ..backend()
            },
            "client_id",
        ),
        (
            NewClient {
                client_id: "a".repeat(65),
                ..backend()
            },
            "client_id",
        ),
        (
            NewClient {
                client_id: "cli abc".into(),
                ..backend()
            },
            "client_id",
        ),
        (
            NewClient {
                client_id: "cli/abc".into(),
                ..backend()
            },
            "client_id",
        ),
        (
            NewClient {
                client_id: "clïent".into(),
                ..backend()
            },
            "client_id",
        ),
        // name and created_by
        (
            NewClient {
                name: "  ".into(),
                ..backend()
            },
            "name",
        ),
        (
            NewClient {
                name: "x".repeat(101),
                ..backend()
            },
            "name",
        ),
        (
            NewClient {
                name: "a\nb".into(),
                ..backend()
            },
            "name",
        ),
        (
            NewClient {
                created_by: "".into(),
                ..backend()
            },
            "created_by",
        ),
        // grant_types
        (
            NewClient {
                grant_types: vec![],
                ..backend()
            },
            "grant_types",
        ),
        (
            NewClient {
                grant_types: strings(&[GRANT_CLIENT_CREDENTIALS, "password"]),
                ..backend()
            },
            "grant_types[1]",
        ),
        (
            NewClient {
                grant_types: strings(&["Client_Credentials"]),
                ..backend()
            },
            "grant_types[0]",
        ),
        (
            NewClient {
                grant_types: strings(&[GRANT_CLIENT_CREDENTIALS, GRANT_CLIENT_CREDENTIALS]),
                ..backend()
            },
            "grant_types[1]",
        ),
        (
            NewClient {
                grant_types: strings(&[GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS]),
                ..spa()
            },
            "grant_types",
        ),
        (
            NewClient {
                grant_types: strings(&[GRANT_CLIENT_CREDENTIALS, GRANT_AUTHORIZATION_CODE]),
                ..backend()
            },
            "redirect_uris",
        ),
        (
            NewClient {
                redirect_uris: vec![],
                ..spa()
            },
            "redirect_uris",
        ),
        (
            NewClient {
                grant_types: strings(&[GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN]),
                ..backend()
            },
            "grant_types",
        ),
        // secret_hash against client_type
        (
            NewClient {
                secret_hash: None,
                ..backend()
            },
            "client_type",
        ),
        (
            NewClient {
                secret_hash: Some(SECRET),
                ..spa()
            },
            "client_type",
        ),
        // redirect_uris
        (
            NewClient {
                redirect_uris: (0..=MAX_REDIRECT_URIS)
                    .map(|i| format!("https://app.example.com/cb{i}"))
                    .collect(),
                ..spa()
            },
            "redirect_uris",
        ),
        (
            NewClient {
                redirect_uris: strings(&[
                    "https://app.example.com/cb",
                    "https://app.example.com/cb",
                ]),
                ..spa()
            },
            "redirect_uris[1]",
        ),
        (
            NewClient {
                redirect_uris: strings(&[
                    "https://app.example.com/cb",
                    "http://app.example.com/cb",
                ]),
                ..spa()
            },
            "redirect_uris[1]",
        ),
        // allowed_scopes
        (
            NewClient {
                allowed_scopes: strings(&["openid", "Profile"]),
                ..backend()
            },
            "allowed_scopes[1]",
        ),
        (
            NewClient {
                allowed_scopes: strings(&["openid", ""]),
                ..backend()
            },
            "allowed_scopes[1]",
        ),
        (
            NewClient {
                allowed_scopes: strings(&["openid", "openid"]),
                ..backend()
            },
            "allowed_scopes[1]",
        ),
        (
            NewClient {
                allowed_scopes: (0..=validate::MAX_SCOPES)
                    .map(|i| format!("s{i}"))
                    .collect(),
                ..backend()
            },
            "allowed_scopes",
        ),
        // access_token_ttl_secs
        (
            NewClient {
                access_token_ttl_secs: Some(MIN_ACCESS_TOKEN_TTL_SECS - 1),
                ..backend()
            },
            "access_token_ttl_secs",
        ),
        (
            NewClient {
                access_token_ttl_secs: Some(MAX_ACCESS_TOKEN_TTL_SECS + 1),
                ..backend()
            },
            "access_token_ttl_secs",
        ),
        (
            NewClient {
                access_token_ttl_secs: Some(0),
                ..backend()
            },
            "access_token_ttl_secs",
        ),
    ];
    for (new, field) in cases {
        let described = format!("{new:?}");
        assert_eq!(
            invalid_field(state.when(register(new))),
            Some(field.to_owned()),
            "{described}"
        );
    }
}

#[test]
fn registration_accepts_values_at_the_bounds() {
    let state = given::<OAuthClientState>([]);
    let cases = vec![
        NewClient {
            client_id: "a".repeat(64),
            ..backend()
        },
        NewClient {
            client_id: "x".into(),
            ..backend()
        },
        NewClient {
            name: "n".repeat(100),
            ..backend()
        },
        NewClient {
            access_token_ttl_secs: Some(MIN_ACCESS_TOKEN_TTL_SECS),
            ..backend()
        },
        NewClient {
            access_token_ttl_secs: Some(MAX_ACCESS_TOKEN_TTL_SECS),
            ..backend()
        },
        NewClient {
            allowed_scopes: vec![],
            ..backend()
        },
        NewClient {
            allowed_scopes: (0..validate::MAX_SCOPES).map(|i| format!("s{i}")).collect(),
            ..backend()
        },
        NewClient {
            redirect_uris: (0..MAX_REDIRECT_URIS)
                .map(|i| format!("https://app.example.com/cb{i}"))
                .collect(),
            ..spa()
        },
        // A confidential client may use every grant type at once.
        NewClient {
            grant_types: KNOWN_GRANT_TYPES.map(str::to_owned).to_vec(),
            redirect_uris: strings(&["https://app.example.com/cb"]),
            ..backend()
        },
        // A public client with the code flow only, and redirect URIs kept with no code flow.
        NewClient {
            grant_types: strings(&[GRANT_AUTHORIZATION_CODE]),
            ..spa()
        },
        NewClient {
            redirect_uris: strings(&["https://app.example.com/cb"]),
            ..backend()
        },
    ];
    for new in cases {
        let described = format!("{new:?}");
        let result = state.when(register(new));
        assert!(
            matches!(&result, Ok(events) if events.len() == 1),
            "{described}: {result:?}"
        );
    }
}

#[test]
fn redirect_uris_must_be_https_or_loopback_http_without_fragment_or_userinfo() {
    let state = given::<OAuthClientState>([]);
    let with_uri = |uri: &str| {
        register(NewClient {
            redirect_uris: vec![uri.to_owned()],
            ..spa()
        })
    };
    for good in [
        "https://app.example.com/callback",
        "https://app.example.com",
        "https://app.example.com:8443/cb?tenant=acme&x=1",
        "https://10.0.0.5/cb",
        "https://[2001:db8::1]:8443/cb",
        "HTTPS://app.example.com/cb",
        "http://localhost/cb",
        "http://localhost:51004/cb",
        "http://127.0.0.1:8080/",
        "http://[::1]:9000/cb",
        "http://[::1]",
    ] {
        let result = state.when(with_uri(good));
        assert!(
            matches!(&result, Ok(events) if events.len() == 1),
            "{good}: {result:?}"
        );
    }
    let too_long = format!(
        "https://app.example.com/{}",
        "a".repeat(MAX_REDIRECT_URI_CHARS)
    );
    for bad in [
        // Not http(s), or not absolute.
        "/callback",
        "app.example.com/cb",
        "https:app.example.com/cb",
        "https:/app.example.com/cb",
        "https:///cb",
        "https://",
        "https://:443/cb",
        "ftp://app.example.com/cb",
        "com.example.app://cb",
        "javascript://app.example.com/%0aalert(1)",
        "",
        // Plain http off loopback, or on a look-alike of it.
        "http://app.example.com/cb",
        "http://localhost.example.com/cb",
        "http://127.0.0.2/cb",
        "http://127.1/cb",
        "http://LOCALHOST/cb",
        "http://[::2]/cb",
        "http://[0:0:0:0:0:0:0:1]/cb",
        // Fragments, even empty.
        "https://app.example.com/cb#frag",
        "https://app.example.com/cb#",
        // User information.
        "https://user:pw@app.example.com/cb",
        "https://@app.example.com/cb",
        "http://user@localhost/cb",
        "https://app.example.com@evil.example/cb",
        // Characters the URL parser would silently fix up.
        "https://app.example.com/c b",
        "https://app.example.com/cb\n",
        "https://app.example.com/c\tb",
        " https://app.example.com/cb",
        "https:\\\\app.example.com\\cb",
        "https://app.exämple.com/cb",
        // Syntax the parser refuses.
        "https://app.example.com:99999/cb",
        "https://app.example.com:port/cb",
        "https://[::1/cb",
        "https://exa%mple.com/cb",
        &too_long,
    ] {
        assert_eq!(
            invalid_field(state.when(with_uri(bad))),
            Some("redirect_uris[0]".to_owned()),
            "{bad:?}"
        );
    }
}

// --- Update ---

#[test]
fn an_update_records_only_the_fields_that_change() {
    let changes = ClientChanges {
        name: Some(" Web app ".into()),
        grant_types: Some(strings(&[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN])),
        redirect_uris: Some(strings(&["https://app.example.com/v2/callback"])),
        allowed_scopes: Some(strings(&["openid", "profile", "email"])),
        access_token_ttl_secs: Some(900),
        ..ClientChanges::default()
    };
    assert_eq!(
        given::<OAuthClientState>([spa_registered()]).when(update(changes)),
        Ok(vec![Event::OAuthClientUpdated(OAuthClientUpdatedV2 {
            redirect_uris: Some(strings(&["https://app.example.com/v2/callback"])),
            allowed_scopes: Some(strings(&["openid", "profile", "email"])),
            ..OAuthClientUpdatedV2::default()
        })])
    );
}

#[test]
fn a_new_name_is_trimmed_and_recorded() {
    assert_eq!(
        given::<OAuthClientState>([spa_registered()]).when(update(ClientChanges {
            name: Some("  Web app v2 ".into()),
            ..ClientChanges::default()
        })),
        Ok(vec![Event::OAuthClientUpdated(OAuthClientUpdatedV2 {
            name: Some("Web app v2".into()),
            ..OAuthClientUpdatedV2::default()
        })])
    );
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    let state = given::<OAuthClientState>([spa_registered()]);
    assert_eq!(state.when(update(ClientChanges::default())), Ok(vec![]));
    assert_eq!(
        state.when(update(ClientChanges {
            name: Some("  Web app".into()),
            grant_types: Some(strings(&[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN])),
            redirect_uris: Some(strings(&[
                "https://app.example.com/callback",
                "http://localhost:8080/cb"
            ])),
            allowed_scopes: Some(strings(&["openid", "profile"])),
            access_token_ttl_secs: Some(900),
            ..ClientChanges::default()
        })),
        Ok(vec![])
    );
}

#[test]
fn a_reordered_list_is_a_change() {
    assert_eq!(
        given::<OAuthClientState>([spa_registered()]).when(update(ClientChanges {
            allowed_scopes: Some(strings(&["profile", "openid"])),
            ..ClientChanges::default()
        })),
        Ok(vec![Event::OAuthClientUpdated(OAuthClientUpdatedV2 {
            allowed_scopes: Some(strings(&["profile", "openid"])),
            ..OAuthClientUpdatedV2::default()
        })])
    );
}

#[test]
fn updates_are_checked_against_the_merged_client() {
    let backend = given::<OAuthClientState>([backend_registered()]);
    let spa = given::<OAuthClientState>([spa_registered()]);
    let cases: Vec<(
        &crate::testing::Given<OAuthClientState>,
        ClientChanges,
        &str,
    )> = vec![
        (
            &spa,
            ClientChanges {
                name: Some(" ".into()),
                ..ClientChanges::default()
            },
            "name",
        ),
        // The code flow keeps needing a redirect URI.
        (
            &spa,
            ClientChanges {
                redirect_uris: Some(vec![]),
                ..ClientChanges::default()
            },
            "redirect_uris",
        ),
        // Turning the code flow on needs redirect URIs the client does not have yet.
        (
            &backend,
            ClientChanges {
                grant_types: Some(strings(&[
                    GRANT_CLIENT_CREDENTIALS,
                    GRANT_AUTHORIZATION_CODE,
                ])),
                ..ClientChanges::default()
            },
            "redirect_uris",
        ),
        // A public client stays unable to use client_credentials.
        (
            &spa,
            ClientChanges {
                grant_types: Some(strings(&[GRANT_CLIENT_CREDENTIALS])),
                ..ClientChanges::default()
            },
            "grant_types",
        ),
        // Dropping the code flow while keeping refresh tokens.
        (
            &spa,
            ClientChanges {
                grant_types: Some(strings(&[GRANT_REFRESH_TOKEN])),
                ..ClientChanges::default()
            },
            "grant_types",
        ),
        (
            &spa,
            ClientChanges {
                grant_types: Some(vec![]),
                ..ClientChanges::default()
            },
            "grant_types",
        ),
        (
            &spa,
            ClientChanges {
                grant_types: Some(strings(&[GRANT_AUTHORIZATION_CODE, "implicit"])),
                ..ClientChanges::default()
            },
            "grant_types[1]",
        ),
        (
            &spa,
            ClientChanges {
                redirect_uris: Some(strings(&["https://app.example.com/cb#x"])),
                ..ClientChanges::default()
            },
            "redirect_uris[0]",
        ),
        (
            &backend,
            ClientChanges {
                allowed_scopes: Some(strings(&["billing.read", "billing.read"])),
                ..ClientChanges::default()
            },
            "allowed_scopes[1]",
        ),
        (
            &backend,
            ClientChanges {
                access_token_ttl_secs: Some(MAX_ACCESS_TOKEN_TTL_SECS + 1),
                ..ClientChanges::default()
            },
            "access_token_ttl_secs",
        ),
    ];
    for (state, changes, field) in cases {
        let described = format!("{changes:?}");
        assert_eq!(
            invalid_field(state.when(update(changes))),
            Some(field.to_owned()),
            "{described}"
        );
    }
}

#[test]
fn fields_that_only_make_sense_together_can_change_together() {
    assert_eq!(
        given::<OAuthClientState>([backend_registered()]).when(update(ClientChanges {
            grant_types: Some(strings(&[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN])),
            redirect_uris: Some(strings(&["https://billing.example.com/cb"])),
            ..ClientChanges::default()
        })),
        Ok(vec![Event::OAuthClientUpdated(OAuthClientUpdatedV2 {
            grant_types: Some(strings(&[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN])),
            redirect_uris: Some(strings(&["https://billing.example.com/cb"])),
            ..OAuthClientUpdatedV2::default()
        })])
    );
}

#[test]
fn updating_an_unknown_client_is_not_found() {
    assert_eq!(
        given::<OAuthClientState>([]).when(update(ClientChanges {
            name: Some("x".into()),
            ..ClientChanges::default()
        })),
        Err(DomainError::NotFound)
    );
}

#[test]
fn a_deactivated_client_cannot_be_updated() {
    let state = given::<OAuthClientState>([spa_registered(), deactivated(None)]);
    let refused = Err(DomainError::IllegalTransition {
        from: "deactivated".into(),
        action: "update a client",
    });
    assert_eq!(
        state.when(update(ClientChanges {
            name: Some("Renamed".into()),
            ..ClientChanges::default()
        })),
        refused
    );
    assert_eq!(state.when(update(ClientChanges::default())), refused);
}

// --- Secret regeneration ---

#[test]
fn a_confidential_client_gets_a_new_secret() {
    assert_eq!(
        given::<OAuthClientState>([backend_registered()]).when(
            OAuthClientCommand::RegenerateSecret {
                secret_hash: NEW_SECRET
            }
        ),
        Ok(vec![Event::OAuthClientSecretRegenerated(
            OAuthClientSecretRegeneratedV1 {
                secret_hash: NEW_SECRET.into()
            }
        )])
    );
}

#[test]
fn a_secret_is_regenerated_only_for_an_active_confidential_client() {
    let regenerate = || OAuthClientCommand::RegenerateSecret {
        secret_hash: NEW_SECRET,
    };
    assert_eq!(
        given::<OAuthClientState>([]).when(regenerate()),
        Err(DomainError::NotFound)
    );
    assert_eq!(
        given::<OAuthClientState>([backend_registered(), deactivated(None)]).when(regenerate()),
        Err(DomainError::IllegalTransition {
            from: "deactivated".into(),
            action: "regenerate a client secret",
        })
    );
    assert_eq!(
        given::<OAuthClientState>([spa_registered()]).when(regenerate()),
        Err(DomainError::Conflict(
            "a public client has no secret".into()
        ))
    );
}

// --- Deactivation ---

#[test]
fn a_client_is_deactivated_once_with_a_trimmed_reason() {
    assert_eq!(
        given::<OAuthClientState>([backend_registered()]).when(OAuthClientCommand::Deactivate {
            reason: Some("  secret leaked ".into())
        }),
        Ok(vec![deactivated(Some("secret leaked"))])
    );
    assert_eq!(
        given::<OAuthClientState>([backend_registered()])
            .when(OAuthClientCommand::Deactivate { reason: None }),
        Ok(vec![deactivated(None)])
    );
    assert_eq!(
        given::<OAuthClientState>([backend_registered(), deactivated(None)])
            .when(OAuthClientCommand::Deactivate { reason: None }),
        Err(DomainError::Conflict(
            "the client is already deactivated".into()
        ))
    );
}

#[test]
fn deactivating_an_unknown_client_is_not_found() {
    assert_eq!(
        given::<OAuthClientState>([]).when(OAuthClientCommand::Deactivate { reason: None }),
        Err(DomainError::NotFound)
    );
}

#[test]
fn a_deactivation_reason_is_bounded_text() {
    let state = given::<OAuthClientState>([backend_registered()]);
    for bad in [" ".to_owned(), "r".repeat(501), "a\u{7}b".to_owned()] {
        assert_eq!(
            invalid_field(state.when(OAuthClientCommand::Deactivate { reason: Some(bad) })),
            Some("reason".to_owned())
        );
    }
    assert_eq!(
        state.when(OAuthClientCommand::Deactivate {
            reason: Some("r".repeat(500))
        }),
        Ok(vec![deactivated(Some(&"r".repeat(500)))])
    );
}

// --- Evolve ---

#[test]
fn a_whole_lifecycle_folds_into_the_expected_client() {
    let mut state = OAuthClientState::default();
    apply(&mut state, register(backend()));
    apply(
        &mut state,
        update(ClientChanges {
            name: Some("Billing".into()),
            grant_types: Some(strings(&[
                GRANT_CLIENT_CREDENTIALS,
                GRANT_AUTHORIZATION_CODE,
                GRANT_REFRESH_TOKEN,
            ])),
            redirect_uris: Some(strings(&["https://billing.example.com/cb"])),
            allowed_scopes: Some(strings(&["billing.read"])),
            access_token_ttl_secs: Some(600),
            ..ClientChanges::default()
        }),
    );
    apply(
        &mut state,
        OAuthClientCommand::RegenerateSecret {
            secret_hash: NEW_SECRET,
        },
    );
    let expected_active = OAuthClient {
        client_id: "cli_Backend-01.x".into(),
        name: "Billing".into(),
        client_type: ClientType::Confidential,
        grant_types: strings(&[
            GRANT_CLIENT_CREDENTIALS,
            GRANT_AUTHORIZATION_CODE,
            GRANT_REFRESH_TOKEN,
        ]),
        redirect_uris: strings(&["https://billing.example.com/cb"]),
        allowed_scopes: strings(&["billing.read"]),
        access_token_ttl_secs: 600,
        secret_hash: Some(NEW_SECRET),
        created_by: "admin".into(),
        active: true,
        deactivation_reason: None,
        oidc: Default::default(),
    };
    assert_eq!(state.client, Some(expected_active.clone()));

    apply(
        &mut state,
        OAuthClientCommand::Deactivate {
            reason: Some("retired".into()),
        },
    );
    assert_eq!(
        state.client,
        Some(OAuthClient {
            active: false,
            deactivation_reason: Some("retired".into()),
            ..expected_active
        })
    );
}

#[test]
fn evolve_ignores_other_events_and_events_before_registration() {
    let unrelated = Event::ApiKeyRevoked(ApiKeyRevokedV1 { reason: None });
    let orphans = [
        Event::OAuthClientUpdated(OAuthClientUpdatedV2 {
            name: Some("x".into()),
            ..OAuthClientUpdatedV2::default()
        }),
        Event::OAuthClientSecretRegenerated(OAuthClientSecretRegeneratedV1 {
            secret_hash: NEW_SECRET.into(),
        }),
        deactivated(Some("x")),
        unrelated.clone(),
    ];
    assert_eq!(
        given::<OAuthClientState>(orphans).state,
        OAuthClientState::default()
    );
    assert_eq!(
        given::<OAuthClientState>([spa_registered(), unrelated]).state,
        given::<OAuthClientState>([spa_registered()]).state
    );
}

#[test]
fn allows_grant_reflects_the_registered_grant_types() {
    let state = given::<OAuthClientState>([spa_registered()]).state;
    let Some(client) = state.client else {
        panic!("registered")
    };
    assert!(client.allows_grant(GRANT_AUTHORIZATION_CODE));
    assert!(client.allows_grant(GRANT_REFRESH_TOKEN));
    assert!(!client.allows_grant(GRANT_CLIENT_CREDENTIALS));
    assert!(!client.allows_grant("Authorization_Code"));
    assert!(!client.allows_grant(""));
}

// --- Scopes of a token request ---

#[test]
fn no_or_blank_scope_grants_every_allowed_scope() {
    let allowed = strings(&["billing.read", "billing:write"]);
    for requested in [None, Some(""), Some("   ")] {
        assert_eq!(
            grant_scopes(&allowed, requested),
            Ok(allowed.clone()),
            "{requested:?}"
        );
    }
    assert_eq!(grant_scopes(&[], None), Ok(vec![]));
}

#[test]
fn a_subset_of_the_allowed_scopes_is_granted_in_request_order() {
    let allowed = strings(&["a", "b:write", "c.read"]);
    assert_eq!(
        grant_scopes(&allowed, Some("c.read a")),
        Ok(strings(&["c.read", "a"]))
    );
    assert_eq!(
        grant_scopes(&allowed, Some("  b:write   a ")),
        Ok(strings(&["b:write", "a"]))
    );
}

#[test]
fn duplicate_requested_scopes_collapse_to_their_first_appearance() {
    let allowed = strings(&["a", "b", "c"]);
    assert_eq!(
        grant_scopes(&allowed, Some("b a b c a")),
        Ok(strings(&["b", "a", "c"]))
    );
}

#[test]
fn a_scope_beyond_the_allowed_ones_is_refused_by_name() {
    let allowed = strings(&["billing.read"]);
    assert_eq!(
        grant_scopes(&allowed, Some("billing.read billing:admin")),
        Err(ScopeError::NotAllowed("billing:admin".into()))
    );
    assert_eq!(
        grant_scopes(&[], Some("billing.read")),
        Err(ScopeError::NotAllowed("billing.read".into()))
    );
    // A prefix or a case variant of an allowed scope is not that scope.
    assert_eq!(
        grant_scopes(&allowed, Some("billing")),
        Err(ScopeError::NotAllowed("billing".into()))
    );
}

#[test]
fn malformed_scope_requests_are_refused_before_permission_is_checked() {
    let allowed = strings(&["a", "b"]);
    for bad in [
        "A",
        "a,b",
        "a\tb",
        "a\nb",
        "a\"",
        "unknown Bad",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(
                grant_scopes(&allowed, Some(bad)),
                Err(ScopeError::Malformed(_))
            ),
            "{bad:?}"
        );
    }
    let many = (0..=validate::MAX_SCOPES)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>();
    assert!(matches!(
        grant_scopes(&many, Some(&many.join(" "))),
        Err(ScopeError::Malformed(_))
    ));
    assert_eq!(
        grant_scopes(&many, Some(&many[..validate::MAX_SCOPES].join(" "))),
        Ok(many[..validate::MAX_SCOPES].to_vec())
    );
}

#[test]
fn scope_error_messages_fit_an_oauth_error_description() {
    // RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
    let fits = |text: &str| {
        text.bytes()
            .all(|c| matches!(c, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    };
    let allowed = strings(&["a"]);
    for requested in ["B\"\\", "b", &"a ".repeat(60)] {
        let error = grant_scopes(&allowed, Some(requested)).expect_err("refused");
        assert!(fits(&error.to_string()), "{error}");
    }
}

// --- Properties ---

fn base_client() -> OAuthClient {
    OAuthClient {
        client_id: "cli".into(),
        name: "Base".into(),
        client_type: ClientType::Confidential,
        grant_types: KNOWN_GRANT_TYPES.map(str::to_owned).to_vec(),
        redirect_uris: strings(&["https://app.example.com/cb"]),
        allowed_scopes: strings(&["read"]),
        access_token_ttl_secs: DEFAULT_ACCESS_TOKEN_TTL_SECS,
        secret_hash: Some(SECRET),
        created_by: "admin".into(),
        active: true,
        deactivation_reason: None,
        oidc: Default::default(),
    }
}

fn base_registered() -> Event {
    let client = base_client();
    Event::OAuthClientRegistered(OAuthClientRegisteredV2 {
        client_id: client.client_id,
        name: client.name,
        client_type: client.client_type,
        grant_types: client.grant_types,
        redirect_uris: client.redirect_uris,
        allowed_scopes: client.allowed_scopes,
        access_token_ttl_secs: client.access_token_ttl_secs,
        secret_hash: client.secret_hash.into(),
        created_by: client.created_by,
        oidc: Default::default(),
    })
}

/// Valid change sets for [`base_client`], often repeating its current values.
fn arb_changes() -> impl Strategy<Value = ClientChanges> {
    let base = base_client();
    let name = prop_oneof![
        Just(base.name.clone()),
        "[A-Za-z0-9]{1,10}( [A-Za-z0-9]{1,10})?",
    ];
    // Any non-empty subset of the grant types, in any order, where refresh_token comes with
    // authorization_code (the base client is confidential and has redirect URIs).
    let grant_types = proptest::sample::subsequence(KNOWN_GRANT_TYPES.to_vec(), 1..=3)
        .prop_filter("refresh_token needs authorization_code", |grants| {
            !grants.contains(&GRANT_REFRESH_TOKEN) || grants.contains(&GRANT_AUTHORIZATION_CODE)
        })
        .prop_shuffle()
        .prop_map(|grants| grants.into_iter().map(str::to_owned).collect::<Vec<_>>());
    // Non-empty, so that authorization_code stays valid.
    let redirect_uris =
        proptest::collection::btree_set(0u8..30, 1..=MAX_REDIRECT_URIS).prop_map(|ids| {
            ids.into_iter()
                .map(|id| match id {
                    0 => "https://app.example.com/cb".to_owned(),
                    1 => "http://localhost:8080/cb".to_owned(),
                    2 => "http://[::1]/cb".to_owned(),
                    id => format!("https://app{id}.example.com/cb?v={id}"),
                })
                .collect::<Vec<_>>()
        });
    let allowed_scopes =
        proptest::collection::btree_set("[a-z0-9]{1,8}([:._-][a-z0-9]{1,8})?", 0..=10)
            .prop_map(|scopes| scopes.into_iter().collect::<Vec<_>>());
    let ttl = prop_oneof![
        Just(base.access_token_ttl_secs),
        MIN_ACCESS_TOKEN_TTL_SECS..=MAX_ACCESS_TOKEN_TTL_SECS,
    ];
    (
        proptest::option::of(name),
        proptest::option::of(grant_types),
        proptest::option::of(redirect_uris),
        proptest::option::of(allowed_scopes),
        proptest::option::of(ttl),
    )
        .prop_map(
            |(name, grant_types, redirect_uris, allowed_scopes, access_token_ttl_secs)| {
                ClientChanges {
                    name,
                    grant_types,
                    redirect_uris,
                    allowed_scopes,
                    access_token_ttl_secs,
                    ..ClientChanges::default()
                }
            },
        )
}

proptest! {
    #[test]
    fn a_valid_update_folds_into_the_merged_client(changes in arb_changes()) {
        let base = base_client();
        let expected = OAuthClient {
            name: changes.name.clone().unwrap_or_else(|| base.name.clone()),
            grant_types: changes.grant_types.clone().unwrap_or_else(|| base.grant_types.clone()),
            redirect_uris: changes
                .redirect_uris
                .clone()
                .unwrap_or_else(|| base.redirect_uris.clone()),
            allowed_scopes: changes
                .allowed_scopes
                .clone()
                .unwrap_or_else(|| base.allowed_scopes.clone()),
            access_token_ttl_secs: changes
                .access_token_ttl_secs
                .unwrap_or(base.access_token_ttl_secs),
            ..base.clone()
        };

        let mut state = given::<OAuthClientState>([base_registered()]).state;
        prop_assert_eq!(state.client.as_ref(), Some(&base));
        let events = state.decide(update(changes.clone()));
        prop_assert!(events.is_ok(), "{:?} refused: {:?}", changes, events);
        let events = events.unwrap_or_default();
        for event in &events {
            state.evolve(event);
        }
        prop_assert_eq!(state.client.as_ref(), Some(&expected));

        // Exactly the changed fields are recorded; nothing at all when nothing changes.
        if expected == base {
            prop_assert_eq!(events, vec![]);
        } else {
            let [Event::OAuthClientUpdated(recorded)] = events.as_slice() else {
                return Err(TestCaseError::fail(format!("one update expected, got {events:?}")));
            };
            prop_assert_eq!(recorded.name.is_some(), expected.name != base.name);
            prop_assert_eq!(
                recorded.grant_types.is_some(),
                expected.grant_types != base.grant_types
            );
            prop_assert_eq!(
                recorded.redirect_uris.is_some(),
                expected.redirect_uris != base.redirect_uris
            );
            prop_assert_eq!(
                recorded.allowed_scopes.is_some(),
                expected.allowed_scopes != base.allowed_scopes
            );
            prop_assert_eq!(
                recorded.access_token_ttl_secs.is_some(),
                expected.access_token_ttl_secs != base.access_token_ttl_secs
            );
        }
    }

    #[test]
    fn granted_scopes_are_always_allowed_distinct_and_requested(
        allowed in proptest::collection::btree_set("[a-c]{1,2}", 0..6),
        requested in proptest::collection::vec("[a-d]{1,2}", 0..8),
    ) {
        let allowed: Vec<String> = allowed.into_iter().collect();
        let text = requested.join(" ");
        match grant_scopes(&allowed, Some(&text)) {
            Ok(granted) => {
                let mut seen: Vec<&String> = Vec::new();
                for scope in &granted {
                    prop_assert!(allowed.contains(scope));
                    prop_assert!(!seen.contains(&scope));
                    seen.push(scope);
                    if !requested.is_empty() {
                        prop_assert!(requested.contains(scope));
                    }
                }
                if requested.is_empty() {
                    prop_assert_eq!(granted, allowed);
                }
            }
            Err(ScopeError::NotAllowed(scope)) => {
                prop_assert!(requested.contains(&scope));
                prop_assert!(!allowed.contains(&scope));
            }
            Err(error) => prop_assert!(false, "unexpected {:?}", error),
        }
    }
}

// --- Redirect URI matching ---

#[test]
fn a_redirect_uri_matches_exactly_or_by_a_loopback_port() {
    let client = OAuthClient {
        redirect_uris: strings(&[
            "https://app.example.com/cb",
            "http://127.0.0.1/native",
            "http://[::1]:8080/cb?x=1",
        ]),
        ..base_client()
    };
    for (presented, matches) in [
        ("https://app.example.com/cb", true),
        ("https://app.example.com/cb/", false),
        ("https://APP.example.com/cb", false),
        ("https://app.example.com/cb?extra=1", false),
        ("https://app.example.com:8443/cb", false),
        ("http://127.0.0.1/native", true),
        ("http://127.0.0.1:51234/native", true),
        ("http://127.0.0.1:51234/other", false),
        ("http://127.0.0.1:/native", false),
        ("http://127.0.0.1:x/native", false),
        ("http://[::1]/cb?x=1", true),
        ("http://[::1]:1/cb?x=1", true),
        ("http://[::1]:1/cb?x=2", false),
        ("http://localhost:1/native", false),
        ("https://127.0.0.1:5/native", false),
    ] {
        assert_eq!(
            client.redirect_uri_matches(presented),
            matches,
            "{presented}"
        );
    }
}
