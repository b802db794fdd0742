//! The hosted pages' rules, over HTTP, on both backends: security headers on every page
//! (errors and redirects included), `return_to` that never leaves the tenant, forms refused
//! without their CSRF token (and nothing changed), and the password policy, history and
//! expiry on the account page's change and on the change a sign-in requires; and the account page
//! showing a change made elsewhere at once (it keeps user rows in memory between views).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::Store;
use crate::http_browser::{
    Answer, Browser, OTHER_STRONG, STRONG, advance_clock, people_app, person, tenant_with,
};
use crate::on_both_stores;

fn assert_secure_headers(answer: &Answer, what: &str) {
    let header = |name: &str| {
        answer
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_owned()
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("cache-control"), "no-store", "{what}");
}

async fn every_page_answer_carries_the_security_headers(store: Store) {
    let app = people_app(store).await;
    let t = tenant_with(&app, "headers", |_| {}).await;
    person(&app, &t, "ada@example.com", STRONG, false).await;
    person(&app, &t, "tom@example.com", STRONG, true).await;
    let browser = Browser::new(&app);
    let mut answers = vec![
        ("login", browser.get("/t/headers/login").await),
        (
            "account, signed out",
            browser.get("/t/headers/account").await,
        ),
        ("logout, signed out", browser.get("/t/headers/logout").await),
        ("unknown tenant", browser.get("/t/nowhere/login").await),
        (
            "form without a token",
            browser
                .post_form("/t/headers/login", &[("email", "x")])
                .await,
        ),
        (
            "failed sign-in",
            browser.sign_in("headers", "ada@example.com", "wrong").await,
        ),
        (
            "signed in",
            browser.sign_in("headers", "ada@example.com", STRONG).await,
        ),
    ];
    answers.push(("account", browser.get("/t/headers/account").await));
    answers.push(("logout", browser.get("/t/headers/logout").await));
    answers.push((
        "JSON sign-in",
        browser
            .sign_in_json("headers", "ada@example.com", STRONG)
            .await,
    ));
    let tom = Browser::new(&app);
    answers.push((
        "sign-in needing a new password",
        tom.sign_in("headers", "tom@example.com", STRONG).await,
    ));
    answers.push((
        "change password",
        tom.get("/t/headers/change-password").await,
    ));
    for (what, answer) in &answers {
        assert_secure_headers(answer, what);
    }
    // The forms are drivable by their labels and buttons.
    let account = &answers[7].1.body;
    for needle in [
        "<label for=\"name\">Name</label>",
        "<label for=\"current_password\">Current password</label>",
        "<label for=\"new_password\">New password</label>",
        "<button type=\"submit\">Save</button>",
        "<button type=\"submit\">Change password</button>",
        "<button type=\"submit\">Sign out</button>",
        "<h1 id=\"tenant-name\">Tenant headers</h1>",
    ] {
        assert!(account.contains(needle), "{needle}: {account}");
    }
}
on_both_stores!(every_page_answer_carries_the_security_headers);

async fn return_to_never_leaves_the_tenant(store: Store) {
    let app = people_app(store).await;
    let t = tenant_with(&app, "returns", |_| {}).await;
    person(&app, &t, "ada@example.com", STRONG, false).await;
    let cases = [
        (
            "/t/returns/account?done=profile",
            "/t/returns/account?done=profile",
        ),
        ("/t/returns", "/t/returns"),
        (
            "https://evil.example/t/returns/account",
            "/t/returns/account",
        ),
        ("//evil.example/t/returns/account", "/t/returns/account"),
        ("/\\evil.example", "/t/returns/account"),
        ("/t/returns/../other/account", "/t/returns/account"),
        ("/t/returns/%2e%2e/other", "/t/returns/account"),
        ("/t/other/account", "/t/returns/account"),
        ("/t/returnsx/account", "/t/returns/account"),
        ("javascript:alert(1)", "/t/returns/account"),
    ];
    for (return_to, lands) in cases {
        // As a form field on sign-in.
        let browser = Browser::new(&app);
        let login = browser.get("/t/returns/login").await;
        let answer = browser
            .post_form(
                "/t/returns/login",
                &[
                    ("email", "ada@example.com"),
                    ("password", STRONG),
                    ("return_to", return_to),
                    ("csrf_token", &login.csrf()),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{return_to}");
        assert_eq!(answer.location(), lands, "{return_to}");
        // As the query of the sign-in page, once signed in.
        let query: String = form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        let answer = browser
            .get(&format!("/t/returns/login?return_to={query}"))
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{return_to}");
        assert_eq!(answer.location(), lands, "{return_to}");
    }
    // A signed-out visit to the account page comes back to it after signing in.
    let browser = Browser::new(&app);
    let answer = browser.get("/t/returns/account").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.location(),
        "/t/returns/login?return_to=%2Ft%2Freturns%2Faccount"
    );
}
on_both_stores!(return_to_never_leaves_the_tenant);

async fn a_form_without_its_csrf_token_changes_nothing(store: Store) {
    let app = people_app(store).await;
    let t = tenant_with(&app, "forms", |_| {}).await;
    let other = tenant_with(&app, "forms-other", |_| {}).await;
    let ada = person(&app, &t, "ada@example.com", STRONG, false).await;
    person(&app, &other, "ada@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    let credentials = [("email", "ada@example.com"), ("password", STRONG)];

    // Sign-in: no token, a made-up one, and one made for another tenant's page.
    let other_page = browser.get("/t/forms-other/login").await;
    for token in [
        None,
        Some("forged-token".to_owned()),
        Some(other_page.csrf()),
    ] {
        let mut fields = credentials.to_vec();
        if let Some(token) = &token {
            fields.push(("csrf_token", token));
        }
        let answer = browser.post_form("/t/forms/login", &fields).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{token:?}");
        assert!(answer.body.contains("<html"), "an HTML error page");
        assert!(
            answer
                .set_cookies()
                .iter()
                .all(|c| !c.starts_with("tessera-forms="))
        );
    }
    assert!(!browser.is_signed_in("forms").await);
    // A token without the browser's CSRF cookie is refused too.
    let stranger = Browser::new(&app);
    let token = browser.get("/t/forms/login").await.csrf();
    let answer = stranger
        .post_form(
            "/t/forms/login",
            &[credentials[0], credentials[1], ("csrf_token", &token)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // The JSON sign-in needs none: browsers never send JSON across sites without CORS.
    assert_eq!(
        stranger
            .sign_in_json("forms", "ada@example.com", STRONG)
            .await
            .status,
        StatusCode::OK
    );

    // Signed in, forms without a valid token change nothing.
    browser.signed_in("forms", "ada@example.com", STRONG).await;
    let forged = [("csrf_token", "forged-token")];
    let profile = [("name", "Mallory"), ("csrf_token", "forged-token")];
    let password = [
        ("current_password", STRONG),
        ("new_password", OTHER_STRONG),
        ("csrf_token", "forged-token"),
    ];
    for (path, fields) in [
        ("/t/forms/account/profile", &profile[..]),
        ("/t/forms/account/password", &password[..]),
        ("/t/forms/logout", &forged[..]),
    ] {
        let answer = browser.post_form(path, fields).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert!(browser.is_signed_in("forms").await);
    let (_, user) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{t}/users/{ada}")))
        .await;
    assert_eq!(user["name"], "Test Person");
    let fresh = Browser::new(&app);
    assert_eq!(
        fresh
            .sign_in_json("forms", "ada@example.com", STRONG)
            .await
            .status,
        StatusCode::OK
    );

    // With the token, the profile form works, as the person.
    let answer = browser
        .submit(
            "/t/forms/account",
            "/t/forms/account/profile",
            &[
                ("name", "Ada King"),
                ("given_name", "Ada"),
                ("family_name", ""),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/forms/account?done=profile");
    let (_, user) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{t}/users/{ada}")))
        .await;
    assert_eq!(
        (&user["name"], &user["given_name"]),
        (&json!("Ada King"), &json!("Ada"))
    );
    let page = browser.get("/t/forms/account?done=profile").await;
    assert!(page.body.contains("value=\"Ada King\""));
    assert!(page.body.contains("Your profile was saved."));
    let (_, updates) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/audit?target_id={ada}&action=user.updated"),
        ))
        .await;
    let entry = &updates["items"][0];
    assert_eq!(
        (&entry["actor_type"], &entry["actor_id"]),
        (&json!("user"), &json!(ada))
    );
    // A name too long is refused next to its field, and nothing changes.
    let long = "x".repeat(300);
    let answer = browser
        .submit(
            "/t/forms/account",
            "/t/forms/account/profile",
            &[("name", &long)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.alert().unwrap().contains("255"),
        "{:?}",
        answer.alert()
    );
}
on_both_stores!(a_form_without_its_csrf_token_changes_nothing);

async fn passwords_follow_the_policy_its_history_and_its_age_on_the_pages(store: Store) {
    let app = people_app(store).await;
    let t = tenant_with(&app, "policy", |s| {
        s["password_policy"]["require_numbers"] = json!(true);
        s["password_policy"]["password_history_count"] = json!(2);
        s["password_policy"]["max_age_days"] = json!(30);
    })
    .await;
    let ada = person(&app, &t, "ada@example.com", STRONG, true).await;
    let browser = Browser::new(&app);

    // A temporary password: the sign-in goes to the change first, and no session starts.
    let answer = browser.sign_in("policy", "ada@example.com", STRONG).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/t/policy/change-password");
    assert!(!browser.is_signed_in("policy").await);
    let browser = &browser;
    let change = |password: &'static str| async move {
        browser
            .submit(
                "/t/policy/change-password",
                "/t/policy/change-password",
                &[("new_password", password)],
            )
            .await
    };
    let page = browser.get("/t/policy/change-password").await;
    assert!(
        page.body
            .contains("<label for=\"new_password\">New password</label>")
    );
    for (password, rule) in [
        ("violet kettle marathon", "digit"),
        ("Sh0rt", "at least 12"),
        (STRONG, "last 2 passwords"),
    ] {
        let answer = change(password).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{password}");
        let alert = answer.alert().unwrap();
        assert!(alert.contains(rule), "{password}: {alert}");
        assert!(
            !answer.body.contains(password),
            "the page repeats the password"
        );
    }
    let answer = change(OTHER_STRONG).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/policy/account");
    assert!(browser.is_signed_in("policy").await);
    // The pending sign-in is spent.
    assert_eq!(
        browser.get("/t/policy/change-password").await.location(),
        "/t/policy/login"
    );

    // On the account page: the current password is needed, and the policy holds.
    let account_change = |current: &'static str, new: &'static str| async move {
        browser
            .submit(
                "/t/policy/account",
                "/t/policy/account/password",
                &[("current_password", current), ("new_password", new)],
            )
            .await
    };
    let answer = account_change(STRONG, "tundra saffron violin 77").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.alert().as_deref(),
        Some("This is not your current password.")
    );
    let answer = account_change(OTHER_STRONG, STRONG).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.alert().unwrap().contains("last 2 passwords"));
    let other = Browser::new(&app);
    other
        .signed_in("policy", "ada@example.com", OTHER_STRONG)
        .await;
    let answer = account_change(OTHER_STRONG, "tundra saffron violin 77").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/policy/account?done=password");
    // This browser stays signed in; the other session ended.
    assert!(browser.is_signed_in("policy").await);
    assert!(!other.is_signed_in("policy").await);
    let (_, user) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{t}/users/{ada}")))
        .await;
    assert_eq!(user["password_temporary"], false);

    // Thirty days on, the password has expired: signing in requires a new one.
    advance_clock(&app, 30 * 24 * 60 * 60 + 60).await;
    let later = Browser::new(&app);
    let answer = later
        .sign_in("policy", "ada@example.com", "tundra saffron violin 77")
        .await;
    assert_eq!(answer.location(), "/t/policy/change-password");
    let answer = later
        .submit(
            "/t/policy/change-password",
            "/t/policy/change-password",
            &[("new_password", "granite lantern ferry 93")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert!(later.is_signed_in("policy").await);
}
on_both_stores!(passwords_follow_the_policy_its_history_and_its_age_on_the_pages);

async fn the_account_page_shows_an_administrators_change_at_once(store: Store) {
    // The page keeps user rows in memory between views: a change made elsewhere (here by an
    // administrator, for any user of the store) must still show on the very next view.
    let app = people_app(store).await;
    let t = tenant_with(&app, "views", |_| {}).await;
    let ada = person(&app, &t, "ada@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    browser.signed_in("views", "ada@example.com", STRONG).await;
    for _ in 0..2 {
        let page = browser.get("/t/views/account").await;
        assert!(page.body.contains("value=\"Test Person\""), "{}", page.body);
    }
    let (status, updated) = app
        .send(
            app.admin(Method::PATCH, &format!("/v1/tenants/{t}/users/{ada}"))
                .json(&json!({"name": "Ada Lovelace"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let page = browser.get("/t/views/account").await;
    assert!(
        page.body.contains("value=\"Ada Lovelace\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Test Person"));
}
on_both_stores!(the_account_page_shows_an_administrators_change_at_once);
