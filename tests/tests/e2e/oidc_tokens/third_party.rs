//! A certified relying-party library, the `openidconnect` crate, signs a person in against a
//! tenant unchanged: authorization code with PKCE (the person signing in and allowing the
//! client on the hosted pages, driven by a cookie-keeping client), ID token validation (its
//! signature with the tenant's JWKS, issuer, audience, nonce, `at_hash`), userinfo, refresh,
//! and the refresh token refused once revoked.

use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreResponseType,
};
use openidconnect::{
    AccessTokenHash, AuthType, AuthUrl, AuthenticationFlow, AuthorizationCode, ClientId, CsrfToken,
    EmptyAdditionalClaims, IssuerUrl, JsonWebKeySetUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, TokenUrl, UserInfoClaims, UserInfoUrl,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::Store;
use crate::http_browser::Browser;
use crate::oidc::{EMAIL, REDIRECT, callback, decide, param, register, rp};
use crate::on_both_stores;

async fn the_openidconnect_crate_signs_a_person_in_and_keeps_them_signed_in(store: Store) {
    let mut rp = rp(store, "oidc-crate").await;
    rp.client_id = register(&rp.app, &rp.tenant_id, json!({"client_type": "public"})).await;
    let issuer = rp.app.issuer(&rp.slug);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let jwks = CoreJsonWebKeySet::fetch_async(
        &JsonWebKeySetUrl::new(format!("{issuer}/.well-known/jwks.json")).unwrap(),
        &http,
    )
    .await
    .unwrap();
    let client = CoreClient::new(
        ClientId::new(rp.client_id.clone()),
        IssuerUrl::new(issuer.clone()).unwrap(),
        jwks,
    )
    .set_auth_type(AuthType::RequestBody)
    .set_auth_uri(AuthUrl::new(format!("{issuer}/oauth/authorize")).unwrap())
    .set_token_uri(TokenUrl::new(format!("{issuer}/oauth/token")).unwrap())
    .set_user_info_url(UserInfoUrl::new(format!("{issuer}/oauth/userinfo")).unwrap())
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());

    // The authorization request, as the library makes it.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let path = &url.as_str()[rp.app.base.len()..];

    // The person signs in and allows the client on the hosted pages.
    let browser = Browser::new(&rp.app);
    let to_login = browser.get(path).await;
    let back = rp.sign_in_at(&browser, &to_login).await;
    let consent = browser.get(back.location()).await;
    let (to, pairs) = callback(&decide(&browser, &consent, "allow").await);
    assert_eq!(to, REDIRECT);
    assert_eq!(param(&pairs, "state"), Some(state.secret().as_str()));
    let code = param(&pairs, "code").unwrap().to_owned();

    // The library exchanges the code and validates the ID token.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    let verifier = client.id_token_verifier().set_allowed_algs([
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EdDsa,
    ]);
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), rp.user_id);
    assert_eq!(claims.email().map(|email| email.as_str()), Some(EMAIL));
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));

    // Userinfo, for the subject the ID token named.
    let info: UserInfoClaims<EmptyAdditionalClaims, CoreGenderClaim> = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.email().map(|email| email.as_str()), Some(EMAIL));

    // Refresh, then revoke the family: the library's next refresh is refused.
    let refresh_token = tokens.refresh_token().unwrap();
    let refreshed = client
        .exchange_refresh_token(refresh_token)
        .request_async(&http)
        .await
        .unwrap();
    let current = refreshed.refresh_token().unwrap();
    assert_ne!(current.secret(), refresh_token.secret());
    let refreshed_id = refreshed.id_token().unwrap();
    let refreshed_claims = refreshed_id
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(refreshed_claims.subject(), claims.subject());
    let revoked = http
        .post(format!("{issuer}/oauth/revoke"))
        .form(&[
            ("token", current.secret().as_str()),
            ("client_id", rp.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let refused = client
        .exchange_refresh_token(current)
        .request_async(&http)
        .await;
    assert!(refused.is_err(), "a revoked refresh token was honoured");
}
on_both_stores!(the_openidconnect_crate_signs_a_person_in_and_keeps_them_signed_in);
