//! `/t/{slug}/login`: signing in with an address and a password; and
//! `/t/{slug}/change-password`, the new password a sign-in may require first.
//!
//! `POST /t/{slug}/login` takes the page's form, or a JSON body (`{"email", "password"}`) for
//! scripts and single-page applications, which answers in JSON: 200 with the session cookie
//! set, 401 `invalid_credentials`, 429 `too_many_attempts`. A JSON body needs no CSRF token: a
//! browser sends `application/json` to another site only after a CORS preflight, which this
//! server never grants.
//!
//! A wrong password, an unknown address, a disabled and a locked user get the same page (or
//! the same JSON), with the same status, after the same Argon2 work ([`GENERIC_FAILURE`]); the
//! reason goes to the audit trail only. An attempt over the rate limit gets the same message
//! with 429, before any password is checked.

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tessera_commands::{CommandError, PasswordCredentials, SignInOutcome, StartedSession};
use tessera_domain::DomainError;
use tessera_event_schemas::Actor;
use tessera_event_schemas::events::SignInFailure;
use tessera_projections::SessionEntry;
use uuid::Uuid;

use super::csrf::{self, Csrf};
use super::pending::{PendingSignIn, Step, TTL_SECS};
use super::{
    Frame, PageError, PageForm, PageTenant, cookies, current_session, is_form, render,
    safe_return_to, see_other, with_form_target,
};
use crate::extract::RequestContext;
use crate::oauth::authorize::continuation_target;
use crate::rate_limit::Verdict;
use crate::state::AppState;

/// What a person is told when a sign-in fails, whatever the reason.
pub const GENERIC_FAILURE: &str = "The email address or password is incorrect.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    return_to: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    /// What a flow that ends here says (a password reset).
    notice: Option<&'static str>,
    /// "Sign in with {provider}", one per provider of the tenant (issue 19).
    federation: Vec<super::federation::ProviderButton>,
}

#[derive(Template)]
#[template(path = "change_password.html")]
struct ChangePasswordPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    error: Option<&'a str>,
}

/// The `return_to` of a query string, if it is safe.
fn return_to_of(tenant: &PageTenant, uri: &Uri) -> Option<String> {
    safe_return_to(tenant.slug(), query_param(uri, "return_to").as_deref())
}

/// A query parameter of the sign-in page's URL.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `GET /t/{slug}/login[?return_to=...][&login_hint=...][&prompt=login]`: the form; someone
/// already signed in goes on at once, unless `prompt=login` asks for a new sign-in (the
/// authorization endpoint's `prompt=login` and `max_age`). `login_hint` pre-fills the address.
pub async fn show(
    State(state): State<AppState>,
    tenant: PageTenant,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let return_to = return_to_of(&tenant, &uri).unwrap_or_else(|| tenant.home());
    let again = query_param(&uri, "prompt").as_deref() == Some("login");
    if !again && current_session(&state, &tenant, &headers).await.is_some() {
        return Ok(see_other(&state, &return_to, Vec::new()));
    }
    let hint = query_param(&uri, "login_hint").unwrap_or_default();
    let notice = match query_param(&uri, "notice").as_deref() {
        Some("password_reset") => Some(crate::pages::password_reset::RESET_NOTICE),
        _ => None,
    };
    let csrf = Csrf::of(&state, &headers)?;
    let page = LoginPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(&state, tenant.slug()),
        return_to: &return_to,
        email: &hint,
        error: None,
        notice,
        federation: super::federation::buttons(&state, &tenant, &return_to).await,
    };
    render(&page, StatusCode::OK, csrf.set_cookie(&state))
        .map(|page| with_form_target(page, continuation_target(&state, &tenant, &return_to)))
}

async fn login_page(
    state: &AppState,
    tenant: &PageTenant,
    headers: &HeaderMap,
    return_to: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let csrf = Csrf::of(state, headers)?;
    let page = LoginPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(state, tenant.slug()),
        return_to,
        email,
        error,
        notice: None,
        // After a wrong password the other ways in are still offered.
        federation: super::federation::buttons(state, tenant, return_to).await,
    };
    render(&page, status, csrf.set_cookie(state))
        .map(|page| with_form_target(page, continuation_target(state, tenant, return_to)))
}

/// The JSON form of a sign-in.
#[derive(Deserialize)]
struct JsonCredentials {
    email: String,
    password: String,
}

/// What a sign-in attempt came to, for either form of the endpoint.
enum Attempt {
    SignedIn(StartedSession),
    /// A step before the session: a new password, a second factor, or its enrollment.
    Step {
        user_id: Uuid,
        step: Step,
    },
    Failed,
    Limited,
}

/// `POST /t/{slug}/login`: the form (303 onwards, or the form again with the generic error),
/// or JSON (see the module's doc).
pub async fn submit(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    if super::is_json(&headers) {
        return submit_json(&state, &tenant, &ctx, &body).await;
    }
    if !is_form(&headers) {
        return Err(PageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unexpected request",
            "This page takes a form.",
        )
        .framed(&tenant.frame));
    }
    let form = PageForm::parse(&body);
    csrf::verify_form(&state, &headers, &tenant, &form)?;
    let return_to =
        safe_return_to(tenant.slug(), form.get("return_to")).unwrap_or_else(|| tenant.home());
    let email = form.text("email");
    let failed = |status| {
        login_page(
            &state,
            &tenant,
            &headers,
            &return_to,
            email,
            Some(GENERIC_FAILURE),
            status,
        )
    };
    match attempt(&state, &tenant, &ctx, email, form.text("password")).await? {
        Attempt::SignedIn(session) => Ok(see_other(
            &state,
            &return_to,
            vec![session_cookie(&state, &tenant, &session)],
        )),
        Attempt::Step { user_id, step } => {
            let (cookie, _) = pending(&state, &tenant, user_id, step, &return_to)?;
            Ok(see_other(
                &state,
                &format!("/t/{}/{}", tenant.slug(), step_page(step)),
                vec![cookie],
            ))
        }
        Attempt::Failed => failed(StatusCode::UNAUTHORIZED).await,
        Attempt::Limited => failed(StatusCode::TOO_MANY_REQUESTS).await,
    }
}

async fn submit_json(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    body: &[u8],
) -> Result<Response, PageError> {
    let Ok(credentials) = serde_json::from_slice::<JsonCredentials>(body) else {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "invalid_request",
                "message": "send {\"email\": ..., \"password\": ...}",
            })),
        )
            .into_response());
    };
    let failure = |status, error| {
        (
            status,
            Json(json!({ "error": error, "message": GENERIC_FAILURE })),
        )
            .into_response()
    };
    Ok(
        match attempt(
            state,
            tenant,
            ctx,
            &credentials.email,
            &credentials.password,
        )
        .await?
        {
            Attempt::SignedIn(session) => signed_in_json(state, tenant, &session, None),
            Attempt::Step { user_id, step } => {
                let (cookie, token) = pending(state, tenant, user_id, step, &tenant.home())?;
                let mut answer = json!({
                    "signed_in": false,
                    "next": match step {
                        Step::ChangePassword => "change_password",
                        Step::SecondFactor => "second_factor",
                        Step::EnrollSecondFactor => "enroll_second_factor",
                    },
                    "location": tenant.frame.url(step_page(step)),
                });
                if step == Step::SecondFactor {
                    answer["mfa_required"] = json!(true);
                    answer["pending_token"] = json!(token.as_str());
                }
                let mut response = Json(answer).into_response();
                response
                    .headers_mut()
                    .append(axum::http::header::SET_COOKIE, cookie);
                response
            }
            Attempt::Failed => failure(StatusCode::UNAUTHORIZED, "invalid_credentials"),
            Attempt::Limited => failure(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
        },
    )
}

/// Rate limits, then the sign-in command; a session that started is noted in the session
/// directory at once, so that its cookie works on the very next request.
async fn attempt(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    email: &str,
    password: &str,
) -> Result<Attempt, PageError> {
    let now = state.clock.now();
    let source = ctx.source_ip.as_deref().unwrap_or("unknown");
    let account = state.commands.email_hash(tenant.tenant_id, email);
    // Nobody has proved who they are yet: the server records the attempt.
    let meta = ctx.metadata(Actor::system());
    if let Verdict::Limited { first } = state.sign_in_limiter.check(account, source, now) {
        if first {
            let recorded = state
                .commands
                .record_sign_in_refusal(meta, tenant.tenant_id, email, SignInFailure::RateLimited)
                .await;
            if let Err(error) = recorded {
                tracing::warn!(%error, "recording a rate-limited sign-in failed");
            }
        }
        return Ok(Attempt::Limited);
    }
    let credentials = PasswordCredentials {
        email: email.to_owned(),
        password: password.to_owned(),
    };
    let result = match state
        .commands
        .sign_in_with_password(meta, tenant.tenant_id, &credentials)
        .await
    {
        Ok(result) => result,
        // The user or the tenant went away during the attempt: to the person, a failure.
        Err(CommandError::NotFound { .. } | CommandError::Rejected(_)) => {
            return Ok(Attempt::Failed);
        }
        Err(other) => return Err(other.into()),
    };
    Ok(match result.outcome {
        SignInOutcome::SignedIn(session) => {
            note_started(state, tenant, ctx, &session);
            Attempt::SignedIn(session)
        }
        SignInOutcome::ChangePassword { user_id } => Attempt::Step {
            user_id,
            step: Step::ChangePassword,
        },
        SignInOutcome::SecondFactor { user_id } => Attempt::Step {
            user_id,
            step: Step::SecondFactor,
        },
        SignInOutcome::EnrollSecondFactor { user_id } => Attempt::Step {
            user_id,
            step: Step::EnrollSecondFactor,
        },
        SignInOutcome::Failed(_) => Attempt::Failed,
    })
}

/// The page (under the tenant) where a pending sign-in's `step` is done.
pub(super) fn step_page(step: Step) -> &'static str {
    match step {
        Step::ChangePassword => "change-password",
        Step::SecondFactor => "login/mfa",
        Step::EnrollSecondFactor => "login/enroll",
    }
}

/// Notes a durable `session.started` in the session directory ahead of its fold.
pub(crate) fn note_started(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    session: &StartedSession,
) {
    state.sessions.note_started(
        state.crypto.session_token_hash(&session.token),
        SessionEntry::new(
            session.session_id,
            tenant.tenant_id,
            session.user_id,
            session.amr.clone(),
            session.auth_time,
            ctx.source_ip.clone(),
            ctx.user_agent.clone(),
        ),
    );
}

pub(super) fn session_cookie(
    state: &AppState,
    tenant: &PageTenant,
    session: &StartedSession,
) -> axum::http::HeaderValue {
    cookies::set(
        &cookies::session_name(tenant.slug(), state.secure_cookies),
        &session.token,
        state.secure_cookies,
    )
}

/// Keeps a sign-in waiting for its `step`; returns the cookie that names it, and its value
/// (the JSON form's pending token).
pub(super) fn pending(
    state: &AppState,
    tenant: &PageTenant,
    user_id: Uuid,
    step: Step,
    return_to: &str,
) -> Result<(axum::http::HeaderValue, String), PageError> {
    let value = tessera_crypto::generate_secret()
        .map_err(|error| PageError::internal(error.to_string()))?;
    let now = state.clock.now();
    state.pending_sign_ins.insert(
        state.crypto.session_token_hash(&value),
        PendingSignIn {
            tenant_id: tenant.tenant_id,
            user_id,
            step,
            return_to: return_to.to_owned(),
            expires_at: now.plus_seconds(TTL_SECS),
            failures: 0,
        },
        now,
    );
    let cookie = cookies::set(
        &cookies::pending_name(tenant.slug(), state.secure_cookies),
        &value,
        state.secure_cookies,
    );
    Ok((cookie, value))
}

/// The sign-in of the request's pending cookie (or of `token`, the JSON form's pending token
/// when given), waiting for `step`.
pub(super) fn pending_of(
    state: &AppState,
    tenant: &PageTenant,
    headers: &HeaderMap,
    token: Option<&str>,
    step: Step,
) -> Option<(tessera_event_schemas::Hash32, PendingSignIn)> {
    let name = cookies::pending_name(tenant.slug(), state.secure_cookies);
    let value = token.or_else(|| cookies::read(headers, &name))?;
    let hash = state.crypto.session_token_hash(value);
    let pending = state
        .pending_sign_ins
        .get(&hash, tenant.tenant_id, state.clock.now())
        .filter(|p| p.step == step)?;
    Some((hash, pending))
}

/// `GET /t/{slug}/change-password`: the new password a sign-in requires; without a pending
/// sign-in, back to the sign-in page.
pub async fn show_change(
    State(state): State<AppState>,
    tenant: PageTenant,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some((_, pending)) = pending_of(&state, &tenant, &headers, None, Step::ChangePassword)
    else {
        return Ok(see_other(
            &state,
            &format!("/t/{}/login", tenant.slug()),
            Vec::new(),
        ));
    };
    change_page(
        &state,
        &tenant,
        &headers,
        &pending.return_to,
        None,
        StatusCode::OK,
    )
}

fn change_page(
    state: &AppState,
    tenant: &PageTenant,
    headers: &HeaderMap,
    return_to: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let csrf = Csrf::of(state, headers)?;
    let page = ChangePasswordPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(state, tenant.slug()),
        error,
    };
    render(&page, status, csrf.set_cookie(state))
        .map(|page| with_form_target(page, continuation_target(state, tenant, return_to)))
}

/// `POST /t/{slug}/change-password`: sets the new password (the tenant's policy, history
/// included) and starts the session in one append, then goes where the sign-in was going.
pub async fn submit_change(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    csrf::verify_form(&state, &headers, &tenant, &form)?;
    let Some((hash, pending)) = pending_of(&state, &tenant, &headers, None, Step::ChangePassword)
    else {
        return Ok(see_other(
            &state,
            &format!("/t/{}/login", tenant.slug()),
            Vec::new(),
        ));
    };
    let meta = ctx.metadata(tessera_commands::person(pending.user_id));
    match state
        .commands
        .complete_password_change(
            meta,
            tenant.tenant_id,
            pending.user_id,
            form.text("new_password"),
        )
        .await
    {
        Ok((SignInOutcome::SignedIn(session), _)) => {
            state.pending_sign_ins.remove(&hash);
            Ok(signed_in(
                &state,
                &tenant,
                &ctx,
                &session,
                &pending.return_to,
            ))
        }
        // The new password is set; the second factor (or its enrollment) comes next.
        Ok((SignInOutcome::SecondFactor { .. }, _)) => {
            state.pending_sign_ins.advance(&hash, Step::SecondFactor);
            let page = format!("/t/{}/{}", tenant.slug(), step_page(Step::SecondFactor));
            Ok(see_other(&state, &page, Vec::new()))
        }
        Ok((SignInOutcome::EnrollSecondFactor { .. }, _)) => {
            state
                .pending_sign_ins
                .advance(&hash, Step::EnrollSecondFactor);
            let page = format!(
                "/t/{}/{}",
                tenant.slug(),
                step_page(Step::EnrollSecondFactor)
            );
            Ok(see_other(&state, &page, Vec::new()))
        }
        Ok((other, _)) => Err(PageError::internal(format!(
            "unexpected outcome of a password change: {other:?}"
        ))),
        Err(CommandError::Rejected(DomainError::Validation { message, .. })) => {
            let error = format!("The new password {message}.");
            change_page(
                &state,
                &tenant,
                &headers,
                &pending.return_to,
                Some(&error),
                StatusCode::BAD_REQUEST,
            )
        }
        Err(other) => Err(PageError::from(other).framed(&tenant.frame)),
    }
}

/// The answer once a pending sign-in's session started: noted in the session directory, its
/// cookie set, the pending cookie cleared, and on to where the sign-in was going.
pub(super) fn signed_in(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    session: &StartedSession,
    return_to: &str,
) -> Response {
    note_started(state, tenant, ctx, session);
    see_other(state, return_to, signed_in_cookies(state, tenant, session))
}

/// The session's cookie, and the pending cookie cleared.
pub(super) fn signed_in_cookies(
    state: &AppState,
    tenant: &PageTenant,
    session: &StartedSession,
) -> Vec<axum::http::HeaderValue> {
    let pending_cookie = cookies::pending_name(tenant.slug(), state.secure_cookies);
    vec![
        session_cookie(state, tenant, session),
        cookies::clear(&pending_cookie, state.secure_cookies),
    ]
}

/// The JSON answer once a session started (`location`: where a page goes next, for the passkey
/// script), with the session's cookie set and the pending cookie cleared.
pub(super) fn signed_in_json(
    state: &AppState,
    tenant: &PageTenant,
    session: &StartedSession,
    location: Option<String>,
) -> Response {
    let mut answer = json!({
        "signed_in": true,
        "user_id": session.user_id,
        "session_id": session.session_id,
        "amr": session.amr,
        "auth_time": session.auth_time.to_rfc3339(),
    });
    if let Some(location) = location {
        answer["location"] = json!(location);
    }
    let mut response = Json(answer).into_response();
    for cookie in signed_in_cookies(state, tenant, session) {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, cookie);
    }
    response
}
