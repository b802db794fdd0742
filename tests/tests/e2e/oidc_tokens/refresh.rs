//! Refresh tokens at the token endpoint: rotation, grace, reuse, scope narrowing, fifty
//! concurrent refreshes of one token, revocation and what ends a family.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use tessera_commands::{DEFAULT_REFRESH_GRACE_SECS, RefreshRequest};

use super::*;
use crate::http_browser::advance_clock;
use crate::on_both_stores;

/// A person's first tokens with `offline_access`: the token response.
async fn first_tokens(p: &mut People, scopes: &[&str]) -> Value {
    let (_, codes) = sign_in_and_issue_codes(p, scopes, 1).await;
    let (status, body) = p.exchange(&codes[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn a_refresh_rotates_the_token_grace_answers_the_old_one_and_its_later_reuse_ends_the_family(
    store: Store,
) {
    let mut p = people(store, "refresh-rotation").await;
    let first = first_tokens(&mut p, &["openid", "profile", "offline_access"]).await;
    let old = first["refresh_token"].as_str().unwrap();

    let (status, rotated) = p.refresh(old, None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let current = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(current, old);
    assert_eq!(rotated["scope"], "openid profile offline_access");
    let id = p
        .id_token_claims(rotated["id_token"].as_str().unwrap())
        .await;
    assert_eq!(id["sub"], p.user.to_string());
    assert!(
        id.get("nonce").is_none(),
        "a refreshed ID token has no nonce"
    );

    // Within the grace period the old token answers with the same current one.
    let (status, grace) = p.refresh(old, None).await;
    assert_eq!(status, StatusCode::OK, "{grace}");
    assert_eq!(grace["refresh_token"], current);
    assert_ne!(grace["access_token"], rotated["access_token"]);

    // Narrowing is allowed, widening is not.
    let (status, narrowed) = p.refresh(current, Some("openid")).await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(narrowed["scope"], "openid");
    let newest = narrowed["refresh_token"].as_str().unwrap().to_owned();
    let (status, wider) = p.refresh(&newest, Some("openid email")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(wider["error"], "invalid_scope");

    // Past the grace period, a rotated-out token ends the family.
    advance_clock(&p.app, i64::from(DEFAULT_REFRESH_GRACE_SECS) + 1).await;
    let (status, reuse) = p.refresh(current, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reuse["error"], "invalid_grant");
    let (_, dead) = p.refresh(&newest, None).await;
    assert_eq!(dead["error"], "invalid_grant", "{dead}");
    assert_eq!(p.introspect(&newest).await["active"], false);
}
on_both_stores!(
    a_refresh_rotates_the_token_grace_answers_the_old_one_and_its_later_reuse_ends_the_family
);

/// Fifty refreshes of one token at once: one successor, grace answers carrying it for the
/// rest. On PostgreSQL half of them run on a second node (another process's command service on
/// the same database, with connections of its own), so the expected version decides, not the
/// server's in-process queue.
async fn fifty_concurrent_refreshes_of_one_token_yield_one_successor(store: Store) {
    let mut p = people(store, "refresh-fifty").await;
    let first = first_tokens(&mut p, &["openid", "offline_access"]).await;
    let token = first["refresh_token"].as_str().unwrap().to_owned();
    let second_node = match store {
        Store::Postgres => Some(Arc::new(offline_commands(&p.app).await)),
        Store::Embedded => None,
    };
    let p = Arc::new(p);
    let mut tasks = Vec::new();
    for n in 0..50 {
        let (p, token, node) = (p.clone(), token.clone(), second_node.clone());
        tasks.push(tokio::spawn(async move {
            match node.filter(|_| n % 2 == 1) {
                Some(node) => {
                    let request = RefreshRequest {
                        tenant_id: p.tenant,
                        client_id: &p.spa,
                        token: &token,
                        scopes: None,
                        grace_secs: DEFAULT_REFRESH_GRACE_SECS,
                        access_token_ttl_secs: 300,
                        kid: "unused-by-this-test",
                    };
                    let (refreshed, _) = node.0.refresh(&as_person(p.user), request).await.unwrap();
                    (refreshed.rotated, refreshed.refresh_token)
                }
                None => {
                    let (status, body) = p.refresh(&token, None).await;
                    assert_eq!(status, StatusCode::OK, "{body}");
                    let successor = body["refresh_token"].as_str().unwrap().to_owned();
                    (false, successor)
                }
            }
        }));
    }
    let mut successors = Vec::new();
    for task in tasks {
        successors.push(task.await.unwrap().1);
    }
    successors.sort();
    successors.dedup();
    assert_eq!(successors.len(), 1, "one successor: {successors:?}");
    assert_ne!(successors[0], token);
    // The successor is the family's live token: it rotates once more.
    let (status, next) = p.refresh(&successors[0], None).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    if let Some(node) = second_node {
        node.1.close().await;
    }
}
on_both_stores!(fifty_concurrent_refreshes_of_one_token_yield_one_successor);

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family_and_introspection_follows_it() {
    let mut p = people(Store::Embedded, "refresh-revoke").await;
    let first = first_tokens(&mut p, &["openid", "offline_access"]).await;
    let token = first["refresh_token"].as_str().unwrap();
    let seen = p.introspect(token).await;
    assert_eq!(
        seen["active"], false,
        "only the owning client introspects it"
    );
    let (status, own, _) = p
        .post_form(
            "revoke",
            None,
            &[("token", token), ("client_id", p.spa.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let (status, refused) = p.refresh(token, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "invalid_grant");
}

#[tokio::test]
async fn disabling_the_person_ends_their_refresh_tokens() {
    let mut p = people(Store::Embedded, "refresh-disabled").await;
    let first = first_tokens(&mut p, &["openid", "offline_access"]).await;
    let token = first["refresh_token"].as_str().unwrap();
    let (status, body) = p
        .app
        .send(p.app.admin(
            Method::POST,
            &format!("/v1/tenants/{}/users/{}/disable", p.tenant, p.user),
        ))
        .await;
    assert!(status.is_success(), "{body}");
    let (status, refused) = p.refresh(token, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "invalid_grant");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{refused}"
    );
}
