//! The OAuth client admin API (`/v1/tenants/{id}/clients`): registration and its validation,
//! paged listing without secrets, updates and what they do to new tokens, and which API keys
//! may manage which tenant's clients.

use std::collections::HashSet;

use jsonwebtoken::Algorithm;
use oauth2::TokenResponse;
use oauth2::basic::BasicErrorResponseType;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    assert_claims, basic, granted, jwks, machine_client, oauth_error, register_client, scope_set,
    tenant, token, try_token, verify_jwt,
};
use crate::helpers::{Store, spawn_app};

#[tokio::test]
async fn client_registration_is_validated_and_rejections_append_nothing() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "validation", None).await;
    let path = format!("/v1/tenants/{}/clients", t.id);
    let head = app.log_head().await;

    let web = |uris: Value| json!({"name": "web", "grant_types": ["authorization_code"], "redirect_uris": uris});
    let cases: Vec<(Value, &[&str])> = vec![
        (
            web(json!(["https://app.example/cb#fragment"])),
            &["redirect_uris[0]"][..],
        ),
        (
            web(json!(["http://app.example/cb"])),
            &["redirect_uris[0]"][..],
        ),
        (web(json!(["/relative/cb"])), &["redirect_uris[0]"][..]),
        (web(json!(["not a uri"])), &["redirect_uris[0]"][..]),
        (
            web(json!(["https://ok.example/cb", "http://evil.example/cb"])),
            &["redirect_uris[1]"][..],
        ),
        (
            json!({"name": "spa", "client_type": "public", "grant_types": ["client_credentials"]}),
            &["grant_types", "client_type"][..],
        ),
        (
            json!({"name": "spa", "client_type": "public"}),
            &["grant_types", "client_type"][..],
        ),
        (
            json!({"name": "m", "access_token_ttl_secs": 59}),
            &["access_token_ttl_secs"][..],
        ),
        (
            json!({"name": "m", "access_token_ttl_secs": 86_401}),
            &["access_token_ttl_secs"][..],
        ),
        (
            json!({"name": "m", "access_token_ttl_secs": 0}),
            &["access_token_ttl_secs"][..],
        ),
        (
            json!({"name": "m", "client_type": "robot"}),
            &["client_type"][..],
        ),
    ];
    for (i, (body, fields)) in cases.into_iter().enumerate() {
        let (status, error) = app.send(app.admin(Method::POST, &path).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "case {i} {body}: {error}");
        assert!(
            error["error"].is_string()
                && error["message"].is_string()
                && error["correlation_id"].is_string(),
            "case {i}: {error}"
        );
        let field = error["field"].as_str().unwrap_or_default();
        assert!(
            fields.contains(&field),
            "case {i} {body}: field {field:?} in {error}"
        );
    }
    assert_eq!(
        app.log_head().await,
        head,
        "rejected registrations appended events"
    );

    // Loopback http redirect URIs are allowed (RFC 8252 §7.3); so is https with a path and query.
    let loopback = register_client(
        &app,
        &t.id,
        web(json!([
            "http://localhost:8080/cb",
            "http://127.0.0.1:9000/cb",
            "http://[::1]:7000/cb",
            "https://app.example/cb?x=1"
        ])),
    )
    .await;
    assert_eq!(
        loopback.client["redirect_uris"].as_array().unwrap().len(),
        4
    );
    // A public client has no secret.
    let (status, public) = app
        .send(app.admin(Method::POST, &path).json(&json!({
            "name": "cli", "client_type": "public", "grant_types": ["authorization_code"],
            "redirect_uris": ["http://127.0.0.1:5000/cb"]})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{public}");
    assert_eq!(public["client"]["client_type"], "public");
    assert!(
        public.get("client_secret").is_none_or(Value::is_null),
        "{public}"
    );
    // Boundary TTLs are accepted.
    for ttl in [60, 86_400] {
        let reg = register_client(
            &app,
            &t.id,
            json!({"name": "m", "access_token_ttl_secs": ttl}),
        )
        .await;
        assert_eq!(reg.client["access_token_ttl_secs"], ttl);
    }
    // An unknown tenant.
    let (status, _) = app
        .send(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{}/clients", uuid::Uuid::now_v7()),
            )
            .json(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn clients_are_listed_in_pages_without_secrets() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "listing", None).await;
    let other = tenant(&app, "listing-other", None).await;
    machine_client(&app, &other, "not mine", &[]).await;
    let mut secrets = Vec::new();
    let mut ids = HashSet::new();
    for i in 0..5 {
        let reg = machine_client(&app, &t, &format!("client-{i}"), &[]).await;
        secrets.push(reg.secret);
        ids.insert(reg.client_id);
    }

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tenants/{}/clients?limit=2&cursor={c}", t.id),
            None => format!("/v1/tenants/{}/clients?limit=2", t.id),
        };
        let (status, page) = app.send(app.admin(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let text = page.to_string();
        assert!(
            !text.contains("\"client_secret\"") && !text.contains("secret_hash"),
            "{page}"
        );
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret is listed");
        }
        let items = page["items"].as_array().unwrap();
        sizes.push(items.len());
        for item in items {
            assert_eq!(item["tenant_id"], t.id.as_str());
            seen.push(item["client_id"].as_str().unwrap().to_owned());
        }
        match page.get("next_cursor") {
            Some(next) => cursor = Some(next.as_str().unwrap().to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), ids);
    assert_eq!(seen.len(), 5, "{seen:?}");

    let (status, body) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/clients?limit=0", t.id),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/clients?cursor=garbage", t.id),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn client_updates_show_in_reads_and_in_new_tokens() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "updates", None).await;
    let reg = machine_client(&app, &t, "before", &["old"]).await;
    let path = format!("/v1/tenants/{}/clients/{}", t.id, reg.client_id);

    let (status, got) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got, reg.client, "GET returns what the 201 did");

    let (status, updated) = app
        .send(app.admin(Method::PUT, &path).json(&json!({
            "name": "after",
            "allowed_scopes": ["new:read", "new:write"],
            "access_token_ttl_secs": 120,
        })))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "after");
    assert_eq!(updated["allowed_scopes"], json!(["new:read", "new:write"]));
    assert_eq!(updated["access_token_ttl_secs"], 120);
    assert_eq!(
        updated["grant_types"], reg.client["grant_types"],
        "untouched"
    );
    assert_eq!(updated["created_at"], reg.client["created_at"]);
    assert_eq!(updated["active"], true);
    assert_eq!(app.send(app.admin(Method::GET, &path)).await.1, updated);

    // The same secret still works, and new tokens follow the new settings.
    let client = basic(&t, &reg);
    let response = token(&client, &[]).await;
    assert_eq!(granted(&response), scope_set(["new:read", "new:write"]));
    let (set, _, _) = jwks(&t).await;
    let (_, claims) = verify_jwt(response.access_token().secret(), &set, &t, Algorithm::ES256);
    assert_claims(&claims, &t, &reg.client_id, &["new:read", "new:write"], 120);
    assert_eq!(
        oauth_error(try_token(&client, &["old"]).await),
        BasicErrorResponseType::InvalidScope
    );

    // Adding authorization_code needs valid redirect URIs; bad ones change nothing.
    let head = app.log_head().await;
    for (body, field) in [
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "redirect_uris[0]",
        ),
        (
            json!({"access_token_ttl_secs": 10}),
            "access_token_ttl_secs",
        ),
    ] {
        let (status, error) = app.send(app.admin(Method::PUT, &path).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["field"], field, "{error}");
    }
    assert_eq!(app.log_head().await, head);
    let (status, body) = app
        .send(app.admin(Method::PUT, &path).json(&json!({
            "grant_types": ["client_credentials", "authorization_code"],
            "redirect_uris": ["https://app.example/cb"],
        })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redirect_uris"], json!(["https://app.example/cb"]));
    assert_eq!(app.send(app.admin(Method::GET, &path)).await.1, body);

    let unknown = format!("/v1/tenants/{}/clients/no-such-client", t.id);
    assert_eq!(
        app.send(app.admin(Method::GET, &unknown)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.send(app.admin(Method::PUT, &unknown).json(&json!({"name": "x"})))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.send(app.admin(Method::DELETE, &unknown)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn tenant_scoped_keys_manage_only_their_own_tenants_clients() {
    let app = spawn_app(Store::Embedded).await;
    let a = tenant(&app, "keys-a", None).await;
    let b = tenant(&app, "keys-b", None).await;
    let b_client = machine_client(&app, &b, "b's", &[]).await;
    let admin_key = app
        .create_api_key(
            &a.id,
            json!({"name": "a-admin", "scopes": ["tenant:admin"]}),
        )
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let weak_key = app
        .create_api_key(
            &a.id,
            json!({"name": "a-reader", "scopes": ["audit:write"]}),
        )
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let as_a = |method: Method, path: &str| app.request(method, path, Some(&admin_key));

    // A's own clients: the whole lifecycle.
    let a_clients = format!("/v1/tenants/{}/clients", a.id);
    let (status, created) = app
        .send(
            as_a(Method::POST, &a_clients).json(&json!({"name": "mine", "allowed_scopes": ["x"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["client"]["client_id"].as_str().unwrap().to_owned();
    let one = format!("{a_clients}/{id}");
    let (status, page) = app.send(as_a(Method::GET, &a_clients)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.send(as_a(Method::GET, &one)).await.0, StatusCode::OK);
    let (status, body) = app
        .send(as_a(Method::PUT, &one).json(&json!({"name": "renamed"})))
        .await;
    assert_eq!(
        (status, &body["name"]),
        (StatusCode::OK, &json!("renamed")),
        "{body}"
    );
    let (status, body) = app
        .send(as_a(Method::POST, &format!("{one}/secret")).json(&json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["client_secret"].is_string());

    // B's: as if it did not exist.
    let b_clients = format!("/v1/tenants/{}/clients", b.id);
    let b_one = format!("{b_clients}/{}", b_client.client_id);
    for (method, path, body) in [
        (Method::GET, b_clients.clone(), None),
        (
            Method::POST,
            b_clients.clone(),
            Some(json!({"name": "sneaky"})),
        ),
        (Method::GET, b_one.clone(), None),
        (Method::PUT, b_one.clone(), Some(json!({"name": "sneaky"}))),
        (Method::POST, format!("{b_one}/secret"), Some(json!({}))),
        (Method::DELETE, b_one.clone(), None),
    ] {
        let mut request = as_a(method.clone(), &path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, body) = app.send(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    // B's client through A's path is not found either, even for the platform admin.
    let (status, _) = app
        .send(app.admin(Method::GET, &format!("{a_clients}/{}", b_client.client_id)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // And B's client is untouched.
    let (status, body) = app.send(app.admin(Method::GET, &b_one)).await;
    assert_eq!(
        (status, &body["name"], &body["active"]),
        (StatusCode::OK, &json!("b's"), &json!(true))
    );
    token(&basic(&b, &b_client), &[]).await;

    // A key of A without tenant:admin manages nothing.
    for (method, path) in [(Method::GET, a_clients.clone()), (Method::GET, one.clone())] {
        let (status, body) = app
            .send(app.request(method.clone(), &path, Some(&weak_key)))
            .await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
            "{method} {path} without tenant:admin: {status} {body}"
        );
    }
    let (status, body) = app
        .send(
            app.request(Method::POST, &a_clients, Some(&weak_key))
                .json(&json!({"name": "weak"})),
        )
        .await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
        "register without tenant:admin: {status} {body}"
    );

    // Deactivation by the tenant's key.
    let (status, body) = app.send(as_a(Method::DELETE, &one)).await;
    assert_eq!(
        (status, &body["active"]),
        (StatusCode::OK, &json!(false)),
        "{body}"
    );
    // No secret, no credentials: nothing without a key.
    assert_eq!(
        app.send(app.request(Method::GET, &a_clients, None)).await.0,
        StatusCode::UNAUTHORIZED
    );
}
