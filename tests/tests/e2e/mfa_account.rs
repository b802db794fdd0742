//! The account page's two-step verification: setting up an authenticator app (QR code, the
//! secret for manual entry, a code to confirm it), the recovery codes shown once and generated
//! anew, turning the app off, and removing a passkey; a person's passkey is nobody else's to
//! remove.

use reqwest::StatusCode;

use crate::helpers::Store;
use crate::http_browser::{
    Answer, AuthenticatorApp, Browser, STRONG, people_app, person, tenant_with,
};
use crate::mfa::set_up_factors;
use crate::on_both_stores;

const ACCOUNT: &str = "/t/mfa-account/account";

/// The recovery codes a page shows.
fn recovery_codes(answer: &Answer) -> Vec<String> {
    answer
        .body
        .split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find('<').unwrap()].to_owned())
        .collect()
}

/// The action of the form whose button reads `button`.
fn action_of(answer: &Answer, button: &str) -> String {
    let at = answer
        .body
        .find(&format!(">{button}</button>"))
        .unwrap_or_else(|| panic!("no {button} in {}", answer.body));
    let form = answer.body[..at].rfind("action=\"").unwrap() + "action=\"".len();
    let rest = &answer.body[form..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn a_person_sets_up_an_authenticator_app_on_the_account_page_and_turns_it_off(store: Store) {
    let app = people_app(store).await;
    let acme = tenant_with(&app, "mfa-account", |_| {}).await;
    person(&app, &acme, "ada@example.com", STRONG, false).await;
    let browser = Browser::new(&app);
    browser
        .signed_in("mfa-account", "ada@example.com", STRONG)
        .await;
    let page = browser.get(ACCOUNT).await;
    assert!(page.body.contains("No authenticator app is set up."));
    let totp = "/t/mfa-account/account/totp";
    let setup = browser.submit(ACCOUNT, totp, &[("step", "begin")]).await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
    assert!(setup.body.contains("<svg"), "the QR code is inline SVG");
    assert!(setup.body.contains(">Secret for manual entry</label>"));
    assert!(setup.body.contains(">Authentication code</label>"));
    assert!(setup.body.contains(">Turn on authenticator app</button>"));
    // A wrong code: a new secret to scan.
    let secret = setup.input_value("totp_secret");
    let (wrong, token) = (AuthenticatorApp::new(&secret).wrong_code(), setup.csrf());
    let again = browser
        .post_form(
            totp,
            &[
                ("step", "confirm"),
                ("code", &wrong),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.body);
    let secret = again.input_value("totp_secret");
    let mut phone = AuthenticatorApp::new(&secret);
    let (code, token) = (phone.code(), again.csrf());
    let done = browser
        .post_form(
            totp,
            &[("step", "confirm"), ("code", &code), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let first_codes = recovery_codes(&done);
    assert_eq!(first_codes.len(), 10, "{}", done.body);
    let page = browser.get(ACCOUNT).await;
    assert!(page.body.contains(">Turn off authenticator app</button>"));
    assert!(
        page.body
            .contains("<span id=\"recovery-codes-left\">10</span>")
    );

    // Signing in again takes a code.
    let later = Browser::with_agent(&app, "later/1");
    let code = phone.next_code(&app).await;
    later
        .signed_in_with_code("mfa-account", "ada@example.com", STRONG, ("code", &code))
        .await;
    // New recovery codes replace the old ones.
    let regenerated = later
        .submit(ACCOUNT, "/t/mfa-account/account/recovery-codes", &[])
        .await;
    assert_eq!(regenerated.status, StatusCode::OK, "{}", regenerated.body);
    let new_codes = recovery_codes(&regenerated);
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !first_codes.contains(c)));
    let third = Browser::with_agent(&app, "third/1");
    third
        .sign_in("mfa-account", "ada@example.com", STRONG)
        .await;
    let step = "/t/mfa-account/login/mfa";
    let old = third
        .submit(step, step, &[("recovery_code", &first_codes[0])])
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{}", old.body);
    let new = third
        .submit(step, step, &[("recovery_code", &new_codes[0])])
        .await;
    assert_eq!(new.status, StatusCode::SEE_OTHER, "{}", new.body);

    // Turned off, the password alone signs in again.
    let off = third
        .submit(ACCOUNT, "/t/mfa-account/account/totp/remove", &[])
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.body);
    assert_eq!(off.location(), format!("{ACCOUNT}?done=totp-off"));
    let page = third.get(ACCOUNT).await;
    assert!(page.body.contains("No authenticator app is set up."));
    Browser::with_agent(&app, "fourth/1")
        .signed_in("mfa-account", "ada@example.com", STRONG)
        .await;
    assert!(app.check_read_models().0);
}
on_both_stores!(a_person_sets_up_an_authenticator_app_on_the_account_page_and_turns_it_off);

async fn a_person_removes_their_passkey_and_nobody_else_can(store: Store) {
    let mut app = people_app(store).await;
    let acme = tenant_with(&app, "mfa-account", |_| {}).await;
    let other = tenant_with(&app, "mfa-account-other", |_| {}).await;
    let ada = person(&app, &acme, "ada@example.com", STRONG, false).await;
    person(&app, &acme, "bob@example.com", STRONG, false).await;
    person(&app, &other, "eve@example.com", STRONG, false).await;
    let factors = set_up_factors(&mut app, &acme, &ada, Some("Ada's laptop")).await;
    let mut phone = AuthenticatorApp::new(&factors.secret);
    let browser = Browser::new(&app);
    let code = phone.next_code(&app).await;
    browser
        .signed_in_with_code("mfa-account", "ada@example.com", STRONG, ("code", &code))
        .await;
    let page = browser.get(ACCOUNT).await;
    assert!(
        page.body.contains("<td>Ada&#x27;s laptop</td>")
            || page.body.contains("<td>Ada&#39;s laptop</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<td>Never</td>"));
    let remove = action_of(&page, "Remove");
    let credential = remove
        .trim_end_matches("/remove")
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // Bob, of the same tenant, and Eve, of another, find no such passkey.
    let bob = Browser::with_agent(&app, "bob/1");
    bob.signed_in("mfa-account", "bob@example.com", STRONG)
        .await;
    let probe = bob.submit(ACCOUNT, &remove, &[]).await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND, "{}", probe.body);
    let eve = Browser::with_agent(&app, "eve/1");
    eve.signed_in("mfa-account-other", "eve@example.com", STRONG)
        .await;
    let theirs = format!("/t/mfa-account-other/account/passkeys/{credential}/remove");
    let probe = eve
        .submit("/t/mfa-account-other/account", &theirs, &[])
        .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND, "{}", probe.body);
    // Eve's session is no session at Ada's tenant: its account forms send her to sign in there.
    let token = eve.get("/t/mfa-account-other/account").await.csrf();
    for form in [
        "/t/mfa-account/account/totp",
        "/t/mfa-account/account/totp/remove",
        "/t/mfa-account/account/recovery-codes",
        remove.as_str(),
    ] {
        let probe = eve.post_form(form, &[("csrf_token", &token)]).await;
        assert_eq!(probe.status, StatusCode::SEE_OTHER, "{form}");
        assert_eq!(probe.location(), "/t/mfa-account/login", "{form}");
    }

    let removed = browser.submit(ACCOUNT, &remove, &[]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    assert_eq!(
        removed.location(),
        format!("{ACCOUNT}?done=passkey-removed")
    );
    let page = browser.get(ACCOUNT).await;
    assert!(page.body.contains("You have no passkeys."));
    let again = browser.submit(ACCOUNT, &remove, &[]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}
on_both_stores!(a_person_removes_their_passkey_and_nobody_else_can);
