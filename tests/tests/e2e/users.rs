//! Users over HTTP: create, list, read, change, disable, enable and set passwords; email
//! uniqueness whatever the case and spaces; the tenant's allowed domains (also under seed 001's
//! name); password policy errors that name their rule; 404 for every probe from another
//! tenant; and erasure: afterwards no file of the data directory and no PostgreSQL table holds
//! the person's address or name in any form, while `tessera-replay verify` still passes and
//! `history`, `as-of` and the audit API show an erased user.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, spawn_app_with_env};
use crate::on_both_stores;

/// Cheap Argon2 parameters: these tests check behaviour, not cost.
const CHEAP_ARGON2: &[(&str, &str)] = &[
    ("TESSERA_ARGON2_MEMORY_KIB", "1024"),
    ("TESSERA_ARGON2_ITERATIONS", "1"),
];
/// A password every default policy takes.
const STRONG: &str = "violet kettle marathon 1987";

async fn app(store: Store) -> TestServer {
    spawn_app_with_env(store, CHEAP_ARGON2).await
}

async fn tenant(app: &TestServer, slug: &str) -> String {
    app.create_tenant(slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn create_user(app: &TestServer, tenant: &str, body: Value) -> (StatusCode, Value) {
    app.send(
        app.admin(Method::POST, &format!("/v1/tenants/{tenant}/users"))
            .json(&body),
    )
    .await
}

async fn create_ok(app: &TestServer, tenant: &str, body: Value) -> Value {
    let (status, user) = create_user(app, tenant, body).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    user
}

fn user_path(tenant: &str, user: &Value) -> String {
    format!(
        "/v1/tenants/{tenant}/users/{}",
        user["id"].as_str().unwrap()
    )
}

/// The ids of a listing's page.
async fn listed(app: &TestServer, tenant: &str, query: &str) -> Vec<String> {
    let (status, page) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant}/users?{query}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn users_are_created_read_listed_changed_disabled_and_enabled(store: Store) {
    let app = app(store).await;
    let t = tenant(&app, "people").await;
    let ada = create_ok(
        &app,
        &t,
        json!({
            "email": "  Ada.Lovelace@Example.com ",
            "name": "Ada Lovelace",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "roles": ["user", "editor"],
            "password": STRONG,
            "temporary": true,
        }),
    )
    .await;
    assert_eq!(ada["email"], "Ada.Lovelace@Example.com", "{ada}");
    assert_eq!(ada["status"], "active");
    assert_eq!(ada["email_verified"], false);
    assert_eq!(ada["roles"], json!(["user", "editor"]));
    assert_eq!(ada["has_password"], true);
    assert_eq!(ada["password_temporary"], true);
    assert!(ada.get("password").is_none() && !ada.to_string().contains("argon2"));
    let path = user_path(&t, &ada);
    let (status, read) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!((status, &read), (StatusCode::OK, &ada));

    let grace = create_ok(
        &app,
        &t,
        json!({"email": "grace@example.com", "given_name": "Grace", "email_verified": true}),
    )
    .await;
    assert_eq!(grace["name"], Value::Null);
    assert_eq!(grace["has_password"], false);
    assert_eq!(grace["email_verified"], true);
    let (a, g) = (ada["id"].as_str().unwrap(), grace["id"].as_str().unwrap());
    assert_eq!(listed(&app, &t, "").await, [a, g]);
    assert_eq!(
        listed(&app, &t, "email=ADA.lovelace%40example.COM").await,
        [a]
    );
    assert_eq!(
        listed(&app, &t, "email=nobody%40example.com").await,
        Vec::<String>::new()
    );
    assert_eq!(listed(&app, &t, "role=editor").await, [a]);
    assert_eq!(listed(&app, &t, "role=edit").await, Vec::<String>::new());
    assert_eq!(listed(&app, &t, "status=active").await, [a, g]);
    let (status, page) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{t}/users?limit=1")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let cursor = page["next_cursor"].as_str().unwrap();
    assert_eq!(
        listed(&app, &t, &format!("limit=1&cursor={cursor}")).await,
        [g]
    );
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{t}/users?status=locked")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "status");

    // A patch changes what it names; a removed name is null; a new address is unverified.
    let (status, changed) = app
        .send(
            app.admin(Method::PATCH, &user_path(&t, &grace))
                .json(&json!({
                    "name": "Grace Hopper",
                    "given_name": null,
                    "roles": ["tenant:admin"],
                    "email": "grace.hopper@navy.example",
                })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "Grace Hopper");
    assert_eq!(changed["given_name"], Value::Null);
    assert_eq!(changed["roles"], json!(["tenant:admin"]));
    assert_eq!(changed["email"], "grace.hopper@navy.example");
    assert_eq!(changed["email_verified"], false);
    assert_eq!(listed(&app, &t, "role=tenant%3Aadmin").await, [g]);

    let (status, disabled) = app
        .send(app.admin(Method::POST, &format!("{path}/disable")))
        .await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(listed(&app, &t, "status=disabled").await, [a]);
    let (status, enabled) = app
        .send(app.admin(Method::POST, &format!("{path}/enable")))
        .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["status"], "active");

    let (status, set) = app
        .send(
            app.admin(Method::POST, &format!("{path}/password"))
                .json(&json!({"password": "orchid pylon harbour 42"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["password_temporary"], false);
    assert!(set["password_changed_at"].is_string());

    let unknown = format!("/v1/tenants/{t}/users/{}", uuid::Uuid::now_v7());
    for (method, path) in [
        (Method::GET, unknown.clone()),
        (Method::DELETE, unknown.clone()),
        (Method::POST, format!("{unknown}/disable")),
    ] {
        let (status, body) = app.send(app.admin(method, &path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}
on_both_stores!(users_are_created_read_listed_changed_disabled_and_enabled);

async fn an_address_is_unique_in_a_tenant_whatever_its_case_and_spaces(store: Store) {
    let app = app(store).await;
    let t = tenant(&app, "unique").await;
    let other = tenant(&app, "unique-too").await;
    let ada = create_ok(&app, &t, json!({"email": "ada@example.com"})).await;
    for taken in ["ada@example.com", " ADA@Example.COM  "] {
        let (status, body) = create_user(&app, &t, json!({ "email": taken })).await;
        assert_eq!(status, StatusCode::CONFLICT, "{taken}: {body}");
        assert!(!body.to_string().contains("ada@"), "{body}");
    }
    // Another tenant has its own people.
    create_ok(&app, &other, json!({"email": "ada@example.com"})).await;
    // A changed address frees the old one and takes the new one.
    let bob = create_ok(&app, &t, json!({"email": "bob@example.com"})).await;
    let (status, body) = app
        .send(
            app.admin(Method::PATCH, &user_path(&t, &bob))
                .json(&json!({"email": "Ada@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app
        .send(
            app.admin(Method::PATCH, &user_path(&t, &ada))
                .json(&json!({"email": "ada@lovelace.example"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .send(
            app.admin(Method::PATCH, &user_path(&t, &bob))
                .json(&json!({"email": "ADA@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
on_both_stores!(an_address_is_unique_in_a_tenant_whatever_its_case_and_spaces);

async fn allowed_domains_and_password_policy_errors_name_their_rule(store: Store) {
    let app = app(store).await;
    let t = tenant(&app, "policy").await;
    let settings = format!("/v1/tenants/{t}/settings");
    let (_, mut wanted) = app.send(app.admin(Method::GET, &settings)).await;
    // Seed 001 calls the setting `allowed_domains`: accepted on input, shown under our name.
    let domains = wanted
        .as_object_mut()
        .unwrap()
        .remove("allowed_email_domains")
        .unwrap();
    assert_eq!(domains, json!([]));
    wanted["allowed_domains"] = json!(["acme.example"]);
    wanted["password_policy"]["require_numbers"] = json!(true);
    wanted["password_policy"]["password_history_count"] = json!(2);
    let (status, body) = app
        .send(app.admin(Method::PUT, &settings).json(&wanted))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["allowed_email_domains"], json!(["acme.example"]));

    let (status, body) = create_user(&app, &t, json!({"email": "ada@other.example"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "email");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("allowed_email_domains")
    );
    let cases = [
        ("Sh0rt pass", "at least 12 characters"),
        ("violet kettle marathon", "digit"),
        ("Password123456", "too easy to guess"),
    ];
    for (password, rule) in cases {
        let (status, body) = create_user(
            &app,
            &t,
            json!({"email": "ada@acme.example", "password": password}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{password}: {body}");
        assert_eq!(body["field"], "password", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(rule), "{password}: {message}");
        assert!(!message.contains(password), "{message}");
    }
    let ada = create_ok(
        &app,
        &t,
        json!({"email": "ada@ACME.example", "password": STRONG}),
    )
    .await;
    let password = format!("{}/password", user_path(&t, &ada));
    let set = |password_text: &'static str| {
        app.send(
            app.admin(Method::POST, &password)
                .json(&json!({ "password": password_text })),
        )
    };
    let (status, body) = set(STRONG).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("last 2 passwords"),
        "{body}"
    );
    assert_eq!(set("orchid pylon harbour 42").await.0, StatusCode::OK);
    assert_eq!(set("tundra saffron violin 77").await.0, StatusCode::OK);
    assert_eq!(set(STRONG).await.0, StatusCode::OK);
}
on_both_stores!(allowed_domains_and_password_policy_errors_name_their_rule);

async fn every_user_route_is_not_found_from_another_tenant(store: Store) {
    let app = app(store).await;
    let a = tenant(&app, "probe-a").await;
    let b = tenant(&app, "probe-b").await;
    let ada = create_ok(&app, &a, json!({"email": "ada@example.com"})).await;
    let id = ada["id"].as_str().unwrap();
    let b_key = app
        .create_api_key(&b, json!({"name": "b admin", "scopes": ["tenant:admin"]}))
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let routes = |tenant: &str| {
        let user = format!("/v1/tenants/{tenant}/users/{id}");
        vec![
            (
                Method::POST,
                format!("/v1/tenants/{tenant}/users"),
                json!({"email": "x@example.com"}),
            ),
            (
                Method::GET,
                format!("/v1/tenants/{tenant}/users"),
                Value::Null,
            ),
            (Method::GET, user.clone(), Value::Null),
            (Method::PATCH, user.clone(), json!({"roles": ["x"]})),
            (Method::DELETE, user.clone(), Value::Null),
            (Method::POST, format!("{user}/disable"), Value::Null),
            (Method::POST, format!("{user}/enable"), Value::Null),
            (
                Method::POST,
                format!("{user}/password"),
                json!({"password": STRONG}),
            ),
        ]
    };
    // B's administrator probing A's tenant, and anyone reaching A's user through B's path.
    let probes = routes(&a)
        .into_iter()
        .map(|route| (Some(b_key.as_str()), route))
        .chain(routes(&b).into_iter().skip(2).map(|route| (None, route)));
    for (key, (method, path, body)) in probes {
        let request = match key {
            Some(key) => app.request(method.clone(), &path, Some(key)),
            None => app.admin(method.clone(), &path),
        };
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        let (status, answer) = app.send(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
    }
    // Nothing changed: Ada is still there, active, with her address.
    let (status, read) = app.send(app.admin(Method::GET, &user_path(&a, &ada))).await;
    assert_eq!((status, read), (StatusCode::OK, ada));
}
on_both_stores!(every_user_route_is_not_found_from_another_tenant);

/// A distinctive address and name, searched for in every form a file could hold them in.
const EMAIL: &str = "Zelda.Quixotic-Erasure@Example.org";
const NAME: &str = "Zelda Quixotic";
const FAMILY_NAME: &str = "Vanterpool-Mbeki";

fn needles() -> Vec<String> {
    let mut needles = Vec::new();
    for text in [EMAIL, NAME, FAMILY_NAME, "Zelda", "Quixotic", "Vanterpool"] {
        needles.extend([text.to_owned(), text.to_lowercase(), text.to_uppercase()]);
    }
    needles
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The files of the data directory that hold any of the needles, and which.
fn found_in_data_dir(app: &TestServer) -> Vec<String> {
    let mut paths = Vec::new();
    files(app.data_dir(), &mut paths);
    if app.database_url().is_none() {
        // The log, the read models and the key table, each with its WAL or not.
        let names: Vec<_> = paths.iter().filter_map(|p| p.file_name()).collect();
        for file in ["events.db", "readmodels.db", "keys.db", "master-key"] {
            assert!(names.iter().any(|name| *name == file), "{file}: {paths:?}");
        }
    }
    let mut found = Vec::new();
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        for needle in needles() {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(format!("{}: {needle}", path.display()));
            }
        }
    }
    found
}

/// The tables of the PostgreSQL database whose rows, cast to text, hold any of the needles.
async fn found_in_postgres(url: &str) -> Vec<String> {
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
    assert!(tables.contains(&"person_keys".to_owned()), "{tables:?}");
    assert!(tables.contains(&"rm_users".to_owned()), "{tables:?}");
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
            for needle in needles() {
                if row.contains(&needle) {
                    found.push(format!("{table}: {needle}"));
                }
            }
        }
    }
    pool.close().await;
    found
}

async fn erasure_leaves_no_trace_of_the_person_and_the_log_still_verifies(store: Store) {
    let mut app = app(store).await;
    let t = tenant(&app, "forget-me").await;
    let zelda = create_ok(
        &app,
        &t,
        json!({
            "email": EMAIL,
            "name": NAME,
            "given_name": "Zelda",
            "family_name": FAMILY_NAME,
            "roles": ["user"],
            "password": STRONG,
        }),
    )
    .await;
    let id = zelda["id"].as_str().unwrap().to_owned();
    let path = user_path(&t, &zelda);
    let (status, _) = app
        .send(
            app.admin(Method::PATCH, &path)
                .json(&json!({"given_name": "Zee"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let other = create_ok(
        &app,
        &t,
        json!({"email": "stays@example.org", "name": "Stays"}),
    )
    .await;

    // While the key exists, the tools open the person's data: it is sealed, not lost.
    let (ok, as_of) = app.replay(&["as-of", "--tenant", &t, "--at", "999999", "--json"]);
    assert!(ok, "{as_of}");
    let report: Value = serde_json::from_str(&as_of).unwrap();
    let shown = report["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|user| user["user_id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(shown["personal_data"], "shown", "{shown}");
    assert_eq!(shown["email"], EMAIL);

    let (status, body) = app.send(app.admin(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, erased) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["status"], "erased");
    for field in ["email", "name", "given_name", "family_name"] {
        assert_eq!(erased[field], Value::Null, "{erased}");
    }
    assert_eq!(erased["roles"], json!(["user"]));
    assert_eq!(
        listed(&app, &t, "email=zelda.quixotic-erasure%40example.org").await,
        Vec::<String>::new()
    );
    assert_eq!(listed(&app, &t, "status=erased").await, [id.as_str()]);
    // Erased is terminal (another erasure changes nothing); the address is free again.
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("{path}/enable")))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        app.send(app.admin(Method::DELETE, &path)).await.0,
        StatusCode::NO_CONTENT
    );
    // The other user is untouched.
    let (_, stays) = app
        .send(app.admin(Method::GET, &user_path(&t, &other)))
        .await;
    assert_eq!(stays["name"], "Stays");

    // The audit trail shows the user by id, through erasure, and nothing personal.
    let (status, audit) = app
        .send(app.admin(Method::GET, &format!("/v1/audit?target_id={id}&limit=100")))
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    for action in [
        "user.created",
        "user.password_set",
        "user.updated",
        "user.erased",
    ] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
    let text = audit.to_string();
    for needle in needles() {
        assert!(!text.contains(&needle), "the audit API shows {needle}");
    }

    app.stop().await;
    assert_eq!(found_in_data_dir(&app), Vec::<String>::new());
    if let Some(url) = app.database_url() {
        assert_eq!(found_in_postgres(url).await, Vec::<String>::new());
    }
    let (ok, verified) = app.replay(&["verify"]);
    assert!(ok, "{verified}");
    let (ok, history) = app.replay(&["history", "--tenant", &t]);
    assert!(ok, "{history}");
    assert!(history.contains("user erased"), "{history}");
    assert!(history.contains(&format!("user {id} created")), "{history}");
    let (ok, as_of) = app.replay(&["as-of", "--tenant", &t, "--at", "999999", "--json"]);
    assert!(ok, "{as_of}");
    let report: Value = serde_json::from_str(&as_of).unwrap();
    let users = report["users"].as_array().unwrap();
    let gone = users
        .iter()
        .find(|user| user["user_id"] == id.as_str())
        .unwrap();
    assert_eq!(gone["status"], "erased", "{gone}");
    assert_eq!(gone["personal_data"], "erased", "{gone}");
    let kept = users
        .iter()
        .find(|user| user["user_id"] == other["id"])
        .unwrap();
    assert_eq!(kept["name"], "Stays", "{kept}");
    // As of a moment before the erasure the user was active, and their data is gone all the
    // same: the key is destroyed.
    let created_at = zelda["created_at"].as_str().unwrap();
    let (ok, before) = app.replay(&["as-of", "--tenant", &t, "--at", created_at]);
    assert!(ok, "{before}");
    assert!(
        before.contains(&format!("{id} active roles [user] erased")),
        "{before}"
    );
    for output in [&verified, &history, &as_of, &before] {
        for needle in needles() {
            assert!(!output.contains(&needle), "a tool printed {needle}");
        }
    }
}
on_both_stores!(erasure_leaves_no_trace_of_the_person_and_the_log_still_verifies);
