//! A person's code at the token endpoint: tokens once, a second presentation revokes them.

use reqwest::StatusCode;

use super::*;
use crate::on_both_stores;

async fn a_persons_code_becomes_their_tokens_once(store: Store) {
    let mut p = people(store, "code-once").await;
    let scopes = ["openid", "profile", "email", "offline_access"];
    let (session, codes) = sign_in_and_issue_codes(&mut p, &scopes, 1).await;
    let code = &codes[0];

    let (status, body, cache) = p
        .post_form(
            "token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", &p.spa),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "openid profile email offline_access");
    let access_token = body["access_token"].as_str().unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap();
    assert!(refresh_token.starts_with("trt_"));

    // The ID token: signed with a key of the JWKS, for this client, about this person.
    let id = p.id_token_claims(body["id_token"].as_str().unwrap()).await;
    assert_eq!(id["sub"], p.user.to_string());
    assert_eq!(id["azp"], p.spa);
    assert_eq!(id["nonce"], "nonce-0");
    assert_eq!(id["sid"], session.to_string());
    assert_eq!(id["acr"], "1");
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["at_hash"], at_hash(access_token));
    assert_eq!(id["email"], EMAIL);
    assert_eq!(id["email_verified"], false);
    assert_eq!(id["name"], "Test Person");
    assert!(id["auth_time"].as_i64().unwrap() <= id["iat"].as_i64().unwrap());

    // The access token (RFC 9068): the person is its subject.
    let at = claims_of(access_token);
    assert_eq!(at["sub"], p.user.to_string());
    assert_eq!(at["client_id"], p.spa);
    assert_eq!(at["sid"], session.to_string());
    assert_eq!(at["acr"], "1");
    let introspected = p.introspect(access_token).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["sub"], p.user.to_string());
    assert_eq!(introspected["client_id"], p.spa);
    assert_eq!(introspected["sid"], session.to_string());
    assert_eq!(introspected["auth_time"], at["auth_time"]);

    // The same code again: refused, and what it gave is revoked.
    let (status, again) = p.exchange(code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant", "{again}");
    assert_eq!(p.introspect(access_token).await["active"], false);
    let (status, refused) = p.refresh(refresh_token, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "invalid_grant");
}
on_both_stores!(a_persons_code_becomes_their_tokens_once);

/// A refusal: its name, the form fields besides grant_type, code and client_id, the error.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

async fn a_code_is_refused_without_its_verifier_for_another_redirect_or_once_expired(store: Store) {
    let mut p = people(store, "code-refusals").await;
    let (_, codes) = sign_in_and_issue_codes(&mut p, &["openid"], 2).await;
    let spa = p.spa.clone();
    let cases: [Case; 5] = [
        (
            "no verifier from a public client",
            vec![("redirect_uri", REDIRECT_URI)],
            "invalid_request",
        ),
        (
            "a wrong verifier",
            vec![
                ("redirect_uri", REDIRECT_URI),
                (
                    "code_verifier",
                    "wrong-verifier-wrong-verifier-wrong-verifier",
                ),
            ],
            "invalid_grant",
        ),
        (
            "another redirect URI",
            vec![
                ("redirect_uri", "http://127.0.0.1:7777/other"),
                ("code_verifier", VERIFIER),
            ],
            "invalid_grant",
        ),
        (
            "a made-up code",
            vec![("redirect_uri", REDIRECT_URI), ("code_verifier", VERIFIER)],
            "invalid_grant",
        ),
        (
            "a confidential client's id without its secret",
            vec![("redirect_uri", REDIRECT_URI), ("code_verifier", VERIFIER)],
            "invalid_client",
        ),
    ];
    for (name, extra, error) in cases {
        let code = if name == "a made-up code" {
            "bm90IGEgY29kZQ"
        } else {
            codes[0].as_str()
        };
        let client = if name.starts_with("a confidential") {
            p.rs.0.as_str()
        } else {
            spa.as_str()
        };
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client),
        ];
        form.extend(extra);
        let (_, body, _) = p.post_form("token", None, &form).await;
        assert_eq!(body["error"], error, "{name}: {body}");
    }
    // None of those used the code up.
    let (status, body) = p.exchange(&codes[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A code is valid for 60 seconds.
    crate::http_browser::advance_clock(&p.app, 61).await;
    let (status, expired) = p.exchange(&codes[1]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(expired["error"], "invalid_grant");
    assert!(
        expired["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{expired}"
    );
}
on_both_stores!(a_code_is_refused_without_its_verifier_for_another_redirect_or_once_expired);

#[tokio::test]
async fn two_simultaneous_exchanges_of_one_code_give_one_token_response() {
    let mut p = people(Store::Embedded, "code-race").await;
    let (_, codes) = sign_in_and_issue_codes(&mut p, &["openid"], 1).await;
    let (a, b) = tokio::join!(p.exchange(&codes[0]), p.exchange(&codes[0]));
    let oks = [a.0, b.0]
        .iter()
        .filter(|status| **status == StatusCode::OK)
        .count();
    assert_eq!(oks, 1, "{a:?} {b:?}");
}
