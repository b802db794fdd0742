//! Stream ids: the spelling of every kind, parsing it back, and what today's ids look like.

use proptest::prelude::*;

use super::*;

#[test]
fn every_stream_id_leads_with_its_tenant() {
    let tenant_id = Uuid::from_u128(42);
    assert_eq!(tenant_of(&tenant(tenant_id)), Some(tenant_id));
    assert_eq!(
        tenant_of(&api_key(tenant_id, Uuid::from_u128(7))),
        Some(tenant_id)
    );
    assert_eq!(
        tenant_of(&reservation("slug", "acme")),
        Some(SYSTEM_TENANT_ID)
    );
}

#[test]
fn every_kind_is_spelled_as_stored() {
    let t = Uuid::from_u128(42);
    let k = Uuid::from_u128(7);
    let t_ = "00000000-0000-0000-0000-00000000002a";
    let k_ = "00000000-0000-0000-0000-000000000007";
    let system = "00000000-0000-0000-0000-000000000001";
    for (id, spelled, built) in [
        (StreamId::Tenant(t), format!("{t_}/tenant"), tenant(t)),
        (
            StreamId::ApiKey {
                tenant_id: t,
                key_id: k,
            },
            format!("{t_}/api-key/{k_}"),
            api_key(t, k),
        ),
        (
            StreamId::OAuthClient {
                tenant_id: t,
                client_id: "c1".into(),
            },
            format!("{t_}/oauth-client/c1"),
            oauth_client(t, "c1"),
        ),
        (
            StreamId::Tokens {
                tenant_id: t,
                client_id: "c1".into(),
            },
            format!("{t_}/tokens/c1"),
            client_tokens(t, "c1"),
        ),
        (StreamId::Audit(t), format!("{t_}/audit"), audit(t)),
        (
            StreamId::User {
                tenant_id: t,
                user_id: k,
            },
            format!("{t_}/user/{k_}"),
            user(t, k),
        ),
        (
            StreamId::Sessions {
                tenant_id: t,
                user_id: k,
            },
            format!("{t_}/sessions/{k_}"),
            sessions(t, k),
        ),
        (StreamId::SignIns(t), format!("{t_}/sign-ins"), sign_ins(t)),
        (
            StreamId::Mfa {
                tenant_id: t,
                user_id: k,
            },
            format!("{t_}/mfa/{k_}"),
            mfa(t, k),
        ),
        (
            StreamId::WebauthnPolicy(t),
            format!("{t_}/webauthn-policy"),
            webauthn_policy(t),
        ),
        (
            StreamId::Code {
                tenant_id: t,
                code_id: k,
            },
            format!("{t_}/code/{k_}"),
            code(t, k),
        ),
        (
            StreamId::Consents {
                tenant_id: t,
                user_id: k,
            },
            format!("{t_}/consents/{k_}"),
            consents(t, k),
        ),
        (
            StreamId::Refresh {
                tenant_id: t,
                family_id: k,
            },
            format!("{t_}/refresh/{k_}"),
            refresh(t, k),
        ),
        (
            StreamId::Invitation {
                tenant_id: t,
                invitation_id: k,
            },
            format!("{t_}/invitation/{k_}"),
            invitation(t, k),
        ),
        (
            StreamId::Email {
                tenant_id: t,
                email_id: k,
            },
            format!("{t_}/email/{k_}"),
            email(t, k),
        ),
        (
            StreamId::Entitlement {
                tenant_id: t,
                product: "compliance-suite".into(),
            },
            format!("{t_}/entitlement/compliance-suite"),
            entitlement(t, "compliance-suite"),
        ),
        (
            StreamId::Product("compliance-suite".into()),
            format!("{SYSTEM_TENANT_ID}/product/compliance-suite"),
            product("compliance-suite"),
        ),
        (
            StreamId::Reservation {
                kind: "tenant-slug".into(),
                value: "acme".into(),
            },
            format!("{system}/reservation/tenant-slug/acme"),
            reservation("tenant-slug", "acme"),
        ),
    ] {
        assert_eq!(id.to_string(), spelled);
        assert_eq!(built, spelled);
        assert_eq!(StreamId::parse(&spelled), Some(id.clone()));
        assert_eq!(
            Some(id.relative().as_str()),
            spelled.split_once('/').map(|(_, rest)| rest)
        );
    }
}

#[test]
fn ids_after_a_prefix_keep_every_slash() {
    // The client id (or reservation value) is everything after its prefix, as the hand
    // parsers this replaces read it.
    let t = Uuid::from_u128(42);
    assert_eq!(
        StreamId::parse(&format!("{t}/oauth-client/a/b/")),
        Some(StreamId::OAuthClient {
            tenant_id: t,
            client_id: "a/b/".into()
        })
    );
    assert_eq!(
        StreamId::parse(&format!("{t}/tokens/")),
        Some(StreamId::Tokens {
            tenant_id: t,
            client_id: String::new()
        })
    );
    assert_eq!(
        StreamId::parse(&format!("{SYSTEM_TENANT_ID}/reservation/tenant-domain/a/b")),
        Some(StreamId::Reservation {
            kind: "tenant-domain".into(),
            value: "a/b".into()
        })
    );
}

#[test]
fn anything_else_is_not_a_stream_id() {
    let t = Uuid::from_u128(42);
    for text in [
        String::new(),
        "tenant".to_owned(),
        "not-a-uuid/tenant".to_owned(),
        format!("{t}"),
        format!("{t}/"),
        format!("{t}/tenant/extra"),
        format!("{t}/audit/extra"),
        format!("{t}/api-key/not-a-uuid"),
        format!("{t}/api-key"),
        format!("{t}/users/u1"),
        format!("{t}/sessions/not-a-uuid"),
        format!("{t}/sign-ins/extra"),
        format!("{t}/mfa/not-a-uuid"),
        format!("{t}/webauthn-policy/extra"),
        // Reservations belong to the system tenant only, and always have a kind and a value.
        format!("{t}/reservation/tenant-slug/acme"),
        format!("{SYSTEM_TENANT_ID}/reservation/tenant-slug"),
    ] {
        assert_eq!(StreamId::parse(&text), None, "{text:?}");
        assert_eq!(subject_of(&text), None, "{text:?}");
    }
}

fn uuid() -> impl Strategy<Value = Uuid> {
    prop_oneof![
        Just(Uuid::nil()),
        Just(SYSTEM_TENANT_ID),
        any::<u128>().prop_map(Uuid::from_u128),
    ]
}

/// Client ids and reservation values as awkward as a caller could make them: empty, made of
/// slashes, looking like other stream kinds, any Unicode.
fn awkward() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("/".to_owned()),
        Just("a/b".to_owned()),
        Just("tenant".to_owned()),
        Just("tokens/c1".to_owned()),
        Just(format!("{SYSTEM_TENANT_ID}/tenant")),
        "[a-z0-9/._:-]{0,24}",
        any::<String>(),
    ]
}

fn stream_id() -> impl Strategy<Value = StreamId> {
    prop_oneof![
        uuid().prop_map(StreamId::Tenant),
        (uuid(), uuid()).prop_map(|(tenant_id, key_id)| StreamId::ApiKey { tenant_id, key_id }),
        (uuid(), awkward()).prop_map(|(tenant_id, client_id)| StreamId::OAuthClient {
            tenant_id,
            client_id
        }),
        (uuid(), awkward()).prop_map(|(tenant_id, client_id)| StreamId::Tokens {
            tenant_id,
            client_id
        }),
        uuid().prop_map(StreamId::Audit),
        (uuid(), uuid()).prop_map(|(tenant_id, user_id)| StreamId::User { tenant_id, user_id }),
        (uuid(), uuid()).prop_map(|(tenant_id, user_id)| StreamId::Sessions { tenant_id, user_id }),
        uuid().prop_map(StreamId::SignIns),
        (uuid(), uuid()).prop_map(|(tenant_id, user_id)| StreamId::Mfa { tenant_id, user_id }),
        uuid().prop_map(StreamId::WebauthnPolicy),
        (uuid(), uuid()).prop_map(|(tenant_id, code_id)| StreamId::Code { tenant_id, code_id }),
        (uuid(), uuid()).prop_map(|(tenant_id, user_id)| StreamId::Consents { tenant_id, user_id }),
        (uuid(), uuid()).prop_map(|(tenant_id, family_id)| StreamId::Refresh {
            tenant_id,
            family_id
        }),
        (uuid(), uuid()).prop_map(|(tenant_id, invitation_id)| StreamId::Invitation {
            tenant_id,
            invitation_id
        }),
        (uuid(), uuid()).prop_map(|(tenant_id, email_id)| StreamId::Email {
            tenant_id,
            email_id
        }),
        // A product key never contains `/`.
        (uuid(), "[a-z0-9_-]{1,16}")
            .prop_map(|(tenant_id, product)| StreamId::Entitlement { tenant_id, product }),
        "[a-z0-9_-]{1,16}".prop_map(StreamId::Product),
        // An alias never contains `/`.
        (uuid(), "[a-z0-9_-]{1,16}")
            .prop_map(|(tenant_id, alias)| StreamId::IdentityProvider { tenant_id, alias }),
        (uuid(), uuid()).prop_map(|(tenant_id, state_id)| StreamId::FederatedSignIn {
            tenant_id,
            state_id
        }),
        uuid().prop_map(StreamId::Vault),
        "[a-z0-9_-]{1,16}".prop_map(StreamId::Integration),
        (uuid(), "[a-z0-9_-]{1,16}").prop_map(|(tenant_id, integration)| {
            StreamId::IntegrationApp {
                tenant_id,
                integration,
            }
        }),
        (uuid(), "[a-z0-9_-]{1,16}").prop_map(|(tenant_id, integration)| StreamId::Credential {
            tenant_id,
            integration
        }),
        (uuid(), "[a-z0-9_-]{1,16}").prop_map(|(tenant_id, integration)| {
            StreamId::CredentialAccess {
                tenant_id,
                integration,
            }
        }),
        (uuid(), uuid()).prop_map(|(tenant_id, state_id)| StreamId::Connect {
            tenant_id,
            state_id
        }),
        (uuid(), "[a-z0-9_-]{1,16}").prop_map(|(tenant_id, provider)| StreamId::ProviderKey {
            tenant_id,
            provider
        }),
        (uuid(), "[a-z0-9_-]{1,16}").prop_map(|(tenant_id, provider)| {
            StreamId::ProviderKeyAccess {
                tenant_id,
                provider,
            }
        }),
        // A kind never contains `/`: it is one of the reservation kinds' names.
        ("[^/]{0,16}", awkward()).prop_map(|(kind, value)| StreamId::Reservation { kind, value }),
    ]
}

proptest! {
    #[test]
    fn every_stream_id_parses_back_from_its_spelling(id in stream_id()) {
        let spelled = id.to_string();
        prop_assert_eq!(StreamId::parse(&spelled), Some(id.clone()));
        prop_assert_eq!(tenant_of(&spelled), Some(id.tenant_id()));
        prop_assert_eq!(format!("{}/{}", id.tenant_id(), id.relative()), spelled);
    }

    #[test]
    fn the_subject_of_a_stream_id_is_the_principal_it_names(id in stream_id()) {
        let spelled = id.to_string();
        let expected = match &id {
            StreamId::ApiKey { key_id, .. } => Some(key_id.to_string()),
            StreamId::OAuthClient { client_id, .. } | StreamId::Tokens { client_id, .. } => {
                Some(client_id.clone())
            }
            StreamId::User { user_id, .. } => Some(user_id.to_string()),
            StreamId::Tenant(_)
            | StreamId::Audit(_)
            | StreamId::Reservation { .. }
            | StreamId::Sessions { .. }
            | StreamId::SignIns(_)
            | StreamId::Mfa { .. }
            | StreamId::WebauthnPolicy(_)
            | StreamId::Code { .. }
            | StreamId::Consents { .. }
            | StreamId::Refresh { .. }
            | StreamId::Invitation { .. }
            | StreamId::Email { .. }
            | StreamId::Entitlement { .. }
            | StreamId::IdentityProvider { .. }
            | StreamId::FederatedSignIn { .. }
            | StreamId::Vault(_)
            | StreamId::Integration(_)
            | StreamId::IntegrationApp { .. }
            | StreamId::Credential { .. }
            | StreamId::CredentialAccess { .. }
            | StreamId::Connect { .. }
            | StreamId::ProviderKey { .. }
            | StreamId::ProviderKeyAccess { .. }
            | StreamId::Product(_) => None,
        };
        prop_assert_eq!(subject_of(&spelled).map(str::to_owned), expected);
    }

    #[test]
    fn the_builders_spell_like_the_typed_ids(id in stream_id()) {
        let built = match &id {
            StreamId::Tenant(t) => tenant(*t),
            StreamId::ApiKey { tenant_id, key_id } => api_key(*tenant_id, *key_id),
            StreamId::OAuthClient { tenant_id, client_id } => oauth_client(*tenant_id, client_id),
            StreamId::Tokens { tenant_id, client_id } => client_tokens(*tenant_id, client_id),
            StreamId::Audit(t) => audit(*t),
            StreamId::User { tenant_id, user_id } => user(*tenant_id, *user_id),
            StreamId::Sessions { tenant_id, user_id } => sessions(*tenant_id, *user_id),
            StreamId::SignIns(t) => sign_ins(*t),
            StreamId::Mfa { tenant_id, user_id } => mfa(*tenant_id, *user_id),
            StreamId::WebauthnPolicy(t) => webauthn_policy(*t),
            StreamId::Code { tenant_id, code_id } => code(*tenant_id, *code_id),
            StreamId::Consents { tenant_id, user_id } => consents(*tenant_id, *user_id),
            StreamId::Refresh { tenant_id, family_id } => refresh(*tenant_id, *family_id),
            StreamId::Invitation { tenant_id, invitation_id } => invitation(*tenant_id, *invitation_id),
            StreamId::Email { tenant_id, email_id } => email(*tenant_id, *email_id),
            StreamId::Entitlement { tenant_id, product: key } => entitlement(*tenant_id, key),
            StreamId::Product(key) => product(key),
            StreamId::IdentityProvider { tenant_id, alias } => identity_provider(*tenant_id, alias),
            StreamId::FederatedSignIn { tenant_id, state_id } => federated_sign_in(*tenant_id, *state_id),
            StreamId::Vault(t) => vault(*t),
            StreamId::Integration(name) => integration(name),
            StreamId::IntegrationApp { tenant_id, integration: name } => integration_app(*tenant_id, name),
            StreamId::Credential { tenant_id, integration: name } => credential(*tenant_id, name),
            StreamId::CredentialAccess { tenant_id, integration: name } => credential_access(*tenant_id, name),
            StreamId::Connect { tenant_id, state_id } => connect(*tenant_id, *state_id),
            StreamId::ProviderKey { tenant_id, provider } => provider_key(*tenant_id, provider),
            StreamId::ProviderKeyAccess { tenant_id, provider } => provider_key_access(*tenant_id, provider),
            StreamId::Reservation { kind, value } => reservation(kind, value),
        };
        prop_assert_eq!(built, id.to_string());
    }
}
