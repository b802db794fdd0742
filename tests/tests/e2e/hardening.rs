//! Regression tests for what a security probe of the running server found (issue 23), one
//! section per finding, each driving the real server over HTTP as the probe did:
//!
//! - audit entries products append show who appended them and cannot pose as Tessera's own;
//! - API keys grant only known scopes that their creator holds;
//! - ES256 tokens have one string only (low-S signatures);
//! - `Authorization`: one header at most, its scheme in any case;
//! - the request header block is capped (431);
//! - permission checks come before the body is parsed;
//! - OAuth endpoints answer every error in OAuth's JSON form with `no-store`, 413 included;
//! - the data directory and its files are private to the server's user;
//! - audit metadata is redacted by name in any case and word style, at any depth.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, spawn_app};
use crate::on_both_stores;

/// `POST /t/{slug}/oauth/{endpoint}` with client_secret_basic and a form.
fn oauth_post(
    app: &TestServer,
    slug: &str,
    endpoint: &str,
    (client_id, secret): (&str, &str),
    form: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    app.client
        .post(format!("{}/t/{slug}/oauth/{endpoint}", app.base))
        .basic_auth(client_id, Some(secret))
        .form(form)
}

async fn access_token(app: &TestServer, slug: &str, client: (&str, &str)) -> String {
    let (status, body) = app
        .send(oauth_post(
            app,
            slug,
            "token",
            client,
            &[("grant_type", "client_credentials")],
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn is_active(app: &TestServer, slug: &str, client: (&str, &str), token: &str) -> bool {
    let (status, body) = app
        .send(oauth_post(
            app,
            slug,
            "introspect",
            client,
            &[("token", token)],
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["active"].as_bool().unwrap()
}

/// Asserts an OAuth error answer (RFC 6749 section 5.2): this status, JSON with this `error`,
/// and `Cache-Control: no-store`.
async fn assert_oauth_error(response: reqwest::Response, status: StatusCode, error: &str) {
    assert_eq!(response.status(), status);
    let headers = response.headers().clone();
    assert_eq!(
        headers.get(CACHE_CONTROL).map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "{headers:?}"
    );
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{headers:?}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

// ---------------------------------------------------------------------------------------------
// ES256 tokens have one string only.
// ---------------------------------------------------------------------------------------------

/// The order `n` of the P-256 group, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `n - s`, big-endian, for `0 < s < n`.
fn order_minus(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(P256_ORDER[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap();
    }
    out
}

/// The token with its signature replaced.
fn with_signature(token: &str, signature: &str) -> String {
    let (signed, _) = token.rsplit_once('.').unwrap();
    format!("{signed}.{signature}")
}

#[tokio::test]
async fn es256_tokens_are_low_s_and_their_other_strings_introspect_inactive() {
    let app = spawn_app(Store::Embedded).await;
    let (_, client_id, secret) = app.tenant_and_client("low-s").await;
    let client = (client_id.as_str(), secret.as_str());

    // Half of all ECDSA signatures come out high-S unless the signer normalises; 16 tokens that
    // are all low-S would happen by chance once in 65,536 runs.
    for _ in 0..16 {
        let token = access_token(&app, "low-s", client).await;
        let encoded = token.rsplit_once('.').unwrap().1;
        let signature = URL_SAFE_NO_PAD.decode(encoded).unwrap();
        assert_eq!(signature.len(), 64);
        let high = order_minus(&signature[32..]);
        assert!(
            signature[32..] < high[..],
            "s must be the smaller of s and n - s: {token}"
        );
        assert!(is_active(&app, "low-s", client, &token).await);

        // The same signature with n - s also verifies mathematically, but is refused.
        let mut twin = signature[..32].to_vec();
        twin.extend_from_slice(&high);
        let twin = with_signature(&token, &URL_SAFE_NO_PAD.encode(&twin));
        assert!(
            !is_active(&app, "low-s", client, &twin).await,
            "the high-S twin of an active token must be inactive"
        );

        // So are spellings of the same bytes with non-zero padding bits in the last character
        // (64 bytes leave 4 unused bits in the 86th).
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = *encoded.as_bytes().last().unwrap();
        let index = ALPHABET.iter().position(|&c| c == last).unwrap();
        assert_eq!(index & 0b1111, 0, "canonical encoding");
        let mut loose = encoded.as_bytes().to_vec();
        *loose.last_mut().unwrap() = ALPHABET[index | 1];
        let loose = with_signature(&token, std::str::from_utf8(&loose).unwrap());
        assert!(!is_active(&app, "low-s", client, &loose).await);
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth endpoints answer every error in OAuth's form.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn oauth_endpoints_answer_a_too_large_body_and_a_wrong_method_in_oauth_form() {
    let app = spawn_app(Store::Embedded).await;
    let (_, client_id, secret) = app.tenant_and_client("limits").await;
    let client = (client_id.as_str(), secret.as_str());
    let padding = "x".repeat(100 * 1024);
    for endpoint in ["token", "introspect", "revoke"] {
        let response = oauth_post(
            &app,
            "limits",
            endpoint,
            client,
            &[("grant_type", "client_credentials"), ("pad", &padding)],
        )
        .send()
        .await
        .unwrap();
        assert_oauth_error(response, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;

        let response = app
            .client
            .get(format!("{}/t/limits/oauth/{endpoint}", app.base))
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, StatusCode::METHOD_NOT_ALLOWED, "invalid_request").await;
    }
    // A body just under the limit is still read (and then refused for what it says).
    let response = oauth_post(
        &app,
        "limits",
        "token",
        client,
        &[
            ("grant_type", "client_credentials"),
            ("pad", &"x".repeat(60 * 1024)),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// `Authorization`: one header at most, its scheme in any case.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn one_authorization_header_at_most_and_its_scheme_in_any_case() {
    let app = spawn_app(Store::Embedded).await;
    let (_, client_id, secret) = app.tenant_and_client("headers").await;
    let admin_key = crate::helpers::ADMIN_KEY;

    // Admin API: `Bearer` in any case; two headers are 400 whichever comes first.
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, body) = app
            .send(
                app.client
                    .get(format!("{}/v1/tenants", app.base))
                    .header(AUTHORIZATION, format!("{scheme} {admin_key}")),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
    }
    let good = format!("Bearer {admin_key}");
    for pair in [
        [good.as_str(), "Bearer tsr_wrong"],
        ["Bearer tsr_wrong", &good],
    ] {
        let (status, body) = app
            .send(
                app.client
                    .get(format!("{}/v1/tenants", app.base))
                    .header(AUTHORIZATION, pair[0])
                    .header(AUTHORIZATION, pair[1]),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{pair:?}: {body}");
        assert_eq!(body["error"], "bad_request", "{body}");
    }

    // Token endpoint (and every endpoint that authenticates clients): `Basic` in any case;
    // two headers are invalid_request.
    let basic = |id: &str, secret: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    };
    let good = basic(&client_id, &secret);
    for scheme in ["Basic", "basic", "BASIC"] {
        let (status, body) = app
            .send(
                app.client
                    .post(format!("{}/t/headers/oauth/token", app.base))
                    .header(AUTHORIZATION, format!("{scheme} {good}"))
                    .form(&[("grant_type", "client_credentials")]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
    }
    let wrong = format!("Basic {}", basic(&client_id, "tcs_wrong"));
    let good = format!("Basic {good}");
    for endpoint in ["token", "introspect", "revoke"] {
        for pair in [
            [good.as_str(), wrong.as_str()],
            [wrong.as_str(), good.as_str()],
        ] {
            let response = app
                .client
                .post(format!("{}/t/headers/oauth/{endpoint}", app.base))
                .header(AUTHORIZATION, pair[0])
                .header(AUTHORIZATION, pair[1])
                .form(&[("grant_type", "client_credentials"), ("token", "x")])
                .send()
                .await
                .unwrap();
            assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Permission checks come before the body is parsed.
// ---------------------------------------------------------------------------------------------

/// Issues a key on `tenant_id` with the platform admin key; returns its plaintext.
async fn key_with_scopes(app: &TestServer, tenant_id: &str, scopes: &[&str]) -> String {
    app.create_api_key(tenant_id, json!({"name": "probe", "scopes": scopes}))
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_caller_without_the_right_gets_the_same_answer_whatever_its_body() {
    let app = spawn_app(Store::Embedded).await;
    let a = app.create_tenant("body-a").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create_tenant("body-b").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a_admin = key_with_scopes(&app, &a, &["tenant:admin"]).await;
    let a_none = key_with_scopes(&app, &a, &[]).await;

    // Each probe: (key, method, path, the answer for every body, a complete body).
    let probes = [
        (
            &a_admin,
            Method::POST,
            format!("/v1/tenants/{b}/clients"),
            StatusCode::NOT_FOUND,
            json!({"name": "x"}),
        ),
        (
            &a_admin,
            Method::PUT,
            format!("/v1/tenants/{b}/clients/some-client"),
            StatusCode::NOT_FOUND,
            json!({"name": "x"}),
        ),
        (
            &a_admin,
            Method::POST,
            format!("/v1/tenants/{b}/api-keys"),
            StatusCode::NOT_FOUND,
            json!({"name": "x"}),
        ),
        (
            &a_admin,
            Method::PATCH,
            format!("/v1/tenants/{b}"),
            StatusCode::FORBIDDEN,
            json!({"name": "x"}),
        ),
        (
            &a_admin,
            Method::PUT,
            format!("/v1/tenants/{a}/settings"),
            StatusCode::FORBIDDEN,
            json!({}),
        ),
        (
            &a_admin,
            Method::POST,
            "/v1/tenants".to_owned(),
            StatusCode::FORBIDDEN,
            json!({"slug": "sneaky", "name": "x"}),
        ),
        (
            &a_admin,
            Method::POST,
            format!("/v1/tenants/{b}/suspend"),
            StatusCode::FORBIDDEN,
            json!({"reason": "x"}),
        ),
        (
            &a_none,
            Method::POST,
            "/v1/audit".to_owned(),
            StatusCode::FORBIDDEN,
            json!({"action": "invoice.paid"}),
        ),
    ];
    for (key, method, path, status, complete) in probes {
        let bodies = [
            (Some("application/json"), complete.to_string()),
            (Some("application/json"), "{}".to_owned()),
            (Some("application/json"), r#"{"surprise": true}"#.to_owned()),
            (Some("application/json"), "{not json".to_owned()),
            (Some("text/plain"), "hello".to_owned()),
            (None, String::new()),
        ];
        for (content_type, body) in bodies {
            let mut request = app
                .request(method.clone(), &path, Some(key))
                .body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header(CONTENT_TYPE, content_type);
            }
            let (got, answer) = app.send(request).await;
            assert_eq!(got, status, "{method} {path} {body:?}: {answer}");
            assert!(answer.get("field").is_none(), "{answer}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// API keys grant only known scopes that their creator holds.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn api_keys_carry_only_known_scopes_their_creator_holds() {
    let app = spawn_app(Store::Embedded).await;
    let tenant_id = app.create_tenant("scoped").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let system_id = "00000000-0000-0000-0000-000000000001";
    let tenant_admin = key_with_scopes(&app, &tenant_id, &["tenant:admin"]).await;
    let create = |key: &str, tenant: &str, body: Value| {
        app.send(
            app.request(
                Method::POST,
                &format!("/v1/tenants/{tenant}/api-keys"),
                Some(key),
            )
            .json(&body),
        )
    };

    // What the probe did: a tenant admin minting platform:admin, or a made-up scope.
    let (status, body) = create(
        &tenant_admin,
        &tenant_id,
        json!({"name": "root", "scopes": ["platform:admin"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for scope in ["superuser", "tenant:root", "Platform:Admin", "product:crm"] {
        let (status, body) = create(
            &tenant_admin,
            &tenant_id,
            json!({"name": "odd", "scopes": ["audit:write", scope], "product": "crm"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scope}: {body}");
        assert_eq!(body["field"], "scopes[1]", "{scope}: {body}");
    }
    // Another product's scopes, or a product's scopes on a key for no product.
    for (product, scope) in [
        (Some("crm"), "product:billing:read"),
        (None, "product:crm:read"),
    ] {
        let (status, body) = create(
            &tenant_admin,
            &tenant_id,
            json!({"name": "odd", "scopes": [scope], "product": product}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scope}: {body}");
        assert_eq!(body["field"], "scopes[0]", "{body}");
    }
    // What a tenant admin holds, it grants; verify reports exactly that.
    let (status, created) = create(
        &tenant_admin,
        &tenant_id,
        json!({"name": "crm", "product": "crm",
               "scopes": ["tenant:admin", "audit:write", "product:crm:contacts.read"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, verified) = app
        .send(
            app.request(Method::POST, "/v1/api-keys/verify", None)
                .json(&json!({"key": created["plaintext"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(
        verified["scopes"],
        json!(["tenant:admin", "audit:write", "product:crm:contacts.read"])
    );

    // platform:admin only on the system tenant's keys, even from the platform admin.
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/api-keys"))
                .json(&json!({"name": "root", "scopes": ["platform:admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "scopes[0]", "{body}");
    // A tenant admin key of the system tenant is no platform admin and cannot mint one.
    let system_tenant_admin = key_with_scopes(&app, system_id, &["tenant:admin"]).await;
    let (status, body) = create(
        &system_tenant_admin,
        system_id,
        json!({"name": "root", "scopes": ["platform:admin"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{system_id}/api-keys"))
                .json(&json!({"name": "second admin", "scopes": ["platform:admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

// ---------------------------------------------------------------------------------------------
// Audit entries show who appended them and cannot pose as Tessera's own.
// ---------------------------------------------------------------------------------------------

async fn appended_audit_entries_show_who_appended_them_and_cannot_pass_for_tessera_s(store: Store) {
    let app = spawn_app(store).await;
    let tenant_id = app.create_tenant("forger").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = app
        .create_api_key(
            &tenant_id,
            json!({"name": "forger", "scopes": ["tenant:admin"]}),
        )
        .await;
    let (key_id, key) = (
        created["api_key"]["id"].as_str().unwrap().to_owned(),
        created["plaintext"].as_str().unwrap().to_owned(),
    );
    let victim = app
        .create_api_key(&tenant_id, json!({"name": "victim", "scopes": []}))
        .await["api_key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{tenant_id}/api-keys/{victim}"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let post = |body: Value| {
        app.send(
            app.request(Method::POST, "/v1/audit", Some(&key))
                .json(&body),
        )
    };

    // The probe's entry, and every variation on it, is refused and appends nothing.
    let head = app.log_head().await;
    let refused = [
        (
            json!({"action": "api_key.revoked", "actor_type": "system", "actor_id": "tessera",
                   "target_id": victim}),
            "action",
        ),
        (json!({"action": "api_key.revoked"}), "action"),
        (json!({"action": "tenant.archived"}), "action"),
        (json!({"action": "token.revoked"}), "action"),
        (json!({"action": "audit.recorded"}), "action"),
        (
            json!({"action": "invoice.voided", "actor_type": "system", "actor_id": "tessera"}),
            "actor_type",
        ),
        (
            json!({"action": "invoice.voided", "actor_type": "API-Key", "actor_id": victim}),
            "actor_type",
        ),
        (
            json!({"action": "invoice.voided", "actor_type": "client", "actor_id": "c-1"}),
            "actor_type",
        ),
        (
            json!({"action": "invoice.voided", "actor_id": victim}),
            "actor_type",
        ),
        (
            json!({"action": "invoice.voided", "actor_name": "Tessera"}),
            "actor_id",
        ),
    ];
    for (body, field) in refused {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    assert_eq!(app.log_head().await, head, "a refused entry was appended");

    // So the real revocation is the only entry of its action.
    let (status, page) = app
        .send(app.admin(Method::GET, "/v1/audit?action=api_key.revoked"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["event_type"], "api_key.revoked");
    assert_eq!(items[0]["target_id"], victim.as_str());
    assert_eq!(items[0]["recorded_by"]["type"], "api_key", "{page}");
    assert_eq!(
        items[0]["recorded_by"]["id"], items[0]["actor_id"],
        "{page}"
    );

    // A product's entry shows whom it says acted, and always which key appended it.
    let (status, claimed) = post(json!({
        "action": "invoice.voided",
        "actor_type": "user",
        "actor_id": "user-7",
        "actor_name": "Ada",
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    assert_eq!(
        (
            &claimed["actor_type"],
            &claimed["actor_id"],
            &claimed["actor_name"]
        ),
        (&json!("user"), &json!("user-7"), &json!("Ada"))
    );
    let appender = json!({"type": "api_key", "id": key_id, "name": "forger"});
    assert_eq!(claimed["recorded_by"], appender, "{claimed}");
    let (status, plain) = post(json!({"action": "invoice.sent"})).await;
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    assert_eq!(
        (&plain["actor_type"], &plain["actor_id"]),
        (&json!("api_key"), &json!(key_id))
    );
    assert_eq!(plain["recorded_by"], appender, "{plain}");

    // The listing shows the same, and so does every one of Tessera's own events.
    let (status, page) = app
        .send(app.admin(Method::GET, "/v1/audit?actor_id=user-7"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"], json!([claimed]), "{page}");
    let (status, page) = app
        .send(app.admin(Method::GET, &format!("/v1/audit?tenant_id={tenant_id}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for item in page["items"].as_array().unwrap() {
        if item["event_type"] != "audit.recorded" {
            assert_eq!(
                (&item["recorded_by"]["type"], &item["recorded_by"]["id"]),
                (&item["actor_type"], &item["actor_id"]),
                "{item}"
            );
        }
    }
}
on_both_stores!(appended_audit_entries_show_who_appended_them_and_cannot_pass_for_tessera_s);

// ---------------------------------------------------------------------------------------------
// Audit metadata is redacted by name in any case and word style, at any depth.
// ---------------------------------------------------------------------------------------------

async fn audit_metadata_loses_secret_fields_in_any_style_at_any_depth(store: Store) {
    let mut app = spawn_app(store).await;
    let tenant_id = app.create_tenant("redacted").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let metadata = json!({
        "amount": 12,
        "apiKey": "tsr_leak-1",
        "api-key": "tsr_leak-2",
        "API_KEY": "tsr_leak-3",
        "Authorization": "Bearer leak-4",
        "calls": [
            {"api_key": "tsr_leak-5", "status": 200},
            [{"refreshToken": "leak-6", "token_type": "Bearer"}],
        ],
        "request": {"headers": {"Cookie": "sid=leak-7", "X-Api-Key": "leak-8", "accept": "*/*"}},
        "user": {"newPassword": "leak-9", "password_policy": "strict"},
    });
    let kept = json!({
        "amount": 12,
        "calls": [{"status": 200}, [{"token_type": "Bearer"}]],
        "request": {"headers": {"accept": "*/*"}},
        "user": {"password_policy": "strict"},
    });
    let (status, entry) = app
        .send(app.admin(Method::POST, "/v1/audit").json(&json!({
            "action": "invoice.paid",
            "tenant_id": tenant_id,
            "metadata": metadata,
        })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["metadata"], kept, "{entry}");
    let (status, page) = app
        .send(app.admin(Method::GET, "/v1/audit?action=invoice.paid"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["metadata"], kept, "{page}");

    // Nothing of it reached the log either, where it could never be taken back.
    app.stop().await;
    let log = crate::helpers::read_log(&app).await;
    let recorded = log
        .iter()
        .find(|e| e.envelope.event_type == "audit.recorded")
        .unwrap();
    let text = format!("{:?}", recorded.decode().unwrap());
    assert!(!text.contains("leak"), "{text}");
}
on_both_stores!(audit_metadata_loses_secret_fields_in_any_style_at_any_depth);

// ---------------------------------------------------------------------------------------------
// The request header block is capped.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_request_head_over_32_kib_is_refused_with_431() {
    let app = spawn_app(Store::Embedded).await;
    let headers = |total: usize| {
        let mut request = app.admin(Method::GET, "/v1/tenants");
        // Header lines of 1 KiB each, as a probe (or a bloated cookie jar) would send.
        for i in 0..total / 1024 {
            request = request.header(format!("x-filler-{i}"), "f".repeat(1000));
        }
        request
    };
    let (status, body) = app.send(headers(16 * 1024)).await;
    assert_eq!(status, StatusCode::OK, "16 KiB of headers are fine: {body}");
    let response = headers(64 * 1024).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // One huge header line is refused the same way.
    let response = app
        .admin(Method::GET, "/v1/tenants")
        .header("cookie", "c".repeat(64 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // The server goes on serving.
    let (status, body) = app.send(app.admin(Method::GET, "/v1/tenants")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// ---------------------------------------------------------------------------------------------
// The data directory and its files are private to the server's user.
// ---------------------------------------------------------------------------------------------

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file of the data directory, with its mode; the directory's own mode.
fn modes(dir: &std::path::Path) -> (u32, Vec<(String, u32)>) {
    let mut files: Vec<(String, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                mode(&entry.path()),
            )
        })
        .collect();
    files.sort();
    (mode(dir), files)
}

#[tokio::test]
async fn the_data_directory_is_0700_and_every_file_in_it_0600() {
    use std::os::unix::fs::PermissionsExt;

    let mut app = crate::helpers::spawn_app_generating_its_admin_key().await;
    let dir = app.data_dir().to_owned();
    let key = std::fs::read_to_string(dir.join("bootstrap-admin-key"))
        .unwrap()
        .trim()
        .to_owned();
    // A write, so that both databases have their WAL and shared-memory files.
    let create = |slug: &'static str| {
        app.send(
            app.request(Method::POST, "/v1/tenants", Some(&key))
                .json(&json!({"slug": slug, "name": slug})),
        )
    };
    assert_eq!(create("private-a").await.0, StatusCode::CREATED);
    let (dir_mode, files) = modes(&dir);
    assert_eq!(dir_mode, 0o700, "{}", dir.display());
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "bootstrap-admin-key",
        "events.db",
        "events.db-shm",
        "events.db-wal",
        "master-key",
        "readmodels.db",
        "readmodels.db-shm",
        "readmodels.db-wal",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    for (name, file_mode) in &files {
        assert_eq!(*file_mode, 0o600, "{name}: {files:?}");
    }

    // A data directory an older version left readable is tightened at the next start, and a
    // rebuilt read-model file is private too.
    app.stop().await;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, left) = modes(&dir);
    assert!(left.len() >= 4, "{left:?}");
    for (name, _) in &left {
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    app.rebuild_read_models();
    app.start().await;
    let (status, body) = app
        .send(
            app.request(Method::POST, "/v1/tenants", Some(&key))
                .json(&json!({"slug": "private-b", "name": "b"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (dir_mode, files) = modes(&dir);
    assert_eq!(dir_mode, 0o700);
    for (name, file_mode) in &files {
        assert_eq!(*file_mode, 0o600, "{name}: {files:?}");
    }
}
