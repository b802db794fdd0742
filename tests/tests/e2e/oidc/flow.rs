//! The main flow: authorize → sign in → consent → code, and what consent remembers.

use reqwest::StatusCode;

use super::{
    CHALLENGE, EMAIL, LOOPBACK, REDIRECT, REDIRECT_WITH_QUERY, callback, decide, issued_codes,
    param, rp,
};
use crate::helpers::Store;
use crate::http_browser::Browser;
use crate::on_both_stores;

async fn a_person_signs_in_allows_the_client_and_comes_back_with_a_code(store: Store) {
    let mut rp = rp(store, "photos").await;
    let browser = Browser::new(&rp.app);
    let first = browser.get(&rp.authorize(&[])).await;
    let back = rp.sign_in_at(&browser, &first).await;

    let page = browser.get(back.location()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Photo Album"), "{}", page.body);
    assert!(page.body.contains("See your email address"));
    assert!(page.body.contains("Sign you in with your account"));
    assert!(!page.body.contains("See your name"));
    assert!(
        !page.body.contains("<script"),
        "the consent page needs no script"
    );
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers["cache-control"], "no-store");
    // The form may lead to the client's redirect URI, and only there besides this server.
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("form-action 'self' https://photos.example;")
    );

    let answer = decide(&browser, &page, "allow").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "a form answers 303");
    let (to, pairs) = callback(&answer);
    assert_eq!(to, REDIRECT);
    assert_eq!(param(&pairs, "state"), Some("st4te/with spaces&more"));
    assert_eq!(param(&pairs, "iss"), Some(rp.app.issuer("photos").as_str()));
    let code = param(&pairs, "code").unwrap().to_owned();
    assert!(code.len() >= 64, "a 128-bit id and 256 random bits: {code}");
    assert_eq!(answer.headers["cache-control"], "no-store");

    // The consent is remembered: the next request gets its code at once.
    let again = browser.get(&rp.authorize(&[("state", "second")])).await;
    let (to, pairs) = callback(&again);
    assert_eq!(to, REDIRECT);
    assert_eq!(param(&pairs, "state"), Some("second"));
    assert_ne!(param(&pairs, "code"), Some(code.as_str()));

    let listed = rp.consents().await;
    assert_eq!(listed[0]["client_id"], rp.client_id.as_str(), "{listed}");
    assert_eq!(listed[0]["client_name"], "Photo Album");
    assert_eq!(listed[0]["scopes"], serde_json::json!(["openid", "email"]));
    assert!(listed[0]["granted_at"].as_str().unwrap().ends_with('Z'));

    // On the log: the codes, bound to the client, the redirect URI, the challenge, the nonce
    // and the session, and only as a hash.
    let codes = issued_codes(&mut rp.app).await;
    assert_eq!(codes.len(), 2);
    let issued = &codes[0];
    assert_eq!(issued.client_id, rp.client_id);
    assert_eq!(issued.user_id.to_string(), rp.user_id);
    assert_eq!(issued.redirect_uri, REDIRECT);
    assert_eq!(issued.scopes, vec!["openid", "email"]);
    assert_eq!(issued.code_challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(issued.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(issued.amr, vec!["pwd"]);
    assert_eq!(issued.acr, "1");
    assert_eq!(
        codes[1].session_id, issued.session_id,
        "one session, two codes"
    );
    let lifetime = issued.expires_at.as_micros() - issued.auth_time.as_micros();
    assert!(
        (60_000_000..120_000_000).contains(&lifetime),
        "valid 60 seconds from its issue: {lifetime}"
    );
    assert!(
        !format!("{issued:?}").contains(&code),
        "only a hash is kept"
    );
}
on_both_stores!(a_person_signs_in_allows_the_client_and_comes_back_with_a_code);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_scopes_are_asked_for_and_only_the_new_ones() {
    let rp = rp(Store::Embedded, "photos").await;
    let browser = rp.signed_in_browser().await;
    let page = browser.get(&rp.authorize(&[])).await;
    callback(&decide(&browser, &page, "allow").await);

    let page = browser
        .get(&rp.authorize(&[("scope", "openid email profile")]))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let asked = &page.body[page.body.find("id=\"asked-scopes\"").unwrap()..];
    let asked = &asked[..asked.find("</ul>").unwrap()];
    assert!(asked.contains("See your name"), "{asked}");
    assert!(!asked.contains("See your email address"), "{asked}");
    let allowed = &page.body[page.body.find("id=\"allowed-scopes\"").unwrap()..];
    assert!(allowed.contains("See your email address"));

    let (_, pairs) = callback(&decide(&browser, &page, "allow").await);
    assert!(param(&pairs, "code").is_some());
    let listed = rp.consents().await;
    assert_eq!(
        listed[0]["scopes"],
        serde_json::json!(["openid", "email", "profile"])
    );

    // prompt=consent asks for everything again, though all of it is allowed.
    let page = browser.get(&rp.authorize(&[("prompt", "consent")])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("See your email address"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denying_sends_access_denied_and_records_nothing() {
    let mut rp = rp(Store::Embedded, "photos").await;
    let browser = rp.signed_in_browser().await;
    let page = browser.get(&rp.authorize(&[])).await;
    let answer = decide(&browser, &page, "deny").await;
    let (to, pairs) = callback(&answer);
    assert_eq!(to, REDIRECT);
    assert_eq!(param(&pairs, "error"), Some("access_denied"));
    assert_eq!(param(&pairs, "state"), Some("st4te/with spaces&more"));
    assert_eq!(param(&pairs, "iss"), Some(rp.app.issuer("photos").as_str()));
    assert!(param(&pairs, "code").is_none());
    assert_eq!(rp.consents().await, serde_json::json!([]));

    // A consent form without its CSRF token changes nothing either.
    let page = browser.get(&rp.authorize(&[])).await;
    let forged: Vec<(String, String)> = super::hidden_fields(&page.body)
        .into_iter()
        .filter(|(name, _)| name != "csrf_token")
        .chain([("decision".to_owned(), "allow".to_owned())])
        .collect();
    let forged: Vec<(&str, &str)> = forged
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let refused = browser
        .post_form("/t/photos/oauth/authorize/consent", &forged)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(rp.consents().await, serde_json::json!([]));
    assert!(issued_codes(&mut rp.app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redirect_uris_own_query_and_a_loopback_port_are_kept() {
    let rp = rp(Store::Embedded, "photos").await;
    let browser = rp.signed_in_browser().await;
    let page = browser
        .get(&rp.authorize(&[("redirect_uri", REDIRECT_WITH_QUERY)]))
        .await;
    let (to, pairs) = callback(&decide(&browser, &page, "allow").await);
    assert_eq!(to, REDIRECT);
    assert_eq!(param(&pairs, "flow"), Some("oidc"));
    assert!(param(&pairs, "code").is_some());

    let native = LOOPBACK.replace("127.0.0.1", "127.0.0.1:53117");
    let answer = browser
        .get(&rp.authorize(&[("redirect_uri", &native)]))
        .await;
    let (to, pairs) = callback(&answer);
    assert_eq!(to, native);
    assert!(param(&pairs, "code").is_some(), "consent remembered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_request_works_like_a_get_and_login_hint_fills_the_email() {
    let rp = rp(Store::Embedded, "photos").await;
    let browser = Browser::new(&rp.app);
    let url = rp.authorize(&[("login_hint", EMAIL)]);
    let (path, query) = url.split_once('?').unwrap();
    let fields: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = browser.post_form(path, &fields).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let login = browser.get(answer.location()).await;
    assert_eq!(login.input_value("email"), EMAIL);
    let back = rp.sign_in_at(&browser, &answer).await;
    let page = browser.get(back.location()).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the consent page: {}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_request_survives_the_sign_in_continuation() {
    let rp = rp(Store::Embedded, "photos").await;
    let long_uri = format!("https://photos.example/cb?session={}", "a%2F".repeat(480));
    let client = super::register(
        &rp.app,
        &rp.tenant_id,
        serde_json::json!({"redirect_uris": [long_uri]}),
    )
    .await;
    let state = "s/&".repeat(333);
    let nonce = "n".repeat(1000);
    let browser = Browser::new(&rp.app);
    let first = browser
        .get(&rp.authorize(&[
            ("client_id", &client),
            ("redirect_uri", &long_uri),
            ("state", &state),
            ("nonce", &nonce),
        ]))
        .await;
    let back = rp.sign_in_at(&browser, &first).await;
    let page = browser.get(back.location()).await;
    let (to, pairs) = callback(&decide(&browser, &page, "allow").await);
    assert_eq!(to, "https://photos.example/cb");
    assert_eq!(param(&pairs, "state"), Some(state.as_str()));
    assert!(param(&pairs, "code").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_with_a_second_factor_continues_to_the_client_with_acr_2() {
    let mut rp = rp(Store::Embedded, "photos").await;
    let factors = crate::mfa::set_up_factors(&mut rp.app, &rp.tenant_id, &rp.user_id, None).await;
    let mut phone = crate::http_browser::AuthenticatorApp::new(&factors.secret);
    let browser = Browser::new(&rp.app);
    let first = browser.get(&rp.authorize(&[])).await;
    let login = browser.get(first.location()).await;
    let return_to = super::hidden_fields(&login.body)
        .into_iter()
        .find(|(name, _)| name == "return_to")
        .unwrap()
        .1;
    let password = browser
        .post_form(
            "/t/photos/login",
            &[
                ("email", EMAIL),
                ("password", crate::http_browser::STRONG),
                ("return_to", &return_to),
                ("csrf_token", &login.csrf()),
            ],
        )
        .await;
    assert_eq!(password.location(), "/t/photos/login/mfa");
    let step = browser.get("/t/photos/login/mfa").await;
    assert!(
        step.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("form-action 'self' https://photos.example;"),
        "the second step's form may lead to the client"
    );
    let code = phone.next_code(&rp.app).await;
    let verified = browser
        .post_form(
            "/t/photos/login/mfa",
            &[("code", &code), ("csrf_token", &step.csrf())],
        )
        .await;
    assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
    assert!(
        verified
            .location()
            .starts_with("/t/photos/oauth/authorize?")
    );
    let page = browser.get(verified.location()).await;
    let (_, pairs) = callback(&decide(&browser, &page, "allow").await);
    assert!(param(&pairs, "code").is_some());

    let codes = issued_codes(&mut rp.app).await;
    assert_eq!(codes[0].acr, "2");
    assert!(
        codes[0].amr.contains(&"mfa".to_owned()),
        "{:?}",
        codes[0].amr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_party_client_gets_its_code_without_a_consent_page() {
    let mut rp = rp(Store::Embedded, "photos").await;
    let first_party = super::register(
        &rp.app,
        &rp.tenant_id,
        serde_json::json!({"name": "Staff Portal", "require_consent": false}),
    )
    .await;
    let browser = rp.signed_in_browser().await;
    let answer = browser
        .get(&rp.authorize(&[("client_id", &first_party), ("prompt", "none")]))
        .await;
    let (to, pairs) = callback(&answer);
    assert_eq!(to, REDIRECT);
    assert!(param(&pairs, "code").is_some(), "{pairs:?}");
    assert_eq!(
        rp.consents().await,
        serde_json::json!([]),
        "nothing to remember"
    );
    assert_eq!(issued_codes(&mut rp.app).await.len(), 1);
}
