//! Connect, access and automatic refresh; the callback's refusals; a revoked grant; disconnecting
//! with revocation.

use reqwest::{Method, StatusCode};

use super::*;
use crate::helpers::{read_log, spawn_app_with_env};
use crate::http_browser::advance_clock;
use crate::on_both_stores;

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
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "credential.stored").await,
        1
    );
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "connect.completed").await,
        1
    );

    // The same callback again (a reload, or a stolen URL): refused, nothing more stored.
    let (status, page) = back_at(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("already used"), "{page}");
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "credential.stored").await,
        1
    );

    // Half the 60-second token's life later, the scheduler refreshes it, once.
    advance_clock(&app, 31).await;
    assert!(wait_for(&app, &consumer, "credential.refreshed", 1).await);
    assert_eq!(provider.count("refresh_token.rotated").await, 1);
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "credential.refresh_failed").await,
        0
    );
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
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "credential.refresh_failed").await,
        2
    );
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "credential.refreshed").await,
        0
    );
}
