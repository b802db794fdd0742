//! Signing in, over HTTP, on both backends: the hosted page and its JSON form; the wrong
//! password, unknown address, disabled and locked cases with identical answers in comparable
//! time; lockout, its end and an administrator's unlock; rate limits; and every attempt in the
//! audit trail with its reason, address and user agent, and nothing personal.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Store, spawn_app_with_env};
use crate::http_browser::{
    Browser, GENERIC_FAILURE, STRONG, advance_clock, audit, people_app, person, settle, tenant_with,
};
use crate::on_both_stores;

async fn a_person_signs_in_on_the_page_and_with_json(store: Store) {
    let app = people_app(store).await;
    let t = tenant_with(&app, "sign-in", |_| {}).await;
    let ada = person(&app, &t, "Ada@Example.com", STRONG, false).await;
    let browser = Browser::new(&app);

    // The page is drivable by its labels and its button.
    let login = browser.get("/t/sign-in/login").await;
    assert_eq!(login.status, StatusCode::OK);
    for needle in [
        "<h1 id=\"tenant-name\">Tenant sign-in</h1>",
        "<label for=\"email\">Email</label>",
        "<label for=\"password\">Password</label>",
        "autocomplete=\"username\"",
        "autocomplete=\"current-password\"",
        "<button type=\"submit\">Sign in</button>",
    ] {
        assert!(login.body.contains(needle), "{needle}: {}", login.body);
    }
    assert!(!browser.is_signed_in("sign-in").await);

    // The address matches whatever its case and spaces.
    let signed_in = browser
        .sign_in("sign-in", "  ada@EXAMPLE.com ", STRONG)
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), "/t/sign-in/account");
    let cookie = signed_in
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("tessera-sign-in="))
        .unwrap();
    // A plain-http loopback server: no `Secure`, no `__Host-`, and otherwise the full set.
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
    assert_eq!(
        cookie.split(';').next().unwrap().len(),
        "tessera-sign-in=".len() + 43
    );
    let account = browser.get("/t/sign-in/account").await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account.body.contains("Ada@Example.com"), "{}", account.body);
    assert!(account.body.contains("Tenant sign-in"));
    // Signed in, the sign-in page goes on at once.
    let again = browser.get("/t/sign-in/login").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);

    // JSON, for scripts: 200 with the cookie, which then works on the pages.
    let script = Browser::new(&app);
    let answer = script
        .sign_in_json("sign-in", "ada@example.com", STRONG)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["signed_in"], true);
    assert_eq!(body["user_id"], ada.as_str());
    assert_eq!(body["amr"], json!(["pwd"]));
    assert!(script.is_signed_in("sign-in").await);
    let malformed = script
        .client
        .post(format!("{}/t/sign-in/login", app.base))
        .header("content-type", "application/json")
        .body("{\"email\": 1")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);

    // The administrator sees both sessions, with where they came from.
    let (status, sessions) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{t}/users/{ada}/sessions"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{sessions}");
    let items = sessions["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{sessions}");
    assert_eq!(items[0]["user_agent"], "e2e-browser/1.0");
    assert_eq!(items[0]["source_ip"], "127.0.0.1");
    assert_eq!(items[0]["amr"], json!(["pwd"]));
}
on_both_stores!(a_person_signs_in_on_the_page_and_with_json);

/// The shortest time each case's JSON sign-in took over seven rounds, every answer exactly
/// `expected`. The cases take turns, so that a busy machine slows them alike, and the shortest
/// time is each one's own cost, with what a loaded machine adds left out.
async fn timed(browser: &Browser, cases: &[(&str, &str)], expected: &str) -> Vec<Duration> {
    let mut shortest = vec![Duration::MAX; cases.len()];
    for _ in 0..7 {
        for ((email, password), best) in cases.iter().zip(shortest.iter_mut()) {
            let started = Instant::now();
            let answer = browser.sign_in_json("same-answer", email, password).await;
            *best = (*best).min(started.elapsed());
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{email}");
            assert_eq!(answer.body, expected, "{email}");
        }
    }
    shortest
}

async fn every_failure_gets_the_same_answer_in_about_the_same_time(store: Store) {
    // Real Argon2 cost (OWASP's defaults), so that the hash dominates each answer's time as it
    // does in production; rate limits out of the way.
    let app = spawn_app_with_env(
        store,
        &[
            ("TESSERA_SIGN_IN_ATTEMPTS_PER_ACCOUNT", "0"),
            ("TESSERA_SIGN_IN_ATTEMPTS_PER_SOURCE", "0"),
        ],
    )
    .await;
    let t = tenant_with(&app, "same-answer", |s| {
        s["lockout_policy"]["max_attempts"] = json!(8);
    })
    .await;
    let ada = person(&app, &t, "ada@example.com", STRONG, false).await;
    let bob = person(&app, &t, "bob@example.com", STRONG, false).await;
    person(&app, &t, "carol@example.com", STRONG, false).await;
    let (status, _) = app
        .send(app.admin(
            Method::POST,
            &format!("/v1/tenants/{t}/users/{bob}/disable"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let browser = Browser::new(&app);
    for _ in 0..8 {
        browser
            .sign_in_json("same-answer", "carol@example.com", "not her password")
            .await;
    }

    let expected = serde_json::to_string(&json!({
        "error": "invalid_credentials",
        "message": GENERIC_FAILURE,
    }))
    .unwrap();
    // Seven wrong passwords for Ada stay below the tenant's eight.
    let times = timed(
        &browser,
        &[
            ("ada@example.com", "not her password"),
            ("nobody@example.com", STRONG),
            ("bob@example.com", STRONG),
            ("carol@example.com", STRONG),
        ],
        &expected,
    )
    .await;
    let (wrong, unknown, disabled, locked) = (times[0], times[1], times[2], times[3]);
    // A loose bound: the same Argon2 work in every case, so none is several times faster or
    // slower than a wrong password.
    for (case, time) in [
        ("unknown", unknown),
        ("disabled", disabled),
        ("locked", locked),
    ] {
        let ratio = time.as_secs_f64() / wrong.as_secs_f64();
        assert!(
            (0.33..3.0).contains(&ratio),
            "{case} took {time:?}, a wrong password {wrong:?}"
        );
    }

    // The page says the same thing, with the same status, whatever the case.
    for email in [
        "ada@example.com",
        "nobody@example.com",
        "bob@example.com",
        "carol@example.com",
    ] {
        let answer = browser
            .sign_in("same-answer", email, "wrong password")
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{email}");
        assert_eq!(answer.alert().as_deref(), Some(GENERIC_FAILURE), "{email}");
        assert!(
            answer
                .set_cookies()
                .iter()
                .all(|c| !c.starts_with("tessera-same-answer="))
        );
    }

    // Every attempt is in the audit trail with its reason, address and user agent, recorded
    // by the server (nobody proved who they were), and without the address typed.
    let failures = audit(&app, &ada, "sign_in.failed").await;
    assert!(failures.len() >= 2, "{failures:?}");
    for entry in &failures {
        assert_eq!(entry["source_ip"], "127.0.0.1");
        assert_eq!(entry["user_agent"], "e2e-browser/1.0");
        assert_eq!(entry["actor_type"], "system");
        assert_eq!(entry["metadata"]["reason"], "wrong_password", "{entry}");
        assert!(!entry.to_string().contains("ada@"), "{entry}");
    }
    let reasons = |entries: Vec<serde_json::Value>| {
        entries
            .iter()
            .map(|e| e["metadata"]["reason"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(reasons(audit(&app, &bob, "sign_in.failed").await).contains(&"disabled".to_owned()));
    settle(&app).await;
    let (_, unknown) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/audit?tenant_id={t}&action=sign_in.failed&limit=200"),
        ))
        .await;
    let text = unknown.to_string();
    assert!(text.contains("unknown_address"), "{text}");
    assert!(text.contains("locked"), "{text}");
    assert!(!text.contains("nobody"), "{text}");
}
on_both_stores!(every_failure_gets_the_same_answer_in_about_the_same_time);

async fn a_lockout_holds_until_it_ends_or_an_administrator_lifts_it(store: Store) {
    let app = people_app(store).await;
    let t = tenant_with(&app, "lockout", |s| {
        s["lockout_policy"] = json!({
            "max_attempts": 3,
            "lockout_duration_minutes": 15,
            "reset_after_minutes": 10,
        });
    })
    .await;
    let ada = person(&app, &t, "ada@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    let fail = || browser.sign_in_json("lockout", "ada@example.com", "wrong password");
    let succeed = || browser.sign_in_json("lockout", "ada@example.com", STRONG);

    // Two failures, then the right password: the count starts again.
    fail().await;
    fail().await;
    assert_eq!(succeed().await.status, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(fail().await.status, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password fails, with the same answer.
    let locked = succeed().await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(locked.json()["message"], GENERIC_FAILURE);
    let lock = audit(&app, &ada, "sign_in.failed").await;
    assert!(
        lock.iter()
            .any(|e| e["metadata"]["locked_until"].is_string()),
        "{lock:?}"
    );

    // An administrator unlocks.
    let (status, user) = app
        .send(app.admin(Method::POST, &format!("/v1/tenants/{t}/users/{ada}/unlock")))
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["id"], ada.as_str());
    assert_eq!(succeed().await.status, StatusCode::OK);
    assert_eq!(audit(&app, &ada, "sign_in.unlocked").await.len(), 1);

    // Locked again, it lifts by itself after the lockout's duration.
    for _ in 0..3 {
        fail().await;
    }
    advance_clock(&app, 14 * 60).await;
    assert_eq!(succeed().await.status, StatusCode::UNAUTHORIZED);
    advance_clock(&app, 61).await;
    assert_eq!(succeed().await.status, StatusCode::OK);

    // Failures further apart than `reset_after_minutes` never add up to a lockout.
    for _ in 0..4 {
        fail().await;
        fail().await;
        advance_clock(&app, 10 * 60).await;
    }
    assert_eq!(succeed().await.status, StatusCode::OK);
}
on_both_stores!(a_lockout_holds_until_it_ends_or_an_administrator_lifts_it);

async fn rate_limits_answer_429_with_the_generic_message(store: Store) {
    // Seed 001's limits: 5 attempts a minute for one address from one source; 30 from a source.
    let app = spawn_app_with_env(
        store,
        &[
            ("TESSERA_ARGON2_MEMORY_KIB", "1024"),
            ("TESSERA_ARGON2_ITERATIONS", "1"),
        ],
    )
    .await;
    let t = tenant_with(&app, "limits", |s| {
        s["lockout_policy"]["max_attempts"] = json!(100);
    })
    .await;
    let ada = person(&app, &t, "ada@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    for _ in 0..5 {
        let answer = browser
            .sign_in_json("limits", "ada@example.com", "wrong password")
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    // The sixth in the minute is refused before any password is checked, even the right one.
    let limited = browser
        .sign_in_json("limits", "ada@example.com", STRONG)
        .await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert_eq!(
        limited.json(),
        json!({"error": "too_many_attempts", "message": GENERIC_FAILURE})
    );
    let page = browser.sign_in("limits", "ada@example.com", STRONG).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(page.alert().as_deref(), Some(GENERIC_FAILURE));
    let refusals = audit(&app, &ada, "sign_in.failed").await;
    let rate_limited: Vec<_> = refusals
        .iter()
        .filter(|e| e["metadata"]["reason"] == "rate_limited")
        .collect();
    // The first refusal is recorded; the next one, with no attempt allowed between, is not.
    assert_eq!(rate_limited.len(), 1, "{refusals:?}");
    assert_eq!(rate_limited[0]["source_ip"], "127.0.0.1");

    // Other addresses from the same source, up to the source's ceiling of 30 a minute.
    for n in 0..25 {
        let answer = browser
            .sign_in_json("limits", &format!("someone{n}@example.com"), STRONG)
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{n}");
    }
    let ceiling = browser
        .sign_in_json("limits", "someone-else@example.com", STRONG)
        .await;
    assert_eq!(ceiling.status, StatusCode::TOO_MANY_REQUESTS);

    // A minute later the source may try again.
    advance_clock(&app, 61).await;
    let answer = browser
        .sign_in_json("limits", "ada@example.com", STRONG)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}
on_both_stores!(rate_limits_answer_429_with_the_generic_message);

async fn a_successful_sign_in_is_recorded_with_the_person_as_actor_and_nothing_personal(
    store: Store,
) {
    let app = people_app(store).await;
    let t = tenant_with(&app, "who-acted", |_| {}).await;
    let ada = person(&app, &t, "ada.lovelace@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    browser
        .signed_in("who-acted", "ada.lovelace@example.com", STRONG)
        .await;
    for action in ["sign_in.succeeded", "session.started"] {
        let entries = audit(&app, &ada, action).await;
        assert_eq!(entries.len(), 1, "{action}: {entries:?}");
        let entry = &entries[0];
        assert_eq!(entry["actor_type"], "user");
        assert_eq!(entry["actor_id"], ada.as_str());
        assert!(entry.get("actor_name").is_none(), "{entry}");
        assert_eq!(entry["source_ip"], "127.0.0.1");
        assert_eq!(entry["user_agent"], "e2e-browser/1.0");
        assert_eq!(entry["target_id"], ada.as_str());
        let text = entry.to_string();
        for needle in ["lovelace", "Lovelace", "Test Person", "token_hash"] {
            assert!(!text.contains(needle), "{needle}: {text}");
        }
    }
}
on_both_stores!(a_successful_sign_in_is_recorded_with_the_person_as_actor_and_nothing_personal);
