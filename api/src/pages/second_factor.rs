//! The second step of a sign-in: `/t/{slug}/login/mfa`, a code of the person's authenticator
//! app or one of their recovery codes; and `/t/{slug}/login/enroll`, setting up an
//! authenticator app when the tenant requires a second factor and the person has none.
//!
//! Both follow a right password (the pending sign-in of [`super::pending`], step
//! `SecondFactor` or `EnrollSecondFactor`); the session starts only once the step is done,
//! with `amr` `["pwd", "otp", "mfa"]` (RFC 8176: a one-time password, recovery codes
//! included, after the password: multiple factors).
//!
//! `POST /t/{slug}/login/mfa` also takes JSON, `{"code"}` or `{"recovery_code"}`, with the
//! `pending_token` the JSON sign-in answered (or its pending cookie): 200 with the session
//! cookie set, 401 `invalid_code`. A wrong code and a replayed one (its time step already used,
//! decided in the append) get the same answer; after [`super::pending::MAX_CODE_FAILURES`] wrong codes the
//! pending sign-in is forgotten and the password must be given again.

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tessera_commands::{CommandError, SecondFactorVerified, StartedSession, person};
use tessera_event_schemas::Hash32;
use uuid::Uuid;

use super::csrf::{self, Csrf};
use super::login::{pending_of, signed_in, signed_in_cookies, signed_in_json};
use super::pending::{PendingSignIn, Step};
use super::{Frame, PageError, PageForm, PageTenant, is_form, render, see_other, with_form_target};
use crate::extract::RequestContext;
use crate::oauth::authorize::continuation_target;
use crate::state::AppState;

/// What a person is told when a code does not verify, whatever the reason.
pub const CODE_FAILURE: &str = "The code is incorrect or was already used.";

/// The methods of a session started after a password and a one-time password.
fn amr_after_password(verified: &[&str]) -> Vec<String> {
    let mut amr = vec!["pwd".to_owned()];
    amr.extend(verified.iter().map(|m| (*m).to_owned()));
    amr.push("mfa".to_owned());
    amr
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct CodePage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    totp: bool,
    /// The person has a passkey: the page offers it too.
    passkeys: bool,
    return_to: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "enroll_second_factor.html")]
struct EnrollPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
}

/// Setting up an authenticator app (here and on the account page).
#[derive(Template)]
#[template(path = "totp_setup.html")]
pub(super) struct TotpSetupPage<'a> {
    pub frame: &'a Frame,
    pub csrf_token: String,
    pub action: String,
    pub qr_svg: String,
    pub secret: String,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// The recovery codes, shown once (here and on the account page).
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(super) struct RecoveryCodesPage<'a> {
    pub frame: &'a Frame,
    pub codes: Vec<String>,
    /// Where "Continue" goes (a URL under the public URL).
    pub next: String,
}

fn to_login(state: &AppState, tenant: &PageTenant) -> Response {
    see_other(state, &format!("/t/{}/login", tenant.slug()), Vec::new())
}

/// `GET /t/{slug}/login/mfa`.
pub async fn show(
    State(state): State<AppState>,
    tenant: PageTenant,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some((_, pending)) = pending_of(&state, &tenant, &headers, None, Step::SecondFactor) else {
        return Ok(to_login(&state, &tenant));
    };
    code_page(&state, &tenant, &headers, &pending, None, StatusCode::OK).await
}

async fn code_page(
    state: &AppState,
    tenant: &PageTenant,
    headers: &HeaderMap,
    pending: &PendingSignIn,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let factors = state
        .commands
        .second_factors(tenant.tenant_id, pending.user_id)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    let csrf = Csrf::of(state, headers)?;
    let page = CodePage {
        frame: &tenant.frame,
        csrf_token: csrf.token(state, tenant.slug()),
        totp: factors.totp,
        passkeys: factors.passkeys > 0,
        return_to: &pending.return_to,
        error,
    };
    render(&page, status, csrf.set_cookie(state))
        .map(|page| with_form_target(page, continuation_target(state, tenant, &pending.return_to)))
}

/// The JSON form of the second step.
#[derive(Deserialize)]
struct JsonCode {
    pending_token: Option<String>,
    code: Option<String>,
    recovery_code: Option<String>,
}

/// A code as sent: from the authenticator app, or a recovery code.
enum Code<'a> {
    Totp(&'a str),
    Recovery(&'a str),
}

/// What verifying a code came to.
enum Verified {
    SignedIn(StartedSession),
    /// Wrong or replayed; whether the sign-in is still pending.
    Failed {
        pending: bool,
    },
}

/// `POST /t/{slug}/login/mfa`: the form (303 onwards, or the page again with the error), or
/// JSON (see the module's doc).
pub async fn submit(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    if !is_form(&headers) {
        return submit_json(&state, &tenant, &ctx, &headers, &body).await;
    }
    let form = PageForm::parse(&body);
    csrf::verify_form(&state, &headers, &tenant, &form)?;
    let Some((hash, pending)) = pending_of(&state, &tenant, &headers, None, Step::SecondFactor)
    else {
        return Ok(to_login(&state, &tenant));
    };
    let code = match form.get("recovery_code").filter(|c| !c.trim().is_empty()) {
        Some(recovery) => Code::Recovery(recovery),
        None => Code::Totp(form.text("code")),
    };
    match verify(&state, &tenant, &ctx, hash, &pending, code).await? {
        Verified::SignedIn(session) => Ok(signed_in(
            &state,
            &tenant,
            &ctx,
            &session,
            &pending.return_to,
        )),
        Verified::Failed { pending: true } => {
            code_page(
                &state,
                &tenant,
                &headers,
                &pending,
                Some(CODE_FAILURE),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Verified::Failed { pending: false } => Ok(to_login(&state, &tenant)),
    }
}

async fn submit_json(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, PageError> {
    let bad_request = |message: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_request", "message": message })),
        )
            .into_response()
    };
    let Ok(sent) = serde_json::from_slice::<JsonCode>(body) else {
        return Ok(bad_request(
            "send {\"pending_token\": ..., \"code\": ...} or {..., \"recovery_code\": ...}",
        ));
    };
    let code = match (&sent.code, &sent.recovery_code) {
        (Some(code), None) => Code::Totp(code),
        (None, Some(recovery)) => Code::Recovery(recovery),
        _ => return Ok(bad_request("send one of code and recovery_code")),
    };
    let token = sent.pending_token.as_deref();
    let Some((hash, pending)) = pending_of(state, tenant, headers, token, Step::SecondFactor)
    else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "error": "no_pending_sign_in",
                "message": "Sign in with your password first.",
            })),
        )
            .into_response());
    };
    Ok(
        match verify(state, tenant, ctx, hash, &pending, code).await? {
            Verified::SignedIn(session) => {
                super::login::note_started(state, tenant, ctx, &session);
                signed_in_json(state, tenant, &session, None)
            }
            Verified::Failed { pending } => (
                StatusCode::UNAUTHORIZED,
                Json(json!({
                    "error": "invalid_code",
                    "message": CODE_FAILURE,
                    "pending": pending,
                })),
            )
                .into_response(),
        },
    )
}

/// Verifies `code` for the pending sign-in and, when it verifies, starts the session (the
/// pending sign-in is then done). A wrong code counts against the pending sign-in.
async fn verify(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    hash: Hash32,
    pending: &PendingSignIn,
    code: Code<'_>,
) -> Result<Verified, PageError> {
    let meta = ctx.metadata(person(pending.user_id));
    let (tenant_id, user_id) = (tenant.tenant_id, pending.user_id);
    let verified = match code {
        Code::Totp(code) => {
            state
                .commands
                .verify_totp(meta.clone(), tenant_id, user_id, code.trim())
                .await
        }
        Code::Recovery(code) => {
            state
                .commands
                .use_recovery_code(meta.clone(), tenant_id, user_id, code.trim())
                .await
        }
    };
    let verified: SecondFactorVerified = match verified {
        Ok(verified) => verified,
        Err(CommandError::Rejected(_) | CommandError::NotFound { .. }) => {
            return Ok(Verified::Failed {
                pending: state.pending_sign_ins.fail(&hash),
            });
        }
        Err(other) => return Err(PageError::from(other).framed(&tenant.frame)),
    };
    start(state, tenant, meta, hash, user_id, &verified.amr).await
}

/// Starts the session of a pending sign-in whose second step is done.
async fn start(
    state: &AppState,
    tenant: &PageTenant,
    meta: tessera_event_schemas::EventMetadata,
    hash: Hash32,
    user_id: Uuid,
    verified: &[&str],
) -> Result<Verified, PageError> {
    match state
        .commands
        .start_session(
            meta,
            tenant.tenant_id,
            user_id,
            amr_after_password(verified),
        )
        .await
    {
        Ok((session, _)) => {
            state.pending_sign_ins.remove(&hash);
            Ok(Verified::SignedIn(session))
        }
        // Disabled meanwhile: to the person, a failure.
        Err(CommandError::Rejected(_) | CommandError::NotFound { .. }) => {
            state.pending_sign_ins.remove(&hash);
            Ok(Verified::Failed { pending: false })
        }
        Err(other) => Err(PageError::from(other).framed(&tenant.frame)),
    }
}

/// `GET /t/{slug}/login/enroll`.
pub async fn show_enroll(
    State(state): State<AppState>,
    tenant: PageTenant,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if pending_of(&state, &tenant, &headers, None, Step::EnrollSecondFactor).is_none() {
        return Ok(to_login(&state, &tenant));
    }
    let csrf = Csrf::of(&state, &headers)?;
    let page = EnrollPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(&state, tenant.slug()),
    };
    render(&page, StatusCode::OK, csrf.set_cookie(&state))
}

/// `POST /t/{slug}/login/enroll`: `step=begin` shows a new secret; `step=confirm` with a code
/// of it turns the app on, starts the session and shows the recovery codes once.
pub async fn submit_enroll(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    csrf::verify_form(&state, &headers, &tenant, &form)?;
    let Some((hash, pending)) =
        pending_of(&state, &tenant, &headers, None, Step::EnrollSecondFactor)
    else {
        return Ok(to_login(&state, &tenant));
    };
    let meta = ctx.metadata(person(pending.user_id));
    let (tenant_id, user_id) = (tenant.tenant_id, pending.user_id);
    let action = tenant.frame.url("login/enroll");
    if form.get("step") != Some("confirm") {
        return setup_page(&state, &tenant, &headers, meta, user_id, action, None).await;
    }
    let codes = match state
        .commands
        .confirm_totp_enrollment(meta.clone(), tenant_id, user_id, form.text("code").trim())
        .await
    {
        Ok(codes) => codes,
        Err(CommandError::Rejected(_)) => {
            if !state.pending_sign_ins.fail(&hash) {
                return Ok(to_login(&state, &tenant));
            }
            return setup_page(
                &state,
                &tenant,
                &headers,
                meta,
                user_id,
                action,
                Some(ENROLL_FAILURE),
            )
            .await;
        }
        Err(other) => return Err(PageError::from(other).framed(&tenant.frame)),
    };
    let session = match start(&state, &tenant, meta, hash, user_id, &["otp"]).await? {
        Verified::SignedIn(session) => session,
        Verified::Failed { .. } => return Ok(to_login(&state, &tenant)),
    };
    super::login::note_started(&state, &tenant, &ctx, &session);
    let page = RecoveryCodesPage {
        frame: &tenant.frame,
        codes: codes.codes.iter().map(|c| c.to_string()).collect(),
        next: format!(
            "{}{}",
            super::base_path(&state.public_url),
            pending.return_to
        ),
    };
    render(
        &page,
        StatusCode::OK,
        signed_in_cookies(&state, &tenant, &session),
    )
}

/// Told when the code confirming a new authenticator app does not match: the app must be set
/// up again, since the secret is never shown twice.
pub(super) const ENROLL_FAILURE: &str =
    "The code did not match. Remove the entry from your app, scan this new code and try again.";

/// A fresh secret for the person's authenticator app, and the form confirming it, posting to
/// `action`.
pub(super) async fn setup_page(
    state: &AppState,
    tenant: &PageTenant,
    headers: &HeaderMap,
    meta: tessera_event_schemas::EventMetadata,
    user_id: Uuid,
    action: String,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let enrollment = state
        .commands
        .begin_totp_enrollment(meta, tenant.tenant_id, user_id)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    let csrf = Csrf::of(state, headers)?;
    let page = TotpSetupPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(state, tenant.slug()),
        action,
        qr_svg: enrollment.qr_svg,
        secret: enrollment.secret_base32.to_string(),
        notice: None,
        error,
    };
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    render(&page, status, csrf.set_cookie(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_after_the_password_is_multi_factor() {
        assert_eq!(amr_after_password(&["otp"]), ["pwd", "otp", "mfa"]);
    }
}
