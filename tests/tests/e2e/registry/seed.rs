//! Seed 003's API-key paths, and our answers checked against seed 003's schemas.
//!
//! The schemas are transcribed in `seed_003_schemas.json` (the seed's YAML lost its
//! indentation; the fixture says how it was read). [`check`] is a small validator of the
//! subset those schemas use: `type`, `required`, `properties`, `items`, `enum`, `nullable`,
//! `format` (`uuid`, `date-time`, `date`, `int64`), `$ref` and `allOf`.
//!
//! **Where we differ on purpose** (also in the README):
//! - An optional value Tessera does not have is written `null` where the seed leaves the
//!   property out (`product`, `created_by` of an API key; `sales_owner`, `erp_customer_id` of
//!   a tenant): [`check`] accepts `null` for a property that is not required.
//! - The audit trail's `next_cursor` is an opaque string, not an integer: a position alone
//!   cannot carry the filters a page continues; [`DIFFERENCES`] names it.
//! - Our answers have more properties than the seed names (an entitlement's `trial`, a
//!   tenant's settings, an error's `correlation_id`); the seed's schemas do not close them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::helpers::{Store, TestServer, spawn_app};
use crate::on_both_stores;

async fn seed_003s_api_key_paths_are_aliases_of_ours(store: Store) {
    let app = spawn_app(store).await;
    let tenant = app.create_tenant("seed-keys").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.create_tenant("seed-other").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, created) = app
        .send(app.admin(Method::POST, "/v1/api-keys").json(&json!({
            "tenant_id": tenant,
            "name": "billing",
            "product": "billing",
            "scopes": ["product:billing:read"],
            "created_by": "ops@example.com",
        })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key_id = created["api_key"]["id"].as_str().unwrap().to_owned();
    let plaintext = created["plaintext"].as_str().unwrap().to_owned();
    assert!(created["warning"].is_string());
    assert_eq!(created["api_key"]["created_by"], "ops@example.com");
    assert_eq!(created["api_key"]["tenant_id"], tenant);

    // Listed by query and by path alike, without the secret.
    let (status, by_query) = app
        .send(app.admin(Method::GET, &format!("/v1/api-keys?tenant_id={tenant}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, by_path) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant}/api-keys")))
        .await;
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&by_query), ids(&by_path));
    assert!(ids(&by_query).contains(&key_id));
    assert!(!by_query.to_string().contains(&plaintext));

    let verify = |key: &str| {
        app.request(Method::POST, "/v1/internal/api-keys/verify", None)
            .json(&json!({"key": key}))
    };
    let (status, verified) = app.send(verify(&plaintext)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["valid"], true);
    assert_eq!(verified["tenant_id"], tenant);
    assert_eq!(verified["product"], "billing");
    let (status, verified) = app.send(verify("tsr_nothing")).await;
    assert_eq!(status, StatusCode::OK, "never 401");
    assert_eq!(verified, json!({"valid": false}));

    // Another tenant's administrator neither lists nor revokes this tenant's keys.
    let other_key = tenant_admin_key(&app, &other).await;
    let (status, _) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/api-keys?tenant_id={tenant}"),
            Some(&other_key),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .send(app.request(
            Method::DELETE,
            &format!("/v1/api-keys/{key_id}"),
            Some(&other_key),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .send(
            app.request(Method::POST, "/v1/api-keys", Some(&other_key))
                .json(&json!({"tenant_id": tenant, "name": "sneaky"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = app.send(app.admin(Method::GET, "/v1/api-keys")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["field"], "tenant_id");

    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/v1/api-keys/{key_id}")))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, verified) = app.send(verify(&plaintext)).await;
    assert_eq!(verified, json!({"valid": false}));
    let (status, _) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/api-keys/{}", uuid::Uuid::now_v7()),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
on_both_stores!(seed_003s_api_key_paths_are_aliases_of_ours);

/// Properties where we differ from the seed on purpose: (schema, property).
const DIFFERENCES: [(&str, &str); 1] = [("AuditList", "next_cursor")];

/// Checks `value` against the schema `name` of the fixture; returns every violation found.
fn check(schemas: &Value, name: &str, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check_at(schemas, name, &schemas[name], value, name, &mut errors);
    errors
}

fn check_at(
    schemas: &Value,
    owner: &str,
    schema: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    if let Some(name) = schema["$ref"].as_str() {
        check_at(schemas, name, &schemas[name], value, at, errors);
        return;
    }
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            check_at(schemas, owner, part, value, at, errors);
        }
        return;
    }
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    let typed = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("integer") => value.is_i64() || value.is_u64(),
        _ => true,
    };
    if !typed {
        errors.push(format!("{at}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let (Some(text), Some(format)) = (value.as_str(), schema["format"].as_str()) {
        let ok = match format {
            "uuid" => uuid::Uuid::parse_str(text).is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "date" => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: {text:?} is not a {format}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(required) = schema["required"].as_array() {
        for name in required.iter().filter_map(Value::as_str) {
            if value.get(name).is_none_or(Value::is_null) {
                errors.push(format!("{at}: required {name} is missing"));
            }
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            let Some(item) = value.get(name) else {
                continue;
            };
            if DIFFERENCES.contains(&(owner, name.as_str())) {
                continue;
            }
            // Our one deliberate difference for absent values: `null` (see the module doc).
            let required = schema["required"]
                .as_array()
                .is_some_and(|required| required.iter().any(|r| r == name));
            if item.is_null() && !required {
                continue;
            }
            check_at(
                schemas,
                owner,
                property,
                item,
                &format!("{at}.{name}"),
                errors,
            );
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, item) in values.iter().enumerate() {
            check_at(schemas, owner, items, item, &format!("{at}[{i}]"), errors);
        }
    }
}

async fn assert_schema(
    app: &TestServer,
    schemas: &Value,
    name: &str,
    request: reqwest::RequestBuilder,
) {
    let (status, body) = app.send(request).await;
    assert!(
        status.is_success() || name == "Error",
        "{name}: {status} {body}"
    );
    let errors = check(schemas, name, &body);
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{body:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_answers_validate_against_seed_003s_schemas() {
    let schemas: Value = serde_json::from_str(include_str!("seed_003_schemas.json")).unwrap();
    // The validator itself fails what it should.
    assert!(!check(&schemas, "Claims", &json!({"tenant_id": "x"})).is_empty());
    assert!(!check(&schemas, "TenantProduct", &json!({"tenant_id": 1})).is_empty());

    let app = spawn_app(Store::Embedded).await;
    let tenant = app.create_tenant("schemas").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    define(
        &app,
        "crm",
        json!({"name": "CRM", "demo_url": "https://demo.example/crm", "supports_trial": true}),
    )
    .await;
    trial_product(&app, "erp").await;
    grant(&app, &tenant, "erp", json!({"config": {"seats": 3}})).await;
    let (status, trial) = app
        .send(
            app.admin(Method::POST, "/v1/catalog/trial-request")
                .json(&json!({"tenant_id": tenant, "product": "crm"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(check(&schemas, "TenantProduct", &trial).is_empty());

    assert_schema(
        &app,
        &schemas,
        "Tenant",
        app.admin(Method::GET, &format!("/v1/tenants/{tenant}")),
    )
    .await;
    assert_schema(
        &app,
        &schemas,
        "CatalogList",
        app.admin(Method::GET, "/v1/catalog"),
    )
    .await;
    assert_schema(
        &app,
        &schemas,
        "EntitlementList",
        app.admin(Method::GET, &format!("/v1/entitlements?tenant_id={tenant}")),
    )
    .await;
    assert_schema(
        &app,
        &schemas,
        "Claims",
        app.admin(Method::POST, "/v1/internal/keycloak/claims")
            .json(&json!({"tenant_slug": "schemas"})),
    )
    .await;
    assert_schema(
        &app,
        &schemas,
        "APIKeyCreated",
        app.admin(Method::POST, "/v1/api-keys")
            .json(&json!({"tenant_id": tenant, "name": "p", "product": "erp"})),
    )
    .await;
    assert_schema(
        &app,
        &schemas,
        "APIKeyList",
        app.admin(Method::GET, &format!("/v1/api-keys?tenant_id={tenant}")),
    )
    .await;
    let created = app.create_api_key(&tenant, json!({"name": "v"})).await;
    assert_schema(
        &app,
        &schemas,
        "APIKeyVerify",
        app.request(Method::POST, "/v1/internal/api-keys/verify", None)
            .json(&json!({"key": created["plaintext"]})),
    )
    .await;
    assert_schema(
        &app,
        &schemas,
        "AuditList",
        app.admin(
            Method::GET,
            &format!("/v1/audit?tenant_id={tenant}&limit=5"),
        ),
    )
    .await;
    assert_schema(
        &app,
        &schemas,
        "Error",
        app.admin(Method::POST, "/v1/catalog/request")
            .json(&json!({"tenant_id": tenant, "product": "nothing"})),
    )
    .await;
}
