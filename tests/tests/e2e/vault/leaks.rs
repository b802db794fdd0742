//! Stored secrets are never anywhere but in the access answer: not in the log, the read
//! models, the key table or any other file of the data directory (or any PostgreSQL table),
//! not on the server's stdout or stderr, not in the audit API's answers nor the listing, and
//! not in any Kafka message of the audit topics.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{access, credentials, key, listing, store, tenant};
use crate::helpers::{Store, TestServer, eventually, spawn_app};
use crate::on_both_stores;

const SECRETS: [&str; 3] = [
    "leak-access-7f3a9c0e51",
    "leak-refresh-b2d48e9a07",
    "leak-apikey-5c1e0f6d93",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The files of the data directory that hold a secret's bytes.
fn in_data_dir(app: &TestServer) -> Vec<String> {
    let mut paths = Vec::new();
    files(app.data_dir(), &mut paths);
    let mut found = Vec::new();
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        for secret in SECRETS {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                found.push(format!("{}: {secret}", path.display()));
            }
        }
    }
    found
}

/// The PostgreSQL tables whose rows, as text, hold a secret.
async fn in_postgres(url: &str) -> Vec<String> {
    use sqlx::Row;
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
    assert!(tables.contains(&"rm_credentials".to_owned()), "{tables:?}");
    let mut found = Vec::new();
    for table in tables {
        let sql = format!("SELECT t::text FROM \"{table}\" t");
        let rows: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        for row in rows {
            for secret in SECRETS {
                if row.contains(secret) {
                    found.push(format!("{table}: {secret}"));
                }
            }
        }
    }
    pool.close().await;
    found
}

fn in_text(what: &str, text: &str) -> Vec<String> {
    SECRETS
        .iter()
        .filter(|secret| text.contains(*secret))
        .map(|secret| format!("{what}: {secret}"))
        .collect()
}

async fn stored_secrets_appear_nowhere_but_in_the_access_answer(store_kind: Store) {
    let mut app = spawn_app(store_kind).await;
    let t = tenant(&app, "vault-leaks").await;
    store(
        &app,
        &t,
        "github",
        json!({"access_token": SECRETS[0], "refresh_token": SECRETS[1], "expires_in": 3600,
               "scopes": ["repo"]}),
    )
    .await;
    store(&app, &t, "openai", json!({"api_key": SECRETS[2]})).await;
    // A refused body that carries a secret is not echoed either.
    let (status, refused) = app
        .send(
            app.admin(Method::POST, &credentials(&t, "slack"))
                .json(&json!({"access_token": SECRETS[0], "api_key": SECRETS[2]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut found = in_text("refusal", &refused.to_string());

    let (_, reader) = key(&app, &t, &["vault:read"]).await;
    let (status, opened) = access(&app, &reader, &t, "github", Some("leak-check")).await;
    assert_eq!(
        (status, &opened["access_token"]),
        (StatusCode::OK, &json!(SECRETS[0]))
    );
    let (status, opened) = access(&app, &reader, &t, "openai", None).await;
    assert_eq!(
        (status, &opened["api_key"]),
        (StatusCode::OK, &json!(SECRETS[2]))
    );
    // A rotation and a rewrap handle every sealed secret without opening it.
    let (status, _) = app
        .send(app.admin(Method::POST, &format!("/v1/tenants/{t}/vault/rotate")))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .send(app.admin(Method::POST, &format!("/v1/tenants/{t}/vault/rewrap")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let vault_path = format!("/v1/tenants/{t}/vault");
    assert!(
        eventually(Duration::from_secs(30), || async {
            app.send(app.admin(Method::GET, &vault_path)).await.1["rewrap"]["remaining"] == 0
        })
        .await
    );
    let (status, _) = app
        .send(app.admin(Method::DELETE, &credentials(&t, "openai")))
        .await;
    assert_eq!(status, StatusCode::OK);

    found.extend(in_text("listing", &listing(&app, &t).await.to_string()));
    found.extend(in_text(
        "vault",
        &app.send(app.admin(Method::GET, &vault_path))
            .await
            .1
            .to_string(),
    ));
    let audit_path = format!("/v1/audit?tenant_id={t}&limit=200");
    assert!(
        eventually(Duration::from_secs(10), || async {
            let (_, page) = app.send(app.admin(Method::GET, &audit_path)).await;
            page.to_string().contains("credential.removed")
        })
        .await
    );
    let (_, audit) = app.send(app.admin(Method::GET, &audit_path)).await;
    let audit = audit.to_string();
    for action in [
        "credential.stored",
        "credential.accessed",
        "credential.rewrapped",
    ] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    found.extend(in_text("audit API", &audit));

    app.stop().await;
    found.extend(in_text("stdout", &app.stdout.lock().unwrap().join("\n")));
    found.extend(in_text("stderr", &app.stderr.lock().unwrap().join("\n")));
    found.extend(in_data_dir(&app));
    if let Some(url) = app.database_url() {
        found.extend(in_postgres(url).await);
    }
    assert_eq!(found, Vec::<String>::new());
    let (ok, verified) = app.replay(&["verify"]);
    assert!(ok, "{verified}");
}
on_both_stores!(stored_secrets_appear_nowhere_but_in_the_access_answer);

/// Every CloudEvent the server publishes about a tenant's vault (stored, accessed, rewrapped,
/// removed, a provider key set and resolved) reaches a real broker without a secret in it.
#[tokio::test]
async fn no_kafka_message_carries_a_stored_secret() {
    use crate::kafka::{ALL, GroupConsumer, SECURITY};
    use tessera_test_support::kafka::Broker;

    let broker = Broker::start();
    let brokers = broker.bootstrap_servers();
    let app = crate::helpers::spawn_app_with_env(
        Store::Embedded,
        &[
            ("TESSERA_KAFKA_BROKERS", brokers.as_str()),
            ("TESSERA_KAFKA_PARTITIONS", "1"),
            ("TESSERA_KAFKA_CATEGORY_TOPICS", "security"),
        ],
    )
    .await;
    let consumer = GroupConsumer::start(&brokers, "vault-leaks", &[ALL, SECURITY]);
    let t = tenant(&app, "vault-kafka").await;
    store(
        &app,
        &t,
        "github",
        json!({"access_token": SECRETS[0], "refresh_token": SECRETS[1], "expires_in": 3600}),
    )
    .await;
    let (status, _) = app
        .send(
            app.admin(Method::PUT, &format!("/v1/tenants/{t}/credentials/openai"))
                .json(&json!({"api_key": SECRETS[2]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, reader) = key(&app, &t, &["vault:read"]).await;
    let (status, _) = access(&app, &reader, &t, "github", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, resolved) = app
        .send(app.request(
            Method::POST,
            &format!("/v1/tenants/{t}/credentials/openai/resolve"),
            Some(&reader),
        ))
        .await;
    assert_eq!(
        (status, &resolved["api_key"]),
        (StatusCode::OK, &json!(SECRETS[2]))
    );
    let (status, _) = app
        .send(app.admin(Method::DELETE, &credentials(&t, "github")))
        .await;
    assert_eq!(status, StatusCode::OK);

    let head = app.log_head().await;
    // The category topic is published apart from the main one: wait for both.
    let expected = [
        "credential.stored",
        "credential.accessed",
        "provider_key.set",
        "credential.removed",
    ];
    let arrived = eventually(Duration::from_secs(60), || async {
        let received = consumer.received();
        consumer.positions(ALL).contains(&head)
            && expected.iter().all(|action| {
                received.iter().any(|message| {
                    message.topic == SECURITY
                        && message.cloud_event["type"]
                            .as_str()
                            .is_some_and(|t| t.ends_with(action))
                })
            })
    })
    .await;
    assert!(arrived, "the log up to {head} did not reach the broker");
    let received = consumer.stop().await;
    let types: Vec<String> = received
        .iter()
        .filter(|message| message.topic == SECURITY)
        .filter_map(|message| message.cloud_event["type"].as_str().map(str::to_owned))
        .collect();
    for expected in [
        "credential.stored",
        "credential.accessed",
        "provider_key.set",
        "credential.removed",
    ] {
        assert!(
            types.iter().any(|t| t.ends_with(expected)),
            "{expected} not on the security topic: {types:?}"
        );
    }
    let mut found = Vec::new();
    for message in &received {
        found.extend(in_text(&message.topic, &message.cloud_event.to_string()));
    }
    assert_eq!(found, Vec::<String>::new());
}
