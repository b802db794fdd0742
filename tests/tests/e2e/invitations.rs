//! Invitations end to end (issue 18, seed 001 and 003): inviting with roles, the hosted page a
//! link opens (set a password, or sign in first and accept), resends and bulk resends, links
//! that can no longer be used, the tenant's allowed domains, listings by status, concurrent
//! acceptances, and a new tenant's first administrator.
//!
//! Until mail is delivered, the link is the `invite_url` of the creation's answer.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer};
use crate::http_browser::{Browser, STRONG, advance_clock, audit, people_app, person, tenant_with};
use crate::on_both_stores;

/// The path of an absolute link to this server.
fn path_of(app: &TestServer, url: &str) -> String {
    url.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("{url} is not under {}", app.base))
        .to_owned()
}

async fn tenant(app: &TestServer, slug: &str) -> String {
    app.create_tenant(slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn invite(app: &TestServer, tenant: &str, body: Value) -> (StatusCode, Value) {
    app.send(
        app.admin(Method::POST, &format!("/v1/tenants/{tenant}/invitations"))
            .json(&body),
    )
    .await
}

/// An invitation of `email` with `roles`: (its id, the path of its link).
async fn invited(app: &TestServer, tenant: &str, email: &str, roles: &[&str]) -> (String, String) {
    let (status, body) = invite(app, tenant, json!({"email": email, "roles": roles})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["email"], email);
    (
        body["id"].as_str().unwrap().to_owned(),
        path_of(app, body["invite_url"].as_str().unwrap()),
    )
}

/// The user of `tenant` holding `email`.
async fn user_by_email(app: &TestServer, tenant: &str, email: &str) -> Value {
    let (status, page) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{tenant}/users?email={email}"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    items[0].clone()
}

async fn accept_with_password(
    browser: &Browser,
    link: &str,
    password: &str,
) -> crate::http_browser::Answer {
    browser
        .submit(
            link,
            link,
            &[
                ("choice", "password"),
                ("name", "Ada Lovelace"),
                ("password", password),
                ("password_confirmation", password),
            ],
        )
        .await
}

async fn an_invited_person_sets_a_password_is_signed_in_and_signs_in_again(store: Store) {
    let app = people_app(store).await;
    let t = tenant(&app, "acme").await;
    let (id, link) = invited(&app, &t, "ada@acme.test", &["editor"]).await;

    let browser = Browser::new(&app);
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("ada@acme.test"), "{}", page.body);
    assert!(page.body.contains("Set password and accept"));
    assert!(page.body.contains("Accept and add a passkey"));
    assert!(page.body.contains("<label for=\"password\">"));

    // Two different passwords are refused next to the form, and nothing is accepted.
    let mismatch = browser
        .submit(
            &link,
            &link,
            &[
                ("choice", "password"),
                ("password", STRONG),
                ("password_confirmation", "something else entirely 77"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert!(mismatch.alert().unwrap().contains("differ"));

    let answer = accept_with_password(&browser, &link, STRONG).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/acme/account");
    assert!(browser.is_signed_in("acme").await);

    let user = user_by_email(&app, &t, "ada@acme.test").await;
    assert_eq!(user["roles"], json!(["editor"]));
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["name"], "Ada Lovelace");
    let (_, one) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{t}/invitations/{id}")))
        .await;
    assert_eq!(one["status"], "accepted");
    assert_eq!(one["accepted_user_id"], user["id"]);

    // Another browser signs in with the new password.
    Browser::new(&app)
        .signed_in("acme", "ada@acme.test", STRONG)
        .await;
    // The link was used: a clear page, not a second account.
    let used = Browser::new(&app).get(&link).await;
    assert_eq!(used.status, StatusCode::GONE);
    assert!(used.body.contains("already accepted"), "{}", used.body);
}

on_both_stores!(an_invited_person_sets_a_password_is_signed_in_and_signs_in_again);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_user_signs_in_first_then_accepting_adds_the_roles() {
    let app = people_app(Store::Embedded).await;
    let t = tenant(&app, "existing").await;
    let user_id = person(&app, &t, "grace@acme.test", STRONG, false).await;
    let (_, link) = invited(&app, &t, "grace@acme.test", &["tenant:admin"]).await;

    let browser = Browser::new(&app);
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Sign in to accept"), "{}", page.body);
    assert!(!page.body.contains("Set password"));

    // Seed 001's JSON accept cannot make a second account for the address.
    let (status, body) = app
        .send(
            app.request(Method::POST, &link, None)
                .json(&json!({"password": STRONG})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "sign_in_required");

    let answer = browser.sign_in("existing", "grace@acme.test", STRONG).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let answer = browser.submit(&link, &link, &[("choice", "accept")]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let (_, user) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{t}/users/{user_id}")))
        .await;
    assert_eq!(user["roles"], json!(["tenant:admin"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_signed_in_with_another_account_is_told_so_and_cannot_accept() {
    let app = people_app(Store::Embedded).await;
    let t = tenant(&app, "other").await;
    person(&app, &t, "grace@acme.test", STRONG, false).await;
    person(&app, &t, "mallory@acme.test", STRONG, false).await;
    let (_, link) = invited(&app, &t, "grace@acme.test", &["editor"]).await;
    let browser = Browser::new(&app);
    browser
        .signed_in("other", "mallory@acme.test", STRONG)
        .await;
    let page = browser.get(&link).await;
    assert!(
        page.body.contains("signed in with another account"),
        "{}",
        page.body
    );
    // The page offers no form; a forged one (with a token of the same browser) is refused.
    let token = browser.get("/t/other/account").await.csrf();
    let answer = browser
        .post_form(&link, &[("choice", "accept"), ("csrf_token", &token)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    let user = user_by_email(&app, &t, "grace@acme.test").await;
    assert_eq!(user["roles"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_makes_the_old_link_fail_and_bulk_resend_reports_per_invitation() {
    let app = people_app(Store::Embedded).await;
    let t = tenant(&app, "resend").await;
    let (first, old_link) = invited(&app, &t, "ada@acme.test", &["editor"]).await;
    let (second, _) = invited(&app, &t, "bob@acme.test", &[]).await;
    let (revoked, _) = invited(&app, &t, "eve@acme.test", &[]).await;

    let (status, resent) = app
        .send(app.admin(
            Method::POST,
            &format!("/v1/tenants/{t}/invitations/{first}/resend"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{resent}");
    assert_eq!(resent["resent_count"], 1);
    let new_link = path_of(&app, resent["invite_url"].as_str().unwrap());
    assert_ne!(new_link, old_link);
    let old = Browser::new(&app).get(&old_link).await;
    assert_eq!(old.status, StatusCode::GONE);
    assert!(old.body.contains("replaced"), "{}", old.body);
    assert_eq!(
        Browser::new(&app).get(&new_link).await.status,
        StatusCode::OK
    );

    let (status, _) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{t}/invitations/{revoked}"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let unknown = "01930000-0000-7000-8000-00000000dead";
    let (status, report) = app
        .send(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{t}/invitations/bulk-resend"),
            )
            .json(&json!({"ids": [second, revoked, unknown]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let results = report["results"].as_array().unwrap();
    let result_of = |id: &str| {
        results
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing from {report}"))["result"]
            .clone()
    };
    assert_eq!(result_of(&second), "resent");
    assert_eq!(result_of(&revoked), "failed");
    assert_eq!(result_of(unknown), "not_found");
    assert_eq!(
        (report["resent"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(2))
    );

    let (status, report) = app
        .send(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{t}/invitations/bulk-resend"),
            )
            .json(&json!({"status": "pending"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["resent"], 2, "{report}");
    // The link of the first resend was replaced in its turn.
    assert_eq!(
        Browser::new(&app).get(&new_link).await.status,
        StatusCode::GONE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_and_unknown_links_get_clear_pages() {
    let app = people_app(Store::Embedded).await;
    let t = tenant(&app, "links").await;
    let (status, body) = invite(
        &app,
        &t,
        json!({"email": "ada@acme.test", "roles": [], "expires_in": 3600}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let short = path_of(&app, body["invite_url"].as_str().unwrap());
    let short_id = body["id"].as_str().unwrap().to_owned();
    let (revoked, revoked_link) = invited(&app, &t, "eve@acme.test", &[]).await;

    let (status, gone) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{t}/invitations/{revoked}"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(gone["status"], "revoked");
    assert_eq!(
        gone["email"],
        Value::Null,
        "a revoked invitation forgets its address"
    );
    let page = Browser::new(&app).get(&revoked_link).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("withdrawn"), "{}", page.body);
    let (status, body) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{t}/invitations/{revoked}"),
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["correlation_id"].is_string(), "{body}");

    advance_clock(&app, 3601).await;
    let page = Browser::new(&app).get(&short).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("expired"), "{}", page.body);
    let (_, expired) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{t}/invitations?status=expired"),
        ))
        .await;
    let ids: Vec<&str> = expired["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [short_id.as_str()]);

    // A link of the right shape that names nothing, and one of no shape at all.
    let unknown = format!("/t/links/invite/{}", "A".repeat(64));
    for link in [unknown.as_str(), "/t/links/invite/nonsense"] {
        let page = Browser::new(&app).get(link).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
        assert!(page.body.contains("Invitation not found"), "{}", page.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_outside_the_allowed_domains_is_refused_and_appends_nothing() {
    let app = people_app(Store::Embedded).await;
    let t = tenant_with(&app, "domains", |settings| {
        settings["allowed_email_domains"] = json!(["acme.test"]);
    })
    .await;
    let head = app.log_head().await;
    let (status, body) = invite(
        &app,
        &t,
        json!({"email": "ada@elsewhere.test", "roles": []}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "email");
    assert!(body["correlation_id"].is_string(), "{body}");
    assert_eq!(
        app.log_head().await,
        head,
        "a refused invitation appends nothing"
    );
    invited(&app, &t, "ada@acme.test", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_list_by_status_with_paging() {
    let app = people_app(Store::Embedded).await;
    let t = tenant(&app, "listing").await;
    let mut pending = Vec::new();
    for name in ["a", "b", "c"] {
        pending.push(invited(&app, &t, &format!("{name}@acme.test"), &[]).await.0);
    }
    let (revoked, _) = invited(&app, &t, "d@acme.test", &[]).await;
    app.send(app.admin(
        Method::DELETE,
        &format!("/v1/tenants/{t}/invitations/{revoked}"),
    ))
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/tenants/{t}/invitations?status=pending&limit=2");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = app.send(app.admin(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["status"], "pending");
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, pending);
    let (_, page) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{t}/invitations?status=revoked"),
        ))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (status, body) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{t}/invitations?status=lost"),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "status");
    // Another tenant's key sees nothing of this tenant's invitations.
    let other = tenant(&app, "listing-other").await;
    let key = app
        .create_api_key(
            &other,
            json!({"name": "other admin", "scopes": ["tenant:admin"]}),
        )
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{t}/invitations"),
            Some(&key),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acceptances_of_one_invitation_make_exactly_one_account() {
    let app = people_app(Store::Embedded).await;
    let t = tenant(&app, "race").await;
    let (_, link) = invited(&app, &t, "ada@acme.test", &["editor"]).await;
    let token = link.rsplit('/').next().unwrap().to_owned();
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..6 {
        // Half through the tenant's page, half through seed 001's slug-less route.
        let path = if i % 2 == 0 {
            link.clone()
        } else {
            format!("/invite/{token}")
        };
        let request = app
            .request(Method::POST, &path, None)
            .json(&json!({"password": STRONG, "name": format!("Ada {i}")}));
        attempts.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = attempts.join_all().await;
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::GONE || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    user_by_email(&app, &t, "ada@acme.test").await;
}

async fn a_new_tenants_admin_accepts_the_invite_url_and_becomes_tenant_admin(store: Store) {
    let app = people_app(store).await;
    let created = app
        .create_tenant_with(json!({
            "slug": "newco",
            "name": "NewCo",
            "admin_email": "owner@newco.test",
            "admin_name": "Olivia Owner",
        }))
        .await;
    let t = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["slug"], "newco");
    assert!(created.get("admin_invite_error").is_none(), "{created}");
    let link = path_of(&app, created["invite_url"].as_str().unwrap());
    assert!(link.starts_with("/t/newco/invite/"), "{link}");

    let browser = Browser::new(&app);
    let page = browser.get(&link).await;
    assert_eq!(page.input_value("name"), "Olivia Owner");
    let answer = accept_with_password(&browser, &link, STRONG).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let user = user_by_email(&app, &t, "owner@newco.test").await;
    assert_eq!(user["roles"], json!(["tenant:admin"]));

    // The new admin creates an API key from the account page and uses it on their tenant.
    let account = browser.get("/t/newco/account").await;
    assert!(account.body.contains("Create API key"), "{}", account.body);
    assert!(
        account
            .body
            .contains("<label for=\"api_key_name\">Key name</label>")
    );
    let created = browser
        .submit(
            "/t/newco/account",
            "/t/newco/account/api-keys",
            &[("name", "handover"), ("scopes", "tenant:admin")],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let key = created.input_value("api_key");
    assert!(key.starts_with("tsr_"), "{key}");
    let (status, users) = app
        .send(app.request(Method::GET, &format!("/v1/tenants/{t}/users"), Some(&key)))
        .await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let other = tenant(&app, "someone-else").await;
    let (status, _) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{other}/users"),
            Some(&key),
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant is out of reach"
    );
    let listed = browser.get("/t/newco/account").await;
    assert!(listed.body.contains("handover"), "{}", listed.body);
    let (_, keys) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{t}/api-keys"),
            Some(&key),
        ))
        .await;
    let key_id = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "handover")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let issued = audit(&app, &key_id, "api_key.issued").await;
    assert!(
        issued
            .iter()
            .any(|entry| entry["actor_type"] == "user" && entry["actor_id"] == user["id"]),
        "the person is the recorded actor: {issued:?}"
    );

    // A scope the person cannot grant is refused, and so is a form without a token.
    let refused = browser
        .submit(
            "/t/newco/account",
            "/t/newco/account/api-keys",
            &[("name", "too much"), ("scopes", "platform:admin")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);

    // Revoking it from the page stops it at once.
    let revoke_at = listed.body.find("/api-keys/").unwrap();
    let action = &listed.body[listed.body[..revoke_at].rfind('"').unwrap() + 1..];
    let action = action[..action.find('"').unwrap()].to_owned();
    let revoked = browser.submit("/t/newco/account", &action, &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let (status, _) = app
        .send(app.request(Method::GET, &format!("/v1/tenants/{t}/users"), Some(&key)))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

on_both_stores!(a_new_tenants_admin_accepts_the_invite_url_and_becomes_tenant_admin);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_admin_address_still_creates_the_tenant_and_records_why() {
    let app = people_app(Store::Embedded).await;
    let created = app
        .create_tenant_with(json!({
            "slug": "badadmin",
            "name": "Bad Admin",
            "admin_email": "not an address",
        }))
        .await;
    let t = created["id"].as_str().unwrap().to_owned();
    assert!(created.get("invite_url").is_none(), "{created}");
    let error = created["admin_invite_error"].as_str().unwrap();
    assert!(error.contains("admin_email"), "{error}");
    assert!(
        !error.contains("not an address"),
        "the reason carries no address: {error}"
    );
    let (status, _) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{t}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = audit(&app, &t, "tenant.admin_invite_failed").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    // A name without an address names nobody: refused before anything is created.
    let (status, body) = app
        .send(app.admin(Method::POST, "/v1/tenants").json(&json!({
            "slug": "nameonly",
            "name": "Name Only",
            "admin_name": "Nobody",
        })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "admin_name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_without_tenant_admin_has_no_api_keys_on_the_account_page() {
    let app = people_app(Store::Embedded).await;
    let t = tenant(&app, "plain").await;
    person(&app, &t, "pat@acme.test", STRONG, false).await;
    let browser = Browser::new(&app);
    browser.signed_in("plain", "pat@acme.test", STRONG).await;
    let account = browser.get("/t/plain/account").await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(!account.body.contains("Create API key"));
    let head = app.log_head().await;
    let refused = browser
        .submit(
            "/t/plain/account",
            "/t/plain/account/api-keys",
            &[("name", "sneaky"), ("scopes", "tenant:admin")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(app.log_head().await, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_requires_a_second_factor_makes_the_new_person_set_one_up_first() {
    let app = people_app(Store::Embedded).await;
    let t = tenant_with(&app, "strict", |settings| {
        settings["require_mfa"] = json!(true);
    })
    .await;
    let (_, link) = invited(&app, &t, "ada@acme.test", &["editor"]).await;
    let browser = Browser::new(&app);
    let answer = accept_with_password(&browser, &link, STRONG).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/strict/login/enroll");
    assert!(!browser.is_signed_in("strict").await);
    user_by_email(&app, &t, "ada@acme.test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_user_forgets_the_address_of_the_invitation_they_accepted() {
    let app = people_app(Store::Embedded).await;
    let t = tenant(&app, "forget").await;
    let (id, link) = invited(&app, &t, "ada@acme.test", &[]).await;
    accept_with_password(&Browser::new(&app), &link, STRONG).await;
    let user = user_by_email(&app, &t, "ada@acme.test").await;
    let path = format!("/v1/tenants/{t}/invitations/{id}");
    let (_, before) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(before["email"], "ada@acme.test");
    let (status, _) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{t}/users/{}", user["id"].as_str().unwrap()),
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, after) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(after["status"], "accepted");
    assert_eq!(after["email"], Value::Null, "{after}");
    assert_eq!(after["name"], Value::Null, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_passkeys_offers_only_a_password() {
    let app = people_app(Store::Embedded).await;
    let t = tenant(&app, "nopasskeys").await;
    let path = format!("/v1/tenants/{t}/webauthn-policy");
    let (_, mut policy) = app.send(app.admin(Method::GET, &path)).await;
    policy["enabled"] = json!(false);
    policy.as_object_mut().unwrap().remove("updated_at");
    let (status, body) = app.send(app.admin(Method::PUT, &path).json(&policy)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, link) = invited(&app, &t, "ada@acme.test", &[]).await;
    let browser = Browser::new(&app);
    let page = browser.get(&link).await;
    assert!(page.body.contains("Set password and accept"));
    assert!(
        !page.body.contains("Accept and add a passkey"),
        "{}",
        page.body
    );
    let refused = browser.submit(&link, &link, &[("choice", "passkey")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
}
