//! Seed 002's LLM provider keys (issue 20) on the real binary: a tenant's keys and the
//! platform's defaults, set, read (never the key), marked invalid and removed; resolution for a
//! `vault:read` service in fallback mode and in strict mode (`TESSERA_TENANT_CREDENTIALS_STRICT`,
//! or seed 002's `TENANT_CREDENTIALS_ENABLED`), each with its error cases; the audit row of a
//! resolution; and no key in clear in any `GET`, the log, the read models or the server's output.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, Store, TestServer, eventually, spawn_app_with_env};
use crate::on_both_stores;

const PLATFORM_KEY: &str = "sk-platform-default-key-PLAT0001";
const TENANT_KEY: &str = "sk-proj-tenant-a-first-key-AAA1";
const TENANT_KEY_2: &str = "sk-proj-tenant-a-second-key-BB22";
const PROVIDER_LIST: &str = "openai, anthropic, azure, berget, mistral, ovhcloud, vllm";

/// A tenant and its keys: an administrator, a `vault:read` service and a key with neither.
struct Tenant {
    id: String,
    admin: String,
    vault: String,
    vault_key_id: String,
    other: String,
}

async fn tenant(app: &TestServer, slug: &str) -> Tenant {
    let id = app.create_tenant(slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = |name: &str, scopes: Value| {
        let id = id.clone();
        let name = name.to_owned();
        async move {
            app.create_api_key(&id, json!({"name": name, "scopes": scopes}))
                .await
        }
    };
    let admin = key("admin", json!(["tenant:admin"])).await;
    let vault = key("llm gateway", json!(["vault:read"])).await;
    let other = key("audit writer", json!(["audit:write"])).await;
    let plain = |created: &Value| created["plaintext"].as_str().unwrap().to_owned();
    Tenant {
        admin: plain(&admin),
        vault: plain(&vault),
        vault_key_id: vault["api_key"]["id"].as_str().unwrap().to_owned(),
        other: plain(&other),
        id,
    }
}

fn key_path(tenant: &Tenant, provider: &str) -> String {
    format!("/v1/tenants/{}/credentials/{provider}", tenant.id)
}

async fn put(app: &TestServer, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.send(app.request(Method::PUT, path, Some(key)).json(&body))
        .await
}

async fn resolve(
    app: &TestServer,
    key: &str,
    tenant: &Tenant,
    provider: &str,
) -> (StatusCode, Value) {
    let path = format!("{}/resolve", key_path(tenant, provider));
    app.send(app.request(Method::POST, &path, Some(key))).await
}

/// The errors every mode shares: another tenant's service gets 404, a key without `vault:read`
/// 403, a platform administrator 404 (resolution is a service's, on its own tenant only), an
/// unknown provider 400 naming the seven.
async fn refusals_of_every_mode(app: &TestServer, a: &Tenant, b: &Tenant) {
    let (status, body) = resolve(app, &b.vault, a, "openai").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = resolve(app, &a.other, a, "openai").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("vault:read"));
    let (status, _) = resolve(app, &a.admin, a, "openai").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = resolve(app, ADMIN_KEY, a, "openai").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = resolve(app, &a.vault, a, "gemini").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "provider");
    assert!(body["message"].as_str().unwrap().contains(PROVIDER_LIST));
}

fn contains(text: &[u8], needle: &str) -> bool {
    text.windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The key texts of this file must appear nowhere but in `resolve`'s answers.
fn assert_no_key_in(what: &str, text: &[u8]) {
    for key in [PLATFORM_KEY, TENANT_KEY, TENANT_KEY_2] {
        assert!(!contains(text, key), "{key} is in {what}");
    }
}

async fn fallback_mode(store: Store) {
    let app = spawn_app_with_env(store, &[]).await;
    let a = tenant(&app, "pk-fallback-a").await;
    let b = tenant(&app, "pk-fallback-b").await;
    let openai = key_path(&a, "openai");

    // Nothing set: a clear error, and GET says so.
    let (status, body) = app
        .send(app.request(Method::GET, &openai, Some(&a.admin)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"provider": "openai", "set": false, "last4": null, "invalid": false, "updated_at": null})
    );
    let (status, body) = resolve(&app, &a.vault, &a, "openai").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "provider_key_not_set");
    assert!(body["correlation_id"].is_string());

    // The platform's default: platform admin only.
    let platform = "/v1/platform/credentials/openai";
    let (status, _) = put(&app, &a.admin, platform, json!({"api_key": PLATFORM_KEY})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = put(&app, ADMIN_KEY, platform, json!({"api_key": PLATFORM_KEY})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["last4"], "0001");
    assert_no_key_in("the platform PUT's answer", body.to_string().as_bytes());

    // Without a key of its own, the tenant falls back to the platform's.
    let (status, body) = resolve(&app, &a.vault, &a, "openai").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"provider": "openai", "api_key": PLATFORM_KEY, "source": "platform"})
    );

    // The tenant's own key wins.
    let (status, body) = put(&app, &a.admin, &openai, json!({"api_key": TENANT_KEY})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["set"].clone(),
            body["last4"].clone(),
            body["invalid"].clone()
        ),
        (json!(true), json!("AAA1"), json!(false))
    );
    assert!(body["updated_at"].is_string());
    let (status, body) = resolve(&app, &a.vault, &a, "openai").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["api_key"].as_str(), body["source"].as_str()),
        (Some(TENANT_KEY), Some("tenant"))
    );
    refusals_of_every_mode(&app, &a, &b).await;

    // Invalid: an error, never the platform's key; a new key clears it.
    let invalidate = format!("{openai}/invalidate");
    let (status, _) = app
        .send(app.request(Method::POST, &invalidate, Some(&b.vault)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .send(app.request(Method::POST, &invalidate, Some(&a.other)))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .send(app.request(Method::POST, &invalidate, Some(&a.vault)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["invalid"], true);
    let (status, body) = resolve(&app, &a.vault, &a, "openai").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "provider_key_invalid");
    let (status, body) = put(&app, &a.admin, &openai, json!({"api_key": TENANT_KEY_2})).await;
    assert_eq!(
        (status, body["invalid"].clone()),
        (StatusCode::OK, json!(false))
    );
    let (_, body) = resolve(&app, &a.vault, &a, "openai").await;
    assert_eq!(body["api_key"], TENANT_KEY_2);

    // Another tenant's administrator sees nothing of it; removal brings the fallback back.
    let (status, _) = app
        .send(app.request(Method::GET, &openai, Some(&b.admin)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .send(app.request(Method::DELETE, &openai, Some(&b.admin)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .send(app.request(Method::DELETE, &openai, Some(&a.admin)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .send(app.request(Method::DELETE, &openai, Some(&a.admin)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, body) = resolve(&app, &a.vault, &a, "openai").await;
    assert_eq!(body["source"], "platform");

    // A platform key reported invalid is no fallback either.
    let (status, _) = app
        .send(app.admin(Method::POST, "/v1/platform/credentials/openai/invalidate"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = resolve(&app, &a.vault, &a, "openai").await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::NOT_FOUND, json!("provider_key_not_set"))
    );

    // Every GET shows the keys' last four characters, never a key.
    let (status, list) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{}/credentials", a.id),
            Some(&a.admin),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 7);
    let (_, platform_view) = app.send(app.admin(Method::GET, platform)).await;
    assert_eq!(
        (
            platform_view["last4"].clone(),
            platform_view["invalid"].clone()
        ),
        (json!("0001"), json!(true))
    );
    for body in [&list, &platform_view] {
        assert_no_key_in("a GET's answer", body.to_string().as_bytes());
    }

    // Each resolution that handed out a key is an audit row: the service's key, the provider,
    // whose key it was; never the key.
    let audit = format!(
        "/v1/audit?tenant_id={}&action=credential.accessed&limit=500",
        a.id
    );
    let rows = std::sync::Mutex::new(Value::Null);
    let found = eventually(Duration::from_secs(10), || async {
        let (_, body) = app.send(app.admin(Method::GET, &audit)).await;
        let enough = body["items"]
            .as_array()
            .is_some_and(|items| items.len() >= 4);
        *rows.lock().unwrap() = body;
        enough
    })
    .await;
    let rows = rows.into_inner().unwrap();
    assert!(found, "{rows}");
    let items = rows["items"].as_array().unwrap();
    // Four resolutions handed out a key; the refused ones appended nothing.
    assert_eq!(items.len(), 4, "{rows}");
    for row in items {
        assert_eq!(row["actor_id"], a.vault_key_id.as_str());
        assert_eq!(
            (row["target_type"].as_str(), row["target_id"].as_str()),
            (Some("provider_key"), Some("openai"))
        );
    }
    let sources: Vec<String> = items.iter().map(|row| row.to_string()).collect();
    assert!(
        sources
            .iter()
            .any(|row| row.contains("platform_provider_key")),
        "{rows}"
    );
    assert!(
        sources
            .iter()
            .any(|row| row.contains("tenant_provider_key")),
        "{rows}"
    );
    assert_no_key_in("the audit trail", rows.to_string().as_bytes());

    let tenant_id = a.id.clone();
    let log = assert_no_key_anywhere(app, "pk-fallback-a").await;
    assert_sealed_by_the_vault(&log, &tenant_id);
}

/// The keys were sealed by the vault: tenant A's and the platform's (the system tenant's)
/// vaults each got their first key version, and every recorded key names its version.
fn assert_sealed_by_the_vault(log: &[tessera_event_schemas::RecordedEvent], tenant_id: &str) {
    let vaults: Vec<String> = log
        .iter()
        .filter(|recorded| recorded.envelope.event_type == "vault.key_added")
        .map(|recorded| recorded.envelope.tenant_id.to_string())
        .collect();
    assert!(vaults.contains(&tenant_id.to_owned()), "{vaults:?}");
    let system = tessera_event_schemas::SYSTEM_TENANT_ID.to_string();
    assert!(vaults.contains(&system), "{vaults:?}");
    let sets: Vec<_> = log
        .iter()
        .filter(|recorded| recorded.envelope.event_type == "provider_key.set")
        .collect();
    assert_eq!(sets.len(), 3);
    for recorded in sets {
        assert!(contains(&recorded.payload, "tsr:v1:"));
    }
}
on_both_stores!(fallback_mode);

/// Stops the server and searches its log (and, embedded, every file of its data directory)
/// and everything it printed for the keys' text. `slug`, a tenant's, is in clear in the log:
/// finding it shows the search can find what is there.
async fn assert_no_key_anywhere(
    mut app: TestServer,
    slug: &str,
) -> Vec<tessera_event_schemas::RecordedEvent> {
    app.stop().await;
    let log = crate::helpers::read_log(&app).await;
    assert!(log.iter().any(|recorded| contains(&recorded.payload, slug)));
    for recorded in &log {
        assert_no_key_in("an event's payload", &recorded.payload);
    }
    if app.database_url().is_none() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(app.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
        let events = files.iter().find(|(name, _)| name.ends_with("events.db"));
        assert!(
            events.is_some_and(|(_, bytes)| contains(bytes, slug)),
            "the search finds the slug in the log's file"
        );
        for (name, bytes) in &files {
            assert_no_key_in(name, bytes);
        }
    }
    let output = [
        app.stdout.lock().unwrap().join("\n"),
        app.stderr.lock().unwrap().join("\n"),
    ];
    for text in output {
        assert_no_key_in("the server's output", text.as_bytes());
    }
    log
}

async fn strict_mode(store: Store) {
    let app = spawn_app_with_env(store, &[("TESSERA_TENANT_CREDENTIALS_STRICT", "true")]).await;
    strict_mode_on(&app, "pk-strict").await;
}
on_both_stores!(strict_mode);

/// Seed 002's name for strict mode is read when ours is not set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002s_tenant_credentials_enabled_turns_strict_mode_on() {
    let app = spawn_app_with_env(Store::Embedded, &[("TENANT_CREDENTIALS_ENABLED", "true")]).await;
    strict_mode_on(&app, "pk-seed-strict").await;
}

async fn strict_mode_on(app: &TestServer, slug: &str) {
    let a = tenant(app, &format!("{slug}-a")).await;
    let b = tenant(app, &format!("{slug}-b")).await;
    let (status, _) = put(
        app,
        ADMIN_KEY,
        "/v1/platform/credentials/anthropic",
        json!({"api_key": PLATFORM_KEY}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // No key of its own: an error naming strict mode, although the platform has one.
    let (status, body) = resolve(app, &a.vault, &a, "anthropic").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "provider_key_not_set");
    assert!(
        body["message"].as_str().unwrap().contains("strict mode"),
        "{body}"
    );

    // The platform administrator sets the tenant's key (seed 002's sysadmin call).
    let anthropic = key_path(&a, "anthropic");
    let (status, _) = put(app, ADMIN_KEY, &anthropic, json!({"api_key": TENANT_KEY})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = resolve(app, &a.vault, &a, "anthropic").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"provider": "anthropic", "api_key": TENANT_KEY, "source": "tenant"})
    );
    refusals_of_every_mode(app, &a, &b).await;

    // Invalid: an error, in strict mode too.
    let (status, _) = app
        .send(app.request(
            Method::POST,
            &format!("{anthropic}/invalidate"),
            Some(&a.admin),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = resolve(app, &a.vault, &a, "anthropic").await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::CONFLICT, json!("provider_key_invalid"))
    );
    // Removed: the error again, never the platform's key.
    let (status, _) = app
        .send(app.request(Method::DELETE, &anthropic, Some(&a.admin)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = resolve(app, &a.vault, &a, "anthropic").await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::NOT_FOUND, json!("provider_key_not_set"))
    );
}

/// Azure OpenAI and vLLM have no public base URL: their keys need an `endpoint`, which the
/// resolution hands out with the key (and Azure's deployment settings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_and_vllm_keys_carry_their_endpoint_and_bad_bodies_change_nothing() {
    let app = spawn_app_with_env(Store::Embedded, &[]).await;
    let a = tenant(&app, "pk-azure").await;
    let azure = key_path(&a, "azure");
    let refused = [
        (json!({"api_key": TENANT_KEY}), "endpoint"),
        (
            json!({"api_key": TENANT_KEY, "endpoint": "http://example.openai.azure.com"}),
            "endpoint",
        ),
        (
            json!({"api_key": "short", "endpoint": "https://example.openai.azure.com"}),
            "api_key",
        ),
        (
            json!({"api_key": TENANT_KEY, "endpoint": "https://e.example", "deployment_name": "gpt 4o"}),
            "deployment_name",
        ),
    ];
    for (body, field) in refused {
        let (status, answer) = put(&app, &a.admin, &azure, body).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{answer}"
        );
    }
    let (status, body) = put(
        &app,
        &a.admin,
        &format!("/v1/tenants/{}/credentials/gemini", a.id),
        json!({"api_key": TENANT_KEY}),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("provider"))
    );
    assert!(body["message"].as_str().unwrap().contains(PROVIDER_LIST));
    let (status, body) = put(
        &app,
        &a.admin,
        &key_path(&a, "openai"),
        json!({"api_key": TENANT_KEY, "api_version": "2024-06-01"}),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("api_version"))
    );
    let (_, list) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{}/credentials", a.id),
            Some(&a.admin),
        ))
        .await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["set"] == false),
        "{list}"
    );

    let settings = json!({
        "api_key": TENANT_KEY,
        "endpoint": "https://example.openai.azure.com",
        "api_version": "2024-06-01",
        "deployment_name": "gpt-4o",
    });
    let (status, body) = put(&app, &a.admin, &azure, settings.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = resolve(&app, &a.vault, &a, "azure").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut expected = settings;
    expected["provider"] = json!("azure");
    expected["source"] = json!("tenant");
    assert_eq!(body, expected);
    // A key in clear is not for caches.
    let response = app
        .request(Method::POST, &format!("{azure}/resolve"), Some(&a.vault))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
}

/// The vault's life cycle reaches provider keys: after a rotation, a rewrap and a minimum that
/// retires version 1, the key still resolves; after offboarding, neither resolving nor setting
/// a key works again (410).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrapped_key_still_resolves_and_an_offboarded_tenants_keys_are_gone() {
    let app = spawn_app_with_env(Store::Embedded, &[]).await;
    let a = tenant(&app, "pk-vault").await;
    let vault = format!("/v1/tenants/{}/vault", a.id);
    let openai = key_path(&a, "openai");
    let (status, _) = put(&app, &a.admin, &openai, json!({"api_key": TENANT_KEY})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("{vault}/rotate")))
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("{vault}/rewrap")))
        .await;
    assert!(status.is_success(), "{body}");
    let rewrapped = eventually(Duration::from_secs(10), || async {
        let (_, body) = app.send(app.admin(Method::GET, &vault)).await;
        // The tenant's one secret, its provider key, is counted under version 2 alone.
        let counts = body["secrets_per_version"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let at = |version: u64| {
            counts
                .iter()
                .filter(|count| count["version"] == version)
                .map(|count| count["secrets"].as_u64().unwrap_or(0))
                .sum::<u64>()
        };
        at(2) == 1 && at(1) == 0
    })
    .await;
    assert!(rewrapped);
    let (status, body) = app
        .send(
            app.admin(Method::PUT, &format!("{vault}/minimum"))
                .json(&json!({"version": 2})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = resolve(&app, &a.vault, &a, "openai").await;
    assert_eq!(
        (status, body["api_key"].as_str()),
        (StatusCode::OK, Some(TENANT_KEY)),
        "{body}"
    );

    let (status, body) = app
        .send(
            app.admin(Method::DELETE, &vault)
                .json(&json!({"confirm": "pk-vault"})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = resolve(&app, &a.vault, &a, "openai").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    let (status, body) = put(&app, &a.admin, &openai, json!({"api_key": TENANT_KEY_2})).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
}
