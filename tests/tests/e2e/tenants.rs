//! Tenants over HTTP: create, read, update, the status lifecycle, settings, signing keys, bad
//! input, and restarts.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, read_log, spawn_app};
use crate::on_both_stores;

async fn created_tenant_can_be_read_listed_and_updated(store: Store) {
    let app = spawn_app(store).await;
    let created = app.create_tenant("acme-corp").await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["slug"], "acme-corp");
    assert_eq!(created["status"], "trial", "customers start on a trial");
    assert_eq!(created["kind"], "customer");
    assert_eq!(created["plan"], "starter");
    // The default key and the RS256 key for ID tokens.
    assert_eq!(created["key_ids"].as_array().unwrap().len(), 2);
    assert!(
        created["key_ids"]
            .as_array()
            .unwrap()
            .contains(&created["active_kid"])
    );

    // Read-your-writes: the GETs see the tenant at once.
    let (status, by_id) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{id}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id, created);
    let (status, by_slug) = app
        .send(app.admin(Method::GET, "/v1/tenants/by-slug/acme-corp"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_slug["id"], created["id"]);

    let (status, updated) = app
        .send(
            app.admin(Method::PATCH, &format!("/v1/tenants/{id}"))
                .json(&json!({
                    "name": "Acme Corporation",
                    "domains": ["acme.example", "login.acme.example"],
                    "plan": "enterprise",
                    "config": {"theme": "dark"},
                })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Acme Corporation");
    assert_eq!(updated["plan"], "enterprise");
    assert_eq!(
        updated["domains"],
        json!(["acme.example", "login.acme.example"])
    );
    assert_eq!(updated["config"], json!({"theme": "dark"}));
    assert!(updated["version"].as_u64().unwrap() > created["version"].as_u64().unwrap());

    let (status, page) = app.send(app.admin(Method::GET, "/v1/tenants")).await;
    assert_eq!(status, StatusCode::OK);
    let slugs: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert!(
        slugs.contains(&"acme-corp") && slugs.contains(&"system"),
        "{slugs:?}"
    );
}
on_both_stores!(created_tenant_can_be_read_listed_and_updated);

async fn duplicate_slugs_and_domains_are_rejected_and_append_nothing(store: Store) {
    let app = spawn_app(store).await;
    let first = app.create_tenant("dup-slug").await;
    let id = first["id"].as_str().unwrap();
    let (status, _) = app
        .send(
            app.admin(Method::PATCH, &format!("/v1/tenants/{id}"))
                .json(&json!({"domains": ["dup.example"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let head = app.log_head().await;

    let (status, body) = app
        .send(
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "dup-slug", "name": "Again"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(body["correlation_id"].is_string());

    let (status, body) = app
        .send(app.admin(Method::POST, "/v1/tenants").json(&json!({
            "slug": "other-slug", "name": "Other", "domains": ["dup.example"]})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        app.log_head().await,
        head,
        "a rejected command appended events"
    );
    let (status, _) = app
        .send(app.admin(Method::GET, "/v1/tenants/by-slug/other-slug"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
on_both_stores!(duplicate_slugs_and_domains_are_rejected_and_append_nothing);

async fn post(app: &crate::helpers::TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    app.send(app.admin(Method::POST, path).json(&body)).await
}

async fn every_legal_transition_works_and_illegal_ones_conflict(store: Store) {
    let app = spawn_app(store).await;
    let id = app.create_tenant("lifecycle").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = |action: &str| format!("/v1/tenants/{id}/{action}");

    // trial -> active, with a contract.
    let (status, body) = post(
        &app,
        &t("activate"),
        json!({
        "plan": "business", "contract_start": "2026-01-01", "contract_end": "2099-12-31",
        "erp_customer_id": "ERP-7"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(body["plan"], "business");
    assert_eq!(body["contract_end"], "2099-12-31");
    let (status, body) = post(&app, &t("activate"), json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("illegal_transition"))
    );

    // Suspension is an overlay: reactivation restores exactly what was there.
    let (status, body) = post(&app, &t("suspend"), json!({"reason": "abuse report"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["suspended"].as_bool(), body["status"].as_str()),
        (Some(true), Some("active"))
    );
    assert_eq!(
        post(&app, &t("suspend"), json!({})).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post(&app, &t("cancel"), json!({"reason": "x"})).await.0,
        StatusCode::CONFLICT
    );
    let (status, body) = post(&app, &t("reactivate"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["suspended"].as_bool(), body["status"].as_str()),
        (Some(false), Some("active"))
    );
    assert_eq!(body["plan"], "business");
    assert_eq!(
        post(&app, &t("reactivate"), json!({})).await.0,
        StatusCode::CONFLICT
    );

    // Cancel at period end keeps the tenant active with a pending cancellation.
    let (status, body) = post(
        &app,
        &t("cancel"),
        json!({"reason": "budget", "at_period_end": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(body["pending_cancellation"]["reason"], "budget");
    assert_eq!(
        post(&app, &t("cancel"), json!({"reason": "again"})).await.0,
        StatusCode::CONFLICT
    );

    // Re-activating clears it; an immediate cancel freezes.
    let (status, body) = post(&app, &t("activate"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "already active: {body}");

    let other = app.create_tenant("lifecycle-two").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let o = |action: &str| format!("/v1/tenants/{other}/{action}");
    let (status, body) = post(&app, &o("cancel"), json!({"reason": "not interested"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "frozen");
    assert_eq!(
        post(&app, &o("cancel"), json!({})).await.0,
        StatusCode::CONFLICT
    );
    let (status, body) = post(&app, &o("activate"), json!({})).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );

    // Archive is terminal.
    let (status, body) = app
        .send(app.admin(Method::DELETE, &format!("/v1/tenants/{other}")))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("archived")),
        "{body}"
    );
    for action in ["activate", "cancel", "suspend", "reactivate"] {
        assert_eq!(
            post(&app, &o(action), json!({})).await.0,
            StatusCode::CONFLICT,
            "{action} on archived"
        );
    }
    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/v1/tenants/{other}")))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app
        .send(
            app.admin(Method::PATCH, &format!("/v1/tenants/{other}"))
                .json(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Demo tenants start as demo and can be activated.
    let (status, demo) = post(
        &app,
        "/v1/tenants",
        json!({"slug": "demo-one", "name": "Demo", "kind": "demo"}),
    )
    .await;
    assert_eq!(
        (status, demo["status"].as_str()),
        (StatusCode::CREATED, Some("demo"))
    );

    // The system tenant cannot be suspended or archived.
    let system = app
        .send(app.admin(Method::GET, "/v1/tenants/by-slug/system"))
        .await
        .1;
    let sid = system["id"].as_str().unwrap();
    assert_eq!(
        post(&app, &format!("/v1/tenants/{sid}/suspend"), json!({}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.send(app.admin(Method::DELETE, &format!("/v1/tenants/{sid}")))
            .await
            .0,
        StatusCode::CONFLICT
    );

    // Filters.
    let (_, frozen) = app
        .send(app.admin(Method::GET, "/v1/tenants?status=archived"))
        .await;
    let slugs: Vec<&str> = frozen["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, vec!["lifecycle-two"]);
}
on_both_stores!(every_legal_transition_works_and_illegal_ones_conflict);

async fn settings_are_replaced_whole_and_validated(store: Store) {
    let app = spawn_app(store).await;
    let id = app.create_tenant("settings").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/tenants/{id}/settings");
    let (status, defaults) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK);
    let mut wanted = defaults.clone();
    wanted["require_mfa"] = json!(true);
    wanted["session_timeout_minutes"] = json!(30);
    wanted["password_policy"]["min_length"] = json!(14);
    wanted["allowed_email_domains"] = json!(["acme.example"]);
    let (status, body) = app.send(app.admin(Method::PUT, &path).json(&wanted)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, wanted);
    assert_eq!(app.send(app.admin(Method::GET, &path)).await.1, wanted);

    let head = app.log_head().await;
    let mut bad = wanted.clone();
    bad["password_policy"]["min_length"] = json!(3);
    let (status, body) = app.send(app.admin(Method::PUT, &path).json(&bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["field"].as_str().unwrap().contains("min_length"),
        "{body}"
    );
    let mut missing = wanted.clone();
    missing.as_object_mut().unwrap().remove("require_mfa");
    let (status, body) = app.send(app.admin(Method::PUT, &path).json(&missing)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("require_mfa"),
        "{body}"
    );
    assert_eq!(app.log_head().await, head);
}
on_both_stores!(settings_are_replaced_whole_and_validated);

async fn rotated_keys_stay_published_until_retired(store: Store) {
    let app = spawn_app(store).await;
    let created = app.create_tenant("keys").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first_kid = created["active_kid"].as_str().unwrap().to_owned();

    let (status, keys) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{id}/keys")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let first = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == first_kid.as_str())
        .unwrap();
    let jwk = &first["public_jwk"];
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["crv"].as_str(),
            jwk["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(jwk.get("d").is_none(), "private key material leaked: {jwk}");

    let (status, keys) = post(
        &app,
        &format!("/v1/tenants/{id}/keys/rotate"),
        json!({"alg": "EdDSA"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{keys}");
    let keys = keys.as_array().unwrap().clone();
    // The first key, the RS256 key beside it, and the new EdDSA default.
    assert_eq!(keys.len(), 3);
    let new = keys
        .iter()
        .find(|k| k["status"] == "active" && k["alg"] == "EdDSA")
        .unwrap();
    let old = keys
        .iter()
        .find(|k| k["kid"] == first_kid.as_str())
        .unwrap();
    assert_eq!(old["status"], "published");
    assert_eq!(new["public_jwk"]["kty"], "OKP");
    let tenant = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{id}")))
        .await
        .1;
    assert_eq!(tenant["active_kid"], new["kid"]);
    assert_eq!(tenant["key_ids"].as_array().unwrap().len(), 3);

    let (status, _) = post(
        &app,
        &format!("/v1/tenants/{id}/keys/rotate"),
        json!({"alg": "RS256"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let active_kid = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{id}")))
        .await
        .1["active_kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = post(
        &app,
        &format!("/v1/tenants/{id}/keys/{active_kid}/retire"),
        json!({}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the active key cannot be retired"
    );
    let (status, keys) = post(
        &app,
        &format!("/v1/tenants/{id}/keys/{first_kid}/retire"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    let retired = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == first_kid.as_str())
        .unwrap();
    assert_eq!(retired["status"], "retired");
    let tenant = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{id}")))
        .await
        .1;
    assert!(
        !tenant["key_ids"]
            .as_array()
            .unwrap()
            .contains(&json!(first_kid))
    );
    let (status, _) = post(
        &app,
        &format!("/v1/tenants/{id}/keys/no-such-kid/retire"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &app,
        &format!("/v1/tenants/{id}/keys/rotate"),
        json!({"alg": "HS256"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
on_both_stores!(rotated_keys_stay_published_until_retired);

async fn bad_input_gets_a_json_error_with_a_correlation_id_and_changes_nothing(store: Store) {
    let app = spawn_app(store).await;
    let head = app.log_head().await;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "Bad_Slug", "name": "x"})),
            StatusCode::BAD_REQUEST,
            "slug",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "ab", "name": "x"})),
            StatusCode::BAD_REQUEST,
            "slug",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "system", "name": "x"})),
            StatusCode::BAD_REQUEST,
            "slug",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "fine-slug", "name": "  "})),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "fine-slug"})),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "fine-slug", "name": "x", "bogus": 1})),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "fine-slug", "name": "x", "kind": "alien"})),
            StatusCode::BAD_REQUEST,
            "kind",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "fine-slug", "name": "x", "domains": ["not a domain"]})),
            StatusCode::BAD_REQUEST,
            "domains[0]",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "fine-slug", "name": "x", "config": [1]})),
            StatusCode::BAD_REQUEST,
            "config",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "fine-slug", "name": "x", "signing_alg": "none"})),
            StatusCode::BAD_REQUEST,
            "signing_alg",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .header("content-type", "text/plain")
                .body("slug=x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "",
        ),
        (
            app.admin(Method::POST, "/v1/tenants")
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"slug\":\"big-one\",\"name\":\"{}\"}}",
                    "x".repeat(70_000)
                )),
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
        (
            app.admin(Method::GET, "/v1/tenants/not-a-uuid"),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            app.admin(
                Method::GET,
                &format!("/v1/tenants/{}", uuid::Uuid::now_v7()),
            ),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            app.admin(
                Method::PATCH,
                &format!("/v1/tenants/{}", uuid::Uuid::now_v7()),
            )
            .json(&json!({"name": "x"})),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            app.admin(Method::GET, "/v1/tenants/by-slug/nobody-here"),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            app.admin(Method::GET, "/v1/tenants?limit=0"),
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            app.admin(Method::GET, "/v1/tenants?status=sleeping"),
            StatusCode::BAD_REQUEST,
            "status",
        ),
        (
            app.admin(Method::GET, "/v1/tenants?cursor=garbage"),
            StatusCode::BAD_REQUEST,
            "cursor",
        ),
        (
            app.admin(Method::GET, "/v1/nothing-here"),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            app.admin(Method::PUT, "/v1/tenants"),
            StatusCode::METHOD_NOT_ALLOWED,
            "",
        ),
    ];
    for (i, (request, expected, field)) in cases.into_iter().enumerate() {
        let request = request.header("x-correlation-id", format!("case-{i}"));
        // A server that refuses an oversized body may close the connection while the client is
        // still writing it; the refusal is what is tested, so a reset is retried.
        let mut attempts = 0;
        let response = loop {
            attempts += 1;
            let attempt = request.try_clone().unwrap().send().await;
            match attempt {
                Ok(response) => break response,
                Err(error) if expected == StatusCode::PAYLOAD_TOO_LARGE && attempts < 5 => {
                    eprintln!("case {i}: {error}; retrying");
                }
                Err(error) => panic!("case {i}: {error}"),
            }
        };
        let status = response.status();
        assert_eq!(
            response.headers()["x-correlation-id"],
            format!("case-{i}").as_str()
        );
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "case {i}: {body}");
        assert_eq!(
            body["correlation_id"],
            format!("case-{i}"),
            "case {i}: {body}"
        );
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "case {i}: {body}"
        );
        if !field.is_empty() {
            assert_eq!(body["field"], field, "case {i}: {body}");
        }
    }
    assert_eq!(
        app.log_head().await,
        head,
        "rejected requests appended events"
    );
}
on_both_stores!(bad_input_gets_a_json_error_with_a_correlation_id_and_changes_nothing);

async fn a_restart_keeps_every_tenant_key_and_setting(store: Store) {
    let mut app = spawn_app(store).await;
    let a = app.create_tenant("restart-a").await;
    let id = a["id"].as_str().unwrap().to_owned();
    post(&app, &format!("/v1/tenants/{id}/keys/rotate"), json!({})).await;
    post(
        &app,
        &format!("/v1/tenants/{id}/suspend"),
        json!({"reason": "audit"}),
    )
    .await;
    let b = app.create_tenant("restart-b").await;
    let before_a = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{id}")))
        .await
        .1;
    let before_keys = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{id}/keys")))
        .await
        .1;
    let before_list = app.send(app.admin(Method::GET, "/v1/tenants")).await.1;
    let head = app.log_head().await;

    app.restart().await;

    // The clean stop records the admin key's uses (`api_key.used`); nothing else may be
    // appended, in particular no second bootstrap.
    let appended: Vec<String> = read_log(&app)
        .await
        .into_iter()
        .filter(|e| e.envelope.global_position > head)
        .map(|e| e.envelope.event_type)
        .collect();
    assert!(
        appended.iter().all(|t| t == "api_key.used"),
        "restart appended {appended:?} (bootstrap ran twice?)"
    );
    assert_eq!(
        app.send(app.admin(Method::GET, &format!("/v1/tenants/{id}")))
            .await
            .1,
        before_a
    );
    assert_eq!(
        app.send(app.admin(Method::GET, &format!("/v1/tenants/{id}/keys")))
            .await
            .1,
        before_keys
    );
    assert_eq!(
        app.send(app.admin(Method::GET, "/v1/tenants")).await.1,
        before_list
    );
    let bid = b["id"].as_str().unwrap();
    let (status, _) = post(&app, &format!("/v1/tenants/{bid}/activate"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "writes work after restart");

    app.stop().await;
    let (same, report) = app.check_read_models();
    assert!(same, "{report}");

    // Dropping and refolding the read models changes nothing a client can see.
    let after_writes = {
        app.start().await;
        let list = app.send(app.admin(Method::GET, "/v1/tenants")).await.1;
        app.stop().await;
        list
    };
    assert!(
        app.rebuild_read_models()
            .contains("rebuilt the read models")
    );
    app.start().await;
    assert_eq!(
        app.send(app.admin(Method::GET, "/v1/tenants")).await.1,
        after_writes
    );
}
on_both_stores!(a_restart_keeps_every_tenant_key_and_setting);

async fn events_record_the_requests_correlation_id_and_actor(store: Store) {
    let mut app = spawn_app(store).await;
    let response = app
        .admin(Method::POST, "/v1/tenants")
        .header("x-correlation-id", "trace-me-42")
        .header("user-agent", "e2e-agent/1.0")
        .json(&json!({"slug": "traced", "name": "Traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let generated = app
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .unwrap();
    assert!(
        !generated.headers()["x-correlation-id"].is_empty(),
        "a correlation id is generated when absent"
    );
    app.stop().await;

    let events = crate::helpers::read_log(&app).await;
    let traced: Vec<_> = events
        .iter()
        .filter(|e| e.envelope.correlation_id == "trace-me-42")
        .collect();
    assert!(
        traced.len() >= 2,
        "tenant.created and the slug reservation carry the id"
    );
    for event in traced {
        assert_eq!(event.envelope.actor.kind.as_str(), "api_key");
        assert_eq!(event.envelope.user_agent.as_deref(), Some("e2e-agent/1.0"));
        assert_eq!(event.envelope.source_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(event.computed_hash(), event.envelope.hash);
    }
}
on_both_stores!(events_record_the_requests_correlation_id_and_actor);

#[tokio::test]
async fn health_readiness_and_the_openapi_document_are_served() {
    let app = spawn_app(Store::Embedded).await;
    let (status, body) = app.send(app.request(Method::GET, "/healthz", None)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = app.send(app.request(Method::GET, "/readyz", None)).await;
    assert_eq!(
        (status, body["log"].as_str()),
        (StatusCode::OK, Some("ok")),
        "{body}"
    );
    let (status, doc) = app
        .send(app.request(Method::GET, "/openapi.json", None))
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/tenants",
        "/v1/tenants/{id}",
        "/v1/tenants/{id}/keys/rotate",
        "/v1/tenants/{id}/settings",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
}

#[tokio::test]
async fn pagination_walks_every_tenant_exactly_once() {
    let app = spawn_app(Store::Embedded).await;
    for i in 0..7 {
        app.create_tenant(&format!("page-{i}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tenants?limit=3&cursor={c}"),
            None => "/v1/tenants?limit=3".to_owned(),
        };
        let (status, page) = app.send(app.admin(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for t in page["items"].as_array().unwrap() {
            seen.push(t["slug"].as_str().unwrap().to_owned());
        }
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8);
}
