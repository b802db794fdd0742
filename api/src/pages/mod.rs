//! Each tenant's hosted pages: `/t/{slug}/login`, `/t/{slug}/logout`, `/t/{slug}/account` and
//! the forced password change, server-rendered from compiled templates (`api/templates/`,
//! askama), working without JavaScript.
//!
//! Every page follows the same rules, enforced here once:
//! - **Headers** on every response of these routes, errors included ([`security_headers`]): a
//!   strict `Content-Security-Policy` (`default-src 'self'`, `frame-ancestors 'none'`,
//!   `form-action 'self'`), `Referrer-Policy: no-referrer`, `Cache-Control: no-store`,
//!   `X-Content-Type-Options: nosniff`.
//! - **Forms** post, carry a CSRF token ([`csrf`]) and answer with 303 to a page (post,
//!   redirect, get); a form with a wrong or missing token changes nothing and gets an HTML
//!   error page. A form whose input is refused is shown again with the error next to its field.
//! - **`return_to`** names a page of the same tenant only ([`safe_return_to`]): no scheme, no
//!   `//`, no backslash, no dot segment; anything else falls back to the account page.
//! - **Who is signed in** is the session cookie ([`cookies`]), looked up in the in-memory
//!   session directory by its keyed hash ([`SignedIn`]).
//!
//! The handlers build small view structs from domain types and render them; templates hold no
//! rule and no query. Labels and button texts are the contract with people and with
//! automation alike ("Email", "Password", "Sign in", "Sign out", ...).
//!
//! # Layout
//! - [`login`]: the sign-in form (and its JSON form for scripts), the forced password change.
//! - [`logout`]: signing out. [`account`]: profile, password, sessions; [`account_mfa`]: its
//!   two-step verification (authenticator app, recovery codes, passkeys); [`account_api_keys`]:
//!   a tenant admin's API keys.
//! - [`second_factor`]: the second step of a sign-in (a code, or setting up an authenticator
//!   app when the tenant requires one).
//! - [`passkeys`]: registering a passkey and signing in with one (JSON routes for
//!   `/assets/passkeys.js`, the pages' only script).
//! - [`invitation`]: an invitation's link: what it offers, and its acceptance (also seed
//!   001's JSON `POST /invite/{token}`).
//! - [`federation`]: "Sign in with {provider}", the upstream's callback and linking an
//!   upstream identity to an existing account (issue 19).
//! - [`connect`]: the page at the end of an OAuth connect flow, seed 004's
//!   `/oauth/callback/{integration}` (issue 20).
//! - [`cookies`], [`csrf`], [`pending`]: the cookies, CSRF tokens, and sign-ins waiting for a
//!   step before their session starts.
//! - [`user_views`]: the user rows the pages show, kept in memory until a user changes.
//! - [`password_reset`]: "Forgot your password?" and the reset link's page;
//!   [`email_verification`]: the address verification link's page.

pub mod account;
pub mod account_api_keys;
pub mod account_mfa;
pub mod connect;
pub mod cookies;
pub mod csrf;
pub mod email_verification;
pub mod federation;
pub mod invitation;
pub mod login;
pub mod logout;
pub mod passkeys;
pub mod password_reset;
pub mod pending;
pub mod second_factor;
pub mod user_views;

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tessera_commands::CommandError;
use tessera_domain::tenant::Tenant;
use tessera_projections::SessionEntry;
use uuid::Uuid;

use crate::state::AppState;

/// The policy every page is served with. `form-action 'self'` keeps a form from posting
/// anywhere else; `frame-ancestors 'none'` keeps the pages out of frames (clickjacking).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/login", get(login::show).post(login::submit))
        .route("/t/{slug}/login/federation/{alias}", get(federation::start))
        .route(
            "/t/{slug}/login/federation/link/{state}",
            get(federation::show_link).post(federation::submit_link),
        )
        .route("/login/callback", get(federation::callback))
        .route("/oauth/callback/{integration}", get(connect::callback))
        .route(
            "/t/{slug}/change-password",
            get(login::show_change).post(login::submit_change),
        )
        .route(
            "/t/{slug}/login/mfa",
            get(second_factor::show).post(second_factor::submit),
        )
        .route(
            "/t/{slug}/login/enroll",
            get(second_factor::show_enroll).post(second_factor::submit_enroll),
        )
        .route("/t/{slug}/logout", get(logout::show).post(logout::submit))
        .route(
            "/t/{slug}/password/forgot",
            get(password_reset::show_forgot).post(password_reset::submit_forgot),
        )
        .route(
            "/t/{slug}/password/reset/{token}",
            get(password_reset::show_reset).post(password_reset::submit_reset),
        )
        .route(
            "/t/{slug}/email/verify/{token}",
            get(email_verification::show).post(email_verification::submit),
        )
        .route(
            "/t/{slug}/email/verified",
            get(email_verification::show_verified),
        )
        .route("/t/{slug}/account", get(account::show))
        .route("/t/{slug}/account/profile", post(account::save_profile))
        .route("/t/{slug}/account/password", post(account::change_password))
        .route(
            "/t/{slug}/account/sessions/{session_id}/sign-out",
            post(account::sign_out_session),
        )
        .route("/t/{slug}/account/totp", post(account_mfa::set_up_totp))
        .route(
            "/t/{slug}/account/totp/remove",
            post(account_mfa::remove_totp),
        )
        .route(
            "/t/{slug}/account/recovery-codes",
            post(account_mfa::regenerate_recovery_codes),
        )
        .route(
            "/t/{slug}/account/passkeys/{credential_id}/remove",
            post(account_mfa::remove_passkey),
        )
        .route(
            "/t/{slug}/account/passkeys/options",
            post(passkeys::register_options),
        )
        .route(
            "/t/{slug}/account/passkeys",
            post(passkeys::register_finish),
        )
        .route(
            "/t/{slug}/login/passkey/options",
            post(passkeys::sign_in_options),
        )
        .route("/t/{slug}/login/passkey", post(passkeys::sign_in_finish))
        .route(
            "/t/{slug}/oauth/authorize",
            get(crate::oauth::authorize::get).post(crate::oauth::authorize::post),
        )
        .route(
            "/t/{slug}/oauth/logout",
            get(crate::oauth::logout::get).post(crate::oauth::logout::post),
        )
        .route(
            "/t/{slug}/oauth/authorize/consent",
            post(crate::oauth::authorize::decide),
        )
        .route(
            "/t/{slug}/account/consents/revoke",
            post(account::revoke_consent),
        )
        .route("/t/{slug}/account/api-keys", post(account_api_keys::create))
        .route(
            "/t/{slug}/account/api-keys/{key_id}/revoke",
            post(account_api_keys::revoke),
        )
        .route(
            "/t/{slug}/invite/{token}",
            get(invitation::show).post(invitation::submit),
        )
        .route("/invite/{token}", post(invitation::submit_without_slug))
        .route("/assets/tessera.css", get(stylesheet))
        .route("/assets/passkeys.js", get(passkeys::script))
        .method_not_allowed_fallback(|| async { PageError::method_not_allowed() })
        .layer(axum::middleware::map_response(security_headers))
}

/// A place besides the server itself that a page's form may end up at through redirects: the
/// origin of a client's registered redirect URI, when the form continues an authorization
/// request. Browsers check `form-action` on every redirect that follows a form's submission,
/// so the sign-in and consent pages name that one origin, and only it (see
/// [`with_form_target`]).
#[derive(Clone, Debug)]
pub struct FormTarget(pub String);

/// `response`, whose forms may also end up at `target` (see [`FormTarget`]).
pub fn with_form_target(mut response: Response, target: Option<String>) -> Response {
    if let Some(target) = target {
        response.extensions_mut().insert(FormTarget(target));
    }
    response
}

/// The headers of every page (see the module's doc).
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let policy = response
        .extensions()
        .get::<FormTarget>()
        .map(|FormTarget(target)| {
            CONTENT_SECURITY_POLICY.replace(
                "form-action 'self'",
                &format!("form-action 'self' {target}"),
            )
        })
        .and_then(|policy| HeaderValue::from_str(&policy).ok())
        .unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    headers.insert(HeaderName::from_static("content-security-policy"), policy);
    set(
        headers,
        HeaderName::from_static("referrer-policy"),
        "no-referrer",
    );
    set(headers, CACHE_CONTROL, "no-store");
    set(
        headers,
        HeaderName::from_static("x-content-type-options"),
        "nosniff",
    );
    set(headers, HeaderName::from_static("x-frame-options"), "DENY");
    response
}

/// The pages' only stylesheet (inline styles are refused by the policy).
async fn stylesheet() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../templates/tessera.css"),
    )
}

/// What every page's layout shows: the tenant's display name, and where its pages live.
#[derive(Clone, Debug)]
pub struct Frame {
    pub tenant_name: String,
    pub slug: String,
    /// The public URL's path (empty at the root), before every link and form action.
    pub base_path: String,
}

impl Frame {
    /// The URL of the tenant's page `page` (`login`, `account`, ...), as links and forms use it.
    pub fn url(&self, page: &str) -> String {
        format!("{}/t/{}/{page}", self.base_path, self.slug)
    }
}

/// The tenant of `/t/{slug}/...`, which must exist and serve (not suspended, frozen or
/// archived): else an HTML 404 or 403.
#[derive(Clone, Debug)]
pub struct PageTenant {
    pub tenant_id: Uuid,
    pub frame: Frame,
}

impl PageTenant {
    pub fn slug(&self) -> &str {
        &self.frame.slug
    }

    /// The account page, where a flow ends unless it says otherwise.
    pub fn home(&self) -> String {
        format!("/t/{}/account", self.frame.slug)
    }
}

impl FromRequestParts<AppState> for PageTenant {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| PageError::not_found())?;
        let slug = params.get("slug").ok_or_else(PageError::not_found)?;
        let known = || {
            state
                .directory
                .tenant_by_slug(slug)
                .and_then(|t| t.tenant.clone())
        };
        let mut tenant = known();
        if !tenant.as_ref().is_some_and(Tenant::serves) {
            // The tenant may have just been created or reactivated through another node.
            state.catch_up().await;
            tenant = known();
        }
        let tenant = tenant.ok_or_else(PageError::not_found)?;
        let frame = Frame {
            tenant_name: tenant.name.clone(),
            slug: tenant.slug.clone(),
            base_path: base_path(&state.public_url).to_owned(),
        };
        if !tenant.serves() {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "Sign-in is not available",
                "This organisation's sign-in is not available at the moment.",
            )
            .framed(&frame));
        }
        Ok(Self {
            tenant_id: tenant.id,
            frame,
        })
    }
}

/// The path of the public URL (`https://id.example.com/auth` → `/auth`; empty at the root).
pub fn base_path(public_url: &str) -> &str {
    public_url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
        .unwrap_or("")
}

/// A person signed in at the page's tenant: their session, found by the cookie's keyed hash.
/// Without one, a page redirects to sign-in (and back afterwards).
pub struct SignedIn {
    pub tenant: PageTenant,
    pub session: Arc<SessionEntry>,
}

impl SignedIn {
    pub fn user_id(&self) -> Uuid {
        self.session.user_id
    }
}

/// The session the request's cookie names at `tenant`, if it is active. A cookie this node
/// does not know is looked for again once the node has caught up with the log: the session
/// may have just started through another node (see [`crate::catch_up`]).
pub async fn current_session(
    state: &AppState,
    tenant: &PageTenant,
    headers: &HeaderMap,
) -> Option<Arc<SessionEntry>> {
    let name = cookies::session_name(tenant.slug(), state.secure_cookies);
    let token = cookies::read(headers, &name)?;
    let hash = state.crypto.session_token_hash(token);
    let lookup = || {
        state
            .sessions
            .lookup(tenant.tenant_id, &hash, state.clock.now())
    };
    if let Some(session) = lookup() {
        return Some(session);
    }
    state.catch_up().await;
    lookup()
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let tenant = PageTenant::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match current_session(state, &tenant, &parts.headers).await {
            Some(session) => Ok(Self { tenant, session }),
            None => {
                let here = safe_return_to(tenant.slug(), Some(parts.uri.path()))
                    .filter(|_| parts.method == axum::http::Method::GET);
                let login = match here {
                    Some(here) => format!(
                        "/t/{}/login?return_to={}",
                        tenant.slug(),
                        form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
                    ),
                    None => format!("/t/{}/login", tenant.slug()),
                };
                Err(see_other(state, &login, Vec::new()))
            }
        }
    }
}

/// Longest query a `return_to` may carry: an authorization request's continuation holds its
/// encoded `redirect_uri` (up to 2,000 characters, three times that encoded), `state` and
/// `nonce` (1 KiB each), and must still fit in the 32 KiB request head once encoded again.
pub const MAX_RETURN_TO_QUERY: usize = 12 * 1024;

/// Keeps `candidate` only if it names a page of the tenant `slug`: `/t/{slug}` or a path under
/// it, made of visible characters, whose path part (before `?`) has no `//`, backslash, dot
/// segment or encoded slash, backslash or dot (which some servers decode), at most 512 bytes,
/// and whose query is at most [`MAX_RETURN_TO_QUERY`] bytes. Everything else (another tenant, another site,
/// `javascript:`) is dropped: no open redirect. The query may hold anything visible (an
/// authorization request's continuation carries its encoded `redirect_uri`): it cannot change
/// which page is reached.
pub fn safe_return_to(slug: &str, candidate: Option<&str>) -> Option<String> {
    let path = candidate?;
    let (route, query) = match path.split_once('?') {
        Some((route, query)) => (route, query),
        None => (path, ""),
    };
    let root = format!("/t/{slug}");
    let under = route == root
        || route
            .strip_prefix(&root)
            .is_some_and(|rest| rest.starts_with('/'));
    let lowered = route.to_ascii_lowercase();
    let clean_route = route.len() <= 512
        && !route.contains("//")
        && !route.contains('\\')
        && !route.contains('#')
        && !["%2f", "%5c", "%2e", "%00"]
            .iter()
            .any(|encoded| lowered.contains(encoded))
        && !route
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    let clean_query = query.len() <= MAX_RETURN_TO_QUERY && !query.contains('\\');
    let visible = !path.bytes().any(|b| !b.is_ascii_graphic());
    (under && clean_route && clean_query && visible).then(|| path.to_owned())
}

/// 303 See Other to the server-relative `path` (`/t/{slug}/...`), under the public URL's path,
/// with `cookies` set.
pub fn see_other(state: &AppState, path: &str, cookies: Vec<HeaderValue>) -> Response {
    let location = format!("{}{path}", base_path(&state.public_url));
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    for cookie in cookies {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

/// Renders `page` with `status`, setting `cookies`.
pub fn render(
    page: &impl Template,
    status: StatusCode,
    cookies: Vec<HeaderValue>,
) -> Result<Response, PageError> {
    let html = page
        .render()
        .map_err(|error| PageError::internal(format!("rendering a page: {error}")))?;
    let mut response = (status, Html(html)).into_response();
    for cookie in cookies {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

/// A form's fields, from an `application/x-www-form-urlencoded` body (the last of a repeated
/// field wins). Any other body is refused with an HTML 415.
pub struct PageForm(pub HashMap<String, String>);

impl PageForm {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// A field, or the empty string.
    pub fn text(&self, field: &str) -> &str {
        self.get(field).unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequest<S> for PageForm {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &S) -> Result<Self, PageError> {
        if !is_form(request.headers()) {
            return Err(PageError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unexpected request",
                "This page takes a form.",
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|_| PageError::bad_request("The form could not be read."))?;
        Ok(Self::parse(&body))
    }
}

/// Whether the request's body is JSON (the scripts' and seed 001's forms of some pages).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether the request's body is a form.
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
}

/// An HTML error page: nothing was changed.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    message: String,
    frame: Option<Frame>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    frame: &'a Frame,
    title: &'a str,
    message: &'a str,
    sign_in: Option<String>,
}

impl PageError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
            frame: None,
        }
    }

    /// Shows the tenant's name (and a link to its sign-in page) on the error page.
    pub fn framed(mut self, frame: &Frame) -> Self {
        self.frame = Some(frame.clone());
        self
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is no such page.",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Unexpected request", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Unexpected request",
            "This page does not take that kind of request.",
        )
    }

    /// A form whose CSRF token is missing or wrong.
    pub fn forged() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was not sent from this site, or it has expired. Nothing was changed: go \
             back, reload the page and try again.",
        )
    }

    pub fn internal(cause: String) -> Self {
        tracing::error!(correlation_id = %crate::correlation::current(), error = %cause, "page failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Something went wrong on our side. Nothing was changed; please try again.",
        )
    }

    pub fn unavailable(cause: String) -> Self {
        tracing::error!(correlation_id = %crate::correlation::current(), error = %cause, "page unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The service is temporarily unavailable. Please try again in a moment.",
        )
    }
}

impl From<CommandError> for PageError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::NotFound { .. } => PageError::not_found(),
            CommandError::Unavailable(cause) => PageError::unavailable(cause),
            CommandError::Concurrency => PageError::unavailable("persistent contention".to_owned()),
            other => PageError::internal(other.to_string()),
        }
    }
}

impl From<crate::error::ApiError> for PageError {
    fn from(error: crate::error::ApiError) -> Self {
        match error {
            crate::error::ApiError::NotFound(_) => PageError::not_found(),
            crate::error::ApiError::Unavailable(cause) => PageError::unavailable(cause),
            other => PageError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let anonymous = Frame {
            tenant_name: "Tessera".to_owned(),
            slug: String::new(),
            base_path: String::new(),
        };
        let frame = self.frame.as_ref().unwrap_or(&anonymous);
        let page = ErrorPage {
            frame,
            title: self.title,
            message: &self.message,
            sign_in: self.frame.as_ref().map(|frame| frame.url("login")),
        };
        match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, self.message).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_names_a_page_of_the_same_tenant_only() {
        let ok = |path: &str| safe_return_to("acme", Some(path));
        for good in [
            "/t/acme",
            "/t/acme/account",
            "/t/acme/account?done=password",
            "/t/acme/oauth/authorize?client_id=a&state=x%20y",
            "/t/acme/oauth/authorize?redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=..",
        ] {
            assert_eq!(ok(good).as_deref(), Some(good), "{good}");
        }
        for bad in [
            "",
            "https://evil.example/t/acme/account",
            "//evil.example/t/acme",
            "/t/acme//evil.example",
            "/\\evil.example",
            "/t/acme\\..\\other",
            "/t/acme/../other/account",
            "/t/acme/./account",
            "/t/acme/%2e%2e/other",
            "/t/acme/%2F%2Fevil.example",
            "/t/acmeevil/account",
            "/t/other/account",
            "javascript:alert(1)",
            "/t/acme/account\r\nSet-Cookie: x=y",
            "/t/acme/ account",
            "t/acme/account",
            "/t/acme/account#//evil.example",
            "/t/acme/account?x=\\evil.example",
        ] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
        assert_eq!(safe_return_to("acme", None), None);
        assert_eq!(ok(&format!("/t/acme/{}", "a".repeat(600))), None);
    }

    #[test]
    fn the_base_path_is_the_public_urls_path() {
        assert_eq!(base_path("http://127.0.0.1:8080"), "");
        assert_eq!(base_path("https://id.example.com/auth"), "/auth");
    }
}
