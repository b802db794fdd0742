//! `GET`/`POST /t/{slug}/oauth/logout`: RP-Initiated Logout 1.0 (ADR 0003), a hosted page
//! served with the pages' rules (`pages::router` routes it).
//!
//! The request is checked first, and a bad one gets an error page, never a redirect: an
//! `id_token_hint` must verify ([`super::hint`]: the tenant's published keys, its issuer,
//! expiry ignored); a `client_id` must name an active client of the tenant and, with a hint,
//! be one of its audiences (without `client_id`, a hint with one audience names the client);
//! a `post_logout_redirect_uri` needs that client and must be one of its
//! `post_logout_redirect_uris`, compared exactly (no open redirect).
//!
//! Then: without a session there is nothing to end, and the browser goes on at once. With a
//! hint whose `sid` is this browser's session (and whose `sub` is its person), the client
//! proved who it signs out: the session ends (`session.ended {signed_out}`, through the same
//! command as the sign-out page) and the browser goes on. Anything else (no hint, or a hint of
//! another session) gets a confirmation page whose "Sign out" button posts back, with the
//! request in hidden fields and the CSRF token. Going on is a 303 to the redirect URI with
//! `state`, or to the sign-in page when the request named none, the session cookie cleared.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::hint::{self, Hint};
use super::issuer;
use crate::extract::RequestContext;
use crate::pages::csrf::{self, Csrf};
use crate::pages::{
    Frame, PageError, PageForm, PageTenant, cookies, current_session, is_form, logout, render,
};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "oauth_logout.html")]
struct ConfirmPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    /// The application that asked, when the request named one.
    client_name: Option<String>,
    client_id: String,
    post_logout_redirect_uri: String,
    state: String,
}

/// A checked logout request.
struct LogoutRequest {
    hint: Option<Hint>,
    client: Option<(String, String)>,
    /// Where to go on: a registered post-logout redirect URI, with the request's `state`.
    redirect: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// `GET /t/{slug}/oauth/logout`: the request in the query.
pub async fn get(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let params = PageForm::parse(uri.query().unwrap_or_default().as_bytes());
    start(&state, &tenant, &ctx, &headers, &params).await
}

/// `POST /t/{slug}/oauth/logout`: the request as a form, or the confirmation page's "Sign
/// out" (marked `confirm`, with its CSRF token).
pub async fn post(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    if !is_form(&headers) {
        return Err(PageError::bad_request("This page takes a form.").framed(&tenant.frame));
    }
    let form = PageForm::parse(&body);
    if form.get("confirm").is_none() {
        return start(&state, &tenant, &ctx, &headers, &form).await;
    }
    csrf::verify_form(&state, &headers, &tenant, &form)?;
    let request = check(&state, &tenant, &form)?;
    if let Some(session) = current_session(&state, &tenant, &headers).await {
        logout::end(&state, &tenant, &ctx, session.user_id, session.session_id).await?;
    }
    Ok(go_on(&state, &tenant, &request))
}

async fn start(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    headers: &HeaderMap,
    params: &PageForm,
) -> Result<Response, PageError> {
    let request = check(state, tenant, params)?;
    let Some(session) = current_session(state, tenant, headers).await else {
        return Ok(go_on(state, tenant, &request));
    };
    let proven = request.hint.as_ref().is_some_and(|hint| {
        hint.sid.as_deref() == Some(session.session_id.to_string().as_str())
            && hint.sub == session.user_id.to_string()
    });
    if proven {
        logout::end(state, tenant, ctx, session.user_id, session.session_id).await?;
        return Ok(go_on(state, tenant, &request));
    }
    let csrf = Csrf::of(state, headers)?;
    let (client_id, client_name) = match &request.client {
        Some((id, name)) => (id.clone(), Some(name.clone())),
        None => (String::new(), None),
    };
    let page = ConfirmPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(state, tenant.slug()),
        client_name,
        client_id,
        post_logout_redirect_uri: request.post_logout_redirect_uri.clone().unwrap_or_default(),
        state: request.state.clone().unwrap_or_default(),
    };
    render(&page, StatusCode::OK, csrf.set_cookie(state))
}

/// Checks the request's parameters (see the module's doc); a bad one is an error page.
fn check(
    state: &AppState,
    tenant: &PageTenant,
    params: &PageForm,
) -> Result<LogoutRequest, PageError> {
    let refuse = |message: &str| PageError::bad_request(message.to_owned()).framed(&tenant.frame);
    let hint = match params.get("id_token_hint") {
        Some(token) => {
            let tenant_state = state
                .directory
                .tenant(tenant.tenant_id)
                .and_then(|t| t.tenant.clone())
                .ok_or_else(PageError::not_found)?;
            let iss = issuer(state, tenant.slug());
            Some(hint::verify(&tenant_state, &iss, token).ok_or_else(|| {
                refuse("The application's sign-out request carries an ID token that is not valid here.")
            })?)
        }
        None => None,
    };
    let client_id = match (params.get("client_id"), &hint) {
        (Some(id), Some(hint)) if !hint.aud.iter().any(|aud| aud == id) => {
            return Err(refuse(
                "The sign-out request names another application than its ID token.",
            ));
        }
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(hint)) if hint.aud.len() == 1 => hint.aud.first().cloned(),
        (None, _) => None,
    };
    let client = client_id
        .map(|id| {
            state
                .directory
                .client(tenant.tenant_id, &id)
                .filter(|entry| entry.client.active)
                .ok_or_else(|| {
                    refuse("The application that asked to sign you out is not known here.")
                })
        })
        .transpose()?;
    let post_logout_redirect_uri = params.get("post_logout_redirect_uri").map(str::to_owned);
    let redirect = match (&post_logout_redirect_uri, &client) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(refuse(
                "The sign-out request asks to return to an address without naming its application.",
            ));
        }
        (Some(uri), Some(entry)) => {
            if !entry.client.oidc.post_logout_redirect_uris.contains(uri) {
                return Err(refuse(
                    "The sign-out request asks to return to an address its application did not register.",
                ));
            }
            Some(with_state(uri, params.get("state")))
        }
    };
    Ok(LogoutRequest {
        hint,
        client: client.map(|entry| (entry.client.client_id.clone(), entry.client.name.clone())),
        redirect,
        post_logout_redirect_uri,
        state: params.get("state").map(str::to_owned),
    })
}

/// `uri` with `state` added to its query, when there is one.
fn with_state(uri: &str, state: Option<&str>) -> String {
    match state {
        None => uri.to_owned(),
        Some(value) => {
            let separator = if uri.contains('?') { '&' } else { '?' };
            let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            format!("{uri}{separator}state={encoded}")
        }
    }
}

/// 303 to the redirect URI, or to the sign-in page, with the session cookie cleared.
fn go_on(state: &AppState, tenant: &PageTenant, request: &LogoutRequest) -> Response {
    match &request.redirect {
        Some(uri) => {
            // An absolute URI of the client's, not one of ours: no base path before it.
            let name = cookies::session_name(tenant.slug(), state.secure_cookies);
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(uri) {
                response.headers_mut().insert(LOCATION, location);
            }
            response
                .headers_mut()
                .append(SET_COOKIE, cookies::clear(&name, state.secure_cookies));
            response
        }
        None => logout::signed_out(state, tenant),
    }
}

#[cfg(test)]
mod tests {
    use super::with_state;

    #[test]
    fn state_is_added_to_the_redirect_uris_query_encoded() {
        assert_eq!(
            with_state("https://a.example/bye", None),
            "https://a.example/bye"
        );
        assert_eq!(
            with_state("https://a.example/bye", Some("x y&z")),
            "https://a.example/bye?state=x+y%26z"
        );
        assert_eq!(
            with_state("https://a.example/bye?from=app", Some("s")),
            "https://a.example/bye?from=app&state=s"
        );
    }
}
