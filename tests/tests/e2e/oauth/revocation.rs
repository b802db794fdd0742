//! Revocation (RFC 7009): 200 for anything once the caller authenticated, never cached.

use oauth2::TokenIntrospectionResponse;

use super::cases::Endpoint::Revocation;
use super::cases::{Creds, OK, check_cases};
use super::{access_token, basic, fixture, introspect};

#[tokio::test]
async fn revocation_answers_200_for_anything_without_caching() {
    let f = fixture("revocation").await;
    let t = &f.t;
    let machine = Creds::basic(&f.machine);
    let jwt = access_token(&basic(t, &f.machine)).await;

    let cases = [
        // RFC 7009 §2.2: an invalid token is no error; there is simply nothing to revoke.
        Revocation.case("garbage", machine, &[("token", "garbage")], OK),
        Revocation.case("three dots", machine, &[("token", "a.b.c")], OK),
        Revocation.case("the caller's token", machine, &[("token", &jwt)], OK),
        Revocation.case("the same token again", machine, &[("token", &jwt)], OK),
    ];
    check_cases(t, &cases).await;

    assert!(!introspect(&basic(t, &f.machine), &jwt).await.active());
}
