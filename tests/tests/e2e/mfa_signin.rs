//! Second factors at sign-in, on the hosted pages and in JSON: a code of the authenticator app
//! (computed by `test-support`'s independent TOTP) good once, a recovery code good once, too
//! many wrong codes sending the person back to their password, a forced password change handing
//! over to the code, a tenant's `require_mfa` sending a person without a factor to set one up
//! before any session, and the pending step of one tenant useless in another.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer};
use crate::http_browser::{
    AuthenticatorApp, Browser, OTHER_STRONG, STRONG, people_app, person, tenant_with,
};
use crate::mfa::set_up_factors;
use crate::on_both_stores;

/// What the code page says about any code that does not verify.
const CODE_FAILURE: &str = "The code is incorrect or was already used.";

async fn sessions_of(app: &TestServer, tenant: &str, user: &str) -> Vec<Value> {
    let (status, sessions) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{tenant}/users/{user}/sessions"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{sessions}");
    sessions["items"].as_array().unwrap().clone()
}

async fn a_person_with_an_authenticator_app_gives_a_code_after_the_password(store: Store) {
    let mut app = people_app(store).await;
    let acme = tenant_with(&app, "mfa-signin", |_| {}).await;
    let ada = person(&app, &acme, "ada@example.com", STRONG, false).await;
    let factors = set_up_factors(&mut app, &acme, &ada, None).await;
    let mut phone = AuthenticatorApp::new(&factors.secret);

    let browser = Browser::new(&app);
    let answer = browser
        .sign_in("mfa-signin", "ada@example.com", STRONG)
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/mfa-signin/login/mfa");
    // The password alone signs nobody in.
    assert!(!browser.is_signed_in("mfa-signin").await);
    assert!(sessions_of(&app, &acme, &ada).await.is_empty());
    let step = "/t/mfa-signin/login/mfa";
    let page = browser.get(step).await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        ">Authentication code</label>",
        ">Verify</button>",
        ">Recovery code</label>",
        ">Use a recovery code</button>",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    let wrong = browser
        .submit(step, step, &[("code", &phone.wrong_code())])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    assert_eq!(wrong.alert().as_deref(), Some(CODE_FAILURE));
    let code = phone.next_code(&app).await;
    let answer = browser.submit(step, step, &[("code", &code)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/mfa-signin/account");
    assert!(browser.is_signed_in("mfa-signin").await);
    let sessions = sessions_of(&app, &acme, &ada).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["amr"], json!(["pwd", "otp", "mfa"]));

    // The same code again, from another browser: replayed, refused like a wrong one.
    let other = Browser::with_agent(&app, "other/1");
    other.sign_in("mfa-signin", "ada@example.com", STRONG).await;
    let replayed = other.submit(step, step, &[("code", &code)]).await;
    assert_eq!(
        replayed.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        replayed.body
    );
    assert_eq!(replayed.alert().as_deref(), Some(CODE_FAILURE));
    assert!(!other.is_signed_in("mfa-signin").await);
    // A recovery code signs in, once.
    let recovery = factors.recovery_codes[0].as_str();
    let answer = other
        .submit(step, step, &[("recovery_code", recovery)])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert!(other.is_signed_in("mfa-signin").await);
    let third = Browser::with_agent(&app, "third/1");
    third.sign_in("mfa-signin", "ada@example.com", STRONG).await;
    let again = third
        .submit(step, step, &[("recovery_code", recovery)])
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.body);
    // Five wrong codes in all (the replayed recovery code was the first), and the password must
    // be given again.
    for _ in 0..3 {
        let wrong = third
            .submit(step, step, &[("code", &phone.wrong_code())])
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    }
    let last = third
        .submit(step, step, &[("code", &phone.wrong_code())])
        .await;
    assert_eq!(last.status, StatusCode::SEE_OTHER, "{}", last.body);
    assert_eq!(last.location(), "/t/mfa-signin/login");
    let shown = third.get(step).await;
    assert_eq!(shown.status, StatusCode::SEE_OTHER);
    assert_eq!(shown.location(), "/t/mfa-signin/login");
    assert_eq!(sessions_of(&app, &acme, &ada).await.len(), 2);
    assert!(app.check_read_models().0);
}
on_both_stores!(a_person_with_an_authenticator_app_gives_a_code_after_the_password);

async fn the_json_sign_in_asks_for_the_second_factor_with_a_pending_token(store: Store) {
    let mut app = people_app(store).await;
    let acme = tenant_with(&app, "mfa-json", |_| {}).await;
    let ada = person(&app, &acme, "ada@example.com", STRONG, false).await;
    let factors = set_up_factors(&mut app, &acme, &ada, None).await;
    let mut phone = AuthenticatorApp::new(&factors.secret);
    let script = Browser::new(&app);
    let answer = script
        .sign_in_json("mfa-json", "ada@example.com", STRONG)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["signed_in"], false, "{body}");
    assert_eq!(body["mfa_required"], true, "{body}");
    assert_eq!(body["next"], "second_factor");
    let token = body["pending_token"].as_str().unwrap().to_owned();
    // Without cookies (a script that keeps none), the token names the pending sign-in.
    let bare = reqwest::Client::new();
    let url = format!("{}/t/mfa-json/login/mfa", app.base);
    let wrong = bare
        .post(&url)
        .json(&json!({"pending_token": token, "code": phone.wrong_code()}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong: Value = wrong.json().await.unwrap();
    assert_eq!(wrong["error"], "invalid_code");
    assert_eq!(wrong["pending"], true);
    let signed = bare
        .post(&url)
        .json(&json!({"pending_token": token, "recovery_code": factors.recovery_codes[1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    assert!(signed.headers().get("set-cookie").is_some());
    let signed: Value = signed.json().await.unwrap();
    assert_eq!(signed["signed_in"], true, "{signed}");
    assert_eq!(signed["amr"], json!(["pwd", "otp", "mfa"]));
    // The step is done: the token names nothing any more.
    let done = bare
        .post(&url)
        .json(&json!({"pending_token": token, "code": phone.next_code(&app).await}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::UNAUTHORIZED);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["error"], "no_pending_sign_in");
}
on_both_stores!(the_json_sign_in_asks_for_the_second_factor_with_a_pending_token);

async fn a_forced_password_change_hands_over_to_the_second_factor(store: Store) {
    let mut app = people_app(store).await;
    let acme = tenant_with(&app, "mfa-change", |_| {}).await;
    let ada = person(&app, &acme, "ada@example.com", STRONG, true).await;
    let factors = set_up_factors(&mut app, &acme, &ada, None).await;
    let mut phone = AuthenticatorApp::new(&factors.secret);
    let browser = Browser::new(&app);
    let answer = browser
        .sign_in("mfa-change", "ada@example.com", STRONG)
        .await;
    assert_eq!(answer.location(), "/t/mfa-change/change-password");
    let change = "/t/mfa-change/change-password";
    let answer = browser
        .submit(change, change, &[("new_password", OTHER_STRONG)])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/mfa-change/login/mfa");
    assert!(!browser.is_signed_in("mfa-change").await);
    assert!(sessions_of(&app, &acme, &ada).await.is_empty());
    let step = "/t/mfa-change/login/mfa";
    let code = phone.next_code(&app).await;
    let answer = browser.submit(step, step, &[("code", &code)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert!(browser.is_signed_in("mfa-change").await);
}
on_both_stores!(a_forced_password_change_hands_over_to_the_second_factor);

async fn a_tenant_requiring_mfa_has_a_person_set_up_an_app_before_any_session(store: Store) {
    let app = people_app(store).await;
    let acme = tenant_with(&app, "mfa-required", |s| s["require_mfa"] = json!(true)).await;
    let ada = person(&app, &acme, "ada@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    let answer = browser
        .sign_in("mfa-required", "ada@example.com", STRONG)
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/mfa-required/login/enroll");
    assert!(!browser.is_signed_in("mfa-required").await);
    let enroll = "/t/mfa-required/login/enroll";
    let setup = browser.submit(enroll, enroll, &[("step", "begin")]).await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
    assert!(setup.body.contains("<svg"), "the QR code is inline SVG");
    assert!(setup.body.contains(">Turn on authenticator app</button>"));
    assert!(setup.body.contains(">Authentication code</label>"));
    let secret = setup.input_value("totp_secret");
    // A wrong code: a new secret to scan, still no session.
    let (wrong, token) = (AuthenticatorApp::new(&secret).wrong_code(), setup.csrf());
    let again = browser
        .post_form(
            enroll,
            &[
                ("step", "confirm"),
                ("code", &wrong),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.body);
    assert!(sessions_of(&app, &acme, &ada).await.is_empty());
    let secret = again.input_value("totp_secret");
    let code = AuthenticatorApp::new(&secret).code();
    let token = again.csrf();
    let done = browser
        .post_form(
            enroll,
            &[("step", "confirm"), ("code", &code), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body.matches("<li><code>").count(), 10, "{}", done.body);
    assert!(browser.is_signed_in("mfa-required").await);
    let sessions = sessions_of(&app, &acme, &ada).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["amr"], json!(["pwd", "otp", "mfa"]));
    // Next time, the app's code is asked for instead.
    let later = Browser::with_agent(&app, "later/1");
    let answer = later
        .sign_in("mfa-required", "ada@example.com", STRONG)
        .await;
    assert_eq!(answer.location(), "/t/mfa-required/login/mfa");
}
on_both_stores!(a_tenant_requiring_mfa_has_a_person_set_up_an_app_before_any_session);

async fn a_pending_second_step_is_useless_in_another_tenant(store: Store) {
    let mut app = people_app(store).await;
    let a = tenant_with(&app, "mfa-probe-one", |_| {}).await;
    tenant_with(&app, "mfa-probe-two", |s| s["require_mfa"] = json!(true)).await;
    let ada = person(&app, &a, "ada@example.com", STRONG, false).await;
    let factors = set_up_factors(&mut app, &a, &ada, None).await;
    let mut phone = AuthenticatorApp::new(&factors.secret);
    let browser = Browser::new(&app);
    browser
        .sign_in("mfa-probe-one", "ada@example.com", STRONG)
        .await;
    let name = "tessera-mfa-probe-one-pending";
    let value = browser.cookie(name).expect("a pending cookie");
    browser.plant_cookie("tessera-mfa-probe-two-pending", &value);
    for page in [
        "/t/mfa-probe-two/login/mfa",
        "/t/mfa-probe-two/login/enroll",
    ] {
        let shown = browser.get(page).await;
        assert_eq!(shown.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(shown.location(), "/t/mfa-probe-two/login", "{page}");
    }
    let token = browser.get("/t/mfa-probe-two/login").await.csrf();
    let code = phone.next_code(&app).await;
    let posted = browser
        .post_form(
            "/t/mfa-probe-two/login/mfa",
            &[("code", &code), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);
    assert_eq!(posted.location(), "/t/mfa-probe-two/login");
    let json = reqwest::Client::new()
        .post(format!("{}/t/mfa-probe-two/login/mfa", app.base))
        .json(&json!({"pending_token": value, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::UNAUTHORIZED);
    // An unknown tenant's step pages are not found.
    let missing = browser.get("/t/no-such-tenant/login/mfa").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // The code was not spent by the probes: it still signs in where it belongs.
    let step = "/t/mfa-probe-one/login/mfa";
    let answer = browser.submit(step, step, &[("code", &code)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/mfa-probe-one/account");
}
on_both_stores!(a_pending_second_step_is_useless_in_another_tenant);
