//! The client admin API's OpenID Connect fields: what registration defaults to, what it
//! accepts (seed 001's `scopes` too), what an update changes and removes, and the 400s that
//! name the field and change nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{register, tenant_id, web_app};
use crate::helpers::{Store, spawn_app};
use crate::on_both_stores;

async fn a_client_registers_reads_and_updates_its_openid_connect_settings(store: Store) {
    let app = spawn_app(store).await;
    let tenant = tenant_id(&app, "settings").await;

    // Registration without the settings gets the defaults.
    let (status, created) = register(&app, &tenant, web_app("confidential")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let client = &created["client"];
    assert_eq!(client["post_logout_redirect_uris"], json!([]));
    assert_eq!(client["require_consent"], true);
    assert_eq!(client["refresh_token_ttl_secs"], 30 * 86_400);
    assert_eq!(client["refresh_token_idle_secs"], 14 * 86_400);
    assert_eq!(client["refresh_without_offline_access"], false);
    assert_eq!(client["id_token_signed_response_alg"], "RS256");
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_basic");
    assert!(client.get("backchannel_logout_uri").is_none(), "{client}");

    // Registration with every setting keeps them, and a read shows them.
    let mut body = web_app("confidential");
    body["post_logout_redirect_uris"] = json!(["https://app.example/bye"]);
    body["require_consent"] = json!(false);
    body["refresh_token_ttl_secs"] = json!(86_400);
    body["refresh_token_idle_secs"] = json!(3_600);
    body["refresh_without_offline_access"] = json!(true);
    body["id_token_signed_response_alg"] = json!("ES256");
    body["backchannel_logout_uri"] = json!("https://app.example/backchannel");
    let (status, created) = register(&app, &tenant, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["client"]["client_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/tenants/{tenant}/clients/{id}");
    let (status, read) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(
        read["post_logout_redirect_uris"],
        json!(["https://app.example/bye"])
    );
    assert_eq!(read["require_consent"], false);
    assert_eq!(read["refresh_token_ttl_secs"], 86_400);
    assert_eq!(read["refresh_token_idle_secs"], 3_600);
    assert_eq!(read["refresh_without_offline_access"], true);
    assert_eq!(read["id_token_signed_response_alg"], "ES256");
    assert_eq!(
        read["backchannel_logout_uri"],
        "https://app.example/backchannel"
    );

    // An update changes what it names, and `null` removes the back-channel URI.
    let (status, updated) = app
        .send(app.admin(Method::PUT, &path).json(&json!({
            "require_consent": true,
            "id_token_signed_response_alg": "RS256",
            "backchannel_logout_uri": null,
            "scopes": ["openid"],
        })))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["require_consent"], true);
    assert_eq!(updated["id_token_signed_response_alg"], "RS256");
    assert!(updated.get("backchannel_logout_uri").is_none(), "{updated}");
    assert_eq!(updated["allowed_scopes"], json!(["openid"]));
    assert_eq!(updated["refresh_token_idle_secs"], 3_600, "untouched");

    // The listing shows the settings too.
    let (_, page) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant}/clients")))
        .await;
    let listed = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["refresh_token_ttl_secs"], 86_400);
}
on_both_stores!(a_client_registers_reads_and_updates_its_openid_connect_settings);

#[tokio::test]
async fn seed_001s_client_shape_registers_with_scopes_as_allowed_scopes() {
    let app = spawn_app(Store::Embedded).await;
    let tenant = tenant_id(&app, "seed-one").await;
    // The public client of seed 001, as its guide writes it.
    let (status, created) = register(
        &app,
        &tenant,
        json!({
            "name": "Frontend SPA",
            "client_type": "public",
            "redirect_uris": ["https://app.example.com/callback"],
            "grant_types": ["authorization_code"],
            "scopes": ["openid", "profile", "email"],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["client"]["allowed_scopes"],
        json!(["openid", "profile", "email"])
    );
    assert!(created.get("client_secret").is_none(), "{created}");
}

#[tokio::test]
async fn bad_settings_are_400s_that_name_their_field_and_append_nothing() {
    let app = spawn_app(Store::Embedded).await;
    let tenant = tenant_id(&app, "bad-settings").await;
    let (_, created) = register(&app, &tenant, web_app("confidential")).await;
    let id = created["client"]["client_id"].as_str().unwrap().to_owned();
    let head = app.log_head().await;
    let with = |field: &str, value: serde_json::Value| {
        let mut body = web_app("confidential");
        body[field] = value;
        body
    };
    let cases = [
        (with("scopes", json!(["openid"])), "scopes"),
        (
            with(
                "post_logout_redirect_uris",
                json!(["http://app.example/bye"]),
            ),
            "post_logout_redirect_uris[0]",
        ),
        (
            with("refresh_token_ttl_secs", json!(10)),
            "refresh_token_ttl_secs",
        ),
        (
            with("refresh_token_idle_secs", json!(40 * 86_400)),
            "refresh_token_idle_secs",
        ),
        (
            with("id_token_signed_response_alg", json!("EdDSA")),
            "id_token_signed_response_alg",
        ),
        (
            with("id_token_signed_response_alg", json!("HS256")),
            "id_token_signed_response_alg",
        ),
        (
            with(
                "backchannel_logout_uri",
                json!("https://rp.example/logout#x"),
            ),
            "backchannel_logout_uri",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = register(&app, &tenant, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {error}");
        assert_eq!(error["field"], field, "{error}");
        assert!(error["correlation_id"].is_string(), "{error}");
    }
    let (status, error) = app
        .send(
            app.admin(Method::PUT, &format!("/v1/tenants/{tenant}/clients/{id}"))
                .json(&json!({"refresh_token_idle_secs": 31 * 86_400})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["field"], "refresh_token_idle_secs");
    assert_eq!(
        app.log_head().await,
        head,
        "a refused command appends nothing"
    );
}
