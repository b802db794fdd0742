//! Introspection (RFC 7662): what it answers for an active token, for anything else, and for a
//! request without a token; and that altered and expired tokens are inactive.

use jsonwebtoken::Algorithm;
use oauth2::{TokenIntrospectionResponse, TokenResponse};
use serde_json::json;

use super::cases::Endpoint::Introspection;
use super::cases::{Creds, INACTIVE, INVALID_REQUEST, OK, check_cases, raw_introspect};
use super::{
    access_token, assert_claims, basic, fixture, introspect, jwks, register_client, tenant, token,
    verify_jwt,
};
use crate::helpers::{Store, spawn_app};

#[tokio::test]
async fn introspection_answers_without_caching_and_garbage_is_simply_inactive() {
    let f = fixture("introspection").await;
    let (t, web) = (&f.t, Creds::basic(&f.web));
    let jwt = access_token(&basic(t, &f.machine)).await;

    // Success and inactive answers are not cached.
    let raw = raw_introspect(t, Creds::basic(&f.machine), &jwt).await;
    OK.assert(&raw, "introspection");
    assert_eq!(raw.body["active"], true, "{}", raw.body);
    assert_eq!(raw.body["tenant_id"], t.id.as_str());

    let cases = [
        // Garbage, including an unsigned (`alg: none`) token, is simply inactive.
        Introspection.case("garbage", web, &[("token", "garbage")], INACTIVE),
        Introspection.case("three dots", web, &[("token", "a.b.c")], INACTIVE),
        Introspection.case(
            "alg none",
            web,
            &[("token", "eyJhbGciOiJub25lIn0.e30.")],
            INACTIVE,
        ),
        // RFC 7662 §2.1: `token` is REQUIRED; an empty one counts as none.
        Introspection.case("empty token", web, &[("token", "")], INVALID_REQUEST),
        Introspection.case("no token", web, &[], INVALID_REQUEST),
        // RFC 6749 §3.1: no parameter may be sent twice.
        Introspection.case(
            "repeated token",
            web,
            &[("token", &jwt), ("token", &jwt)],
            INVALID_REQUEST,
        ),
    ];
    check_cases(t, &cases).await;
}

/// The shortest TTL is 60 s, too long to wait out in the default run; `exp` is checked to be
/// `iat + ttl` here and the wait is in the slow test below. A token whose claims were altered
/// (here: `exp` pushed out a year, or a scope added) no longer verifies and introspects inactive.
#[tokio::test]
async fn a_short_ttl_sets_exp_and_altered_tokens_are_inactive() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "expiry", None).await;
    let reg = register_client(
        &app,
        &t.id,
        json!({"name": "short", "allowed_scopes": ["a"], "access_token_ttl_secs": 60}),
    )
    .await;
    assert_eq!(reg.client["access_token_ttl_secs"], 60);
    let client = basic(&t, &reg);
    let response = token(&client, &[]).await;
    assert_eq!(response.expires_in().map(|d| d.as_secs()), Some(60));
    let jwt = response.access_token().secret().clone();
    let (set, _, _) = jwks(&t).await;
    let (_, claims) = verify_jwt(&jwt, &set, &t, Algorithm::ES256);
    assert_claims(&claims, &t, &reg.client_id, &["a"], 60);
    let info = introspect(&client, &jwt).await;
    assert_eq!(info.exp().map(|e| e.timestamp()), claims["exp"].as_i64());

    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().unwrap() + 365 * 86_400);
    let mut wider = claims.clone();
    wider["scope"] = json!("a admin");
    for forged_claims in [longer, wider] {
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            engine.encode(forged_claims.to_string()),
            parts[2]
        );
        assert!(
            !introspect(&client, &forged).await.active(),
            "an altered token is inactive: {forged_claims}"
        );
    }
    assert!(introspect(&client, &jwt).await.active());
}

/// Waits out the shortest lifetime (60 s); it runs alongside the rest of the suite.
#[tokio::test]
async fn an_expired_token_introspects_inactive() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "expiry-wait", None).await;
    let reg = register_client(
        &app,
        &t.id,
        json!({"name": "short", "access_token_ttl_secs": 60}),
    )
    .await;
    let client = basic(&t, &reg);
    let jwt = access_token(&client).await;
    assert!(introspect(&client, &jwt).await.active());
    tokio::time::sleep(std::time::Duration::from_secs(62)).await;
    assert!(!introspect(&client, &jwt).await.active());
}
