//! Userinfo: claims follow the token's scopes; RFC 6750 errors with `WWW-Authenticate`.

use reqwest::StatusCode;

use super::*;
use crate::on_both_stores;

/// GETs userinfo with `authorization` as the header: status, `WWW-Authenticate`, body.
async fn userinfo(p: &People, authorization: Option<&str>) -> (StatusCode, Option<String>, Value) {
    let mut request = p.app.client.get(p.endpoint("userinfo"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    (status, challenge, response.json().await.unwrap())
}

async fn userinfo_answers_the_claims_the_scopes_allow(store: Store) {
    let mut p = people(store, "userinfo").await;
    let (_, codes) = sign_in_and_issue_codes(&mut p, &["openid", "email"], 2).await;
    let (_, tokens) = p.exchange(&codes[0]).await;
    let access_token = tokens["access_token"].as_str().unwrap();

    let (status, _, info) = userinfo(&p, Some(&format!("Bearer {access_token}"))).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(
        info,
        json!({"sub": p.user.to_string(), "email": EMAIL, "email_verified": false}),
        "no profile claims without the profile scope"
    );
    // POST with the token as a form field (RFC 6750 §2.2).
    let response = p
        .app
        .client
        .post(p.endpoint("userinfo"))
        .form(&[("access_token", access_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-store"
    );
    assert_eq!(response.json::<Value>().await.unwrap(), info);
}
on_both_stores!(userinfo_answers_the_claims_the_scopes_allow);

#[tokio::test]
async fn userinfo_refuses_as_rfc_6750_says() {
    let mut p = people(Store::Embedded, "userinfo-errors").await;
    let (_, codes) = sign_in_and_issue_codes(&mut p, &["profile"], 1).await;
    let (_, without_openid) = p.exchange(&codes[0]).await;

    let (status, challenge, _) = userinfo(&p, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"tessera\""));

    let (status, challenge, body) = userinfo(&p, Some("Bearer not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    assert_eq!(body["error"], "invalid_token");

    // A client's own token is not a person's.
    let (_, machine, _) = p
        .post_form(
            "token",
            Some((&p.rs.0, &p.rs.1)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let machine = machine["access_token"].as_str().unwrap();
    let (status, _, body) = userinfo(&p, Some(&format!("Bearer {machine}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let token = without_openid["access_token"].as_str().unwrap();
    let (status, challenge, body) = userinfo(&p, Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(challenge.unwrap().contains("error=\"insufficient_scope\""));

    // The token in the header and the body at once.
    let response = p
        .app
        .client
        .post(p.endpoint("userinfo"))
        .header("authorization", format!("Bearer {token}"))
        .form(&[("access_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
