//! The vault's keys: rotation, a rewrap of many connections interrupted by kill -9 and resumed
//! at the restart, the minimum version, and offboarding.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{access, credentials, key, store, tenant};
use crate::helpers::{Store, TestServer, eventually, read_log, spawn_app};
use crate::on_both_stores;

/// Connections stored before the rotation: enough that a rewrap takes a while.
const CONNECTIONS: usize = 200;

async fn vault(app: &TestServer, tenant_id: &str) -> Value {
    let (status, vault) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant_id}/vault")))
        .await;
    assert_eq!(status, StatusCode::OK, "{vault}");
    vault
}

/// How many `credential.rewrapped` events the log holds (server stopped).
async fn rewrapped(app: &TestServer) -> usize {
    read_log(app)
        .await
        .iter()
        .filter(|recorded| recorded.envelope.event_type == "credential.rewrapped")
        .count()
}

async fn post(app: &TestServer, path: &str) -> (StatusCode, Value) {
    app.send(app.admin(Method::POST, path)).await
}

async fn rotation_and_rewrap_over_many_connections_survive_a_kill_in_the_middle(store_kind: Store) {
    let mut app = spawn_app(store_kind).await;
    let t = tenant(&app, "vault-rewrap").await;
    for i in 0..CONNECTIONS {
        store(
            &app,
            &t,
            &format!("svc-{i:03}"),
            json!({"access_token": format!("token-{i:03}")}),
        )
        .await;
    }
    let before = vault(&app, &t).await;
    assert_eq!(before["newest"], 1, "{before}");
    assert_eq!(
        before["secrets_per_version"],
        json!([{"version": 1, "secrets": CONNECTIONS}])
    );

    let (status, rotated) = post(&app, &format!("/v1/tenants/{t}/vault/rotate")).await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    assert_eq!(rotated["newest"], 2);
    assert_eq!(rotated["versions"], json!([1, 2]));
    // New secrets use the new version; the old ones still open.
    store(&app, &t, "fresh", json!({"access_token": "token-fresh"})).await;
    let (_, reader) = key(&app, &t, &["vault:read"]).await;
    let (status, opened) = access(&app, &reader, &t, "svc-000", None).await;
    assert_eq!(
        (status, &opened["access_token"]),
        (StatusCode::OK, &json!("token-000"))
    );

    // Retiring version 1 while secrets remain under it is refused, and changes nothing.
    let minimum = format!("/v1/tenants/{t}/vault/minimum");
    let (status, refused) = app
        .send(
            app.admin(Method::PUT, &minimum)
                .json(&json!({"version": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("200"),
        "{refused}"
    );

    let (status, started) = post(&app, &format!("/v1/tenants/{t}/vault/rewrap")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["rewrap"]["to_version"], 2, "{started}");
    assert_eq!(started["rewrap"]["total"], CONNECTIONS, "{started}");
    // Killed while it runs, once some secrets have moved: nothing is flushed, the restart
    // must resume from what the log says is left.
    let moving = eventually(Duration::from_secs(60), || async {
        vault(&app, &t).await["rewrap"]["done"]
            .as_u64()
            .is_some_and(|done| done > 0)
    })
    .await;
    assert!(moving, "{}", vault(&app, &t).await);
    app.kill9();
    let moved = rewrapped(&app).await;
    eprintln!("rewrapped before the kill: {moved} of {CONNECTIONS}");
    assert!(
        moved > 0 && moved < CONNECTIONS,
        "{moved} of {CONNECTIONS} moved before the kill"
    );
    app.start().await;

    let done = eventually(Duration::from_secs(120), || async {
        vault(&app, &t).await["rewrap"]["remaining"] == 0
    })
    .await;
    let after = vault(&app, &t).await;
    assert!(done, "{after}");
    assert_eq!(after["rewrap"]["done"], CONNECTIONS, "{after}");
    assert_eq!(
        after["secrets_per_version"],
        json!([{"version": 2, "secrets": CONNECTIONS + 1}])
    );

    // Now version 1 can be retired, and every connection still opens.
    let (status, retired) = app
        .send(
            app.admin(Method::PUT, &minimum)
                .json(&json!({"version": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{retired}");
    assert_eq!(retired["minimum"], 2);
    let (status, _) = app
        .send(
            app.admin(Method::PUT, &minimum)
                .json(&json!({"version": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for i in 0..CONNECTIONS {
        let (status, opened) = access(&app, &reader, &t, &format!("svc-{i:03}"), None).await;
        assert_eq!(status, StatusCode::OK, "svc-{i:03}: {opened}");
        assert_eq!(opened["access_token"], format!("token-{i:03}"));
    }
    let (status, listed) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{t}/integrations")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        listed["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["key_version"] == 2),
        "{listed}"
    );
}
on_both_stores!(rotation_and_rewrap_over_many_connections_survive_a_kill_in_the_middle);

async fn offboarding_destroys_every_key_and_the_log_still_verifies(store_kind: Store) {
    let mut app = spawn_app(store_kind).await;
    let t = tenant(&app, "vault-gone").await;
    let other = tenant(&app, "vault-stays").await;
    store(&app, &t, "notion", json!({"access_token": "tok-gone-1"})).await;
    let (status, _) = post(&app, &format!("/v1/tenants/{t}/vault/rotate")).await;
    assert_eq!(status, StatusCode::CREATED);
    store(&app, &t, "github", json!({"access_token": "tok-gone-2"})).await;
    store(&app, &other, "notion", json!({"access_token": "tok-stays"})).await;
    let (_, reader) = key(&app, &t, &["vault:read"]).await;
    let (_, other_reader) = key(&app, &other, &["vault:read"]).await;
    let (_, tenant_admin) = key(&app, &t, &["tenant:admin"]).await;

    let path = format!("/v1/tenants/{t}/vault");
    // Missing or wrong confirmation: 400, nothing changes. A tenant admin may not offboard.
    for body in [
        None,
        Some(json!({})),
        Some(json!({"confirm": "vault-stays"})),
    ] {
        let mut request = app.admin(Method::DELETE, &path);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let (status, refused) = app.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}: {refused}");
    }
    let (status, _) = app
        .send(
            app.request(Method::DELETE, &path, Some(&tenant_admin))
                .json(&json!({"confirm": "vault-gone"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, opened) = access(&app, &reader, &t, "notion", None).await;
    assert_eq!(
        (status, &opened["access_token"]),
        (StatusCode::OK, &json!("tok-gone-1"))
    );

    let (status, destroyed) = app
        .send(
            app.admin(Method::DELETE, &path)
                .json(&json!({"confirm": "vault-gone"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{destroyed}");
    assert_eq!(destroyed["versions_destroyed"], 2);

    for integration in ["notion", "github"] {
        let (status, body) = access(&app, &reader, &t, integration, None).await;
        assert_eq!(status, StatusCode::GONE, "{integration}: {body}");
    }
    let (status, _) = app
        .send(
            app.admin(Method::POST, &credentials(&t, "slack"))
                .json(&json!({"access_token": "never"})),
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
    let (status, _) = post(&app, &format!("/v1/tenants/{t}/vault/rotate")).await;
    assert_eq!(status, StatusCode::GONE);
    let after = vault(&app, &t).await;
    assert_eq!(after["destroyed"], true, "{after}");
    assert_eq!(after["versions"], json!([]));
    // The other tenant is untouched.
    let (status, opened) = access(&app, &other_reader, &other, "notion", None).await;
    assert_eq!(
        (status, &opened["access_token"]),
        (StatusCode::OK, &json!("tok-stays"))
    );

    // After a restart too, nothing of the tenant opens; and the log verifies.
    app.stop().await;
    let (ok, verified) = app.replay(&["verify"]);
    assert!(ok, "{verified}");
    app.start().await;
    let (status, _) = access(&app, &reader, &t, "notion", None).await;
    assert_eq!(status, StatusCode::GONE);
}
on_both_stores!(offboarding_destroys_every_key_and_the_log_still_verifies);
