//! "Forgot your password?" (ADR 0004 §"Password reset"): `GET/POST /t/{slug}/password/forgot`
//! asks for a link by address, `GET/POST /t/{slug}/password/reset/{token}` uses it.
//!
//! The request answers the same page whatever the address (no account enumeration): the
//! command does the same work for every address and says nothing about whether it sent mail.
//! A GET never uses a link: mail scanners follow links, so only the form's POST sets the
//! password. Using the link ends every session of the user; it then shows the sign-in page
//! with a notice and does not sign in (a second factor still applies). A link that does not
//! work gets a page that says why (404 unknown, 410 expired, used or replaced).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_commands::{CommandError, LinkKind};
use tessera_domain::DomainError;
use tessera_domain::user::LinkRefusal;
use tessera_event_schemas::Actor;

use super::csrf::{self, Csrf};
use super::{Frame, PageError, PageForm, PageTenant, render, see_other};
use crate::extract::RequestContext;
use crate::rate_limit::Verdict;
use crate::state::AppState;

/// What the sign-in page says after a reset.
pub const RESET_NOTICE: &str = "Your password has been changed and you were signed out everywhere. Sign in with your new password.";

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    sent: bool,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    action: String,
    error: Option<&'a str>,
}

/// `GET /t/{slug}/password/forgot[?sent=1]`: the form (and, after a request, what happens next).
pub async fn show_forgot(
    State(state): State<AppState>,
    tenant: PageTenant,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, PageError> {
    let sent = uri.query().is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes()).any(|(key, value)| key == "sent" && value == "1")
    });
    let csrf = Csrf::of(&state, &headers)?;
    let page = ForgotPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(&state, tenant.slug()),
        sent,
    };
    render(&page, StatusCode::OK, csrf.set_cookie(&state))
}

/// `POST /t/{slug}/password/forgot`: sends a link if the address is a user's, and answers the
/// same 303 whatever it is.
pub async fn submit_forgot(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    csrf::verify_form(&state, &headers, &tenant, &form)?;
    let email = form.text("email");
    // The sign-in limits count requests too (per address and source, per source), so that the
    // form cannot be used to flood mailboxes or to probe addresses quickly. They apply to every
    // address alike: the refusal says nothing about accounts.
    let source = ctx.source_ip.as_deref().unwrap_or("unknown");
    let account = state.commands.email_hash(tenant.tenant_id, email);
    let verdict = state
        .sign_in_limiter
        .check(account, source, state.clock.now());
    if let Verdict::Limited { .. } = verdict {
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "Too many requests from here. Wait a minute, then try again.",
        )
        .framed(&tenant.frame));
    }
    state
        .commands
        .request_password_reset(ctx.metadata(Actor::system()), tenant.tenant_id, email)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    let next = format!("/t/{}/password/forgot?sent=1", tenant.slug());
    Ok(see_other(&state, &next, Vec::new()))
}

/// `GET /t/{slug}/password/reset/{token}`: the new-password form, if the link works.
pub async fn show_reset(
    State(state): State<AppState>,
    tenant: PageTenant,
    Path((_, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let checked = state
        .commands
        .check_link(tenant.tenant_id, &token, LinkKind::PasswordReset)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    if let Err(refusal) = checked {
        return Err(link_refused(refusal, &tenant, LinkKind::PasswordReset));
    }
    reset_page(&state, &tenant, &headers, &token, None, StatusCode::OK)
}

fn reset_page(
    state: &AppState,
    tenant: &PageTenant,
    headers: &HeaderMap,
    token: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let csrf = Csrf::of(state, headers)?;
    let page = ResetPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(state, tenant.slug()),
        action: tenant.frame.url(&format!("password/reset/{token}")),
        error,
    };
    render(&page, status, csrf.set_cookie(state))
}

/// `POST /t/{slug}/password/reset/{token}`: sets the new password (the tenant's policy and
/// history apply) and ends every session, then shows the sign-in page with a notice.
pub async fn submit_reset(
    State(state): State<AppState>,
    tenant: PageTenant,
    Path((_, token)): Path<(String, String)>,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    csrf::verify_form(&state, &headers, &tenant, &form)?;
    let (new, confirm) = (form.text("new_password"), form.text("confirm_password"));
    let again = |error: &str| {
        reset_page(
            &state,
            &tenant,
            &headers,
            &token,
            Some(error),
            StatusCode::BAD_REQUEST,
        )
    };
    if new != confirm {
        return again("The two passwords are not the same.");
    }
    let meta = ctx.metadata(Actor::system());
    match state
        .commands
        .reset_password(meta, tenant.tenant_id, &token, new)
        .await
    {
        Ok(Ok(outcome)) => {
            state.projected(outcome.position).await?;
            let login = format!("/t/{}/login?notice=password_reset", tenant.slug());
            Ok(see_other(&state, &login, Vec::new()))
        }
        Ok(Err(refusal)) => Err(link_refused(refusal, &tenant, LinkKind::PasswordReset)),
        Err(CommandError::Rejected(DomainError::Validation { message, .. })) => {
            again(&format!("The new password {message}."))
        }
        Err(error) => Err(PageError::from(error).framed(&tenant.frame)),
    }
}

/// The page of a link that does not work, saying why as far as its holder may know: 404 for
/// an unknown link, 410 for one that worked once.
pub fn link_refused(refusal: LinkRefusal, tenant: &PageTenant, kind: LinkKind) -> PageError {
    let (title, again) = match kind {
        LinkKind::PasswordReset => (
            "This reset link does not work",
            "Ask for a new one from the sign-in page (\"Forgot your password?\").",
        ),
        LinkKind::EmailVerification => (
            "This verification link does not work",
            "Ask for a new one from your administrator, or change your address again.",
        ),
    };
    let (status, why) = match refusal {
        LinkRefusal::Unknown => (StatusCode::NOT_FOUND, "This link is not known."),
        LinkRefusal::Expired => (StatusCode::GONE, "This link has expired."),
        LinkRefusal::Used => (StatusCode::GONE, "This link has already been used."),
        LinkRefusal::Replaced => (
            StatusCode::GONE,
            "A newer link was sent since: only the latest one works.",
        ),
        LinkRefusal::Voided => (
            StatusCode::GONE,
            "The address it was sent to has changed since.",
        ),
    };
    PageError::new(status, title, format!("{why} {again}")).framed(&tenant.frame)
}
