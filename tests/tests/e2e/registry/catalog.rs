//! The catalog, requests for products and the trial rules.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::helpers::{Store, spawn_app};
use crate::http_browser::advance_clock;
use crate::on_both_stores;

async fn platform_admins_define_the_catalog_and_any_key_lists_it(store: Store) {
    let app = spawn_app(store).await;
    let tenant = app.create_tenant("catalog-reader").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant_key = tenant_admin_key(&app, &tenant).await;

    let entry = json!({
        "name": "Compliance Suite",
        "description": "Audit-ready reports",
        "plans_required": ["enterprise", "business"],
        "demo_url": "https://demo.example/compliance",
        "supports_trial": true,
    });
    let (status, created) = define(&app, "compliance", entry.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["key"], "compliance");
    assert_eq!(created["plans_required"], json!(["business", "enterprise"]));
    // The same entry again changes nothing and says so with 200.
    let (status, _) = define(&app, "compliance", entry).await;
    assert_eq!(status, StatusCode::OK);
    let (status, replaced) = define(
        &app,
        "compliance",
        json!({"name": "Compliance", "supports_trial": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replaced["supports_trial"], false);
    assert!(replaced.get("demo_url").is_none(), "{replaced}");

    // A tenant's key lists the catalog but cannot change it; no key cannot even list it.
    let (status, listed) = app
        .send(app.request(Method::GET, "/v1/catalog", Some(&tenant_key)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["items"][0]["name"], "Compliance");
    let (status, _) = app
        .send(
            app.request(Method::PUT, "/v1/catalog/other", Some(&tenant_key))
                .json(&json!({"name": "Mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .send(app.request(Method::GET, "/v1/catalog", None))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Bad input names its field and defines nothing.
    let (status, error) = define(
        &app,
        "bad",
        json!({"name": "Bad", "demo_url": "javascript:alert(1)"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["field"], "demo_url");
    let (status, error) = define(&app, "Not%20A%20Key", json!({"name": "Bad"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["field"], "key");

    let (status, _) = app
        .send(app.admin(Method::DELETE, "/v1/catalog/compliance"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .send(app.admin(Method::DELETE, "/v1/catalog/compliance"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = app.send(app.admin(Method::GET, "/v1/catalog")).await;
    assert_eq!(listed["items"], json!([]));
}
on_both_stores!(platform_admins_define_the_catalog_and_any_key_lists_it);

async fn a_request_for_a_product_is_accepted_only_for_a_known_tenant_and_product(store: Store) {
    let app = spawn_app(store).await;
    let tenant = app.create_tenant("requester").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    trial_product(&app, "analytics").await;
    let request = |body| app.admin(Method::POST, "/v1/catalog/request").json(&body);

    let (status, accepted) = app
        .send(request(
            json!({"tenant_id": tenant, "product": "analytics", "requested_by": "it-admin"}),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let (status, error) = app
        .send(request(json!({"tenant_id": tenant, "product": "nothing"})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["message"].as_str().unwrap().contains("product"),
        "{error}"
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, error) = app
        .send(request(
            json!({"tenant_id": unknown, "product": "analytics"}),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["message"].as_str().unwrap().contains("tenant"),
        "{error}"
    );

    // Sales finds the one accepted request in the audit trail, by product; no entitlement.
    let requested = audited(&app, &tenant, "product.requested").await;
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert_eq!(requested[0]["product"], "analytics");
    assert!(entitlements(&app, &tenant).await.is_empty());
}
on_both_stores!(a_request_for_a_product_is_accepted_only_for_a_known_tenant_and_product);

async fn a_trial_lasts_fourteen_days_once_per_tenant_and_product_on_an_allowed_plan(store: Store) {
    let app = spawn_app(store).await;
    let tenant = app
        .create_tenant_with(json!({"slug": "trialist", "name": "Trialist", "plan": "business"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.create_tenant("someone-else").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let own_key = tenant_admin_key(&app, &tenant).await;
    define(&app, "no-trial", json!({"name": "Sales only"})).await;
    define(
        &app,
        "big",
        json!({"name": "Enterprise only", "supports_trial": true, "plans_required": ["enterprise"]}),
    )
    .await;
    define(
        &app,
        "suite",
        json!({"name": "Suite", "supports_trial": true, "plans_required": ["business", "enterprise"]}),
    )
    .await;
    let trial = |product: &str, tenant: &str| {
        app.request(Method::POST, "/v1/catalog/trial-request", Some(&own_key))
            .json(&json!({"tenant_id": tenant, "product": product}))
    };

    let (status, error) = app.send(trial("unknown", &tenant)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("product unknown"),
        "{error}"
    );
    let (status, error) = app.send(trial("no-trial", &tenant)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["field"], "product");
    let (status, error) = app.send(trial("big", &tenant)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("plan"),
        "{error}"
    );
    // Another tenant's trial is not this key's to start: that tenant looks nonexistent.
    let (status, _) = app.send(trial("suite", &other)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, started) = app.send(trial("suite", &tenant)).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["tenant_id"], tenant);
    assert_eq!(started["product"], "suite");
    assert_eq!(started["enabled"], true);
    assert_eq!(started["trial"], true);
    assert_eq!(started["config"], json!({}));
    let created =
        chrono::DateTime::parse_from_rfc3339(started["created_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(started["expires_at"].as_str().unwrap()).unwrap();
    // The trial's end is 14 days after the command's time, a moment before its event's.
    let length = (expires - created).num_seconds();
    assert!(
        (14 * 86_400 - 1..=14 * 86_400).contains(&length),
        "{length}"
    );

    let (status, error) = app.send(trial("suite", &tenant)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    // Once the trial is over, it is still the one trial this tenant had.
    advance_clock(&app, 15 * 86_400).await;
    let (status, error) = app.send(trial("suite", &tenant)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("already had a trial"),
        "{error}"
    );
    let started = audited(&app, &tenant, "entitlement.trial_started").await;
    assert_eq!(started.len(), 1);
}
on_both_stores!(a_trial_lasts_fourteen_days_once_per_tenant_and_product_on_an_allowed_plan);
