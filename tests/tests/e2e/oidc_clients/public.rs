//! Public clients: registered without a secret, listed as `token_endpoint_auth_method: none`,
//! and identified at the token endpoint by `client_id` alone for the code and refresh grants,
//! and nowhere else.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{register, tenant_id, web_app};
use crate::helpers::{Store, TestServer, spawn_app};
use crate::on_both_stores;

/// Posts a form to `/t/{slug}/oauth/{endpoint}` without any Authorization header.
async fn post_form(
    app: &TestServer,
    slug: &str,
    endpoint: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let url = format!("{}/oauth/{endpoint}", app.issuer(slug));
    app.send(app.client.post(url).form(form)).await
}

async fn a_public_client_is_identified_by_its_client_id_for_the_code_and_refresh_grants(
    store: Store,
) {
    let app = spawn_app(store).await;
    let tenant = tenant_id(&app, "public").await;
    let (status, created) = register(&app, &tenant, web_app("public")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created.get("client_secret").is_none(), "{created}");
    let public = created["client"]["client_id"].as_str().unwrap().to_owned();
    let (_, created) = register(&app, &tenant, web_app("confidential")).await;
    let confidential = created["client"]["client_id"].as_str().unwrap().to_owned();

    let (_, page) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant}/clients")))
        .await;
    let listed = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == public.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["client_type"], "public");
    assert_eq!(listed["token_endpoint_auth_method"], "none");

    // The public client gets past client authentication: the code and the refresh token are
    // what is refused, with invalid_grant (a code exchange carries the PKCE verifier a public
    // client must send).
    let verifier = "a-verifier-of-forty-three-characters-or-more-0123";
    for (grant, field) in [
        ("authorization_code", "code"),
        ("refresh_token", "refresh_token"),
    ] {
        let (status, body) = post_form(
            &app,
            "public",
            "token",
            &[
                ("grant_type", grant),
                ("client_id", &public),
                (field, "not-a-real-one"),
                ("code_verifier", verifier),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{grant}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{grant}: {body}");
    }

    // Everywhere else a bare client id is no authentication: a confidential client's, an
    // unknown one, the public client's at client credentials or introspection.
    let refusals: [(&str, Vec<(&str, &str)>); 4] = [
        (
            "token",
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", &confidential),
                ("code", "x"),
            ],
        ),
        (
            "token",
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", "no-such-client"),
                ("code", "x"),
            ],
        ),
        (
            "token",
            vec![("grant_type", "client_credentials"), ("client_id", &public)],
        ),
        ("introspect", vec![("token", "x"), ("client_id", &public)]),
    ];
    for (endpoint, form) in refusals {
        let (status, body) = post_form(&app, "public", endpoint, &form).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{endpoint} {form:?}: {body}"
        );
        assert_eq!(body["error"], "invalid_client", "{body}");
    }
}
on_both_stores!(a_public_client_is_identified_by_its_client_id_for_the_code_and_refresh_grants);
