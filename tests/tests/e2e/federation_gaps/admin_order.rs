//! The federation admin API checks `platform:admin` before it reads the body: a key without
//! the right learns nothing from how its body would be parsed.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Store, spawn_app};

#[tokio::test]
async fn a_tenant_admin_key_with_a_bad_body_is_forbidden_not_told_what_is_wrong_with_it() {
    let app = spawn_app(Store::Embedded).await;
    let tenant = app.create_tenant("fed-order").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.create_tenant("fed-order-other").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let own_key = app
        .create_api_key(&tenant, json!({"name": "own", "scopes": ["tenant:admin"]}))
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_key = app
        .create_api_key(&other, json!({"name": "other", "scopes": ["tenant:admin"]}))
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let bad_body = json!({"provider": 42, "no_such_field": true});
    let paths = [
        format!("/v1/tenants/{tenant}/federation"),
        format!("/v1/tenants/{tenant}/identity-providers/second"),
    ];
    for path in &paths {
        for method in [Method::PUT, Method::DELETE] {
            let (status, body) = app
                .send(
                    app.request(method.clone(), path, Some(&own_key))
                        .json(&bad_body),
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
            assert!(
                !body.to_string().contains("provider"),
                "{method} {path}: {body}"
            );
            // Another tenant's admin does not even learn that the tenant exists.
            let (status, body) = app
                .send(
                    app.request(method.clone(), path, Some(&other_key))
                        .json(&bad_body),
                )
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        }
        // Reading stays the tenant admin's right.
        let (status, body) = app
            .send(app.request(Method::GET, path, Some(&own_key)))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {path}: {body}");
        // The platform admin with the same body is told what is wrong with it.
        let (status, body) = app.send(app.admin(Method::PUT, path).json(&bad_body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "PUT {path}: {body}");
    }
}
