//! The audit trail over HTTP: `GET /v1/audit` lists every event of the log newest first, with
//! filters and cursor pages; a tenant key sees only its own tenant; `POST /v1/audit` appends an
//! `audit.recorded` event that shows up in both the listing and the log; bad input appends
//! nothing; and no secret or key material ever appears in an entry.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, read_log, spawn_app};
use crate::on_both_stores;

/// Percent-encodes a query value (RFC 3339 times carry `+` and `:`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn audit_path(query: &[(&str, &str)]) -> String {
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    format!("/v1/audit?{}", query.join("&"))
}

/// Every entry for `query`, walked page by page `limit` at a time with `key`.
async fn walk(
    app: &TestServer,
    key: Option<&str>,
    query: &[(&str, &str)],
    limit: u32,
) -> Vec<Value> {
    let limit = limit.to_string();
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.push(("limit", &limit));
        if let Some(cursor) = &cursor {
            q.push(("cursor", cursor));
        }
        let path = audit_path(&q);
        let request = match key {
            Some(key) => app.request(Method::GET, &path, Some(key)),
            None => app.admin(Method::GET, &path),
        };
        let (status, body) = app.send(request).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let page = body["items"].as_array().unwrap();
        assert!(page.len() <= limit.parse().unwrap(), "{body}");
        items.extend(page.iter().cloned());
        match body.get("next_cursor") {
            Some(next) => {
                assert!(!page.is_empty(), "{body}");
                cursor = Some(next.as_str().unwrap().to_owned());
            }
            None => break,
        }
    }
    items
}

fn ids(items: &[Value]) -> Vec<u64> {
    items
        .iter()
        .map(|item| item["id"].as_u64().unwrap())
        .collect()
}

/// A tenant with an API key of `scopes` and a confidential OAuth client: (tenant id, key id,
/// key plaintext, client secret).
async fn tenant_with_key_and_client(
    app: &TestServer,
    slug: &str,
    scopes: &[&str],
) -> (String, String, String, String) {
    let tenant = app.create_tenant(slug).await;
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let key = app
        .create_api_key(
            &tenant_id,
            json!({"name": format!("{slug} key"), "scopes": scopes, "product": "billing"}),
        )
        .await;
    let (status, client) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/clients"))
                .json(
                    &json!({"name": format!("{slug} worker"), "allowed_scopes": ["invoices:read"]}),
                ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    (
        tenant_id,
        key["api_key"]["id"].as_str().unwrap().to_owned(),
        key["plaintext"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    )
}

async fn every_event_is_listed_once_newest_first_and_filters_narrow(store: Store) {
    let app = spawn_app(store).await;
    let (a, key_a, plaintext_a, secret_a) =
        tenant_with_key_and_client(&app, "audit-a", &["tenant:admin"]).await;
    let (b, _, plaintext_b, secret_b) =
        tenant_with_key_and_client(&app, "audit-b", &["tenant:admin"]).await;

    // Pages of 2 walk every event exactly once, newest first: positions head, head-1, ..., 1.
    let all = walk(&app, None, &[], 2).await;
    let positions = ids(&all);
    let newest = positions[0];
    assert_eq!(positions, (1..=newest).rev().collect::<Vec<_>>());
    assert!(newest >= 8, "{positions:?}");
    let (status, first) = app.send(app.admin(Method::GET, "/v1/audit")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(
        first.get("next_cursor").is_none(),
        "fewer than 50 entries: {first}"
    );

    // No secret, no key material, no plaintext anywhere.
    let dump = serde_json::to_string(&all).unwrap();
    for needle in ["secret", "sealed", "token_hash", "private", "public_jwk"] {
        assert!(!dump.contains(needle), "{needle} in {dump}");
    }
    for plaintext in [&plaintext_a, &plaintext_b, &secret_a, &secret_b] {
        assert!(
            !dump.contains(plaintext.as_str()),
            "a plaintext secret in {dump}"
        );
    }

    // Entries name actor, action and target.
    let issued = all
        .iter()
        .find(|e| e["action"] == "api_key.issued" && e["target_id"] == key_a.as_str())
        .unwrap();
    assert_eq!(issued["tenant_id"], a.as_str(), "{issued}");
    assert_eq!(issued["target_type"], "api_key", "{issued}");
    assert_eq!(issued["target_name"], "audit-a key", "{issued}");
    assert_eq!(issued["product"], "billing", "{issued}");
    assert_eq!(issued["actor_type"], "api_key", "{issued}");
    assert!(issued["correlation_id"].is_string(), "{issued}");
    assert!(issued["metadata"]["prefix"].is_string(), "{issued}");
    let admin_id = issued["actor_id"].as_str().unwrap().to_owned();
    let created = all
        .iter()
        .find(|e| e["action"] == "tenant.created" && e["tenant_id"] == b.as_str())
        .unwrap();
    assert_eq!(created["target_type"], "tenant", "{created}");
    assert_eq!(created["target_id"], b.as_str(), "{created}");
    assert_eq!(created["target_name"], "audit-b", "{created}");

    // Each filter narrows to exactly the matching entries.
    let middle = all[all.len() / 2]["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    type Check = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(Vec<(&str, &str)>, Check)> = vec![
        (
            vec![("tenant_id", &a)],
            Box::new({
                let a = a.clone();
                move |e| e["tenant_id"] == a.as_str()
            }),
        ),
        (
            vec![("action", "tenant.created")],
            Box::new(|e| e["action"] == "tenant.created"),
        ),
        (
            vec![("target_id", &key_a)],
            Box::new({
                let key_a = key_a.clone();
                move |e| e["target_id"] == key_a.as_str()
            }),
        ),
        (
            vec![("actor_id", &admin_id)],
            Box::new({
                let admin_id = admin_id.clone();
                move |e| e["actor_id"] == admin_id.as_str()
            }),
        ),
        (
            vec![("product", "billing")],
            Box::new(|e| e["product"] == "billing"),
        ),
        (
            vec![("since", &middle)],
            Box::new({
                let middle = middle.clone();
                move |e| e["created_at"].as_str().unwrap() >= middle.as_str()
            }),
        ),
        (
            vec![("until", &middle)],
            Box::new({
                let middle = middle.clone();
                move |e| e["created_at"].as_str().unwrap() < middle.as_str()
            }),
        ),
    ];
    for (query, matches) in cases {
        let expected: Vec<u64> = all
            .iter()
            .filter(|e| e["id"].as_u64().unwrap() <= newest && matches(e))
            .map(|e| e["id"].as_u64().unwrap())
            .collect();
        let got: Vec<u64> = ids(&walk(&app, None, &query, 2).await)
            .into_iter()
            .filter(|id| *id <= newest)
            .collect();
        assert!(!got.is_empty(), "{query:?}");
        assert!(got.len() < all.len(), "{query:?} does not narrow");
        assert_eq!(got, expected, "{query:?}");
    }

    // Bad query input.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=nope", "cursor"),
        ("since=yesterday", "since"),
    ] {
        let (status, body) = app
            .send(app.admin(Method::GET, &format!("/v1/audit?{query}")))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
}
on_both_stores!(every_event_is_listed_once_newest_first_and_filters_narrow);

async fn a_tenant_key_sees_only_its_own_tenant(store: Store) {
    let app = spawn_app(store).await;
    let (a, _, plaintext_a, _) =
        tenant_with_key_and_client(&app, "only-a", &["tenant:admin"]).await;
    let (b, _, _, _) = tenant_with_key_and_client(&app, "only-b", &["tenant:admin"]).await;

    let own = walk(&app, Some(&plaintext_a), &[], 3).await;
    assert!(own.len() >= 3, "{own:?}");
    assert!(own.iter().all(|e| e["tenant_id"] == a.as_str()), "{own:?}");
    // (Usage records of the key itself may land in between: compare up to the first walk.)
    let explicit = walk(&app, Some(&plaintext_a), &[("tenant_id", &a)], 50).await;
    let newest = ids(&own)[0];
    let explicit: Vec<u64> = ids(&explicit)
        .into_iter()
        .filter(|id| *id <= newest)
        .collect();
    assert_eq!(explicit, ids(&own));

    let (status, body) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/audit?tenant_id={b}"),
            Some(&plaintext_a),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The platform admin sees both tenants (and the system tenant).
    let everything = walk(&app, None, &[], 500).await;
    assert!(everything.iter().any(|e| e["tenant_id"] == b.as_str()));
    assert!(everything.len() > own.len());

    // A key without `tenant:admin` reads nothing.
    let reader = app
        .create_api_key(&a, json!({"name": "reader", "scopes": ["audit:write"]}))
        .await;
    let reader = reader["plaintext"].as_str().unwrap();
    let (status, body) = app
        .send(app.request(Method::GET, "/v1/audit", Some(reader)))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}
on_both_stores!(a_tenant_key_sees_only_its_own_tenant);

async fn posted_entries_are_listed_and_on_the_log(store: Store) {
    let mut app = spawn_app(store).await;
    let (a, writer_id, _, _) = tenant_with_key_and_client(&app, "post-a", &["tenant:admin"]).await;
    let (b, _, _, _) = tenant_with_key_and_client(&app, "post-b", &["tenant:admin"]).await;
    let writer = app
        .create_api_key(&a, json!({"name": "writer", "scopes": ["audit:write"]}))
        .await;
    let writer_id_audit = writer["api_key"]["id"].as_str().unwrap().to_owned();
    let writer = writer["plaintext"].as_str().unwrap().to_owned();
    assert_ne!(writer_id, writer_id_audit);

    let body = json!({
        "action": "invoice.paid",
        "project_id": "0193a000-0000-7000-8000-000000000042",
        "actor_id": "user-7",
        "actor_name": "Ada",
        "actor_type": "user",
        "target_id": "inv-1001",
        "target_type": "invoice",
        "target_name": "Invoice 1001",
        "product": "billing",
        "metadata": {"amount": 1200, "currency": "EUR"},
    });
    let (status, entry) = app
        .send(
            app.request(Method::POST, "/v1/audit", Some(&writer))
                .header("user-agent", "audit-test/1.0")
                .json(&body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    let id = entry["id"].as_u64().unwrap();
    assert_eq!(
        entry["tenant_id"],
        a.as_str(),
        "tenant_id defaults to the key's"
    );
    for field in [
        "action",
        "project_id",
        "actor_id",
        "actor_name",
        "actor_type",
        "target_id",
        "target_type",
        "target_name",
        "product",
        "metadata",
    ] {
        assert_eq!(entry[field], body[field], "{field}: {entry}");
    }
    assert_eq!(entry["event_type"], "audit.recorded", "{entry}");
    assert_eq!(entry["user_agent"], "audit-test/1.0", "{entry}");
    assert_eq!(entry["source_ip"], "127.0.0.1", "{entry}");
    assert!(entry["created_at"].is_string(), "{entry}");

    // It is listed, and found by its own action, actor, target and product.
    for query in [
        vec![("action", "invoice.paid")],
        vec![("actor_id", "user-7")],
        vec![("target_id", "inv-1001"), ("tenant_id", a.as_str())],
    ] {
        let found = walk(&app, None, &query, 50).await;
        assert_eq!(found, vec![entry.clone()], "{query:?}");
    }

    // Another tenant is 404 for a tenant key; the platform admin may write for any tenant.
    let (status, other) = app
        .send(
            app.request(Method::POST, "/v1/audit", Some(&writer))
                .json(&json!({"action": "invoice.paid", "tenant_id": b})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{other}");
    let (status, by_admin) = app
        .send(
            app.admin(Method::POST, "/v1/audit")
                .json(&json!({"action": "tenant.reviewed", "tenant_id": b})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{by_admin}");
    assert_eq!(by_admin["tenant_id"], b.as_str());
    assert_eq!(by_admin["actor_type"], "api_key", "{by_admin}");
    assert_eq!(by_admin["metadata"], json!({}), "{by_admin}");
    let (status, missing) = app
        .send(
            app.admin(Method::POST, "/v1/audit")
                .json(&json!({"action": "x", "tenant_id": "0193a000-0000-7000-8000-0000000000ff"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");

    // A product's key that names no product records its own.
    let shop = app
        .create_api_key(
            &a,
            json!({"name": "shop", "scopes": ["audit:write"], "product": "shop"}),
        )
        .await;
    let shop = shop["plaintext"].as_str().unwrap().to_owned();
    let (status, by_shop) = app
        .send(
            app.request(Method::POST, "/v1/audit", Some(&shop))
                .json(&json!({"action": "cart.checked_out"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{by_shop}");
    assert_eq!(by_shop["product"], "shop", "{by_shop}");

    // On the log: `audit.recorded` on the tenant's audit stream at the entry's position.
    app.stop().await;
    let log = read_log(&app).await;
    let recorded: Vec<_> = log
        .iter()
        .filter(|e| e.envelope.event_type == "audit.recorded")
        .collect();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0].envelope.global_position, id);
    assert_eq!(recorded[0].envelope.stream_id, format!("{a}/audit"));
    assert_eq!(recorded[0].envelope.actor.id, writer_id_audit);
    assert_eq!(recorded[1].envelope.stream_id, format!("{b}/audit"));
    assert_eq!(recorded[2].envelope.stream_id, format!("{a}/audit"));
    let (same, report) = app.check_read_models();
    assert!(same, "{report}");
}
on_both_stores!(posted_entries_are_listed_and_on_the_log);

async fn bad_posts_are_rejected_and_append_nothing(store: Store) {
    let app = spawn_app(store).await;
    let head = app.log_head().await;
    let cases: Vec<(Value, Option<&str>)> = vec![
        (json!({}), None),
        (json!({"action": ""}), Some("action")),
        (json!({"action": "Invoice Paid"}), Some("action")),
        (json!({"action": "a".repeat(129)}), Some("action")),
        (
            json!({"action": "ok", "target_name": "x".repeat(256)}),
            Some("target_name"),
        ),
        (
            json!({"action": "ok", "actor_id": "x".repeat(256)}),
            Some("actor_id"),
        ),
        (
            json!({"action": "ok", "metadata": [1, 2]}),
            Some("metadata"),
        ),
        (
            json!({"action": "ok", "metadata": {"blob": "x".repeat(17 * 1024)}}),
            Some("metadata"),
        ),
        (json!({"action": "ok", "surprise": true}), None),
    ];
    for (body, field) in cases {
        let (status, error) = app
            .send(app.admin(Method::POST, "/v1/audit").json(&body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert!(error["correlation_id"].is_string(), "{error}");
        if let Some(field) = field {
            assert_eq!(error["field"], field, "{body}: {error}");
        }
    }
    assert_eq!(
        app.log_head().await,
        head,
        "rejected audit entries were appended"
    );
}
on_both_stores!(bad_posts_are_rejected_and_append_nothing);

#[tokio::test]
async fn the_openapi_document_describes_the_audit_endpoints() {
    let app = spawn_app(Store::Embedded).await;
    let (status, doc) = app
        .send(app.request(Method::GET, "/openapi.json", None))
        .await;
    assert_eq!(status, StatusCode::OK);
    let audit = &doc["paths"]["/v1/audit"];
    assert!(audit["get"].is_object(), "{audit}");
    assert!(audit["post"].is_object(), "{audit}");
    let params: Vec<&str> = audit["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "tenant_id",
        "actor_id",
        "action",
        "target_id",
        "product",
        "since",
        "until",
        "limit",
        "cursor",
    ] {
        assert!(params.contains(&name), "{name} missing: {params:?}");
    }
    for schema in ["AuditAppend", "AuditEvent", "AuditPage"] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} missing from OpenAPI"
        );
    }
}
