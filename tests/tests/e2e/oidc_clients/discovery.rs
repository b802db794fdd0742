//! Discovery lists what issue 17 implements, field by field, and serves it at the OpenID
//! configuration's path, at RFC 8414 §3.1's (the well-known segment before the issuer's path)
//! and, as before, under the issuer's path; the same document at all three.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, spawn_app};
use crate::on_both_stores;

/// The three addresses of the tenant's metadata.
fn paths(app: &TestServer, slug: &str) -> [String; 3] {
    let issuer = app.issuer(slug);
    [
        format!("{issuer}/.well-known/openid-configuration"),
        format!(
            "{}/.well-known/oauth-authorization-server/t/{slug}",
            app.base
        ),
        format!("{issuer}/.well-known/oauth-authorization-server"),
    ]
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

async fn the_metadata_lists_every_oidc_feature_at_all_three_paths(store: Store) {
    let app = spawn_app(store).await;
    app.create_tenant("disco-oidc").await;
    let issuer = app.issuer("disco-oidc");
    let mut documents = Vec::new();
    for url in paths(&app, "disco-oidc") {
        let (status, d) = app.send(app.client.get(&url)).await;
        assert_eq!(status, StatusCode::OK, "{url}: {d}");
        documents.push(d);
    }
    assert_eq!(
        documents[0], documents[1],
        "RFC 8414's path serves the same document"
    );
    assert_eq!(documents[0], documents[2]);
    let d = &documents[0];
    let endpoints = [
        ("issuer", issuer.clone()),
        (
            "authorization_endpoint",
            format!("{issuer}/oauth/authorize"),
        ),
        ("token_endpoint", format!("{issuer}/oauth/token")),
        ("userinfo_endpoint", format!("{issuer}/oauth/userinfo")),
        ("end_session_endpoint", format!("{issuer}/oauth/logout")),
        ("jwks_uri", format!("{issuer}/.well-known/jwks.json")),
        (
            "introspection_endpoint",
            format!("{issuer}/oauth/introspect"),
        ),
        ("revocation_endpoint", format!("{issuer}/oauth/revoke")),
    ];
    for (field, expected) in endpoints {
        assert_eq!(d[field], expected.as_str(), "{field}");
    }
    let lists: [(&str, &[&str]); 13] = [
        (
            "scopes_supported",
            &["openid", "profile", "email", "offline_access"],
        ),
        ("response_types_supported", &["code"]),
        ("response_modes_supported", &["query"]),
        (
            "grant_types_supported",
            &["authorization_code", "refresh_token", "client_credentials"],
        ),
        ("subject_types_supported", &["public"]),
        ("id_token_signing_alg_values_supported", &["RS256", "ES256"]),
        (
            "token_endpoint_auth_methods_supported",
            &["client_secret_basic", "client_secret_post", "none"],
        ),
        (
            "introspection_endpoint_auth_methods_supported",
            &["client_secret_basic", "client_secret_post"],
        ),
        (
            "revocation_endpoint_auth_methods_supported",
            &["client_secret_basic", "client_secret_post"],
        ),
        ("code_challenge_methods_supported", &["S256"]),
        (
            "claims_supported",
            &[
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "azp",
                "sid",
                "at_hash",
                "name",
                "given_name",
                "family_name",
                "email",
                "email_verified",
            ],
        ),
        ("acr_values_supported", &["1", "2"]),
        ("prompt_values_supported", &["none", "login", "consent"]),
    ];
    for (field, expected) in lists {
        assert_eq!(strings(&d[field]), expected.to_vec(), "{field}");
    }
    let flags = [
        ("authorization_response_iss_parameter_supported", true),
        ("backchannel_logout_supported", true),
        ("backchannel_logout_session_supported", true),
        ("request_parameter_supported", false),
        ("request_uri_parameter_supported", false),
        ("claims_parameter_supported", false),
    ];
    for (field, expected) in flags {
        assert_eq!(d[field], json!(expected), "{field}");
    }

    // An unknown tenant at RFC 8414's path is OAuth's 404, like under the issuer's path.
    let url = format!(
        "{}/.well-known/oauth-authorization-server/t/nobody",
        app.base
    );
    let (status, body) = app.send(app.client.get(url)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].is_string(), "{body}");
}
on_both_stores!(the_metadata_lists_every_oidc_feature_at_all_three_paths);
