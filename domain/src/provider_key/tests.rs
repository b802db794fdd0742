//! Given events, when a command, then events: a provider key's rules, and which key a
//! resolution hands out in strict and in fallback mode.

use super::*;
use crate::testing::given;
use tessera_event_schemas::events::CredentialRewrappedV1;

fn set(sealed: &str, version: u32) -> Event {
    Event::ProviderKeySet(ProviderKeySetV1 {
        sealed: sealed.to_owned().into(),
        key_version: version,
        last4: "x9Qz".into(),
    })
}

fn set_command(sealed: &str) -> ProviderKeyCommand {
    ProviderKeyCommand::Set {
        sealed: sealed.into(),
        key_version: 1,
        last4: "x9Qz".into(),
    }
}

fn invalidated() -> Event {
    Event::ProviderKeyInvalidated(ProviderKeyInvalidatedV1 {})
}

fn state(events: &[Event]) -> ProviderKeyState {
    ProviderKeyState::replay(events)
}

#[test]
fn only_seed_002s_seven_providers_are_accepted_and_the_refusal_names_them() {
    for name in PROVIDERS {
        assert!(provider(name).is_ok(), "{name}");
    }
    for name in ["OpenAI", "gemini", "", "openai/../x"] {
        let Err(DomainError::Validation { field, message }) = provider(name) else {
            panic!("{name} was accepted");
        };
        assert_eq!(field, "provider");
        assert!(message.contains("openai, anthropic, azure, berget, mistral, ovhcloud, vllm"));
    }
}

#[test]
fn a_key_gives_its_last_four_characters_and_short_or_spaced_keys_are_refused() {
    assert_eq!(check_api_key("sk-proj-abcd1234").unwrap(), "1234");
    for bad in ["short12", "sk proj with spaces", "sk-\u{e9}t\u{e9}-key", ""] {
        assert!(
            matches!(check_api_key(bad), Err(DomainError::Validation { field, .. }) if field == "api_key"),
            "{bad:?} was accepted"
        );
    }
    assert!(check_api_key(&"k".repeat(MAX_KEY_LENGTH + 1)).is_err());
}

#[test]
fn setting_a_key_records_it_sealed_with_its_last_four_characters() {
    let events = given::<ProviderKeyState>([])
        .when(set_command("tsr:v1:AAAA"))
        .unwrap();
    assert_eq!(events, vec![set("tsr:v1:AAAA", 1)]);
    let key = state(&events).key.unwrap();
    assert_eq!(key.last4, "x9Qz");
    assert!(!key.invalid);
}

#[test]
fn setting_a_new_key_clears_the_invalid_mark() {
    let history = [set("tsr:v1:AAAA", 1), invalidated()];
    assert!(state(&history).key.unwrap().invalid);
    let events = given::<ProviderKeyState>(history.clone())
        .when(set_command("tsr:v1:BBBB"))
        .unwrap();
    let after = state(&[history.as_slice(), events.as_slice()].concat());
    let key = after.key.unwrap();
    assert!(!key.invalid);
    assert_eq!(key.sealed, "tsr:v1:BBBB");
}

#[test]
fn invalidating_needs_a_key_and_twice_changes_nothing() {
    assert_eq!(
        given::<ProviderKeyState>([]).when(ProviderKeyCommand::Invalidate),
        Err(DomainError::NotFound)
    );
    assert_eq!(
        given::<ProviderKeyState>([set("tsr:v1:AAAA", 1)]).when(ProviderKeyCommand::Invalidate),
        Ok(vec![invalidated()])
    );
    assert_eq!(
        given::<ProviderKeyState>([set("tsr:v1:AAAA", 1), invalidated()])
            .when(ProviderKeyCommand::Invalidate),
        Ok(vec![])
    );
}

#[test]
fn removing_needs_a_key_and_leaves_none() {
    assert_eq!(
        given::<ProviderKeyState>([]).when(ProviderKeyCommand::Remove),
        Err(DomainError::NotFound)
    );
    let events = given::<ProviderKeyState>([set("tsr:v1:AAAA", 1)])
        .when(ProviderKeyCommand::Remove)
        .unwrap();
    assert_eq!(
        events,
        vec![Event::ProviderKeyRemoved(ProviderKeyRemovedV1 {})]
    );
    let after = state(&[set("tsr:v1:AAAA", 1), events[0].clone()]);
    assert_eq!(after.key, None);
    assert_eq!(
        given::<ProviderKeyState>([set("tsr:v1:AAAA", 1), events[0].clone()])
            .when(ProviderKeyCommand::Remove),
        Err(DomainError::NotFound)
    );
}

#[test]
fn a_rewrap_replaces_the_sealed_key_and_its_version_and_keeps_the_rest() {
    let rewrapped = Event::CredentialRewrapped(CredentialRewrappedV1 {
        sealed: "tsr:v2:CCCC".to_owned().into(),
        key_version: 2,
    });
    let key = state(&[set("tsr:v1:AAAA", 1), invalidated(), rewrapped])
        .key
        .unwrap();
    assert_eq!(
        (key.sealed.as_str(), key.key_version, key.last4.as_str()),
        ("tsr:v2:CCCC", 2, "x9Qz")
    );
    assert!(
        key.invalid,
        "a rewrap is the same key, still reported invalid"
    );
}

#[test]
fn a_tenant_key_is_handed_out_in_both_modes() {
    let tenant = state(&[set("tsr:v1:TENANT", 1)]);
    let platform = state(&[set("tsr:v1:PLATFORM", 1)]);
    for strict in [true, false] {
        assert!(!needs_platform(&tenant, strict));
        let (source, key) = resolve(&tenant, Some(&platform), strict).unwrap();
        assert_eq!(
            (source, key.sealed.as_str()),
            (Source::Tenant, "tsr:v1:TENANT")
        );
    }
}

#[test]
fn strict_mode_never_falls_back_to_the_platform_key() {
    let tenant = ProviderKeyState::default();
    let platform = state(&[set("tsr:v1:PLATFORM", 1)]);
    assert!(!needs_platform(&tenant, true));
    assert_eq!(
        resolve(&tenant, Some(&platform), true),
        Err(Unresolved::TenantKeyRequired)
    );
}

#[test]
fn without_strict_mode_a_tenant_without_a_key_gets_the_platform_key() {
    let tenant = ProviderKeyState::default();
    let platform = state(&[set("tsr:v1:PLATFORM", 1)]);
    assert!(needs_platform(&tenant, false));
    let (source, key) = resolve(&tenant, Some(&platform), false).unwrap();
    assert_eq!(
        (source, key.sealed.as_str()),
        (Source::Platform, "tsr:v1:PLATFORM")
    );
    // A removed tenant key falls back the same way.
    let removed = state(&[
        set("tsr:v1:TENANT", 1),
        Event::ProviderKeyRemoved(ProviderKeyRemovedV1 {}),
    ]);
    assert_eq!(
        resolve(&removed, Some(&platform), false).map(|(source, _)| source),
        Ok(Source::Platform)
    );
}

#[test]
fn an_invalid_tenant_key_is_an_error_in_both_modes_and_never_a_fallback() {
    let tenant = state(&[set("tsr:v1:TENANT", 1), invalidated()]);
    let platform = state(&[set("tsr:v1:PLATFORM", 1)]);
    for strict in [true, false] {
        assert!(!needs_platform(&tenant, strict));
        assert_eq!(
            resolve(&tenant, Some(&platform), strict),
            Err(Unresolved::TenantKeyInvalid)
        );
    }
}

#[test]
fn without_any_usable_key_the_fallback_says_whether_the_platform_key_is_invalid() {
    let tenant = ProviderKeyState::default();
    assert_eq!(
        resolve(&tenant, Some(&ProviderKeyState::default()), false),
        Err(Unresolved::NoKey {
            platform_invalid: false
        })
    );
    let platform = state(&[set("tsr:v1:PLATFORM", 1), invalidated()]);
    assert_eq!(
        resolve(&tenant, Some(&platform), false),
        Err(Unresolved::NoKey {
            platform_invalid: true
        })
    );
}

#[test]
fn azure_and_vllm_need_an_endpoint_and_only_azure_takes_its_deployment_settings() {
    let endpoint = Some("https://example.openai.azure.com");
    assert!(check_settings("openai", None, None, None).is_ok());
    assert!(check_settings("vllm", Some("http://127.0.0.1:8000/v1"), None, None).is_ok());
    assert!(check_settings("azure", endpoint, Some("2024-06-01"), Some("gpt-4o")).is_ok());
    let field = |result: Result<(), DomainError>| match result {
        Err(DomainError::Validation { field, .. }) => field,
        other => panic!("accepted: {other:?}"),
    };
    assert_eq!(field(check_settings("azure", None, None, None)), "endpoint");
    assert_eq!(field(check_settings("vllm", None, None, None)), "endpoint");
    assert_eq!(
        field(check_settings(
            "openai",
            Some("http://llm.example.com"),
            None,
            None
        )),
        "endpoint"
    );
    assert_eq!(
        field(check_settings("openai", None, Some("2024-06-01"), None)),
        "api_version"
    );
    assert_eq!(
        field(check_settings("azure", endpoint, None, Some("gpt 4o"))),
        "deployment_name"
    );
}
