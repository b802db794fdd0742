//! Client authentication (RFC 6749 §2.3): client_secret_basic and client_secret_post work, and
//! every way of getting them wrong is answered alike by the token, introspection and revocation
//! endpoints, which share it.

use jsonwebtoken::Algorithm;
use oauth2::{TokenIntrospectionResponse, TokenResponse};
use serde_json::json;

use super::cases::Endpoint::{self, Token};
use super::cases::{CC, Creds, INVALID_CLIENT, INVALID_REQUEST, OK, check_cases};
use super::{
    access_token, assert_claims, basic, fixture, introspect, jwks, machine_client, post,
    register_client, revoke, tenant, token, verify_jwt,
};
use crate::helpers::{Store, spawn_app};

#[tokio::test]
async fn client_secret_post_works_and_both_methods_at_once_is_invalid_request() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "post-auth", None).await;
    let reg = machine_client(&app, &t, "poster", &["reports:read"]).await;

    let client = post(&t, &reg);
    let response = token(&client, &["reports:read"]).await;
    let jwt = response.access_token().secret().clone();
    let (set, _, _) = jwks(&t).await;
    let (_, claims) = verify_jwt(&jwt, &set, &t, Algorithm::ES256);
    assert_claims(&claims, &t, &reg.client_id, &["reports:read"], 3600);

    // Introspection and revocation accept client_secret_post too.
    assert!(introspect(&client, &jwt).await.active());
    revoke(&client, &jwt).await.unwrap();
    assert!(!introspect(&client, &jwt).await.active());

    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    let both = Creds::Both(&reg.client_id, &reg.secret);
    check_cases(
        &t,
        &[Token.case("basic and post", both, &[CC], INVALID_REQUEST)],
    )
    .await;
}

#[tokio::test]
async fn every_client_authentication_failure_is_answered_alike_by_every_endpoint() {
    let f = fixture("client-auth").await;
    let (t, machine, web) = (&f.t, &f.machine, &f.web);
    let public = register_client(
        &f.app,
        &t.id,
        json!({
            "name": "cli", "client_type": "public", "grant_types": ["authorization_code"],
            "redirect_uris": ["http://127.0.0.1:5000/cb"],
        }),
    )
    .await;
    let jwt = access_token(&basic(t, machine)).await;
    let bearer = format!("Bearer {jwt}");
    let id = machine.client_id.as_str();

    // Each row: credentials, form fields besides the endpoint's own, and the answer.
    let rows = [
        // RFC 6749 §5.2: "no client authentication included" is invalid_client.
        ("no credentials", Creds::None, None, INVALID_CLIENT),
        // RFC 6749 §2.3: one authentication method per request.
        (
            "basic and post",
            Creds::Both(id, &machine.secret),
            None,
            INVALID_REQUEST,
        ),
        (
            "unknown client, basic",
            Creds::Basic("no-such-client", "secret"),
            None,
            INVALID_CLIENT,
        ),
        (
            "unknown client, post",
            Creds::Post("no-such-client", "secret"),
            None,
            INVALID_CLIENT,
        ),
        (
            "wrong secret, basic",
            Creds::Basic(id, "wrong-secret"),
            None,
            INVALID_CLIENT,
        ),
        (
            "wrong secret, post",
            Creds::Post(id, "wrong-secret"),
            None,
            INVALID_CLIENT,
        ),
        (
            "another client's secret",
            Creds::Basic(id, &web.secret),
            None,
            INVALID_CLIENT,
        ),
        (
            "empty secret, basic",
            Creds::Basic(id, ""),
            None,
            INVALID_CLIENT,
        ),
        (
            "client_id without a secret",
            Creds::Post(id, ""),
            None,
            INVALID_CLIENT,
        ),
        (
            "Basic that is not base64",
            Creds::Header("Basic not-base64!"),
            None,
            INVALID_CLIENT,
        ),
        (
            "a Bearer token instead",
            Creds::Header(&bearer),
            None,
            INVALID_CLIENT,
        ),
        // A public client has no secret: it names itself only for people's grants (and
        // revocation, below), so it authenticates for nothing here.
        (
            "a public client",
            Creds::post(&public),
            None,
            INVALID_CLIENT,
        ),
        // The body's client_id must be the one Basic authenticated.
        (
            "basic, and another client_id in the body",
            Creds::basic(machine),
            Some(("client_id", web.client_id.as_str())),
            INVALID_REQUEST,
        ),
    ];
    let mut cases = Vec::new();
    for endpoint in Endpoint::ALL {
        let own = match endpoint {
            Endpoint::Token => CC,
            Endpoint::Introspection | Endpoint::Revocation => ("token", jwt.as_str()),
        };
        for (name, creds, extra, expect) in rows {
            // RFC 7009 §2.1 lets a public client revoke its own tokens by its client_id; this
            // token is another client's, so nothing is revoked (checked below).
            let expect = if name == "a public client" && endpoint == Endpoint::Revocation {
                OK
            } else {
                expect
            };
            let form: Vec<_> = [own].into_iter().chain(extra).collect();
            cases.push(endpoint.case(name, creds, &form, expect));
        }
    }
    check_cases(t, &cases).await;
    // A caller that failed to authenticate revoked nothing.
    assert!(introspect(&basic(t, machine), &jwt).await.active());

    // What does authenticate.
    let cases = [
        Token.case("basic", Creds::basic(machine), &[CC], OK),
        Token.case("post", Creds::post(machine), &[CC], OK),
        Token.case(
            "basic, and the same client_id in the body",
            Creds::basic(machine),
            &[CC, ("client_id", id)],
            OK,
        ),
    ];
    check_cases(t, &cases).await;
}
