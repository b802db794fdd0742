//! API key usage and verification: every authenticated admin call and every successful verify
//! counts one use; the counts read back exactly (recorded uses plus those still in memory) and
//! survive a clean restart; `POST /v1/api-keys/verify` answers 200 for any key, valid or not.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_event_schemas::Event;

use crate::helpers::{Store, TestServer, read_log, spawn_app};
use crate::on_both_stores;

/// A tenant key: (key id, plaintext).
async fn key(app: &TestServer, tenant_id: &str, body: Value) -> (String, String) {
    let created = app.create_api_key(tenant_id, body).await;
    (
        created["api_key"]["id"].as_str().unwrap().to_owned(),
        created["plaintext"].as_str().unwrap().to_owned(),
    )
}

/// `GET .../usage` with the platform admin key (whose own uses are not the ones counted here).
async fn usage(app: &TestServer, tenant_id: &str, key_id: &str) -> Value {
    let (status, body) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}/api-keys/{key_id}/usage"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["key_id"], key_id, "{body}");
    body
}

/// `POST /v1/api-keys/verify`, without any credentials; always a 200.
async fn verify(app: &TestServer, key: &str) -> Value {
    let (status, body) = app
        .send(
            app.request(Method::POST, "/v1/api-keys/verify", None)
                .json(&json!({"key": key})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "verify {key:?}: {body}");
    body
}

fn assert_invalid(body: &Value, what: &str) {
    assert_eq!(body["valid"], false, "{what}: {body}");
    for field in ["tenant_id", "key_id", "product", "scopes"] {
        assert!(
            body.get(field).is_none_or(Value::is_null),
            "{what}: an invalid key reveals nothing: {body}"
        );
    }
}

fn rfc3339(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .with_timezone(&Utc)
}

/// One use of the key on the admin API: list its own tenant's keys.
async fn use_key(app: &TestServer, tenant_id: &str, plaintext: &str) {
    let (status, body) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}/api-keys"),
            Some(plaintext),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn admin_calls_and_verifies_are_counted_exactly() {
    let app = spawn_app(Store::Embedded).await;
    let tenant_id = app.create_tenant("usage").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (key_id, plaintext) = key(
        &app,
        &tenant_id,
        json!({"name": "billing", "scopes": ["tenant:admin"], "product": "billing"}),
    )
    .await;
    let (idle_id, _) = key(&app, &tenant_id, json!({"name": "idle", "scopes": []})).await;

    let fresh = usage(&app, &tenant_id, &key_id).await;
    assert_eq!(fresh["use_count"], 0, "{fresh}");
    assert!(fresh["last_used_at"].is_null(), "{fresh}");

    let started = Utc::now();
    for _ in 0..3 {
        use_key(&app, &tenant_id, &plaintext).await;
    }
    let used = usage(&app, &tenant_id, &key_id).await;
    assert_eq!(
        used["use_count"], 3,
        "exact, without waiting for a flush: {used}"
    );
    let last = rfc3339(&used["last_used_at"]);
    assert!(
        last >= started - chrono::Duration::seconds(1)
            && last <= Utc::now() + chrono::Duration::seconds(1),
        "last_used_at {last} is now"
    );

    // The list and the single read carry the same figures.
    let (status, page) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant_id}/api-keys")))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    let listed = items.iter().find(|k| k["id"] == key_id.as_str()).unwrap();
    assert_eq!(listed["use_count"], 3, "{listed}");
    assert_eq!(rfc3339(&listed["last_used_at"]), last);
    let idle = items.iter().find(|k| k["id"] == idle_id.as_str()).unwrap();
    assert_eq!(idle["use_count"], 0, "{idle}");
    assert!(idle["last_used_at"].is_null(), "{idle}");
    let (status, single) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}/api-keys/{key_id}"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{single}");
    assert_eq!(single["use_count"], 3, "{single}");

    // A successful verify is a use; a failed one is not.
    let verified = verify(&app, &plaintext).await;
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["tenant_id"], tenant_id.as_str());
    assert_eq!(verified["key_id"], key_id.as_str());
    assert_eq!(verified["product"], "billing");
    assert_eq!(verified["scopes"], json!(["tenant:admin"]));
    let mut altered = plaintext.clone();
    let last_char = altered.pop().unwrap();
    altered.push(if last_char == 'x' { 'y' } else { 'x' });
    assert_invalid(&verify(&app, &altered).await, "altered key");
    assert_eq!(usage(&app, &tenant_id, &key_id).await["use_count"], 4);

    // Calls that fail authentication count for nobody.
    let (status, _) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}/api-keys"),
            Some(&altered),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(usage(&app, &tenant_id, &key_id).await["use_count"], 4);

    // Usage is the tenant's business only.
    let other = app.create_tenant("usage-other").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other_key) = key(
        &app,
        &other,
        json!({"name": "o", "scopes": ["tenant:admin"]}),
    )
    .await;
    let (status, _) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}/api-keys/{key_id}/usage"),
            Some(&other_key),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's key usage");
    let (status, _) = app
        .send(app.admin(
            Method::GET,
            &format!(
                "/v1/tenants/{tenant_id}/api-keys/{}/usage",
                uuid::Uuid::now_v7()
            ),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown key");
}

#[tokio::test]
async fn verify_says_no_with_a_200_for_garbage_revoked_expired_and_suspended_keys() {
    let app = spawn_app(Store::Embedded).await;
    let tenant_id = app.create_tenant("verify").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for garbage in [
        "",
        "garbage",
        "tsr_",
        "tsr_0000000000000000000000000000000000000000000000",
        "Bearer tsr_x",
    ] {
        assert_invalid(&verify(&app, garbage).await, garbage);
    }
    // Even with a wrong bearer key on the request, verify is public and answers 200.
    let (status, body) = app
        .send(
            app.request(Method::POST, "/v1/api-keys/verify", Some("tsr_wrong"))
                .json(&json!({"key": "garbage"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_invalid(&body, "wrong bearer");

    // Revoked.
    let (revoked_id, revoked) = key(
        &app,
        &tenant_id,
        json!({"name": "r", "scopes": ["audit:write"]}),
    )
    .await;
    assert_eq!(verify(&app, &revoked).await["valid"], true);
    let (status, body) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{tenant_id}/api-keys/{revoked_id}"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_invalid(&verify(&app, &revoked).await, "revoked");

    // Expired: a key that lives two seconds.
    // Whole seconds, so that the instant sent is exactly the instant waited for.
    let expires_at = (Utc::now() + chrono::Duration::seconds(2)).trunc_subsecs(0);
    let (_, expiring) = key(
        &app,
        &tenant_id,
        json!({"name": "e", "scopes": ["tenant:admin"],
               "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)}),
    )
    .await;
    let before = verify(&app, &expiring).await;
    if Utc::now() < expires_at - chrono::Duration::milliseconds(500) {
        assert_eq!(before["valid"], true, "not expired yet: {before}");
    }
    let wait = (expires_at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(1100);
    assert!(wait <= Duration::from_secs(4));
    tokio::time::sleep(wait).await;
    assert_invalid(&verify(&app, &expiring).await, "expired");
    let (status, _) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}/api-keys"),
            Some(&expiring),
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an expired key authenticates nothing"
    );

    // A suspended tenant's key, until the tenant is reactivated.
    let (_, good) = key(
        &app,
        &tenant_id,
        json!({"name": "g", "scopes": ["product:crm:x"], "product": "crm"}),
    )
    .await;
    let body = verify(&app, &good).await;
    assert_eq!(
        (body["valid"].as_bool(), body["product"].as_str()),
        (Some(true), Some("crm"))
    );
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/suspend"))
                .json(&json!({"reason": "audit"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_invalid(&verify(&app, &good).await, "suspended tenant");
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/reactivate"))
                .json(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(verify(&app, &good).await["valid"], true);
}

async fn usage_survives_a_clean_restart(store: Store) {
    let mut app = spawn_app(store).await;
    let tenant_id = app.create_tenant("usage-restart").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (key_id, plaintext) = key(
        &app,
        &tenant_id,
        json!({"name": "durable", "scopes": ["tenant:admin"]}),
    )
    .await;
    for _ in 0..3 {
        use_key(&app, &tenant_id, &plaintext).await;
    }
    assert_eq!(verify(&app, &plaintext).await["valid"], true);
    let before = usage(&app, &tenant_id, &key_id).await;
    assert_eq!(before["use_count"], 4, "{before}");

    app.restart().await;

    let after = usage(&app, &tenant_id, &key_id).await;
    assert_eq!(after["use_count"], 4, "flushed on shutdown: {after}");
    let drift = (rfc3339(&after["last_used_at"]) - rfc3339(&before["last_used_at"]))
        .num_milliseconds()
        .abs();
    assert!(drift < 1000, "last_used_at {before} vs {after}");

    // Recorded uses plus new in-memory ones.
    use_key(&app, &tenant_id, &plaintext).await;
    assert_eq!(usage(&app, &tenant_id, &key_id).await["use_count"], 5);
    let (status, page) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant_id}/api-keys")))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["use_count"], 5, "{listed}");
    assert!(listed["last_used_at"].is_string(), "{listed}");

    // The log holds them all once the server has stopped cleanly.
    app.stop().await;
    let stream = format!("{tenant_id}/api-key/{key_id}");
    let recorded: u64 = read_log(&app)
        .await
        .iter()
        .filter(|e| e.envelope.stream_id == stream)
        .filter_map(|e| match e.decode().unwrap() {
            Event::ApiKeyUsed(used) => Some(used.uses),
            _ => None,
        })
        .sum();
    assert_eq!(recorded, 5, "api_key.used events on {stream}");
}
on_both_stores!(usage_survives_a_clean_restart);
