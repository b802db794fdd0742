//! The credential vault over HTTP (issue 20): connections stored directly, listed without
//! their secrets, accessed with a `vault:read` key (each access audited with the key and the
//! correlation id) and removed; the keys' rotation, a rewrap over many connections with a
//! kill -9 in the middle, the minimum version, offboarding after which nothing opens while
//! the log still verifies, and a search for the stored secrets everywhere they must not be.

mod keys;
mod leaks;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, eventually, spawn_app};
use crate::on_both_stores;

/// A tenant's id.
async fn tenant(app: &TestServer, slug: &str) -> String {
    app.create_tenant(slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A key of `tenant_id` with `scopes`: (key id, plaintext).
async fn key(app: &TestServer, tenant_id: &str, scopes: &[&str]) -> (String, String) {
    let created = app
        .create_api_key(tenant_id, json!({"name": "service", "scopes": scopes}))
        .await;
    (
        created["api_key"]["id"].as_str().unwrap().to_owned(),
        created["plaintext"].as_str().unwrap().to_owned(),
    )
}

fn credentials(tenant_id: &str, integration: &str) -> String {
    format!("/v1/tenants/{tenant_id}/integrations/{integration}/credentials")
}

/// Stores `body` as `integration`'s connection with the platform admin key; returns the 201.
async fn store(app: &TestServer, tenant_id: &str, integration: &str, body: Value) -> Value {
    let (status, stored) = app
        .send(
            app.admin(Method::POST, &credentials(tenant_id, integration))
                .json(&body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    stored
}

/// An access with `key` (and `correlation`, if given): status and body.
async fn access(
    app: &TestServer,
    key: &str,
    tenant_id: &str,
    integration: &str,
    correlation: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = app.request(
        Method::POST,
        &format!("{}/access", credentials(tenant_id, integration)),
        Some(key),
    );
    if let Some(correlation) = correlation {
        request = request.header("X-Correlation-ID", correlation);
    }
    app.send(request).await
}

async fn listing(app: &TestServer, tenant_id: &str) -> Value {
    let (status, listed) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}/integrations"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    listed
}

fn listed_names(listed: &Value) -> Vec<String> {
    listed["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["integration"].as_str().unwrap().to_owned())
        .collect()
}

async fn connections_are_stored_listed_accessed_with_an_audit_row_and_removed(store_kind: Store) {
    let app = spawn_app(store_kind).await;
    let a = tenant(&app, "vault-a").await;
    let b = tenant(&app, "vault-b").await;
    // Seed 004's body, camelCase names included.
    let stored = store(
        &app,
        &a,
        "notion",
        json!({"accessToken": "secret_notion_abc123", "tokenType": "bearer",
               "expiresIn": 0, "scopes": ["read:pages", "write:pages"]}),
    )
    .await;
    assert_eq!(stored["status"], "active", "{stored}");
    assert_eq!(stored["expiresAt"], Value::Null, "{stored}");
    assert!(!stored.to_string().contains("secret_notion_abc123"));
    store(&app, &a, "openai", json!({"api_key": "sk-test-openai-999"})).await;

    let listed = listing(&app, &a).await;
    assert_eq!(listed_names(&listed), ["notion", "openai"]);
    let notion = &listed["integrations"][0];
    assert_eq!(notion["kind"], "oauth");
    assert_eq!(notion["scopes"], json!(["read:pages", "write:pages"]));
    assert_eq!(notion["key_version"], 1);
    assert_eq!(notion["hasCredentials"], true);
    let text = listed.to_string();
    assert!(!text.contains("secret_notion_abc123") && !text.contains("sk-test-openai-999"));
    assert_eq!(listed_names(&listing(&app, &b).await), Vec::<String>::new());

    // Bad input changes nothing.
    let (status, refused) = app
        .send(
            app.admin(Method::POST, &credentials(&a, "github"))
                .json(&json!({"access_token": "t", "api_key": "k"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["correlation_id"].is_string(), "{refused}");
    let (status, _) = app
        .send(
            app.admin(Method::POST, &credentials(&a, "Not%20Valid"))
                .json(&json!({"access_token": "t"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(listed_names(&listing(&app, &a).await), ["notion", "openai"]);

    let (reader_id, reader) = key(&app, &a, &["vault:read"]).await;
    let (_, writer) = key(&app, &a, &["audit:write"]).await;
    let (_, other_reader) = key(&app, &b, &["vault:read"]).await;

    let (status, opened) = access(&app, &reader, &a, "notion", Some("vault-access-1")).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["access_token"], "secret_notion_abc123");
    assert_eq!(opened["token_type"], "bearer");
    assert_eq!(opened["scopes"], json!(["read:pages", "write:pages"]));
    let (status, opened) = access(&app, &reader, &a, "openai", None).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["api_key"], "sk-test-openai-999");
    assert_eq!(opened["kind"], "api_key");

    // Without the scope: 403. Another tenant's key: 404, for what exists and what does not.
    let (status, _) = access(&app, &writer, &a, "notion", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for integration in ["notion", "openai", "missing"] {
        let (status, body) = access(&app, &other_reader, &a, integration, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{integration}: {body}");
    }
    let (status, _) = access(&app, &reader, &a, "missing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = access(&app, &reader, &b, "notion", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The access is in the audit trail: which key, which connection, which correlation id.
    let path = format!("/v1/audit?tenant_id={a}&action=credential.accessed");
    let found = eventually(Duration::from_secs(10), || async {
        let (status, page) = app.send(app.admin(Method::GET, &path)).await;
        status == StatusCode::OK
            && page["items"].as_array().unwrap().iter().any(|entry| {
                entry["correlation_id"] == "vault-access-1"
                    && entry["target_id"] == "notion"
                    && entry.to_string().contains(&reader_id)
            })
    })
    .await;
    let (_, page) = app.send(app.admin(Method::GET, &path)).await;
    assert!(found, "{page}");
    assert!(!page.to_string().contains("secret_notion_abc123"));

    let (status, removed) = app
        .send(app.admin(Method::DELETE, &credentials(&a, "notion")))
        .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["success"], true);
    let (status, _) = access(&app, &reader, &a, "notion", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(listed_names(&listing(&app, &a).await), ["openai"]);
    let (status, _) = app
        .send(app.admin(Method::DELETE, &credentials(&a, "notion")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
on_both_stores!(connections_are_stored_listed_accessed_with_an_audit_row_and_removed);

async fn a_tenant_admin_manages_its_own_connections_and_no_other_tenants(store_kind: Store) {
    let app = spawn_app(store_kind).await;
    let a = tenant(&app, "vault-admin-a").await;
    let b = tenant(&app, "vault-admin-b").await;
    let (_, admin_a) = key(&app, &a, &["tenant:admin"]).await;
    let body = json!({"access_token": "tok-a", "refresh_token": "ref-a", "expires_in": 3600});
    let (status, stored) = app
        .send(
            app.request(Method::POST, &credentials(&a, "github"), Some(&admin_a))
                .json(&body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(stored["refreshable"], true);
    assert!(stored["expires_at"].is_string());
    let (status, _) = app
        .send(
            app.request(Method::POST, &credentials(&b, "github"), Some(&admin_a))
                .json(&body),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A tenant admin hands vault:read to its service's key.
    let (status, created) = app
        .send(
            app.request(
                Method::POST,
                &format!("/v1/tenants/{a}/api-keys"),
                Some(&admin_a),
            )
            .json(&json!({"name": "gateway", "scopes": ["vault:read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let reader = created["plaintext"].as_str().unwrap();
    let (status, opened) = access(&app, reader, &a, "github", None).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["access_token"], "tok-a");
    // The tenant admin's own key does not read secrets.
    let (status, _) = access(&app, &admin_a, &a, "github", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
on_both_stores!(a_tenant_admin_manages_its_own_connections_and_no_other_tenants);
