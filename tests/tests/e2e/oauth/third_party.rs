//! Third-party clients: the whole story of a machine client told through the `oauth2` crate
//! (register, discover, get a JWT, verify it, introspect it, revoke it, find it on the log), on
//! both stores; and how that crate reads each OAuth error we answer.

use jsonwebtoken::Algorithm;
use oauth2::basic::BasicErrorResponseType::{
    InvalidClient, InvalidGrant, InvalidScope, UnauthorizedClient,
};
use oauth2::basic::BasicTokenType;
use oauth2::{AuthType, AuthorizationCode, RedirectUrl, TokenIntrospectionResponse, TokenResponse};
use serde_json::json;
use tessera_event_schemas::Event;

use super::{
    Tenant, WEB_REDIRECT_URI, access_token, assert_claims, basic, discover, fixture, granted, http,
    introspect, introspected_scopes, jwks, oauth_client, oauth_error, register_client, revoke,
    scope_set, token, try_introspect, try_token, verify_jwt,
};
use crate::helpers::{Store, read_log, spawn_app};
use crate::on_both_stores;

async fn a_machine_gets_a_jwt_that_verifies_introspects_and_revokes(store: Store) {
    let mut app = spawn_app(store).await;

    // 1. A tenant.
    let created = app.create_tenant("acme").await;
    let tenant_id = created["id"].as_str().unwrap().to_owned();

    // 2. A confidential client.
    let reg = register_client(
        &app,
        &tenant_id,
        json!({
            "name": "billing-sync",
            "allowed_scopes": ["invoices:read", "invoices:write"],
            "access_token_ttl_secs": 900,
        }),
    )
    .await;
    assert!(
        !reg.secret.is_empty(),
        "a confidential client gets a secret"
    );
    let c = &reg.client;
    assert_eq!(c["tenant_id"], tenant_id.as_str());
    assert_eq!(c["name"], "billing-sync");
    assert_eq!(c["client_type"], "confidential");
    assert_eq!(c["grant_types"], json!(["client_credentials"]));
    assert_eq!(c["redirect_uris"], json!([]));
    assert_eq!(
        c["allowed_scopes"],
        json!(["invoices:read", "invoices:write"])
    );
    assert_eq!(c["access_token_ttl_secs"], 900);
    assert_eq!(c["active"], true);
    for field in ["created_by", "created_at", "updated_at"] {
        assert!(c[field].is_string(), "{field}: {c}");
    }
    assert!(c.get("client_secret").is_none() && !c.to_string().contains(&reg.secret));

    // 3. Discovery.
    let issuer = app.issuer("acme");
    let t = Tenant {
        id: tenant_id.clone(),
        issuer: issuer.clone(),
        discovery: discover(&app, "acme").await,
    };
    let d = &t.discovery;
    assert_eq!(d.issuer, issuer);
    assert_eq!(d.token_endpoint, format!("{issuer}/oauth/token"));
    assert_eq!(d.jwks_uri, format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(
        d.introspection_endpoint,
        format!("{issuer}/oauth/introspect")
    );
    assert_eq!(d.revocation_endpoint, format!("{issuer}/oauth/revoke"));

    // 4. Client credentials, client_secret_basic.
    let client = basic(&t, &reg);
    let response = token(&client, &[]).await;
    assert_eq!(*response.token_type(), BasicTokenType::Bearer);
    assert_eq!(response.expires_in().map(|d| d.as_secs()), Some(900));
    assert_eq!(
        granted(&response),
        scope_set(["invoices:read", "invoices:write"]),
        "no scope asked: every allowed scope"
    );
    let jwt = response.access_token().secret().clone();

    // 5. The JWT verifies against the JWKS.
    let (set, _, _) = jwks(&t).await;
    let (header, claims) = verify_jwt(&jwt, &set, &t, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), created["active_kid"].as_str());
    assert_claims(
        &claims,
        &t,
        &reg.client_id,
        &["invoices:read", "invoices:write"],
        900,
    );
    let jti = claims["jti"].as_str().unwrap().to_owned();

    // 6. Introspection says what the token says.
    let info = introspect(&client, &jwt).await;
    assert!(info.active());
    assert_eq!(
        introspected_scopes(&info),
        scope_set(["invoices:read", "invoices:write"])
    );
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(reg.client_id.as_str())
    );
    assert_eq!(info.sub(), Some(reg.client_id.as_str()));
    assert_eq!(info.iss(), Some(issuer.as_str()));
    assert_eq!(info.aud().cloned(), Some(vec![issuer.clone()]));
    assert_eq!(info.jti(), Some(jti.as_str()));
    assert_eq!(info.token_type(), Some(&BasicTokenType::Bearer));
    assert_eq!(
        info.exp().map(|e| e.timestamp()),
        claims["exp"].as_i64(),
        "introspected exp"
    );
    assert_eq!(info.iat().map(|e| e.timestamp()), claims["iat"].as_i64());
    assert_eq!(
        info.extra_fields().tenant_id.as_deref(),
        Some(tenant_id.as_str())
    );

    // 7. Revocation takes effect at once: no waiting, no retry.
    revoke(&client, &jwt).await.unwrap();
    let info = introspect(&client, &jwt).await;
    assert!(!info.active(), "revoked: {info:?}");
    assert!(
        info.scopes().is_none() && info.client_id().is_none() && info.sub().is_none(),
        "an inactive token reveals nothing: {info:?}"
    );
    // Revoking again, or revoking garbage, is still a 200 (RFC 7009 §2.2).
    revoke(&client, &jwt).await.unwrap();
    revoke(&client, "not-a-token").await.unwrap();

    // 8. Both are on the log, on the client's token stream.
    app.stop().await;
    let events = read_log(&app).await;
    let stream = format!("{tenant_id}/tokens/{}", reg.client_id);
    let on_stream: Vec<_> = events
        .iter()
        .filter(|e| e.envelope.stream_id == stream)
        .collect();
    let issued: Vec<_> = on_stream
        .iter()
        .filter_map(|e| {
            let event = e.decode().unwrap();
            let facts = event.issued_token(&e.envelope)?;
            (facts.jti.to_string() == jti).then(|| (e.envelope.clone(), event, facts))
        })
        .collect();
    assert_eq!(
        issued.len(),
        1,
        "one token.issued for jti {jti} on {stream}"
    );
    let (envelope, event, payload) = &issued[0];
    assert_eq!(envelope.event_type, "token.issued");
    assert_eq!(envelope.schema_version, 2);
    assert_eq!(envelope.tenant_id.to_string(), tenant_id);
    assert_eq!(payload.client_id, reg.client_id);
    assert_eq!(payload.grant_type, "client_credentials");
    assert_eq!(Some(payload.kid.as_str()), header.kid.as_deref());
    assert_eq!(
        scope_set(&payload.scopes),
        scope_set(["invoices:read", "invoices:write"])
    );
    assert!(
        !serde_json::to_string(&event.data_json())
            .unwrap()
            .contains(&jwt),
        "the token itself is not on the log"
    );
    let revoked = on_stream
        .iter()
        .filter(|e| e.envelope.event_type == "token.revoked")
        .filter(
            |e| matches!(e.decode().unwrap(), Event::TokenRevoked(p) if p.jti.to_string() == jti),
        )
        .count();
    assert!(revoked >= 1, "token.revoked for jti {jti} on {stream}");
}
on_both_stores!(a_machine_gets_a_jwt_that_verifies_introspects_and_revokes);

#[tokio::test]
async fn the_oauth2_crate_reads_each_error_as_its_typed_error() {
    let f = fixture("typed-errors").await;
    let (t, machine) = (&f.t, &f.machine);
    let id = machine.client_id.as_str();
    let cases = [
        (
            "unknown client, basic",
            oauth_client(t, "no-such-client", "secret", AuthType::BasicAuth),
            &[][..],
            InvalidClient,
        ),
        (
            "wrong secret, post",
            oauth_client(t, id, "wrong-secret", AuthType::RequestBody),
            &[],
            InvalidClient,
        ),
        (
            "grant not registered",
            basic(t, &f.web),
            &[],
            UnauthorizedClient,
        ),
        (
            "scope not allowed",
            basic(t, machine),
            &["write"],
            InvalidScope,
        ),
    ];
    for (name, client, scopes, expected) in cases {
        let error = oauth_error(try_token(&client, scopes).await);
        assert_eq!(error, expected, "{name}");
    }

    // invalid_grant: no authorization code is valid yet.
    let exchange = basic(t, &f.web)
        .set_redirect_uri(RedirectUrl::new(WEB_REDIRECT_URI.to_owned()).unwrap())
        .exchange_code(AuthorizationCode::new("whatever".to_owned()))
        .request_async(&http())
        .await;
    assert_eq!(oauth_error(exchange), InvalidGrant, "made-up code");

    let jwt = access_token(&basic(t, machine)).await;
    let wrong_caller = oauth_client(t, id, "wrong-secret", AuthType::BasicAuth);
    let error = oauth_error(try_introspect(&wrong_caller, &jwt).await);
    assert_eq!(error, InvalidClient, "introspection, wrong secret");
}
