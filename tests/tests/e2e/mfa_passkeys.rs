//! Passkeys on the hosted pages, as `/assets/passkeys.js` drives them (played here by
//! `test-support`'s software authenticator): "Add a passkey" on the account page, "Sign in with
//! a passkey" without typing an address, the script served under the pages' policy, and a
//! passkey or a ceremony of one tenant useless in another.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_test_support::webauthn::SoftAuthenticator;

use crate::helpers::{Store, TestServer};
use crate::http_browser::{Browser, STRONG, people_app, person, tenant_with};
use crate::on_both_stores;

/// Posts `body` as JSON, as the script does, with the browser's cookies.
async fn post_json(browser: &Browser, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = browser
        .client
        .post(format!("{}{path}", browser.base))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Registers a passkey named `name` from the account page of `slug`.
async fn add_passkey(
    app: &TestServer,
    browser: &Browser,
    key: &mut SoftAuthenticator,
    slug: &str,
    name: &str,
) {
    let (status, started) = post_json(
        browser,
        &format!("/t/{slug}/account/passkeys/options"),
        &json!({"name": name}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let credential = key.create(&started["options"], &app.base);
    let (status, done) = post_json(
        browser,
        &format!("/t/{slug}/account/passkeys"),
        &json!({"ceremony_id": started["ceremony_id"], "credential": credential}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["location"], format!("/t/{slug}/account?done=passkey"));
}

/// Signs in with the newest passkey of `key` at `slug`: the answer to the finish.
async fn passkey_sign_in(
    app: &TestServer,
    browser: &Browser,
    key: &mut SoftAuthenticator,
    slug: &str,
) -> (StatusCode, Value) {
    let (status, started) = post_json(
        browser,
        &format!("/t/{slug}/login/passkey/options"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let credential = key.get(&started["options"], &app.base);
    post_json(
        browser,
        &format!("/t/{slug}/login/passkey"),
        &json!({"ceremony_id": started["ceremony_id"], "credential": credential,
            "return_to": format!("/t/{slug}/account")}),
    )
    .await
}

async fn a_person_adds_a_passkey_and_signs_in_with_it_without_an_address(store: Store) {
    let app = people_app(store).await;
    let acme = tenant_with(&app, "passkeys", |_| {}).await;
    tenant_with(&app, "passkeys-other", |_| {}).await;
    person(&app, &acme, "ada@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    browser
        .signed_in("passkeys", "ada@example.com", STRONG)
        .await;
    let page = browser.get("/t/passkeys/account").await;
    assert!(page.body.contains(">Add a passkey</button>"));
    assert!(page.body.contains(">Passkey name</label>"));
    assert!(
        page.body
            .contains("<script src=\"/assets/passkeys.js\" defer></script>")
    );
    assert!(!page.body.contains("<script>"), "no inline script");
    let script = browser.get("/assets/passkeys.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.body.contains("navigator.credentials.create"));

    let mut key = SoftAuthenticator::default();
    add_passkey(&app, &browser, &mut key, "passkeys", "Ada's key").await;
    let page = browser.get("/t/passkeys/account?done=passkey").await;
    assert!(page.body.contains("Your passkey was added."));
    assert!(
        page.body.contains("<td>Ada&#x27;s key</td>")
            || page.body.contains("<td>Ada&#39;s key</td>"),
        "{}",
        page.body
    );
    // The form only takes JSON.
    let form = browser
        .post_form("/t/passkeys/account/passkeys/options", &[("name", "x")])
        .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Signing in: no address typed, a session at once.
    let login = Browser::with_agent(&app, "later/1");
    let shown = login.get("/t/passkeys/login").await;
    assert!(shown.body.contains(">Sign in with a passkey</button>"));
    let (status, signed) = passkey_sign_in(&app, &login, &mut key, "passkeys").await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert_eq!(signed["location"], "/t/passkeys/account");
    assert!(
        signed["amr"].as_array().unwrap().contains(&json!("mfa")),
        "{signed}"
    );
    assert!(login.is_signed_in("passkeys").await);
    // A password sign-in now asks for the second factor, and the page offers the passkey.
    let password = Browser::with_agent(&app, "password/1");
    let answer = password
        .sign_in("passkeys", "ada@example.com", STRONG)
        .await;
    assert_eq!(answer.location(), "/t/passkeys/login/mfa");
    let step = password.get("/t/passkeys/login/mfa").await;
    assert!(
        step.body.contains(">Sign in with a passkey</button>"),
        "{}",
        step.body
    );
    let (status, _) = passkey_sign_in(&app, &password, &mut key, "passkeys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(password.is_signed_in("passkeys").await);

    // Another tenant: its ceremony does not take this tenant's passkey, nor this tenant's
    // ceremony.
    let elsewhere = Browser::with_agent(&app, "elsewhere/1");
    let (status, refused) = passkey_sign_in(&app, &elsewhere, &mut key, "passkeys-other").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["error"], "passkey_refused");
    let (_, started) = post_json(&elsewhere, "/t/passkeys/login/passkey/options", &json!({})).await;
    let credential = key.get(&started["options"], &app.base);
    let (status, _) = post_json(
        &elsewhere,
        "/t/passkeys-other/login/passkey",
        &json!({"ceremony_id": started["ceremony_id"], "credential": credential}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!elsewhere.is_signed_in("passkeys-other").await);
    assert!(app.check_read_models().0);
}
on_both_stores!(a_person_adds_a_passkey_and_signs_in_with_it_without_an_address);

/// A passkey that does not verify the person (no PIN or biometric, allowed by a relaxed
/// WebAuthn policy) is one factor: it signs in until the tenant requires two, then is refused.
async fn a_passkey_without_user_verification_is_refused_where_two_factors_are_required(
    store: Store,
) {
    let app = people_app(store).await;
    let acme = tenant_with(&app, "presence", |_| {}).await;
    let policy = format!("/v1/tenants/{acme}/webauthn-policy");
    let (status, body) = app
        .send(
            app.admin(Method::PUT, &policy)
                .json(&json!({"enabled": true,
            "attestation_preference": "none", "user_verification": "discouraged",
            "resident_key": "required"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    person(&app, &acme, "ada@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    browser
        .signed_in("presence", "ada@example.com", STRONG)
        .await;
    let mut key = SoftAuthenticator {
        user_verification: false,
        ..SoftAuthenticator::default()
    };
    add_passkey(&app, &browser, &mut key, "presence", "Touch only").await;

    let before = Browser::with_agent(&app, "before/1");
    let (status, signed) = passkey_sign_in(&app, &before, &mut key, "presence").await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert!(
        !signed["amr"].as_array().unwrap().contains(&json!("mfa")),
        "{signed}"
    );

    let settings = format!("/v1/tenants/{acme}/settings");
    let (_, mut current) = app.send(app.admin(Method::GET, &settings)).await;
    current["require_mfa"] = json!(true);
    let (status, body) = app
        .send(app.admin(Method::PUT, &settings).json(&current))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = Browser::with_agent(&app, "after/1");
    let (status, refused) = passkey_sign_in(&app, &after, &mut key, "presence").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["error"], "multi_factor_required");
    assert!(!after.is_signed_in("presence").await);
}

on_both_stores!(a_passkey_without_user_verification_is_refused_where_two_factors_are_required);

/// Wrong passwords lock the password path only: someone who knows an address cannot lock its
/// owner out of a passkey sign-in.
async fn a_locked_account_still_signs_in_with_its_passkey(store: Store) {
    let app = people_app(store).await;
    let acme = tenant_with(&app, "locked", |s| {
        s["lockout_policy"] = json!({
            "max_attempts": 3,
            "lockout_duration_minutes": 15,
            "reset_after_minutes": 10,
        });
    })
    .await;
    person(&app, &acme, "ada@example.com", STRONG, false).await;
    let owner = Browser::new(&app);
    owner.signed_in("locked", "ada@example.com", STRONG).await;
    let mut key = SoftAuthenticator::default();
    add_passkey(&app, &owner, &mut key, "locked", "Ada's key").await;

    let attacker = Browser::with_agent(&app, "attacker/1");
    for _ in 0..3 {
        let failed = attacker
            .sign_in_json("locked", "ada@example.com", "not her password")
            .await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    }
    let locked = attacker
        .sign_in_json("locked", "ada@example.com", STRONG)
        .await;
    assert_eq!(
        locked.status,
        StatusCode::UNAUTHORIZED,
        "the password path is locked"
    );

    let later = Browser::with_agent(&app, "owner/2");
    let (status, signed) = passkey_sign_in(&app, &later, &mut key, "locked").await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert!(later.is_signed_in("locked").await);
}

on_both_stores!(a_locked_account_still_signs_in_with_its_passkey);
