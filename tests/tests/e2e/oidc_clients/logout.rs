//! RP-Initiated Logout 1.0 at `/t/{slug}/oauth/logout`: an `id_token_hint` of this browser's
//! session signs it out without asking; without one a signed-in person is asked on a
//! confirmation page and goes back to the application's registered
//! post-logout redirect URI with its `state`; a bad request gets an error page, never a
//! redirect, and ends nothing; without a session the browser goes on at once.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::Store;
use crate::http_browser::Browser;
use crate::oidc::{Rp, hidden_fields, rp};
use crate::on_both_stores;

const BYE: &str = "https://photos.example/bye";

/// The relying party with [`BYE`] registered as its post-logout redirect URI.
async fn rp_with_logout(store: Store, slug: &str) -> Rp {
    let rp = rp(store, slug).await;
    let (status, body) = rp
        .app
        .send(
            rp.app
                .admin(
                    Method::PUT,
                    &format!("/v1/tenants/{}/clients/{}", rp.tenant_id, rp.client_id),
                )
                .json(&json!({"post_logout_redirect_uris": [BYE]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    rp
}

fn logout_url(rp: &Rp, pairs: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("/t/{}/oauth/logout?{query}", rp.slug)
}

async fn a_person_confirms_the_applications_sign_out_and_returns_to_it(store: Store) {
    let rp = rp_with_logout(store, "rp-logout").await;
    let browser = rp.signed_in_browser().await;
    let url = logout_url(
        &rp,
        &[
            ("client_id", &rp.client_id),
            ("post_logout_redirect_uri", BYE),
            ("state", "s t&ate"),
        ],
    );
    let page = browser.get(&url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("Photo Album asks you to sign out"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<button type=\"submit\">Sign out</button>")
    );
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(browser.is_signed_in(&rp.slug).await, "asking ends nothing");

    let fields = hidden_fields(&page.body);
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let action = format!("/t/{}/oauth/logout", rp.slug);

    // Without the page's CSRF token, another site cannot sign the person out.
    let forged: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .filter(|(name, _)| *name != "csrf_token")
        .collect();
    let refused = browser.post_form(&action, &forged).await;
    assert!(refused.status.is_client_error(), "{}", refused.status);
    assert!(browser.is_signed_in(&rp.slug).await);

    let confirmed = browser.post_form(&action, &form).await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.body
    );
    assert_eq!(confirmed.location(), format!("{BYE}?state=s+t%26ate"));
    assert!(!browser.is_signed_in(&rp.slug).await, "the session ended");
}
on_both_stores!(a_person_confirms_the_applications_sign_out_and_returns_to_it);

#[tokio::test]
async fn a_bad_logout_request_gets_an_error_page_and_ends_nothing() {
    let rp = rp_with_logout(Store::Embedded, "rp-logout-bad").await;
    let browser = rp.signed_in_browser().await;
    let id = rp.client_id.clone();
    let cases: [Vec<(&str, &str)>; 5] = [
        // An address the application did not register, however close.
        vec![
            ("client_id", &id),
            ("post_logout_redirect_uri", "https://photos.example/bye/"),
        ],
        vec![
            ("client_id", &id),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        // An address without an application to check it against.
        vec![("post_logout_redirect_uri", BYE)],
        vec![
            ("client_id", "no-such-client"),
            ("post_logout_redirect_uri", BYE),
        ],
        // An ID token that is not one of this tenant's.
        vec![
            ("id_token_hint", "eyJhbGciOiJub25lIn0.e30."),
            ("client_id", &id),
        ],
    ];
    for pairs in cases {
        let answer = browser.get(&logout_url(&rp, &pairs)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{pairs:?}: {}",
            answer.body
        );
        assert!(answer.headers.get("location").is_none(), "{pairs:?}");
        assert!(
            answer.body.contains("<html"),
            "an HTML page: {}",
            answer.body
        );
    }
    assert!(browser.is_signed_in(&rp.slug).await);
}

#[tokio::test]
async fn without_a_session_the_browser_goes_on_at_once() {
    let rp = rp_with_logout(Store::Embedded, "rp-logout-none").await;
    let browser = Browser::new(&rp.app);
    let answer = browser
        .get(&logout_url(
            &rp,
            &[
                ("client_id", &rp.client_id),
                ("post_logout_redirect_uri", BYE),
                ("state", "abc"),
            ],
        ))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), format!("{BYE}?state=abc"));
    let answer = browser.get(&logout_url(&rp, &[])).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), format!("/t/{}/login", rp.slug));
}

/// An ID token of the tenant for `claims`, signed with its RS256 key as the token endpoint
/// would sign one: the key is unsealed beside the running server, with its master key, on
/// its PostgreSQL storage (SQLite has one writer, and a restart would change the issuer's
/// port).
async fn id_token(
    app: &crate::helpers::TestServer,
    tenant: &str,
    claims: serde_json::Value,
) -> String {
    use tessera_api::config::{Secret, StorageConfig};
    use tessera_event_schemas::{Event, streams};
    let config = StorageConfig {
        data_dir: app.data_dir().to_owned(),
        database_url: app.database_url().map(|url| Secret::new(url.to_owned())),
        master_key: app
            .database_url()
            .map(|_| Secret::new(crate::helpers::PG_MASTER_KEY.to_owned())),
        wal_limit_mb: 64,
        audit_retention_days: None,
        audit_retention_secs: None,
        log_listen: true,
        tenant_isolation: true,
    };
    let storage = tessera_api::server::open_storage(&config).await.unwrap();
    let tenant_id = uuid::Uuid::parse_str(tenant).unwrap();
    let events = storage
        .log
        .read_stream(streams::tenant(tenant_id).as_str(), 0, 100)
        .await
        .unwrap();
    let key = events
        .iter()
        .find_map(|recorded| match recorded.decode() {
            Ok(Event::SigningKeyAdded(added)) => Some(added.key),
            _ => None,
        })
        .unwrap();
    let signer = storage
        .crypto
        .token_signer(
            tenant_id,
            &key.kid,
            key.alg,
            key.sealed_private_key.expose(),
        )
        .unwrap();
    storage.log.close().await;
    signer.sign(&claims).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_hint_of_this_session_signs_out_without_asking() {
    let rp = rp_with_logout(Store::Postgres, "rp-logout-hint").await;
    let browser = rp.signed_in_browser().await;
    let sid = super::only_session(&rp).await;
    let issuer = rp.app.issuer(&rp.slug);
    let claims = |sid: &str| {
        // Long expired: a hint's expiry is ignored.
        json!({"iss": issuer, "sub": rp.user_id, "aud": rp.client_id, "sid": sid,
            "iat": 1_700_000_000, "exp": 1_700_000_300})
    };
    let this_session = id_token(&rp.app, &rp.tenant_id, claims(&sid)).await;
    let other_session = id_token(&rp.app, &rp.tenant_id, claims("another-session")).await;
    assert!(browser.is_signed_in(&rp.slug).await);

    // A hint of another session: the person is asked.
    let asked = browser
        .get(&logout_url(&rp, &[("id_token_hint", &other_session)]))
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(asked.body.contains("Sign out"));
    assert!(browser.is_signed_in(&rp.slug).await);

    // The hint names the client: no client_id needed for the redirect.
    let answer = browser
        .get(&logout_url(
            &rp,
            &[
                ("id_token_hint", &this_session),
                ("post_logout_redirect_uri", BYE),
                ("state", "x"),
            ],
        ))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), format!("{BYE}?state=x"));
    assert!(!browser.is_signed_in(&rp.slug).await, "the session ended");
}
