//! Connect, access and automatic refresh; the callback's refusals; a revoked grant; an access
//! refreshing first; disconnecting with revocation.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::*;
use crate::helpers::{read_log, spawn_app_with_env};
use crate::http_browser::advance_clock;
use crate::on_both_stores;

/// How many audit entries of `action` the consumer's tenant has.
async fn count(app: &TestServer, consumer: &Consumer, action: &str) -> usize {
    audit_count(app, &consumer.tenant_id, action).await
}

async fn a_connection_is_made_then_refreshed_before_its_token_expires(store: Store) {
    let app = spawn_app_with_env(store, CONSUMER_ENV).await;
    let provider = provider(store, free_port(), &[&app.base]).await;
    let consumer = consumer(&app, &provider).await;

    let authorization_url = start(&app, &consumer).await;
    assert!(
        param(&authorization_url, "code_challenge").is_some(),
        "{authorization_url}"
    );
    assert_eq!(
        param(&authorization_url, "redirect_uri").unwrap(),
        format!("{}/oauth/callback/{INTEGRATION}", app.base)
    );
    let callback = consent_at_provider(&provider, &authorization_url).await;
    let (status, page) = back_at(&callback).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Connected to saas-app"), "{page}");
    assert_eq!(count(&app, &consumer, "credential.stored").await, 1);
    assert_eq!(count(&app, &consumer, "connect.completed").await, 1);
    let connection = listed(&app, &consumer).await;
    assert_eq!(connection["status"], "active", "{connection}");
    assert_eq!(connection["app"], "platform", "{connection}");
    assert_eq!(connection["refreshable"], true, "{connection}");

    // A service with vault:read gets the provider's access token, which the provider takes.
    let key = vault_key(&app, &consumer).await;
    let (status, opened) = access(&app, &consumer, &key).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    let first_token = opened["access_token"].as_str().unwrap().to_owned();
    assert!(provider.accepts(&first_token).await);

    // The same callback again (a reload, or a stolen URL): refused, nothing more stored.
    let (status, page) = back_at(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("already used"), "{page}");
    assert_eq!(count(&app, &consumer, "credential.stored").await, 1);

    // Half the 60-second token's life later, the scheduler refreshes it, once.
    advance_clock(&app, 31).await;
    assert!(wait_for(&app, &consumer, "credential.refreshed", 1).await);
    assert_eq!(provider.count("refresh_token.rotated").await, 1);
    assert_eq!(count(&app, &consumer, "credential.refresh_failed").await, 0);
    let (status, opened) = access(&app, &consumer, &key).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    let second_token = opened["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, first_token);
    assert!(provider.accepts(&second_token).await);
    assert!(listed(&app, &consumer).await["last_refreshed_at"].is_string());

    // Neither the provider's client secret nor a token is in an event or a log line here.
    let mut app = app;
    app.stop().await;
    let secrets = [&provider.client_secret, &first_token, &second_token];
    for event in read_log(&app).await {
        let payload = String::from_utf8_lossy(&event.payload);
        for secret in secrets {
            assert!(
                !payload.contains(secret.as_str()),
                "{}",
                event.envelope.event_type
            );
        }
    }
    let logged = app.stderr.lock().unwrap().join("\n");
    for secret in secrets {
        assert!(!logged.contains(secret.as_str()));
    }
}

on_both_stores!(a_connection_is_made_then_refreshed_before_its_token_expires);

#[tokio::test]
async fn a_forged_misdirected_refused_or_expired_connect_stores_nothing() {
    let store = Store::Embedded;
    let app = spawn_app_with_env(store, CONSUMER_ENV).await;
    let provider = provider(store, free_port(), &[&app.base]).await;
    let consumer = consumer(&app, &provider).await;

    let authorization_url = start(&app, &consumer).await;
    let state = param(&authorization_url, "state").unwrap();
    let mut forged = state.clone().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let (status, page) = back_at(&format!(
        "{}/oauth/callback/{INTEGRATION}?code=x&state={forged}",
        app.base
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("This connection link is not valid"), "{page}");

    // A state of saas-app presented at another integration's callback.
    let (status, page) = back_at(&format!(
        "{}/oauth/callback/other-app?code=x&state={state}",
        app.base
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("not valid"), "{page}");

    // The person said no at the provider: recorded as a failed connect, nothing stored.
    let (status, page) = back_at(&format!(
        "{}/oauth/callback/{INTEGRATION}?error=access_denied&state={state}",
        app.base
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("Not connected to saas-app"), "{page}");
    assert!(page.contains("access_denied"), "{page}");
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "connect.failed").await,
        1
    );

    // A state older than ten minutes.
    let late = start(&app, &consumer).await;
    advance_clock(&app, 601).await;
    let callback = consent_at_provider(&provider, &late).await;
    let (status, page) = back_at(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("expired"), "{page}");
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "credential.stored").await,
        0
    );
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "connect.failed").await,
        1
    );
}

#[tokio::test]
async fn a_grant_revoked_at_the_provider_makes_the_connection_need_reauth() {
    let store = Store::Embedded;
    let app = spawn_app_with_env(store, CONSUMER_ENV).await;
    let provider = provider(store, free_port(), &[&app.base]).await;
    let consumer = consumer(&app, &provider).await;
    connect(&app, &provider, &consumer).await;

    // The person withdraws the connector's access at the provider.
    let (status, body) = provider
        .app
        .send(provider.app.admin(
            Method::DELETE,
            &format!(
                "/v1/tenants/{}/users/{}/consents/{}",
                provider.tenant_id, provider.user_id, provider.client_id
            ),
        ))
        .await;
    assert!(status.is_success(), "{status} {body}");

    // The first refresh meets invalid_grant and backs off; the second gives up on the grant.
    advance_clock(&app, 31).await;
    assert!(wait_for(&app, &consumer, "credential.refresh_failed", 1).await);
    advance_clock(&app, 31).await;
    assert!(wait_for(&app, &consumer, "credential.needs_reauth", 1).await);
    assert_eq!(count(&app, &consumer, "credential.refresh_failed").await, 2);
    assert_eq!(count(&app, &consumer, "credential.refreshed").await, 0);
    let connection = listed(&app, &consumer).await;
    assert_eq!(connection["status"], "needs_reauth", "{connection}");
    assert_eq!(connection["last_error"], "invalid_grant", "{connection}");
    let key = vault_key(&app, &consumer).await;
    let (status, refused) = access(&app, &consumer, &key).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
}

#[tokio::test]
async fn an_access_refreshes_an_expiring_connection_first_and_concurrent_accesses_share_it() {
    let store = Store::Embedded;
    // A lead of 0: the scheduler leaves the refresh to the access (due only at expiry).
    let mut env = CONSUMER_ENV.to_vec();
    env.push(("TESSERA_CREDENTIAL_REFRESH_LEAD_SECS", "0"));
    let app = spawn_app_with_env(store, &env).await;
    let provider = provider(store, free_port(), &[&app.base]).await;
    let consumer = consumer(&app, &provider).await;
    connect(&app, &provider, &consumer).await;
    let key = vault_key(&app, &consumer).await;

    // 45 s into a 60 s token: past half its life and within a minute of expiry.
    advance_clock(&app, 45).await;
    let (one, two, three) = tokio::join!(
        access(&app, &consumer, &key),
        access(&app, &consumer, &key),
        access(&app, &consumer, &key),
    );
    let mut tokens = std::collections::HashSet::new();
    for (status, opened) in [one, two, three] {
        assert_eq!(status, StatusCode::OK, "{opened}");
        tokens.insert(opened["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 1, "every access got the one refreshed token");
    assert_eq!(count(&app, &consumer, "credential.refreshed").await, 1);
    assert_eq!(provider.count("refresh_token.rotated").await, 1);
    assert!(provider.accepts(tokens.iter().next().unwrap()).await);
}

/// `DELETE .../credentials` of the consumer's connection.
async fn disconnect(app: &TestServer, consumer: &Consumer) -> (StatusCode, Value) {
    app.send(app.admin(
        Method::DELETE,
        &format!(
            "/v1/tenants/{}/integrations/{INTEGRATION}/credentials",
            consumer.tenant_id
        ),
    ))
    .await
}

#[tokio::test]
async fn disconnecting_revokes_the_tokens_at_the_provider_then_removes_the_connection() {
    let store = Store::Embedded;
    let app = spawn_app_with_env(store, CONSUMER_ENV).await;
    let provider = provider(store, free_port(), &[&app.base]).await;
    let consumer = consumer(&app, &provider).await;
    connect(&app, &provider, &consumer).await;
    let key = vault_key(&app, &consumer).await;
    let (_, opened) = access(&app, &consumer, &key).await;
    let token = opened["access_token"].as_str().unwrap().to_owned();
    assert!(provider.accepts(&token).await);

    let (status, removed) = disconnect(&app, &consumer).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["revoked_at_provider"], true, "{removed}");
    assert_eq!(removed["provider_revocation"], "revoked", "{removed}");
    assert!(!provider.accepts(&token).await);
    assert_eq!(provider.count("refresh_token.revoked").await, 1);
    let (status, _) = access(&app, &consumer, &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(listed(&app, &consumer).await, Value::Null);
}

#[tokio::test]
async fn a_provider_that_cannot_revoke_still_lets_the_connection_be_removed() {
    let store = Store::Embedded;
    let app = spawn_app_with_env(store, CONSUMER_ENV).await;
    let mut provider = provider(store, free_port(), &[&app.base]).await;
    let consumer = consumer(&app, &provider).await;
    connect(&app, &provider, &consumer).await;
    provider.app.stop().await;
    let (status, removed) = disconnect(&app, &consumer).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["revoked_at_provider"], false, "{removed}");
    assert_eq!(removed["provider_revocation"], "failed", "{removed}");
    assert_eq!(listed(&app, &consumer).await, Value::Null);
}
