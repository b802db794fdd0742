//! Entitlements: granted, listed on both paths, changed, revoked; and their expiry, by the
//! test clock and across a restart.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::helpers::{Store, eventually, spawn_app, spawn_app_with_env};
use crate::http_browser::advance_clock;
use crate::on_both_stores;

async fn platform_admins_grant_change_and_revoke_entitlements_tenants_read(store: Store) {
    let app = spawn_app(store).await;
    let tenant = app.create_tenant("entitled").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant_key = tenant_admin_key(&app, &tenant).await;
    trial_product(&app, "crm").await;
    let path = format!("/v1/tenants/{tenant}/entitlements/crm");

    let granted = grant(
        &app,
        &tenant,
        "crm",
        json!({"enabled": true, "config": {"seats": 25}, "expires_at": "2100-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(granted["config"], json!({"seats": 25}));
    assert_eq!(granted["expires_at"], "2100-01-01T00:00:00.000000Z");
    assert_eq!(granted["trial"], false);

    // Both listings, for the tenant's own key too.
    let (status, by_query) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/entitlements?tenant_id={tenant}"),
            Some(&tenant_key),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_query["items"], json!([granted]));
    assert_eq!(entitlements(&app, &tenant).await, vec![granted.clone()]);
    let (status, error) = app.send(app.admin(Method::GET, "/v1/entitlements")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["field"], "tenant_id");

    // A tenant does not grant itself products.
    let (status, _) = app
        .send(
            app.request(Method::PUT, &path, Some(&tenant_key))
                .json(&json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Changes: disabled, config replaced; created_at stays.
    let changed = grant(&app, &tenant, "crm", json!({"enabled": false})).await;
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["config"], json!({}));
    assert_eq!(changed["expires_at"], serde_json::Value::Null);
    assert_eq!(changed["created_at"], granted["created_at"]);

    // Refusals change nothing.
    for (body, field) in [
        (json!({"config": [1, 2]}), "config"),
        (json!({"expires_at": "2000-01-01T00:00:00Z"}), "expires_at"),
        (json!({"expires_at": "tomorrow"}), "expires_at"),
    ] {
        let (status, error) = app.send(app.admin(Method::PUT, &path).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["field"], field);
    }
    let (status, error) = app
        .send(
            app.admin(
                Method::PUT,
                &format!("/v1/tenants/{tenant}/entitlements/unknown"),
            )
            .json(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("product unknown")
    );
    assert_eq!(entitlements(&app, &tenant).await, vec![changed]);

    let (status, _) = app.send(app.admin(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.send(app.admin(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(entitlements(&app, &tenant).await.is_empty());
}
on_both_stores!(platform_admins_grant_change_and_revoke_entitlements_tenants_read);

async fn an_entitlement_expires_on_its_own_when_its_time_comes(store: Store) {
    let app = spawn_app_with_env(store, &[("TESSERA_LIFECYCLE_INTERVAL_SECS", "1")]).await;
    let tenant = app.create_tenant("expiring").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    trial_product(&app, "crm").await;
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    grant(&app, &tenant, "crm", json!({"expires_at": in_an_hour})).await;
    assert_eq!(entitlements(&app, &tenant).await.len(), 1);

    advance_clock(&app, 2 * 3600).await;
    let expired = eventually(Duration::from_secs(20), || async {
        entitlements(&app, &tenant).await.is_empty()
    })
    .await;
    assert!(expired, "the entitlement did not expire");
    assert_eq!(audited(&app, &tenant, "entitlement.expired").await.len(), 1);
}
on_both_stores!(an_entitlement_expires_on_its_own_when_its_time_comes);

async fn an_entitlement_due_while_the_server_was_down_expires_at_the_next_start(store: Store) {
    // Sweeps an hour apart: only the sweep at start can expire it within this test.
    let mut app = spawn_app_with_env(store, &[("TESSERA_LIFECYCLE_INTERVAL_SECS", "3600")]).await;
    let tenant = app.create_tenant("down-at-expiry").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    trial_product(&app, "crm").await;
    let due = chrono::Utc::now() + chrono::Duration::seconds(2);
    grant(
        &app,
        &tenant,
        "crm",
        json!({"expires_at": due.to_rfc3339()}),
    )
    .await;

    app.stop().await;
    let passed = eventually(Duration::from_secs(10), || async {
        chrono::Utc::now() > due
    })
    .await;
    assert!(passed);
    app.start().await;

    let expired = eventually(Duration::from_secs(20), || async {
        entitlements(&app, &tenant).await.is_empty()
    })
    .await;
    assert!(expired, "the start did not catch up with the expiry");
    assert_eq!(audited(&app, &tenant, "entitlement.expired").await.len(), 1);
    // A second start finds nothing more to expire.
    app.restart().await;
    assert_eq!(audited(&app, &tenant, "entitlement.expired").await.len(), 1);
}
on_both_stores!(an_entitlement_due_while_the_server_was_down_expires_at_the_next_start);
