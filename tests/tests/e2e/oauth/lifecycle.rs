//! What happens to clients and tokens as things change around them: a regenerated secret, a
//! deactivated client, a suspended and reactivated tenant; and that tenants never see each
//! other's clients or tokens.

use jsonwebtoken::Algorithm;
use oauth2::basic::BasicErrorResponseType;
use oauth2::{TokenIntrospectionResponse, TokenResponse};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::cases::Endpoint::{Introspection, Revocation, Token};
use super::cases::{CC, Creds, INVALID_CLIENT, UNAUTHORIZED_CLIENT, check_cases};
use super::{
    Registered, access_token, admin_post, basic, introspect, jwks, machine_client, oauth_error,
    post, revoke, tenant, token, try_token, verify_jwt,
};
use crate::helpers::{Store, spawn_app};

#[tokio::test]
async fn a_regenerated_secret_replaces_the_old_one_at_once() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "regen", None).await;
    let reg = machine_client(&app, &t, "rotating", &["a"]).await;
    let before = token(&basic(&t, &reg), &[]).await;

    let (status, body) = admin_post(
        &app,
        &format!("/v1/tenants/{}/clients/{}/secret", t.id, reg.client_id),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["warning"].is_string(), "{body}");
    assert_eq!(body["client"]["client_id"], reg.client_id.as_str());
    assert_eq!(body["client"]["active"], true);
    let new_secret = body["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, reg.secret);

    // The old secret: invalid_client, through the library and on the wire.
    assert_eq!(
        oauth_error(try_token(&basic(&t, &reg), &[]).await),
        BasicErrorResponseType::InvalidClient
    );
    assert_eq!(
        oauth_error(try_token(&post(&t, &reg), &[]).await),
        BasicErrorResponseType::InvalidClient
    );
    let old = Creds::basic(&reg);
    let cases = [
        Token.case("old secret", old, &[CC], INVALID_CLIENT),
        Introspection.case("old secret", old, &[("token", "whatever")], INVALID_CLIENT),
    ];
    check_cases(&t, &cases).await;

    // The new one works, and tokens issued before stay valid (the client is still active).
    let renewed = Registered {
        secret: new_secret,
        client_id: reg.client_id.clone(),
        client: body["client"].clone(),
    };
    let client = basic(&t, &renewed);
    let after = token(&client, &[]).await;
    let (set, _, _) = jwks(&t).await;
    verify_jwt(after.access_token().secret(), &set, &t, Algorithm::ES256);
    assert!(
        introspect(&client, before.access_token().secret())
            .await
            .active()
    );
}

#[tokio::test]
async fn a_deactivated_client_loses_its_tokens_and_gets_no_new_ones() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "deact", None).await;
    let doomed = machine_client(&app, &t, "doomed", &["a"]).await;
    let witness = machine_client(&app, &t, "witness", &[]).await;
    let jwt = access_token(&basic(&t, &doomed)).await;
    let observer = basic(&t, &witness);
    assert!(introspect(&observer, &jwt).await.active());

    let (status, body) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{}/clients/{}", t.id, doomed.client_id),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], doomed.client_id.as_str());
    assert_eq!(body["active"], false);
    let (status, body) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/clients/{}", t.id, doomed.client_id),
        ))
        .await;
    assert_eq!((status, &body["active"]), (StatusCode::OK, &json!(false)));

    assert!(
        !introspect(&observer, &jwt).await.active(),
        "a deactivated client's tokens are inactive at once"
    );
    assert_eq!(
        oauth_error(try_token(&basic(&t, &doomed), &[]).await),
        BasicErrorResponseType::InvalidClient
    );
    // Nor can it call introspection or revocation itself.
    let gone = Creds::basic(&doomed);
    let cases = [
        Token.case("deactivated", gone, &[CC], INVALID_CLIENT),
        Introspection.case(
            "deactivated caller",
            gone,
            &[("token", &jwt)],
            INVALID_CLIENT,
        ),
        Revocation.case(
            "deactivated caller",
            gone,
            &[("token", &jwt)],
            INVALID_CLIENT,
        ),
    ];
    check_cases(&t, &cases).await;
}

#[tokio::test]
async fn clients_and_tokens_do_not_cross_tenants() {
    let app = spawn_app(Store::Embedded).await;
    let a = tenant(&app, "tenant-a", None).await;
    let b = tenant(&app, "tenant-b", None).await;
    let a1 = machine_client(&app, &a, "a-one", &["read"]).await;
    let a2 = machine_client(&app, &a, "a-two", &[]).await;
    let b1 = machine_client(&app, &b, "b-one", &["read"]).await;

    // B's client at A's issuer is unknown there.
    assert_eq!(
        oauth_error(try_token(&basic(&a, &b1), &[]).await),
        BasicErrorResponseType::InvalidClient
    );
    let stranger = Creds::basic(&b1);
    let whatever = [("token", "whatever")];
    let cases = [
        Token.case("B's client at A", stranger, &[CC], INVALID_CLIENT),
        Introspection.case("B introspects at A", stranger, &whatever, INVALID_CLIENT),
        Revocation.case("B revokes at A", stranger, &whatever, INVALID_CLIENT),
    ];
    check_cases(&a, &cases).await;

    // Any client of A may introspect A's tokens.
    let a_jwt = access_token(&basic(&a, &a1)).await;
    let info = introspect(&basic(&a, &a2), &a_jwt).await;
    assert!(info.active());
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(a1.client_id.as_str())
    );

    // A's token means nothing at B, and does not verify with B's keys.
    assert!(!introspect(&basic(&b, &b1), &a_jwt).await.active());
    let (b_keys, _, _) = jwks(&b).await;
    let a_kid = jsonwebtoken::decode_header(&a_jwt).unwrap().kid.unwrap();
    assert!(b_keys.find(&a_kid).is_none(), "tenants share no keys");

    // Revoking A's token at B does nothing to it.
    revoke(&basic(&b, &b1), &a_jwt).await.unwrap();
    assert!(introspect(&basic(&a, &a2), &a_jwt).await.active());

    // And B's token at A.
    let b_jwt = access_token(&basic(&b, &b1)).await;
    assert!(!introspect(&basic(&a, &a1), &b_jwt).await.active());
    assert!(introspect(&basic(&b, &b1), &b_jwt).await.active());
}

#[tokio::test]
async fn a_suspended_tenant_issues_nothing_and_its_tokens_are_inactive_until_reactivated() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "suspendable", None).await;
    let reg = machine_client(&app, &t, "worker", &["jobs:run"]).await;
    let client = basic(&t, &reg);
    let jwt = access_token(&client).await;
    assert!(introspect(&client, &jwt).await.active());

    let (status, body) = admin_post(
        &app,
        &format!("/v1/tenants/{}/suspend", t.id),
        json!({"reason": "unpaid"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert_eq!(
        oauth_error(try_token(&client, &[]).await),
        BasicErrorResponseType::UnauthorizedClient
    );
    // Nor does it revoke: the token is still there for the reactivation below.
    let creds = Creds::basic(&reg);
    let cases = [
        Token.case("suspended", creds, &[CC], UNAUTHORIZED_CLIENT),
        Revocation.case("suspended", creds, &[("token", &jwt)], UNAUTHORIZED_CLIENT),
    ];
    check_cases(&t, &cases).await;
    assert!(
        !introspect(&client, &jwt).await.active(),
        "a suspended tenant's tokens are inactive"
    );

    let (status, body) =
        admin_post(&app, &format!("/v1/tenants/{}/reactivate", t.id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        introspect(&client, &jwt).await.active(),
        "reactivation brings unexpired tokens back"
    );
    token(&client, &[]).await;
}
