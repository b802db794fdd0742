//! Second factors over the admin API: a user's factors and their reset, the tenant's WebAuthn
//! policy (seed 001's shape), and 404 for every probe from another tenant. The factors are set
//! up by a second node on the server's storage, through the command service the hosted pages
//! call (an authenticator app, and a passkey with a software authenticator), since no admin
//! route sets up someone's factors. A reset also ends the person's sessions, signed in on the
//! hosted pages.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_event_schemas::{Actor, ActorKind, EventMetadata};
use tessera_test_support::totp::code_now;
use tessera_test_support::webauthn::SoftAuthenticator;
use uuid::Uuid;

use crate::helpers::{Store, TestServer, offline_commands, spawn_app};
use crate::http_browser::{Browser, STRONG, audit, people_app, person};
use crate::on_both_stores;

async fn app(store: Store) -> TestServer {
    people_app(store).await
}

async fn tenant(app: &TestServer, slug: &str) -> String {
    app.create_tenant(slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn user(app: &TestServer, tenant: &str, email: &str, name: &str) -> String {
    let (status, user) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant}/users"))
                .json(&json!({"email": email, "name": name})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    user["id"].as_str().unwrap().to_owned()
}

async fn mfa(app: &TestServer, tenant: &str, user: &str) -> Value {
    let (status, mfa) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{tenant}/users/{user}/mfa"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{mfa}");
    mfa
}

/// Who acts when Ada sets up her factors: Ada, by id.
fn by(user: &str) -> EventMetadata {
    EventMetadata {
        actor: Actor {
            kind: ActorKind::User,
            id: user.to_owned(),
            name: None,
        },
        correlation_id: "e2e-mfa".into(),
        causation_id: None,
        source_ip: None,
        user_agent: None,
    }
}

/// The person sets up an authenticator app, and a passkey named `passkey` if given, on a second
/// node (server stopped), as the hosted pages will on the server.
async fn set_up_factors(app: &mut TestServer, tenant: &str, user: &str, passkey: Option<&str>) {
    app.stop().await;
    let (commands, log) = offline_commands(app).await;
    let (tenant_id, user_id) = (
        Uuid::parse_str(tenant).unwrap(),
        Uuid::parse_str(user).unwrap(),
    );
    let enrollment = commands
        .begin_totp_enrollment(by(user), tenant_id, user_id)
        .await
        .unwrap();
    // A code at a step boundary may land on either side: the window accepts one step each way.
    commands
        .confirm_totp_enrollment(
            by(user),
            tenant_id,
            user_id,
            &code_now(&enrollment.secret_base32),
        )
        .await
        .unwrap();
    if let Some(name) = passkey {
        let mut key = SoftAuthenticator::default();
        let challenge = commands
            .start_passkey_registration(tenant_id, user_id, name)
            .await
            .unwrap();
        let response = key.create(&challenge.options, &app.base);
        commands
            .finish_passkey_registration(
                by(user),
                tenant_id,
                user_id,
                &challenge.ceremony_id,
                response,
            )
            .await
            .unwrap();
    }
    log.close().await;
    app.start().await;
}

async fn a_reset_removes_the_app_the_recovery_codes_and_the_passkeys(store: Store) {
    let mut app = app(store).await;
    let acme = tenant(&app, "mfa-reset").await;
    let ada = user(&app, &acme, "ada@example.com", "Ada Lovelace").await;
    let none = mfa(&app, &acme, &ada).await;
    assert_eq!(
        none,
        json!({"user_id": ada, "has_second_factor": false, "totp": "none",
            "totp_enrolled_at": null, "recovery_codes_left": 0, "passkeys": []})
    );
    // Ada sets up an authenticator app and a passkey (on a second node: the pages come later).
    set_up_factors(&mut app, &acme, &ada, Some("Ada's laptop")).await;

    let set_up = mfa(&app, &acme, &ada).await;
    assert_eq!(set_up["has_second_factor"], true, "{set_up}");
    assert_eq!(set_up["totp"], "enrolled");
    assert!(set_up["totp_enrolled_at"].is_string());
    assert_eq!(set_up["recovery_codes_left"], 10);
    let passkeys = set_up["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0]["name"], "Ada's laptop");
    assert_eq!(passkeys[0]["user_verified"], true);
    assert!(passkeys[0]["last_used_at"].is_null());

    let path = format!("/v1/tenants/{acme}/users/{ada}/reset-mfa");
    let (status, reset) = app.send(app.admin(Method::POST, &path)).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(
        reset["removed"],
        json!({"totp": true, "recovery_codes": 10, "passkeys": 1})
    );
    assert_eq!(reset["mfa"], none);
    assert_eq!(mfa(&app, &acme, &ada).await, none);
    // Resetting again removes nothing.
    let (status, again) = app.send(app.admin(Method::POST, &path)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["removed"],
        json!({"totp": false, "recovery_codes": 0, "passkeys": 0})
    );
    // The audit trail names Ada by id, and the reset by the administrator's key.
    let (status, audit) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/audit?tenant_id={acme}&action=mfa.reset"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["target_id"], ada);
    assert_eq!(items[0]["target_type"], "user");
    assert!(!audit.to_string().contains("Ada"), "{audit}");
    assert!(app.check_read_models().0);
}
on_both_stores!(a_reset_removes_the_app_the_recovery_codes_and_the_passkeys);

async fn a_reset_ends_the_persons_sessions_and_a_reset_of_nothing_ends_none(store: Store) {
    let mut app = app(store).await;
    let acme = tenant(&app, "mfa-sessions").await;
    let ada = person(&app, &acme, "ada@example.com", STRONG, false).await;
    set_up_factors(&mut app, &acme, &ada, None).await;
    let (here, there) = (
        Browser::with_agent(&app, "here/1"),
        Browser::with_agent(&app, "there/1"),
    );
    here.signed_in("mfa-sessions", "ada@example.com", STRONG)
        .await;
    there
        .signed_in("mfa-sessions", "ada@example.com", STRONG)
        .await;

    let path = format!("/v1/tenants/{acme}/users/{ada}/reset-mfa");
    let (status, reset) = app
        .send(
            app.admin(Method::POST, &path)
                .header("X-Correlation-ID", "reset-ada"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(reset["sessions_ended"], 2, "{reset}");
    assert_eq!(reset["removed"]["totp"], true);
    assert!(!here.is_signed_in("mfa-sessions").await);
    assert!(!there.is_signed_in("mfa-sessions").await);
    let (status, sessions) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{acme}/users/{ada}/sessions"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{sessions}");
    assert_eq!(sessions["items"], json!([]));
    // The ends are an administrator's revocations, recorded with the reset by the same request.
    let ended = audit(&app, &ada, "session.ended").await;
    let ends: Vec<(&str, &str)> = ended
        .iter()
        .map(|e| {
            (
                e["metadata"]["reason"].as_str().unwrap(),
                e["correlation_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ends, [("revoked", "reset-ada"), ("revoked", "reset-ada")]);

    // With nothing left to reset, a reset changes nothing and leaves a new session alone.
    here.signed_in("mfa-sessions", "ada@example.com", STRONG)
        .await;
    let (status, again) = app.send(app.admin(Method::POST, &path)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["sessions_ended"], 0);
    assert!(here.is_signed_in("mfa-sessions").await);
}
on_both_stores!(a_reset_ends_the_persons_sessions_and_a_reset_of_nothing_ends_none);

async fn the_webauthn_policy_is_the_default_until_an_administrator_sets_one(store: Store) {
    let app = app(store).await;
    let acme = tenant(&app, "webauthn").await;
    let path = format!("/v1/tenants/{acme}/webauthn-policy");
    let (status, default) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        default,
        json!({"enabled": true, "attestation_preference": "none",
            "user_verification": "required", "resident_key": "required", "updated_at": null})
    );
    // Seed 001's request, by the tenant's own administrator.
    let key = app
        .create_api_key(
            &acme,
            json!({"name": "acme admin", "scopes": ["tenant:admin"]}),
        )
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let seed = json!({"enabled": true, "attestation_preference": "direct",
        "user_verification": "required", "resident_key": "preferred"});
    let (status, put) = app
        .send(app.request(Method::PUT, &path, Some(&key)).json(&seed))
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["attestation_preference"], "direct");
    assert_eq!(put["resident_key"], "preferred");
    assert!(put["updated_at"].is_string());
    let (_, read) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(read, put);
    for (field, value) in [
        ("attestation_preference", "enterprise"),
        ("user_verification", "always"),
        ("resident_key", "Required"),
    ] {
        let mut wrong = seed.clone();
        wrong[field] = value.into();
        let (status, error) = app.send(app.admin(Method::PUT, &path).json(&wrong)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["field"], field, "{error}");
    }
    let mut partial = seed.clone();
    partial.as_object_mut().unwrap().remove("enabled");
    let (status, _) = app.send(app.admin(Method::PUT, &path).json(&partial)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Turning passkeys off is recorded like any change, and reads back.
    let off = json!({"enabled": false, "attestation_preference": "none",
        "user_verification": "preferred", "resident_key": "discouraged"});
    let (status, put) = app.send(app.admin(Method::PUT, &path).json(&off)).await;
    assert_eq!(
        (status, put["enabled"].clone()),
        (StatusCode::OK, json!(false))
    );
    assert_eq!(
        app.send(app.admin(Method::GET, &path)).await.1["user_verification"],
        "preferred"
    );
}
on_both_stores!(the_webauthn_policy_is_the_default_until_an_administrator_sets_one);

async fn every_mfa_route_is_not_found_from_another_tenant(store: Store) {
    let app = app(store).await;
    let a = tenant(&app, "mfa-probe-a").await;
    let b = tenant(&app, "mfa-probe-b").await;
    let ada = user(&app, &a, "ada@example.com", "Ada Lovelace").await;
    let b_key = app
        .create_api_key(&b, json!({"name": "b admin", "scopes": ["tenant:admin"]}))
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = json!({"enabled": false, "attestation_preference": "none",
        "user_verification": "required", "resident_key": "required"});
    let routes = |tenant: &str, user: &str| {
        vec![
            (
                Method::GET,
                format!("/v1/tenants/{tenant}/users/{user}/mfa"),
                Value::Null,
            ),
            (
                Method::POST,
                format!("/v1/tenants/{tenant}/users/{user}/reset-mfa"),
                Value::Null,
            ),
            (
                Method::GET,
                format!("/v1/tenants/{tenant}/webauthn-policy"),
                Value::Null,
            ),
            (
                Method::PUT,
                format!("/v1/tenants/{tenant}/webauthn-policy"),
                policy.clone(),
            ),
        ]
    };
    // B's administrator probing A's tenant, A's user reached through B's path, and users who
    // do not exist.
    let stranger = Uuid::from_u128(7).to_string();
    let probes = routes(&a, &ada)
        .into_iter()
        .map(|route| (Some(b_key.as_str()), route))
        .chain(
            routes(&b, &ada)
                .into_iter()
                .take(2)
                .map(|route| (None, route)),
        )
        .chain(
            routes(&a, &stranger)
                .into_iter()
                .take(2)
                .map(|route| (None, route)),
        );
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
    // Nothing changed: A's policy is still the default.
    let (_, read) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{a}/webauthn-policy")))
        .await;
    assert_eq!(
        (read["enabled"].clone(), read["updated_at"].clone()),
        (json!(true), Value::Null)
    );
}
on_both_stores!(every_mfa_route_is_not_found_from_another_tenant);

#[tokio::test]
async fn the_openapi_document_describes_the_mfa_routes() {
    let app = spawn_app(Store::Embedded).await;
    let (status, doc) = app
        .send(app.request(Method::GET, "/openapi.json", None))
        .await;
    assert_eq!(status, StatusCode::OK);
    for (path, methods) in [
        ("/v1/tenants/{id}/users/{user_id}/mfa", &["get"][..]),
        ("/v1/tenants/{id}/users/{user_id}/reset-mfa", &["post"]),
        ("/v1/tenants/{id}/webauthn-policy", &["get", "put"]),
    ] {
        for method in methods {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing from OpenAPI"
            );
        }
    }
    for schema in [
        "Mfa",
        "Passkey",
        "MfaResetResponse",
        "WebauthnPolicy",
        "WebauthnPolicyRequest",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} missing from OpenAPI"
        );
    }
}
