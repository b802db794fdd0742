//! Admin authentication and authorization: 401 without a valid key, 403 without the right,
//! 404 for other tenants' resources, suspension blocks a tenant's keys.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Store, TestServer, spawn_app};

async fn tenant_key(app: &TestServer, tenant_id: &str, scopes: &[&str]) -> (String, String) {
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/api-keys"))
                .json(&json!({
            "name": "automation", "scopes": scopes})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let plaintext = body["plaintext"].as_str().unwrap().to_owned();
    assert!(plaintext.starts_with("tsr_"));
    assert!(plaintext.starts_with(body["api_key"]["prefix"].as_str().unwrap()));
    assert!(body["warning"].is_string());
    (
        body["api_key"]["id"].as_str().unwrap().to_owned(),
        plaintext,
    )
}

#[tokio::test]
async fn missing_or_wrong_keys_get_401_with_a_bearer_challenge() {
    let app = spawn_app(Store::Embedded).await;
    for key in [None, Some("tsr_wrong"), Some("")] {
        let response = app
            .request(Method::GET, "/v1/tenants", key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");
    }
    let response = app
        .client
        .get(format!("{}/v1/tenants", app.base))
        .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tenant_keys_manage_only_their_own_tenant_and_cannot_manage_tenants() {
    let app = spawn_app(Store::Embedded).await;
    let acme = app.create_tenant("acme").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let globex = app.create_tenant("globex").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, key) = tenant_key(&app, &acme, &["tenant:admin"]).await;

    let (status, body) = app
        .send(
            app.request(Method::POST, "/v1/tenants", Some(&key))
                .json(&json!({"slug": "sneaky", "name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        app.send(app.request(Method::GET, "/v1/tenants", Some(&key)))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let (status, page) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{acme}/api-keys"),
            Some(&key),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page["items"][0].get("plaintext").is_none());
    assert!(
        !page.to_string().contains(&key),
        "the secret is never listed"
    );
    let (status, _) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{globex}/api-keys"),
            Some(&key),
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant looks nonexistent"
    );
}

#[tokio::test]
async fn revoked_keys_and_keys_of_suspended_tenants_stop_working() {
    let app = spawn_app(Store::Embedded).await;
    let acme = app.create_tenant("acme").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (key_id, key) = tenant_key(&app, &acme, &["tenant:admin"]).await;
    let own_keys = format!("/v1/tenants/{acme}/api-keys");
    assert_eq!(
        app.send(app.request(Method::GET, &own_keys, Some(&key)))
            .await
            .0,
        StatusCode::OK
    );

    app.send(
        app.admin(Method::POST, &format!("/v1/tenants/{acme}/suspend"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(
        app.send(app.request(Method::GET, &own_keys, Some(&key)))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    app.send(app.admin(Method::POST, &format!("/v1/tenants/{acme}/reactivate")))
        .await;
    assert_eq!(
        app.send(app.request(Method::GET, &own_keys, Some(&key)))
            .await
            .0,
        StatusCode::OK
    );

    let (status, revoked) = app
        .send(app.admin(Method::DELETE, &format!("{own_keys}/{key_id}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(
        app.send(app.request(Method::GET, &own_keys, Some(&key)))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.send(app.admin(Method::DELETE, &format!("{own_keys}/{key_id}")))
            .await
            .0,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn a_generated_admin_key_is_printed_once_and_stored_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;

    let mut app = crate::helpers::spawn_app_generating_its_admin_key().await;
    let key_file = app.data_dir().join("bootstrap-admin-key");
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(key.starts_with("tsr_"), "{key}");
    for file in ["bootstrap-admin-key", "master-key"] {
        let mode = std::fs::metadata(app.data_dir().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {mode:o}");
    }
    let printed = app
        .stdout
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&key))
        .count();
    assert_eq!(printed, 1, "the key is printed exactly once");
    assert_eq!(
        app.send(app.request(Method::GET, "/v1/tenants", Some(&key)))
            .await
            .0,
        StatusCode::OK
    );

    app.restart().await;
    let printed = app
        .stdout
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("Bootstrap"))
        .count();
    assert_eq!(printed, 1, "a restart does not bootstrap again");
    assert_eq!(
        app.send(app.request(Method::GET, "/v1/tenants", Some(&key)))
            .await
            .0,
        StatusCode::OK
    );
}
