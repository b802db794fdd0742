//! Sessions over HTTP, on both backends: the idle timeout (on the test binary's movable
//! clock), eviction beyond `max_sessions_per_user`, signing out (this browser, or another
//! session from the account page), an administrator's revocations, sessions ending when the
//! user is disabled, erased or given a new password; and every probe from another tenant,
//! pages and admin routes alike, finding nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::Store;
use crate::http_browser::{
    Browser, OTHER_STRONG, STRONG, advance_clock, people_app, person, settle, tenant_with,
};
use crate::on_both_stores;

/// The ids of a user's active sessions, as the admin API lists them.
async fn session_ids(app: &crate::helpers::TestServer, tenant: &str, user: &str) -> Vec<String> {
    let (status, list) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{tenant}/users/{user}/sessions"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_session_ends_when_idle_and_use_keeps_it_alive(store: Store) {
    let app = people_app(store).await;
    let t = tenant_with(&app, "idle", |s| s["session_timeout_minutes"] = json!(5)).await;
    let ada = person(&app, &t, "ada@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    browser.signed_in("idle", "ada@example.com", STRONG).await;
    let other = Browser::new(&app);
    other.signed_in("idle", "ada@example.com", STRONG).await;
    // Used every four minutes, the first browser's session lives on; the second, unused, ends.
    for _ in 0..3 {
        advance_clock(&app, 4 * 60).await;
        assert!(browser.is_signed_in("idle").await);
    }
    assert!(!other.is_signed_in("idle").await);
    assert_eq!(session_ids(&app, &t, &ada).await.len(), 1);
    advance_clock(&app, 5 * 60).await;
    assert!(!browser.is_signed_in("idle").await);
    assert_eq!(session_ids(&app, &t, &ada).await, Vec::<String>::new());
    // The next sign-in records the end of the idle sessions on the log.
    browser.signed_in("idle", "ada@example.com", STRONG).await;
    settle(&app).await;
    let (_, ended) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/audit?target_id={ada}&action=session.ended&limit=10"),
        ))
        .await;
    let reasons: Vec<&str> = ended["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["expired", "expired"], "{ended}");
}
on_both_stores!(a_session_ends_when_idle_and_use_keeps_it_alive);

async fn the_oldest_session_is_evicted_beyond_the_tenants_limit(store: Store) {
    let app = people_app(store).await;
    let t = tenant_with(&app, "evict", |s| s["max_sessions_per_user"] = json!(2)).await;
    let ada = person(&app, &t, "ada@example.com", STRONG, false).await;
    let browsers: Vec<Browser> = (0..3).map(|_| Browser::new(&app)).collect();
    for browser in &browsers {
        browser.signed_in("evict", "ada@example.com", STRONG).await;
    }
    assert!(!browsers[0].is_signed_in("evict").await);
    assert!(browsers[1].is_signed_in("evict").await);
    assert!(browsers[2].is_signed_in("evict").await);
    assert_eq!(session_ids(&app, &t, &ada).await.len(), 2);
}
on_both_stores!(the_oldest_session_is_evicted_beyond_the_tenants_limit);

async fn people_and_administrators_end_sessions(store: Store) {
    let app = people_app(store).await;
    let t = tenant_with(&app, "ending", |_| {}).await;
    let ada = person(&app, &t, "ada@example.com", STRONG, false).await;
    let here = Browser::with_agent(&app, "here/1");
    let there = Browser::with_agent(&app, "there/1");
    here.signed_in("ending", "ada@example.com", STRONG).await;
    there.signed_in("ending", "ada@example.com", STRONG).await;

    // The account page lists both, each with a "Sign out" button; Ada signs the other out.
    let account = here.get("/t/ending/account").await;
    assert!(account.body.contains("there/1") && account.body.contains("here/1"));
    assert_eq!(
        account
            .body
            .matches("<button type=\"submit\">Sign out</button>")
            .count(),
        2
    );
    let ids = session_ids(&app, &t, &ada).await;
    let there_id = &ids[1];
    let answer = here
        .post_form(
            &format!("/t/ending/account/sessions/{there_id}/sign-out"),
            &[("csrf_token", &account.csrf())],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/ending/account?done=session");
    assert!(!there.is_signed_in("ending").await);
    assert!(here.is_signed_in("ending").await);

    // Signing out on the logout page: a "Sign out" button, then the cookie is gone.
    let logout = here.get("/t/ending/logout").await;
    assert!(
        logout
            .body
            .contains("<button type=\"submit\">Sign out</button>")
    );
    let answer = here
        .post_form("/t/ending/logout", &[("csrf_token", &logout.csrf())])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/t/ending/login");
    assert!(
        answer
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("tessera-ending=;"))
    );
    assert!(!here.is_signed_in("ending").await);
    assert_eq!(session_ids(&app, &t, &ada).await, Vec::<String>::new());

    // An administrator ends one session, then all of them.
    here.signed_in("ending", "ada@example.com", STRONG).await;
    there.signed_in("ending", "ada@example.com", STRONG).await;
    let ids = session_ids(&app, &t, &ada).await;
    let (status, _) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{t}/sessions/{}", ids[0]),
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!here.is_signed_in("ending").await);
    assert!(there.is_signed_in("ending").await);
    let (status, _) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{t}/sessions/{}", ids[0]),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{t}/users/{ada}/sessions"),
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!there.is_signed_in("ending").await);

    // Disabling, a password reset and erasure each end every session at once.
    let user = format!("/v1/tenants/{t}/users/{ada}");
    let changes = [
        (Method::POST, format!("{user}/disable"), json!(null)),
        (
            Method::POST,
            format!("{user}/password"),
            json!({"password": OTHER_STRONG}),
        ),
        (Method::DELETE, user.clone(), json!(null)),
    ];
    let mut password = STRONG;
    for (method, path, body) in changes {
        if path.ends_with("/password") {
            let (status, _) = app
                .send(app.admin(Method::POST, &format!("{user}/enable")))
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        here.signed_in("ending", "ada@example.com", password).await;
        there.signed_in("ending", "ada@example.com", password).await;
        let request = app.admin(method.clone(), &path);
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        let (status, answer) = app.send(request).await;
        assert!(status.is_success(), "{method} {path}: {answer}");
        assert!(!here.is_signed_in("ending").await, "{path}");
        assert!(!there.is_signed_in("ending").await, "{path}");
        assert_eq!(session_ids(&app, &t, &ada).await, Vec::<String>::new());
        if path.ends_with("/password") {
            password = OTHER_STRONG;
        }
    }
}
on_both_stores!(people_and_administrators_end_sessions);

async fn nothing_of_one_tenant_is_found_from_another(store: Store) {
    let app = people_app(store).await;
    let a = tenant_with(&app, "tenant-a", |_| {}).await;
    let b = tenant_with(&app, "tenant-b", |_| {}).await;
    let ada = person(&app, &a, "ada@example.com", STRONG, false).await;
    person(&app, &b, "bob@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    browser
        .signed_in("tenant-a", "ada@example.com", STRONG)
        .await;
    let session = session_ids(&app, &a, &ada).await.remove(0);

    // A's session cookie, presented at B under B's name, is no session there; and A's user
    // does not sign in at B.
    let token = browser.cookie("tessera-tenant-a").unwrap();
    browser.plant_cookie("tessera-tenant-b", &token);
    assert!(!browser.is_signed_in("tenant-b").await);
    let answer = browser
        .sign_in_json("tenant-b", "ada@example.com", STRONG)
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // A signed-in page of A cannot sign out a session through B's pages.
    let account = browser.get("/t/tenant-a/account").await;
    let answer = browser
        .post_form(
            &format!("/t/tenant-b/account/sessions/{session}/sign-out"),
            &[("csrf_token", &account.csrf())],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(answer.location().starts_with("/t/tenant-b/login"));
    // A page of a tenant that does not exist is an HTML 404.
    let missing = browser.get("/t/no-such-tenant/login").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("<html"));

    // B's administrator, and any path through B, find nothing of A's.
    let b_key = app
        .create_api_key(&b, json!({"name": "b admin", "scopes": ["tenant:admin"]}))
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let routes = |tenant: &str| {
        vec![
            (
                Method::GET,
                format!("/v1/tenants/{tenant}/users/{ada}/sessions"),
            ),
            (
                Method::DELETE,
                format!("/v1/tenants/{tenant}/users/{ada}/sessions"),
            ),
            (
                Method::DELETE,
                format!("/v1/tenants/{tenant}/sessions/{session}"),
            ),
            (
                Method::POST,
                format!("/v1/tenants/{tenant}/users/{ada}/unlock"),
            ),
        ]
    };
    let probes = routes(&a)
        .into_iter()
        .map(|route| (Some(b_key.as_str()), route))
        .chain(routes(&b).into_iter().map(|route| (None, route)));
    for (key, (method, path)) in probes {
        let request = match key {
            Some(key) => app.request(method.clone(), &path, Some(key)),
            None => app.admin(method.clone(), &path),
        };
        let (status, answer) = app.send(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
    }
    // Nothing changed: Ada is still signed in at A.
    assert!(browser.is_signed_in("tenant-a").await);
    assert_eq!(session_ids(&app, &a, &ada).await, [session]);
}
on_both_stores!(nothing_of_one_tenant_is_found_from_another);

async fn sessions_survive_a_restart_through_the_directorys_snapshot(store: Store) {
    let mut app = people_app(store).await;
    let t = tenant_with(&app, "restart", |_| {}).await;
    let ada = person(&app, &t, "ada@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    browser
        .signed_in("restart", "ada@example.com", STRONG)
        .await;
    let cookie = browser.cookie("tessera-restart").unwrap();
    let before = session_ids(&app, &t, &ada).await;
    app.restart().await;
    if store == Store::Embedded {
        // A clean stop leaves the snapshot beside the read models.
        assert!(app.data_dir().join("sessions.snapshot").is_file());
    }
    // The start restored it rather than folding the whole log.
    let metrics = app.metrics().await;
    let restored = metrics
        .lines()
        .find_map(|line| line.strip_prefix("tessera_session_directory_snapshot_position "))
        .unwrap();
    assert_ne!(restored, "0", "{metrics}");
    // The server answers on another port now: the same cookie, planted again, still works.
    let again = Browser::new(&app);
    again.plant_cookie("tessera-restart", &cookie);
    assert!(again.is_signed_in("restart").await);
    assert_eq!(session_ids(&app, &t, &ada).await, before);
    // And what happens after the restart is folded on top of the snapshot.
    again
        .post_form(
            "/t/restart/logout",
            &[("csrf_token", &again.get("/t/restart/logout").await.csrf())],
        )
        .await;
    app.restart().await;
    let third = Browser::new(&app);
    third.plant_cookie("tessera-restart", &cookie);
    assert!(!third.is_signed_in("restart").await);
    assert_eq!(session_ids(&app, &t, &ada).await, Vec::<String>::new());
}
on_both_stores!(sessions_survive_a_restart_through_the_directorys_snapshot);
