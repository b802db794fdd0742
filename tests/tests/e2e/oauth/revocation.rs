//! Revocation (RFC 7009): 200 for anything once the caller authenticated, never cached, and only
//! the caller's own tokens are revoked.

use oauth2::TokenIntrospectionResponse;

use super::cases::Endpoint::Revocation;
use super::cases::{Creds, INVALID_REQUEST, OK, check_cases};
use super::{access_token, basic, fixture, introspect, machine_client};

#[tokio::test]
async fn revocation_answers_200_for_anything_and_revokes_only_the_callers_tokens() {
    let f = fixture("revocation").await;
    let t = &f.t;
    let machine = Creds::basic(&f.machine);
    let jwt = access_token(&basic(t, &f.machine)).await;
    let other = machine_client(&f.app, t, "other", &[]).await;
    let others_jwt = access_token(&basic(t, &other)).await;

    let cases = [
        // RFC 7009 §2.2: an invalid token is no error; there is simply nothing to revoke.
        Revocation.case("garbage", machine, &[("token", "garbage")], OK),
        Revocation.case("three dots", machine, &[("token", "a.b.c")], OK),
        Revocation.case(
            "another client's token",
            machine,
            &[("token", &others_jwt)],
            OK,
        ),
        Revocation.case("the caller's token", machine, &[("token", &jwt)], OK),
        Revocation.case("the same token again", machine, &[("token", &jwt)], OK),
        // RFC 7009 §2.1: `token` is REQUIRED.
        Revocation.case("no token", machine, &[], INVALID_REQUEST),
        Revocation.case("empty token", machine, &[("token", "")], INVALID_REQUEST),
    ];
    check_cases(t, &cases).await;

    let observer = basic(t, &f.machine);
    assert!(!introspect(&observer, &jwt).await.active());
    assert!(
        introspect(&observer, &others_jwt).await.active(),
        "a client cannot revoke another client's token"
    );
}
