//! Back-Channel Logout 1.0: a client that got a code in a session and registered a
//! `backchannel_logout_uri` is posted a logout token when the session ends, even when its
//! receiver was down at the time and the server restarted before it came up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Form, Router};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, eventually};
use crate::oidc::{REDIRECT, callback, param, rp};
use crate::on_both_stores;

/// A receiver of logout tokens on `listener`: every `logout_token` posted, in order.
fn receive(listener: tokio::net::TcpListener) -> Arc<Mutex<Vec<String>>> {
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = tokens.clone();
    let app = Router::new().route(
        "/backchannel",
        post(move |Form(form): Form<Vec<(String, String)>>| {
            let kept = kept.clone();
            async move {
                for (name, value) in form {
                    if name == "logout_token" {
                        kept.lock().unwrap().push(value);
                    }
                }
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    tokens
}

async fn a_logout_token_reaches_a_receiver_that_was_down_across_a_restart(store: Store) {
    let mut rp = rp(store, "rp-backchannel").await;
    // A port for the receiver, which is not listening yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}/backchannel");
    let (status, body) = rp
        .app
        .send(
            rp.app
                .admin(
                    Method::PUT,
                    &format!("/v1/tenants/{}/clients/{}", rp.tenant_id, rp.client_id),
                )
                .json(&json!({"backchannel_logout_uri": uri, "require_consent": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A code issued in the browser's session, then the session ended on the sign-out page.
    let browser = rp.signed_in_browser().await;
    let answer = browser.get(&rp.authorize(&[])).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let (to, pairs) = callback(&answer);
    assert_eq!(to, REDIRECT);
    assert!(param(&pairs, "code").is_some(), "{pairs:?}");
    let sid = super::only_session(&rp).await;
    let logout = format!("/t/{}/logout", rp.slug);
    let signed_out = browser.submit(&logout, &logout, &[]).await;
    assert_eq!(
        signed_out.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_out.body
    );

    // The server tries, fails, and restarts before the receiver comes up.
    rp.app.restart().await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let tokens = receive(listener);
    assert!(
        eventually(Duration::from_secs(60), || {
            let tokens = tokens.clone();
            async move { !tokens.lock().unwrap().is_empty() }
        })
        .await,
        "no logout token arrived"
    );
    let token = tokens.lock().unwrap()[0].clone();

    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(
        header.alg,
        Algorithm::RS256,
        "the client's ID token algorithm"
    );
    let issuer = rp.app.issuer(&rp.slug);
    let (_, set) = rp
        .app
        .send(rp.app.client.get(format!("{issuer}/.well-known/jwks.json")))
        .await;
    let set: JwkSet = serde_json::from_value(set).unwrap();
    let jwk = set.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[rp.client_id.as_str()]);
    validation.set_issuer(&[issuer.as_str()]);
    let claims =
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap()
            .claims;
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["sub"], rp.user_id.as_str());
    assert!(
        claims["jti"].is_string() && claims["iat"].is_number(),
        "{claims}"
    );
    assert_eq!(
        claims["events"],
        json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(claims.get("nonce").is_none(), "a logout token has no nonce");
}
on_both_stores!(a_logout_token_reaches_a_receiver_that_was_down_across_a_restart);
