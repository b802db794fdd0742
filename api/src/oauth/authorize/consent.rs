//! The consent page: the client's name, what it asks for in words, "Allow" and "Deny".
//!
//! The form carries the authorization request in hidden fields and posts to
//! `/t/{slug}/oauth/authorize/consent`, which validates the request again from scratch, so the
//! page keeps no state on the server (any node can take the answer) and a changed hidden field
//! is only ever a new request, checked like any other. The CSRF token binds the answer to this
//! browser.

use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::request::AuthorizeRequest;
use crate::pages::csrf::Csrf;
use crate::pages::{Frame, PageError, PageTenant, render};
use crate::state::AppState;

/// The consent form's own fields, which are not part of the authorization request.
pub const FORM_FIELDS: &[&str] = &["csrf_token", "decision"];

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    client_name: &'a str,
    /// What the client asks for now, in words.
    asked: Vec<String>,
    /// What the person allowed it before and it asks for again, in words.
    allowed: Vec<String>,
    action: String,
    fields: Vec<(String, String)>,
}

/// A scope in words, for people ("See your email address"). Scopes Tessera does not know are
/// named as they are.
pub fn scope_in_words(scope: &str) -> String {
    match scope {
        "openid" => "Sign you in with your account".to_owned(),
        "profile" => "See your name".to_owned(),
        "email" => "See your email address".to_owned(),
        "offline_access" => "Stay connected when you are not using it".to_owned(),
        other => format!("Use the permission \u{201c}{other}\u{201d}"),
    }
}

/// The page asking the person to allow `asked` (the scopes of `request` not allowed yet, or
/// all of them for `prompt=consent`).
pub fn page(
    state: &AppState,
    tenant: &PageTenant,
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    asked: &[String],
) -> Result<Response, PageError> {
    let csrf = Csrf::of(state, headers)?;
    let page = ConsentPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(state, tenant.slug()),
        client_name: &request.client.client.name,
        asked: asked.iter().map(|scope| scope_in_words(scope)).collect(),
        allowed: request
            .scopes
            .iter()
            .filter(|scope| !asked.contains(scope))
            .map(|scope| scope_in_words(scope))
            .collect(),
        action: tenant.frame.url("oauth/authorize/consent"),
        fields: request.params.without(FORM_FIELDS),
    };
    render(&page, StatusCode::OK, csrf.set_cookie(state))
}
