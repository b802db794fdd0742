//! Passkeys on the hosted pages: registering one from the account page ("Add a passkey") and
//! signing in with one ("Sign in with a passkey", discoverable credentials: no address typed).
//!
//! The browser's side is `/assets/passkeys.js` (the pages' only script, served as a file under
//! the policy's `script-src 'self'`): it posts to a ceremony's start, hands the options to
//! `navigator.credentials.create()` or `.get()`, and posts the answer to its finish. These four
//! routes take and answer JSON only; like the JSON sign-in they need no CSRF token, since a
//! browser sends `application/json` to another site only after a CORS preflight, which this
//! server never grants.
//!
//! A passkey sign-in is a whole sign-in: the session starts with the `amr` the back end decided
//! (`hwk`/`swk`, `user`, and `mfa` when the authenticator verified the person), and it clears a
//! pending password sign-in (the second step's page offers a passkey too). It does not go
//! through the password's lockout: a locked password does not lock out a passkey.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_commands::{CommandError, PasskeyChallenge, person};
use tessera_domain::DomainError;
use tessera_event_schemas::Actor;

use super::login::{note_started, signed_in_json};
use super::{PageError, PageTenant, SignedIn, base_path, safe_return_to};
use crate::extract::RequestContext;
use crate::state::AppState;

/// What a person is told when a passkey does not sign them in or register, whatever the reason.
pub const PASSKEY_FAILURE: &str = "The passkey was not accepted.";

/// What a person hears when their passkey did not verify them and the tenant requires two
/// factors.
pub const MULTI_FACTOR_REQUIRED: &str = "This passkey did not verify you with a PIN or \
    biometric, and this organisation requires two factors: use a passkey that does, or sign in \
    with your password and a code.";

/// The script the pages load.
pub async fn script() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../templates/passkeys.js"),
    )
}

#[derive(Deserialize)]
struct Registration {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Finish {
    ceremony_id: String,
    credential: Value,
    #[serde(default)]
    return_to: Option<String>,
}

fn answer(status: StatusCode, error: &str, message: &str) -> Response {
    (status, Json(json!({ "error": error, "message": message }))).into_response()
}

/// The JSON body, or the answer refusing it.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Box<Response>> {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Box::new(answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "send application/json",
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(answer(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &e.to_string(),
        ))
    })
}

fn challenge(started: PasskeyChallenge) -> Response {
    Json(json!({ "ceremony_id": started.ceremony_id, "options": started.options })).into_response()
}

/// Failures a person may cause (a refused or expired ceremony, passkeys turned off) are told
/// as [`PASSKEY_FAILURE`]; anything else is the server's.
fn refused(error: CommandError, status: StatusCode) -> Result<Response, PageError> {
    match error {
        CommandError::Rejected(_) | CommandError::NotFound { .. } => {
            Ok(answer(status, "passkey_refused", PASSKEY_FAILURE))
        }
        other => Err(other.into()),
    }
}

/// `POST /t/{slug}/account/passkeys/options` `{"name"}`: starts registering a passkey for the
/// signed-in person.
pub async fn register_options(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let request: Registration = match json_body(&headers, &body) {
        Ok(request) => request,
        Err(response) => return Ok(*response),
    };
    let name = match request.name.trim() {
        "" => "Passkey",
        name => name,
    };
    match state
        .commands
        .start_passkey_registration(signed_in.tenant.tenant_id, signed_in.user_id(), name)
        .await
    {
        Ok(started) => Ok(challenge(started)),
        Err(CommandError::Rejected(DomainError::Validation { message, .. })) => Ok(answer(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("The passkey's name {message}."),
        )),
        Err(error) => refused(error, StatusCode::BAD_REQUEST),
    }
}

/// `POST /t/{slug}/account/passkeys` `{"ceremony_id", "credential"}`: registers the passkey the
/// browser made; answers where to go next (the account page).
pub async fn register_finish(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let finish: Finish = match json_body(&headers, &body) {
        Ok(finish) => finish,
        Err(response) => return Ok(*response),
    };
    let tenant = &signed_in.tenant;
    let user_id = signed_in.user_id();
    match state
        .commands
        .finish_passkey_registration(
            ctx.metadata(person(user_id)),
            tenant.tenant_id,
            user_id,
            &finish.ceremony_id,
            finish.credential,
        )
        .await
    {
        Ok(registered) => {
            state.projected(registered.position).await?;
            let location = format!(
                "{}/t/{}/account?done=passkey",
                base_path(&state.public_url),
                tenant.slug()
            );
            Ok(Json(json!({ "registered": true, "location": location })).into_response())
        }
        Err(error) => refused(error, StatusCode::BAD_REQUEST),
    }
}

/// `POST /t/{slug}/login/passkey/options`: starts a passkey sign-in (any passkey of the
/// tenant's people: the browser offers the person theirs).
pub async fn sign_in_options(
    State(state): State<AppState>,
    tenant: PageTenant,
) -> Result<Response, PageError> {
    match state.commands.start_passkey_sign_in(tenant.tenant_id).await {
        Ok(started) => Ok(challenge(started)),
        Err(error) => refused(error, StatusCode::UNAUTHORIZED),
    }
}

/// `POST /t/{slug}/login/passkey` `{"ceremony_id", "credential", "return_to"}`: verifies the
/// browser's answer and starts the session; answers with the session cookie set and where to
/// go next.
pub async fn sign_in_finish(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let finish: Finish = match json_body(&headers, &body) {
        Ok(finish) => finish,
        Err(response) => return Ok(*response),
    };
    // Nobody has proved who they are yet: the server records the attempt.
    let verified = match state
        .commands
        .finish_passkey_sign_in(
            ctx.metadata(Actor::system()),
            tenant.tenant_id,
            &finish.ceremony_id,
            finish.credential,
        )
        .await
    {
        Ok(verified) => verified,
        Err(error) => return refused(error, StatusCode::UNAUTHORIZED),
    };
    // A tenant that requires a second factor takes a passkey only when the authenticator
    // verified the person (a PIN or biometric): possession alone is one factor. This can only
    // happen when an administrator relaxed the WebAuthn policy's `user_verification`.
    let require_mfa = state
        .directory
        .tenant(tenant.tenant_id)
        .and_then(|view| view.tenant.as_ref().map(|t| t.settings.require_mfa))
        .unwrap_or(false);
    if require_mfa && !verified.multi_factor() {
        return Ok(answer(
            StatusCode::UNAUTHORIZED,
            "multi_factor_required",
            MULTI_FACTOR_REQUIRED,
        ));
    }
    let amr = verified.amr.iter().map(|m| (*m).to_owned()).collect();
    let session = match state
        .commands
        .start_session(
            ctx.metadata(person(verified.user_id)),
            tenant.tenant_id,
            verified.user_id,
            amr,
        )
        .await
    {
        Ok((session, _)) => session,
        Err(error) => return refused(error, StatusCode::UNAUTHORIZED),
    };
    note_started(&state, &tenant, &ctx, &session);
    let return_to =
        safe_return_to(tenant.slug(), finish.return_to.as_deref()).unwrap_or_else(|| tenant.home());
    let location = format!("{}{return_to}", base_path(&state.public_url));
    Ok(signed_in_json(&state, &tenant, &session, Some(location)))
}
