//! Discovery (RFC 8414 and OpenID Connect Discovery) and the JWKS: what the documents describe,
//! unknown issuers, the published keys and their cache lifetime, key rotation and retirement,
//! and every signing algorithm a tenant can choose.

use jsonwebtoken::Algorithm;
use oauth2::{TokenIntrospectionResponse, TokenResponse};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::cases::{Creds, NOT_FOUND, raw_request};
use super::{
    Discovery, access_token, admin_post, assert_claims, basic, introspect, jwks, kids,
    machine_client, scope_set, tenant, token, verify_jwt,
};
use crate::helpers::{Store, spawn_app};

#[tokio::test]
async fn discovery_documents_describe_the_tenant_and_unknown_slugs_are_404() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "disco", None).await;
    let mut documents = Vec::new();
    for doc in ["openid-configuration", "oauth-authorization-server"] {
        let url = format!("{}/.well-known/{doc}", t.issuer);
        let (status, body) = app.send(app.client.get(&url)).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        let d: Discovery = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(d.issuer, t.issuer);
        assert_eq!(d.token_endpoint, format!("{}/oauth/token", t.issuer));
        assert_eq!(d.jwks_uri, format!("{}/.well-known/jwks.json", t.issuer));
        assert_eq!(
            d.introspection_endpoint,
            format!("{}/oauth/introspect", t.issuer)
        );
        assert_eq!(d.revocation_endpoint, format!("{}/oauth/revoke", t.issuer));
        assert_eq!(
            d.grant_types_supported,
            vec!["authorization_code", "refresh_token", "client_credentials"]
        );
        let methods = scope_set(["client_secret_basic", "client_secret_post"]);
        assert_eq!(
            scope_set(&d.token_endpoint_auth_methods_supported),
            scope_set(["client_secret_basic", "client_secret_post", "none"])
        );
        assert_eq!(
            scope_set(&d.introspection_endpoint_auth_methods_supported),
            methods
        );
        assert_eq!(
            scope_set(&d.revocation_endpoint_auth_methods_supported),
            methods
        );
        documents.push(body);
    }

    let other = tenant(&app, "disco-two", None).await;
    assert_eq!(other.discovery.issuer, app.issuer("disco-two"));
    assert_ne!(other.discovery.jwks_uri, t.discovery.jwks_uri);

    // No tenant has this issuer: every endpoint under it is an OAuth-shaped 404.
    let unknown = format!("{}/t/nobody-here", app.base);
    let rows = [
        (Method::GET, "/.well-known/openid-configuration"),
        (Method::GET, "/.well-known/oauth-authorization-server"),
        (Method::GET, "/.well-known/jwks.json"),
        (Method::POST, "/oauth/token"),
        (Method::POST, "/oauth/introspect"),
        (Method::POST, "/oauth/revoke"),
    ];
    for (method, path) in rows {
        let url = format!("{unknown}{path}");
        let raw = raw_request(method.clone(), &url, Creds::None, &[]).await;
        NOT_FOUND.assert(&raw, &format!("{method} {url}"));
    }
}

#[tokio::test]
async fn the_jwks_publishes_public_signing_keys_with_a_short_cache_lifetime() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "jwks", None).await;
    let (set, raw, headers) = jwks(&t).await;
    let keys = raw["keys"].as_array().unwrap();
    // The default ES256 key first, then the RS256 key for ID tokens.
    assert_eq!(keys.len(), 2, "{raw}");
    assert_eq!(keys[0]["alg"], "ES256", "{raw}");
    assert_eq!(keys[1]["alg"], "RS256", "{raw}");
    for key in keys {
        assert!(key["kid"].is_string(), "{key}");
        assert_eq!(key["use"], "sig", "{key}");
        assert!(key.get("d").is_none(), "private key material: {key}");
    }
    assert_eq!(set.keys.len(), 2);
    let cache_control = headers["cache-control"].to_str().unwrap();
    let max_age: u64 = cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("no max-age in {cache_control:?}"))
        .parse()
        .unwrap();
    assert!(max_age <= 300, "max-age {max_age} > 300");
}

#[tokio::test]
async fn tokens_survive_key_rotation_until_their_key_is_retired_from_the_jwks() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "rotation", None).await;
    let reg = machine_client(&app, &t, "svc", &["a"]).await;
    let client = basic(&t, &reg);

    let t1 = access_token(&client).await;
    let (set, _, _) = jwks(&t).await;
    let (h1, _) = verify_jwt(&t1, &set, &t, Algorithm::ES256);
    let kid1 = h1.kid.unwrap();

    let (status, keys) = admin_post(
        &app,
        &format!("/v1/tenants/{}/keys/rotate", t.id),
        json!({}),
    )
    .await;
    assert!(status.is_success(), "{status}: {keys}");
    let kid2 = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["status"] == "active" && k["alg"] == "ES256")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(kid1, kid2);

    let t2 = access_token(&client).await;
    let (set, raw, _) = jwks(&t).await;
    let published = kids(&raw);
    assert!(
        published.contains(&kid1) && published.contains(&kid2),
        "{published:?}"
    );
    let (h2, _) = verify_jwt(&t2, &set, &t, Algorithm::ES256);
    assert_eq!(h2.kid.as_deref(), Some(kid2.as_str()));
    verify_jwt(&t1, &set, &t, Algorithm::ES256);
    assert!(
        introspect(&client, &t1).await.active(),
        "T1 outlives the rotation"
    );
    assert!(introspect(&client, &t2).await.active());

    let (status, body) = admin_post(
        &app,
        &format!("/v1/tenants/{}/keys/{kid1}/retire", t.id),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (set, raw, _) = jwks(&t).await;
    let published = kids(&raw);
    assert!(
        published.contains(&kid2) && !published.contains(&kid1),
        "a retired key is unpublished: {published:?}"
    );
    // The default key and the RS256 key for ID tokens.
    assert_eq!(published.len(), 2, "{published:?}");
    verify_jwt(&t2, &set, &t, Algorithm::ES256);
}

#[tokio::test]
async fn eddsa_and_rs256_tenants_issue_tokens_that_verify_with_their_jwks() {
    let app = spawn_app(Store::Embedded).await;
    for (alg_name, alg) in [("EdDSA", Algorithm::EdDSA), ("RS256", Algorithm::RS256)] {
        let slug = format!("alg-{}", alg_name.to_lowercase());
        let t = tenant(&app, &slug, Some(alg_name)).await;
        let (set, raw, _) = jwks(&t).await;
        assert_eq!(raw["keys"][0]["alg"], alg_name, "{raw}");
        let reg = machine_client(&app, &t, "svc", &["x"]).await;
        let client = basic(&t, &reg);
        let jwt = token(&client, &["x"]).await.access_token().secret().clone();
        let (_, claims) = verify_jwt(&jwt, &set, &t, alg);
        assert_claims(&claims, &t, &reg.client_id, &["x"], 3600);
        assert!(introspect(&client, &jwt).await.active(), "{alg_name}");

        // A rotation to the default algorithm: the new key signs, the old one still verifies.
        let (status, body) = admin_post(
            &app,
            &format!("/v1/tenants/{}/keys/rotate", t.id),
            json!({"alg": "ES256"}),
        )
        .await;
        assert!(status.is_success(), "{status}: {body}");
        let after = access_token(&client).await;
        let (set, _, _) = jwks(&t).await;
        verify_jwt(&after, &set, &t, Algorithm::ES256);
        verify_jwt(&jwt, &set, &t, alg);
    }
}
