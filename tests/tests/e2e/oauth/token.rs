//! The token endpoint: its success response, every RFC 6749 §5.2 error it answers for a client
//! that authenticated (client authentication itself is in [`super::client_auth`]), and which
//! scopes it grants.

use jsonwebtoken::Algorithm;
use oauth2::TokenResponse;
use oauth2::basic::BasicErrorResponseType;

use super::cases::Endpoint::Token;
use super::cases::{
    CC, Creds, INVALID_GRANT, INVALID_REQUEST, INVALID_SCOPE, OK, UNAUTHORIZED_CLIENT,
    UNSUPPORTED_GRANT_TYPE, check_cases, raw_token,
};
use super::{
    WEB_REDIRECT_URI, basic, claim_scopes, fixture, granted, introspect, introspected_scopes, jwks,
    machine_client, oauth_error, scope_set, tenant, token, try_token, verify_jwt,
};
use crate::helpers::{Store, spawn_app};

#[tokio::test]
async fn every_token_endpoint_error_is_an_rfc6749_error_and_nothing_is_cached() {
    let f = fixture("errors").await;
    let (t, machine, web) = (&f.t, Creds::basic(&f.machine), Creds::basic(&f.web));

    // Success responses are not cached either.
    let ok = raw_token(t, machine, &[CC]).await;
    OK.assert(&ok, "token success");
    assert_eq!(ok.body["token_type"], "Bearer");
    assert_eq!(ok.body["expires_in"], 3600);
    assert_eq!(ok.body["scope"], "read");

    let cases = [
        Token.case("no grant_type", machine, &[], INVALID_REQUEST),
        // RFC 6749 §3.2: request parameters MUST NOT be included more than once.
        Token.case("repeated grant_type", machine, &[CC, CC], INVALID_REQUEST),
        Token.case(
            "password grant",
            machine,
            &[
                ("grant_type", "password"),
                ("username", "u"),
                ("password", "p"),
            ],
            UNSUPPORTED_GRANT_TYPE,
        ),
        Token.case(
            "made-up grant",
            machine,
            &[
                ("grant_type", "urn:example:made-up"),
                ("username", "u"),
                ("password", "p"),
            ],
            UNSUPPORTED_GRANT_TYPE,
        ),
        // A client not registered for client_credentials.
        Token.case("grant not registered", web, &[CC], UNAUTHORIZED_CLIENT),
        // A code this server never issued.
        Token.case(
            "made-up code",
            web,
            &[
                ("grant_type", "authorization_code"),
                ("code", "whatever"),
                ("redirect_uri", WEB_REDIRECT_URI),
            ],
            INVALID_GRANT,
        ),
        // RFC 6749 §4.1.3: `code` is REQUIRED.
        Token.case(
            "authorization_code without a code",
            web,
            &[("grant_type", "authorization_code")],
            INVALID_REQUEST,
        ),
        Token.case(
            "scope not allowed",
            machine,
            &[CC, ("scope", "write")],
            INVALID_SCOPE,
        ),
        Token.case(
            "scope escalation",
            machine,
            &[CC, ("scope", "read write")],
            INVALID_SCOPE,
        ),
        // RFC 6749 §3.3: a scope token is made of NQCHAR, which excludes `"`.
        Token.case(
            "malformed scope",
            machine,
            &[CC, ("scope", "re\"ad")],
            INVALID_SCOPE,
        ),
        // A client that gets nothing wrong still gets a token after all of the above.
        Token.case("a good request", machine, &[CC, ("scope", "read")], OK),
    ];
    check_cases(t, &cases).await;
}

#[tokio::test]
async fn scopes_are_granted_within_the_allowed_set_only() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "scopes", None).await;
    let reg = machine_client(&app, &t, "scoped", &["a:read", "a:write", "b:read"]).await;
    let client = basic(&t, &reg);
    let (set, _, _) = jwks(&t).await;

    let subset = token(&client, &["a:read", "b:read"]).await;
    assert_eq!(granted(&subset), scope_set(["a:read", "b:read"]));
    let (_, claims) = verify_jwt(subset.access_token().secret(), &set, &t, Algorithm::ES256);
    assert_eq!(claim_scopes(&claims), scope_set(["a:read", "b:read"]));
    let info = introspect(&client, subset.access_token().secret()).await;
    assert_eq!(introspected_scopes(&info), scope_set(["a:read", "b:read"]));

    let one = token(&client, &["a:write"]).await;
    let (_, claims) = verify_jwt(one.access_token().secret(), &set, &t, Algorithm::ES256);
    assert_eq!(claims["scope"], "a:write");

    for asked in [
        &["a:read", "admin"][..],
        &["admin"][..],
        &["a:read:extra"][..],
    ] {
        assert_eq!(
            oauth_error(try_token(&client, asked).await),
            BasicErrorResponseType::InvalidScope,
            "{asked:?}"
        );
    }
    let escalation = Token.case(
        "escalation",
        Creds::basic(&reg),
        &[CC, ("scope", "a:read admin")],
        INVALID_SCOPE,
    );
    check_cases(&t, &[escalation]).await;

    let all = token(&client, &[]).await;
    assert_eq!(granted(&all), scope_set(["a:read", "a:write", "b:read"]));
    let (_, claims) = verify_jwt(all.access_token().secret(), &set, &t, Algorithm::ES256);
    assert_eq!(
        claim_scopes(&claims),
        scope_set(["a:read", "a:write", "b:read"])
    );
}
