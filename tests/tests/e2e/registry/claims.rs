//! The claims resolver's lookup order, and the tenant claims in machines' and people's tokens.

use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::helpers::{Store, spawn_app, spawn_app_with_env};
use crate::http_browser::advance_clock;
use crate::oidc_tokens::{claims_of, people, sign_in_and_issue_codes};
use crate::on_both_stores;

async fn the_resolver_tries_tenant_id_then_slug_then_the_user_attributes(store: Store) {
    let app = spawn_app(store).await;
    let a = app
        .create_tenant_with(json!({"slug": "tenant-a", "name": "A", "plan": "enterprise"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create_tenant("tenant-b").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    trial_product(&app, "crm").await;
    trial_product(&app, "erp").await;
    grant(&app, &a, "erp", json!({})).await;
    grant(&app, &a, "crm", json!({})).await;
    grant(&app, &b, "crm", json!({"enabled": false})).await;
    let unknown = Uuid::now_v7().to_string();
    let resolve = |path: &str, body| app.admin(Method::POST, path).json(&body);

    let cases = [
        (
            json!({"tenant_id": a, "tenant_slug": "tenant-b"}),
            "tenant-a",
        ),
        (
            json!({"tenant_id": unknown, "tenant_slug": "tenant-b"}),
            "tenant-b",
        ),
        (
            json!({"tenant_slug": "tenant-b", "user_attrs": {"tenant_id": a}}),
            "tenant-b",
        ),
        (
            json!({"tenant_slug": "nobody", "user_attrs": {"tenant_id": a, "tenant_slug": "tenant-b"}}),
            "tenant-a",
        ),
        (
            json!({"user_attrs": {"tenant_id": unknown, "tenant_slug": ["tenant-b"]}}),
            "tenant-b",
        ),
    ];
    for path in ["/v1/claims/resolve", "/v1/internal/keycloak/claims"] {
        for (body, expected) in &cases {
            let (status, claims) = app.send(resolve(path, body.clone())).await;
            assert_eq!(status, StatusCode::OK, "{path} {body}: {claims}");
            assert_eq!(claims["tenant_slug"], *expected, "{path} {body}");
        }
    }
    let (_, claims) = app
        .send(resolve("/v1/claims/resolve", json!({"tenant_id": a})))
        .await;
    assert_eq!(
        claims,
        json!({
            "tenant_id": a,
            "tenant_slug": "tenant-a",
            "org_roles": [],
            "products": ["crm", "erp"],
            "plan": "enterprise",
            "tenant_status": claims["tenant_status"],
        })
    );
    // A disabled entitlement is no product.
    let (_, claims) = app
        .send(resolve("/v1/claims/resolve", json!({"tenant_id": b})))
        .await;
    assert_eq!(claims["products"], json!([]));

    for (body, status) in [
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"tenant_id": "not-a-uuid"}), StatusCode::BAD_REQUEST),
        (
            json!({"tenant_id": unknown, "tenant_slug": "nobody"}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (got, error) = app
            .send(resolve("/v1/internal/keycloak/claims", body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {error}");
    }

    // A tenant's own key resolves its tenant only: another looks nonexistent, and the next
    // candidate is tried.
    let key_a = tenant_admin_key(&app, &a).await;
    let as_a = |body| {
        app.request(Method::POST, "/v1/claims/resolve", Some(&key_a))
            .json(&body)
    };
    let (status, _) = app.send(as_a(json!({"tenant_id": b}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, claims) = app
        .send(as_a(json!({"tenant_id": b, "tenant_slug": "tenant-a"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claims["tenant_id"], a);

    // A named user's roles become org_roles; an unknown user is 404.
    let (status, user) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{a}/users"))
                .json(
                    &json!({"email": "it@a.example", "name": "IT", "roles": ["it_admin", "user"]}),
                ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let (status, claims) = app
        .send(resolve(
            "/v1/claims/resolve",
            json!({"tenant_slug": "tenant-a", "user_attrs": {"user_id": user["id"]}}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{claims}");
    assert_eq!(claims["org_roles"], json!(["it_admin", "user"]));
    let (status, _) = app
        .send(resolve(
            "/v1/claims/resolve",
            json!({"tenant_id": a, "user_id": unknown}),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
on_both_stores!(the_resolver_tries_tenant_id_then_slug_then_the_user_attributes);

async fn machine_tokens_carry_the_tenant_claims_the_client_chose(store: Store) {
    let app = spawn_app(store).await;
    let (tenant, id, secret) = app.tenant_and_client("claims-cc").await;
    let client = (id.clone(), secret);
    trial_product(&app, "crm").await;
    grant(&app, &tenant, "crm", json!({})).await;

    let token = machine_token(&app, "claims-cc", &client).await;
    assert_eq!(token["tenant_id"], tenant);
    assert_eq!(token["tenant_slug"], "claims-cc");
    assert_eq!(token["plan"], "starter");
    assert_eq!(token["products"], json!(["crm"]));
    assert!(token["tenant_status"].is_string());
    assert!(token.get("org_roles").is_none(), "a machine has no roles");

    let path = format!("/v1/tenants/{tenant}/clients/{id}/token-claims");
    let (status, chosen) = app
        .send(
            app.admin(Method::PUT, &path)
                .json(&json!({"tenant_claims": ["products", "plan"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{chosen}");
    assert_eq!(chosen["tenant_claims"], json!(["plan", "products"]));
    let token = machine_token(&app, "claims-cc", &client).await;
    assert_eq!(token["products"], json!(["crm"]));
    assert_eq!(token["plan"], "starter");
    assert!(token.get("tenant_slug").is_none());
    assert!(token.get("tenant_status").is_none());
    assert_eq!(
        token["tenant_id"], tenant,
        "an access token keeps its tenant"
    );

    let (status, _) = app
        .send(
            app.admin(Method::PUT, &path)
                .json(&json!({"tenant_claims": "off"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = machine_token(&app, "claims-cc", &client).await;
    for claim in ["tenant_slug", "plan", "products", "tenant_status"] {
        assert!(token.get(claim).is_none(), "{claim} in {token}");
    }
    let (_, shown) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(shown["tenant_claims"], "off");

    for bad in [json!("some"), json!(["email"]), json!([])] {
        let (status, error) = app
            .send(
                app.admin(Method::PUT, &path)
                    .json(&json!({"tenant_claims": bad})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {error}");
        assert_eq!(error["field"], "tenant_claims");
    }
    let (status, _) = app
        .send(
            app.admin(
                Method::PUT,
                &format!("/v1/tenants/{tenant}/clients/nobody/token-claims"),
            )
            .json(&json!({"tenant_claims": "all"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
on_both_stores!(machine_tokens_carry_the_tenant_claims_the_client_chose);

async fn a_product_removed_between_two_token_requests_is_not_in_the_second(store: Store) {
    let app = spawn_app(store).await;
    let (tenant, id, secret) = app.tenant_and_client("removal").await;
    let client = (id, secret);
    trial_product(&app, "crm").await;
    trial_product(&app, "erp").await;
    grant(&app, &tenant, "crm", json!({})).await;
    grant(&app, &tenant, "erp", json!({})).await;
    assert_eq!(
        machine_token(&app, "removal", &client).await["products"],
        json!(["crm", "erp"])
    );

    let (status, _) = app.send(app.admin(Method::DELETE, "/v1/catalog/crm")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        machine_token(&app, "removal", &client).await["products"],
        json!(["erp"])
    );
    let (status, _) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{tenant}/entitlements/erp"),
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        machine_token(&app, "removal", &client).await["products"],
        json!([])
    );
}
on_both_stores!(a_product_removed_between_two_token_requests_is_not_in_the_second);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entitlement_past_its_expiry_leaves_tokens_before_the_sweep_records_it() {
    let app = spawn_app_with_env(
        Store::Embedded,
        &[("TESSERA_LIFECYCLE_INTERVAL_SECS", "3600")],
    )
    .await;
    let (tenant, id, secret) = app.tenant_and_client("past-expiry").await;
    let client = (id, secret);
    trial_product(&app, "crm").await;
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    grant(&app, &tenant, "crm", json!({"expires_at": in_an_hour})).await;
    assert_eq!(
        machine_token(&app, "past-expiry", &client).await["products"],
        json!(["crm"])
    );
    advance_clock(&app, 2 * 3600).await;
    assert_eq!(
        machine_token(&app, "past-expiry", &client).await["products"],
        json!([])
    );
    // The sweep has not run yet: the log still holds the entitlement in effect.
    assert_eq!(entitlements(&app, &tenant).await.len(), 1);
}

async fn peoples_tokens_carry_org_roles_and_id_tokens_the_tenant_claims(store: Store) {
    let mut p = people(store, "people-claims").await;
    let tenant = p.tenant.to_string();
    let (status, _) = p
        .app
        .send(
            p.app
                .admin(
                    Method::PATCH,
                    &format!("/v1/tenants/{tenant}/users/{}", p.user),
                )
                .json(&json!({"roles": ["it_admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    trial_product(&p.app, "crm").await;
    grant(&p.app, &tenant, "crm", json!({})).await;

    let (_, codes) =
        sign_in_and_issue_codes(&mut p, &["openid", "profile", "offline_access"], 1).await;
    let (status, tokens) = p.exchange(&codes[0]).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = claims_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["org_roles"], json!(["it_admin"]));
    assert_eq!(access["products"], json!(["crm"]));
    assert_eq!(access["tenant_slug"], "people-claims");
    let id = p
        .id_token_claims(tokens["id_token"].as_str().unwrap())
        .await;
    assert_eq!(id["tenant_id"], tenant);
    assert_eq!(id["tenant_slug"], "people-claims");
    assert_eq!(id["plan"], "starter");
    assert_eq!(id["products"], json!(["crm"]));
    assert_eq!(id["org_roles"], json!(["it_admin"]));
    assert!(id["tenant_status"].is_string());

    // The product leaves between two grants: the refreshed tokens do not have it.
    let (status, _) = p
        .app
        .send(p.app.admin(Method::DELETE, "/v1/catalog/crm"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, refreshed) = p
        .refresh(tokens["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let access = claims_of(refreshed["access_token"].as_str().unwrap());
    assert_eq!(access["products"], json!([]));
    assert_eq!(access["org_roles"], json!(["it_admin"]));

    // A client that turned the claims off gets tokens without them.
    let (status, _) = p
        .app
        .send(
            p.app
                .admin(
                    Method::PUT,
                    &format!("/v1/tenants/{tenant}/clients/{}/token-claims", p.spa),
                )
                .json(&json!({"tenant_claims": "off"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = p
        .refresh(refreshed["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let access = claims_of(again["access_token"].as_str().unwrap());
    assert!(access.get("org_roles").is_none(), "{access}");
    assert!(access.get("products").is_none(), "{access}");
    let id = p.id_token_claims(again["id_token"].as_str().unwrap()).await;
    assert!(id.get("tenant_id").is_none(), "{id}");
    assert!(id.get("plan").is_none(), "{id}");
}
on_both_stores!(peoples_tokens_carry_org_roles_and_id_tokens_the_tenant_claims);
