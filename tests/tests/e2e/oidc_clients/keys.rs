//! The RS256 key every tenant keeps beside its default ES256 key: made with the tenant,
//! published in the JWKS after the default key, rotated on its own (`{"alg": "RS256"}`), and
//! retired like any other, while access tokens keep being signed by the default key.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::tenant_id;
use crate::helpers::{Store, TestServer, spawn_app};
use crate::on_both_stores;

/// The kids and algorithms of the tenant's JWKS, in order.
async fn jwks(app: &TestServer, slug: &str) -> Vec<(String, String)> {
    let url = format!("{}/.well-known/jwks.json", app.issuer(slug));
    let (status, set) = app.send(app.client.get(url)).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["alg"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The admin API's keys of the tenant: (kid, alg, status), oldest first.
async fn keys(app: &TestServer, tenant: &str) -> Vec<(String, String, String)> {
    let (status, keys) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant}/keys")))
        .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let text = |f: &str| k[f].as_str().unwrap().to_owned();
            (text("kid"), text("alg"), text("status"))
        })
        .collect()
}

fn of<'k>(keys: &'k [(String, String, String)], alg: &str, status: &str) -> Vec<&'k str> {
    keys.iter()
        .filter(|(_, a, s)| a == alg && s == status)
        .map(|(kid, _, _)| kid.as_str())
        .collect()
}

async fn admin_post(app: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    app.send(app.admin(Method::POST, path).json(&body)).await
}

async fn every_tenant_keeps_an_rs256_key_rotated_and_retired_on_its_own(store: Store) {
    let app = spawn_app(store).await;
    let tenant = tenant_id(&app, "rsa-ring").await;

    let ring = keys(&app, &tenant).await;
    let es256 = of(&ring, "ES256", "active");
    let rs256 = of(&ring, "RS256", "active");
    assert_eq!(
        (es256.len(), rs256.len(), ring.len()),
        (1, 1, 2),
        "{ring:?}"
    );
    let (es256, rs256) = (es256[0].to_owned(), rs256[0].to_owned());
    let (_, view) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant}")))
        .await;
    assert_eq!(
        view["active_kid"],
        es256.as_str(),
        "ES256 stays the default"
    );
    assert_eq!(
        jwks(&app, "rsa-ring").await,
        vec![
            (es256.clone(), "ES256".to_owned()),
            (rs256.clone(), "RS256".to_owned())
        ],
        "the default key leads the JWKS"
    );

    // Rotating RS256 replaces only the RS256 key.
    let rotate = format!("/v1/tenants/{tenant}/keys/rotate");
    let (status, body) = admin_post(&app, &rotate, json!({"alg": "RS256"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ring = keys(&app, &tenant).await;
    assert_eq!(of(&ring, "ES256", "active"), vec![es256.as_str()]);
    assert_eq!(of(&ring, "RS256", "published"), vec![rs256.as_str()]);
    let new_rs256 = of(&ring, "RS256", "active")[0].to_owned();
    assert_ne!(new_rs256, rs256);
    let (_, view) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant}")))
        .await;
    assert_eq!(view["active_kid"], es256.as_str());
    let published = jwks(&app, "rsa-ring").await;
    assert_eq!(published.len(), 3, "{published:?}");
    assert_eq!(published[0].0, es256);

    // The active RS256 key cannot be retired; the replaced one can, and leaves the JWKS.
    let (status, body) = admin_post(
        &app,
        &format!("/v1/tenants/{tenant}/keys/{new_rs256}/retire"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = admin_post(
        &app,
        &format!("/v1/tenants/{tenant}/keys/{rs256}/retire"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let kids: Vec<String> = jwks(&app, "rsa-ring")
        .await
        .into_iter()
        .map(|(kid, _)| kid)
        .collect();
    assert_eq!(kids, vec![es256.clone(), new_rs256.clone()]);

    // Rotating without an algorithm rotates the default key, as before.
    let (status, body) = admin_post(&app, &rotate, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ring = keys(&app, &tenant).await;
    assert_eq!(of(&ring, "ES256", "published"), vec![es256.as_str()]);
    assert_eq!(of(&ring, "RS256", "active"), vec![new_rs256.as_str()]);
}
on_both_stores!(every_tenant_keeps_an_rs256_key_rotated_and_retired_on_its_own);

#[tokio::test]
async fn access_tokens_stay_signed_by_the_default_key_after_an_rs256_rotation() {
    let app = spawn_app(Store::Embedded).await;
    let (tenant, client_id, secret) = app.tenant_and_client("at-default").await;
    let token = || async {
        let url = format!("{}/oauth/token", app.issuer("at-default"));
        let (status, body) = app
            .send(
                app.client
                    .post(url)
                    .basic_auth(&client_id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let jwt = body["access_token"].as_str().unwrap().to_owned();
        jsonwebtoken::decode_header(&jwt).unwrap()
    };
    assert_eq!(token().await.alg, jsonwebtoken::Algorithm::ES256);
    let (status, body) = admin_post(
        &app,
        &format!("/v1/tenants/{tenant}/keys/rotate"),
        json!({"alg": "RS256"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(token().await.alg, jsonwebtoken::Algorithm::ES256);
}

#[tokio::test]
async fn a_tenant_whose_default_is_rs256_gets_no_second_rs256_key() {
    let app = spawn_app(Store::Embedded).await;
    let created = app
        .create_tenant_with(json!({"slug": "rsa-only", "name": "RSA", "signing_alg": "RS256"}))
        .await;
    let ring = keys(&app, created["id"].as_str().unwrap()).await;
    assert_eq!(ring.len(), 1, "{ring:?}");
    assert_eq!(ring[0].1, "RS256");
}

/// A tenant as a log written before every tenant kept an RS256 key has it (its creation
/// alone, without `tenant.signing_key_added`) gets one when the server starts, once, however
/// often it restarts.
async fn a_tenant_created_before_rs256_keys_gets_one_at_start(store: Store) {
    use tessera_event_log::{ExpectedVersion, StreamWrite};
    use tessera_event_schemas::{Event, ProposedEvent, streams};
    use uuid::Uuid;

    let mut app = spawn_app(store).await;
    let template = tenant_id(&app, "template").await;
    app.stop().await;
    let (_, log) = crate::helpers::offline_commands(&app).await;
    let template = streams::tenant(Uuid::parse_str(&template).unwrap());
    let first = log.read_stream(template.as_str(), 0, 1).await.unwrap();
    let Ok(Event::TenantCreated(mut created)) = first[0].decode() else {
        panic!("no tenant.created");
    };
    let old = Uuid::from_u128(0x01d_7e4a47);
    created.tenant_id = old;
    created.slug = "old-tenant".into();
    let default_kid = created.signing_key.kid.clone();
    let event = Event::TenantCreated(created);
    log.append(vec![StreamWrite {
        stream_id: streams::tenant(old).to_string(),
        expected: ExpectedVersion::NoStream,
        events: vec![ProposedEvent::new(
            &event,
            Uuid::from_u128(0x01d_e7e47),
            old,
            first[0].envelope.recorded_at,
            tessera_event_schemas::EventMetadata::system("e2e-old-tenant".to_owned()),
        )],
    }])
    .await
    .unwrap();
    log.close().await;

    app.start().await;
    let ring = keys(&app, &old.to_string()).await;
    assert_eq!(of(&ring, "RS256", "active").len(), 1, "{ring:?}");
    assert_eq!(of(&ring, "ES256", "active"), vec![default_kid.as_str()]);
    let published = jwks(&app, "old-tenant").await;
    assert_eq!(published.len(), 2, "{published:?}");
    assert_eq!(published[0].0, default_kid, "the default key still leads");

    // A second start adds nothing to the tenant's stream.
    let before = tenant_version(&app, old).await;
    assert_eq!(before, 2, "its creation and the key added at start");
    app.restart().await;
    assert_eq!(tenant_version(&app, old).await, before);
    assert_eq!(keys(&app, &old.to_string()).await.len(), 2);
}
on_both_stores!(a_tenant_created_before_rs256_keys_gets_one_at_start);

/// The version of the tenant's stream, as its read model has it.
async fn tenant_version(app: &TestServer, tenant: uuid::Uuid) -> Value {
    let path = format!("/v1/tenants/{tenant}");
    app.send(app.admin(Method::GET, &path)).await.1["version"].clone()
}
