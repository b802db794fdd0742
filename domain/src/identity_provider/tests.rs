//! Given events, when a command, then events: the identity provider's rules.

use super::*;

fn config() -> IdentityProvider {
    IdentityProvider {
        provider: "generic_oidc".into(),
        display_name: "Upstream".into(),
        canonical_public_origin: "https://eneo.example.com".into(),
        redirect_path: DEFAULT_REDIRECT_PATH.into(),
        discovery_endpoint: Some("https://idp.example.com/.well-known/openid-configuration".into()),
        issuer: "https://idp.example.com".into(),
        authorization_endpoint: "https://idp.example.com/authorize".into(),
        token_endpoint: "https://idp.example.com/token".into(),
        jwks_uri: "https://idp.example.com/jwks".into(),
        client_id: "eneo".into(),
        sealed_client_secret: vec![],
        scopes: vec!["openid".into(), "email".into()],
        allowed_domains: vec!["Example.COM".into()],
        claims_mapping: BTreeMap::new(),
        trust_email: false,
        previous_redirect_uri: None,
        previous_until: None,
    }
}

fn configure(
    config: IdentityProvider,
    secret: Option<Vec<u8>>,
    now: i64,
) -> IdentityProviderCommand {
    IdentityProviderCommand::Configure(Box::new(Configure {
        config,
        sealed_client_secret: secret,
        now: Timestamp::from_micros(now * 1_000_000),
        grace_seconds: 600,
    }))
}

fn given(events: &[Event]) -> IdentityProviderState {
    IdentityProviderState::replay(events)
}

#[test]
fn a_first_configuration_needs_a_secret_and_records_domains_lower_cased() {
    let state = IdentityProviderState::default();
    assert!(matches!(
        state.decide(configure(config(), None, 0)),
        Err(DomainError::Validation { field, .. }) if field == "client_secret"
    ));
    let events = state
        .decide(configure(config(), Some(vec![7; 40]), 0))
        .unwrap();
    let state = given(&events);
    let provider = state.provider.unwrap();
    assert_eq!(provider.allowed_domains, vec!["example.com".to_owned()]);
    assert_eq!(provider.sealed_client_secret, vec![7; 40]);
    assert!(provider.allows_domain("EXAMPLE.com"));
    assert!(!provider.allows_domain("evil.com"));
}

#[test]
fn a_later_configuration_without_a_secret_keeps_it_and_the_same_one_appends_nothing() {
    let first = IdentityProviderState::default()
        .decide(configure(config(), Some(vec![7; 40]), 0))
        .unwrap();
    let state = given(&first);
    assert!(
        state
            .decide(configure(config(), None, 10))
            .unwrap()
            .is_empty()
    );
    let changed = IdentityProvider {
        trust_email: true,
        ..config()
    };
    let events = state.decide(configure(changed, None, 10)).unwrap();
    let state = given(&[first, events].concat());
    assert_eq!(state.provider.unwrap().sealed_client_secret, vec![7; 40]);
}

#[test]
fn a_new_origin_keeps_the_old_redirect_uri_for_the_grace_period_only() {
    let first = IdentityProviderState::default()
        .decide(configure(config(), Some(vec![7; 40]), 0))
        .unwrap();
    let moved = IdentityProvider {
        canonical_public_origin: "https://new.example.com".into(),
        ..config()
    };
    let second = given(&first).decide(configure(moved, None, 100)).unwrap();
    let provider = given(&[first, second].concat()).provider.unwrap();
    let old = "https://eneo.example.com/login/callback";
    let at = |s: i64| Timestamp::from_micros(s * 1_000_000);
    assert!(provider.accepts_redirect_uri("https://new.example.com/login/callback", at(10_000)));
    assert!(provider.accepts_redirect_uri(old, at(699)));
    assert!(!provider.accepts_redirect_uri(old, at(700)));
    assert!(!provider.accepts_redirect_uri("https://other.example.com/login/callback", at(101)));
}

#[test]
fn plain_http_is_refused_except_on_loopback() {
    let state = IdentityProviderState::default();
    let insecure = IdentityProvider {
        canonical_public_origin: "http://eneo.example.com".into(),
        ..config()
    };
    assert!(matches!(
        state.decide(configure(insecure, Some(vec![1]), 0)),
        Err(DomainError::Validation { field, .. }) if field == "canonical_public_origin"
    ));
    let local = IdentityProvider {
        canonical_public_origin: "http://127.0.0.1:8080".into(),
        token_endpoint: "http://localhost:9000/token".into(),
        ..config()
    };
    assert!(state.decide(configure(local, Some(vec![1]), 0)).is_ok());
    let insecure_endpoint = IdentityProvider {
        jwks_uri: "http://idp.example.com/jwks".into(),
        ..config()
    };
    assert!(matches!(
        state.decide(configure(insecure_endpoint, Some(vec![1]), 0)),
        Err(DomainError::Validation { field, .. }) if field == "jwks_uri"
    ));
}

#[test]
fn unknown_providers_scopes_without_openid_bad_paths_and_unmappable_claims_are_refused() {
    let state = IdentityProviderState::default();
    let refused = |config: IdentityProvider, field: &str| {
        assert!(
            matches!(
                state.decide(configure(config, Some(vec![1]), 0)),
                Err(DomainError::Validation { field: f, .. }) if f == field
            ),
            "{field}"
        );
    };
    refused(
        IdentityProvider {
            provider: "keycloak".into(),
            ..config()
        },
        "provider",
    );
    refused(
        IdentityProvider {
            scopes: vec!["email".into()],
            ..config()
        },
        "scopes",
    );
    refused(
        IdentityProvider {
            redirect_path: "//evil.example/cb".into(),
            ..config()
        },
        "redirect_path",
    );
    refused(
        IdentityProvider {
            redirect_path: "/a/../b".into(),
            ..config()
        },
        "redirect_path",
    );
    refused(
        IdentityProvider {
            claims_mapping: [("roles".to_owned(), "groups".to_owned())].into(),
            ..config()
        },
        "claims_mapping",
    );
    refused(
        IdentityProvider {
            canonical_public_origin: "https://eneo.example.com/app".into(),
            ..config()
        },
        "canonical_public_origin",
    );
}

#[test]
fn removing_an_absent_provider_is_not_found() {
    let state = IdentityProviderState::default();
    assert_eq!(
        state.decide(IdentityProviderCommand::Remove),
        Err(DomainError::NotFound)
    );
    let first = state
        .decide(configure(config(), Some(vec![7; 40]), 0))
        .unwrap();
    let events = given(&first)
        .decide(IdentityProviderCommand::Remove)
        .unwrap();
    assert!(matches!(events[..], [Event::FederationRemoved(_)]));
    assert_eq!(given(&[first, events].concat()).provider, None);
}

#[test]
fn a_mapped_claim_is_read_under_its_upstream_name() {
    let provider = IdentityProvider {
        claims_mapping: [("email".to_owned(), "preferred_email".to_owned())].into(),
        ..config()
    };
    assert_eq!(provider.claim_name("email"), "preferred_email");
    assert_eq!(provider.claim_name("name"), "name");
}
