//! `/t/{slug}/invite/{token}`: the page an invitation's link opens, and its acceptance.
//!
//! A GET never uses the link (mail scanners follow links): it shows what the link is worth.
//! A usable link for an address nobody holds offers "Set password" and "Add a passkey" (which
//! accepts without a password and continues to the account page, where passkeys are added),
//! and "Sign in with {provider}" for each upstream provider of the tenant (issue 19: the first
//! federated sign-in makes the account, linked by the upstream's subject, and comes back here
//! to "Accept invitation" when that account holds the invited address);
//! for an address that has an account, the person signs in first and comes back to "Accept
//! invitation"; signed in as someone else, they are told so. An unknown link is a 404 page,
//! an expired, revoked, replaced or used one a 410 page that says which: never a 500.
//!
//! The POST accepts (CSRF token, 303 to the account page with a session started). It also
//! takes a JSON body, seed 001's `POST /invite/{token}` (`{"password": ..., "name": ...}`),
//! answering JSON; the slug-less `POST /invite/{token}` finds the tenant from the invitations
//! read model and does the same.

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tessera_commands::{Acceptance, Accepted, CommandError, InvitationOffer, StartedSession};
use tessera_crypto::LinkSecrets;
use tessera_domain::DomainError;
use tessera_domain::invitation::LinkState;

use super::csrf::{self, Csrf};
use super::login::{pending, signed_in, signed_in_cookies, step_page};
use super::pending::Step;
use super::{
    Frame, PageError, PageForm, PageTenant, base_path, current_session, is_form, is_json, render,
};
use crate::extract::RequestContext;
use crate::state::AppState;

/// What the page offers, by who holds the address and who is signed in.
enum Mode {
    NewAccount,
    SignInFirst,
    Accept,
    OtherAccount,
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    action: String,
    sign_in: String,
    email: String,
    name: String,
    roles: String,
    message: Option<String>,
    error: Option<String>,
    mode: Mode,
    /// The tenant allows passkeys: "Add a passkey" is offered.
    passkeys: bool,
    /// "Sign in with {provider}" for each of the tenant's upstream providers (issue 19),
    /// coming back to this page.
    federation: Vec<super::federation::ProviderButton>,
}

/// Seed 001's JSON acceptance.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonAcceptance {
    password: Option<String>,
    name: Option<String>,
}

/// The page of a link that cannot be used, saying why (as far as its holder may know).
fn unusable(frame: &Frame, state: Option<LinkState>) -> PageError {
    let (status, title, message) = match state {
        None => (
            StatusCode::NOT_FOUND,
            "Invitation not found",
            "This invitation link is not valid. Check that you copied the whole link, or ask \
             for a new invitation.",
        ),
        Some(LinkState::Expired) => (
            StatusCode::GONE,
            "This invitation has expired",
            "The link's time ran out. Ask the person who invited you to send it again.",
        ),
        Some(LinkState::Revoked) => (
            StatusCode::GONE,
            "This invitation was withdrawn",
            "The invitation was revoked and can no longer be accepted.",
        ),
        Some(LinkState::Used) => (
            StatusCode::GONE,
            "This invitation was already accepted",
            "The invitation was accepted already. Sign in to your account instead.",
        ),
        Some(LinkState::Replaced | LinkState::Usable) => (
            StatusCode::GONE,
            "This link was replaced",
            "A newer invitation link was sent: use the link in the most recent mail.",
        ),
    };
    PageError::new(status, title, message).framed(frame)
}

/// The offer of a usable link, or the page that says why there is none.
async fn usable_offer(
    state: &AppState,
    tenant: &PageTenant,
    token: &str,
) -> Result<InvitationOffer, PageError> {
    let offer = state
        .commands
        .invitation_offer(tenant.tenant_id, token)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    match offer {
        None => Err(unusable(&tenant.frame, None)),
        Some(offer) if offer.state != LinkState::Usable => {
            Err(unusable(&tenant.frame, Some(offer.state)))
        }
        Some(offer) => Ok(offer),
    }
}

/// `GET /t/{slug}/invite/{token}`: what the link offers. Uses nothing.
pub async fn show(
    State(state): State<AppState>,
    tenant: PageTenant,
    Path((_, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let offer = usable_offer(&state, &tenant, &token).await?;
    page(
        &state,
        &tenant,
        &headers,
        &token,
        &offer,
        None,
        StatusCode::OK,
    )
    .await
}

/// Whether the tenant's WebAuthn policy allows passkeys.
async fn passkeys_allowed(state: &AppState, tenant: &PageTenant) -> Result<bool, PageError> {
    let policy = state
        .commands
        .webauthn_policy(tenant.tenant_id)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    Ok(policy.enabled)
}

async fn page(
    state: &AppState,
    tenant: &PageTenant,
    headers: &HeaderMap,
    token: &str,
    offer: &InvitationOffer,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let here = format!("/t/{}/invite/{token}", tenant.slug());
    let signed_in = current_session(state, tenant, headers)
        .await
        .map(|session| session.user_id);
    let mode = match (offer.existing_user, signed_in) {
        (None, _) => Mode::NewAccount,
        (Some(holder), Some(user)) if holder == user => Mode::Accept,
        (Some(_), Some(_)) => Mode::OtherAccount,
        (Some(_), None) => Mode::SignInFirst,
    };
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let email = offer.email.clone().unwrap_or_default();
    let passkeys = passkeys_allowed(state, tenant).await?;
    // Joining through the tenant's upstream provider: a first sign-in there makes an account
    // linked by the upstream's subject (never by address); back here, the invitation is
    // accepted only if that account holds the invited address (Mode::Accept), else the page
    // says the invitation is for someone else. An address that already has an account here
    // goes through "Sign in to accept", whose page offers the same buttons.
    let federation = match mode {
        Mode::NewAccount => super::federation::buttons(state, tenant, &here).await,
        _ => Vec::new(),
    };
    let csrf = Csrf::of(state, headers)?;
    let view = InvitationPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(state, tenant.slug()),
        action: format!("{}{here}", tenant.frame.base_path),
        sign_in: format!(
            "{}?return_to={}&login_hint={}",
            tenant.frame.url("login"),
            encode(&here),
            encode(&email)
        ),
        name: offer.name.clone().unwrap_or_default(),
        roles: offer.roles.join(", "),
        message: offer.message.clone(),
        email,
        error,
        mode,
        passkeys,
        federation,
    };
    render(&view, status, csrf.set_cookie(state))
}

/// `POST /t/{slug}/invite/{token}`: accepts, from the page's forms or as seed 001's JSON.
pub async fn submit(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    Path((_, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    if is_json(&headers) {
        return Ok(submit_json(&state, &tenant, &ctx, &headers, &token, &body).await);
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
    let offer = usable_offer(&state, &tenant, &token).await?;
    // The page again, with `error` next to its forms.
    let again = |error: &str, status| {
        page(
            &state,
            &tenant,
            &headers,
            &token,
            &offer,
            Some(error.to_owned()),
            status,
        )
    };
    let name = form.get("name").map(str::to_owned);
    let (who, amr) = match form.text("choice") {
        "password" => {
            let password = form.text("password");
            if password != form.text("password_confirmation") {
                return again(
                    "The two passwords differ: type the same password twice.",
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
            let who = Acceptance::NewUser {
                password: Some(password.to_owned()),
                name,
            };
            (who, "pwd")
        }
        "passkey" if passkeys_allowed(&state, &tenant).await? => (
            Acceptance::NewUser {
                password: None,
                name,
            },
            "email",
        ),
        "accept" => match current_session(&state, &tenant, &headers).await {
            Some(session) if offer.existing_user == Some(session.user_id) => (
                Acceptance::SignedIn {
                    user_id: session.user_id,
                },
                "",
            ),
            _ => {
                return again(
                    "Sign in with the invited account to accept.",
                    StatusCode::FORBIDDEN,
                )
                .await;
            }
        },
        _ => return Err(PageError::bad_request("Choose how to accept.").framed(&tenant.frame)),
    };
    let created_user = matches!(who, Acceptance::NewUser { .. });
    match accept(&state, &tenant, &ctx, &token, who).await {
        Ok(accepted) if created_user => {
            if must_enroll(&state, &tenant, &accepted).await? {
                // The tenant requires a second factor before any session: the new person
                // sets one up first, as a sign-in would make them.
                let (cookie, _) = pending(
                    &state,
                    &tenant,
                    accepted.user_id,
                    Step::EnrollSecondFactor,
                    &tenant.home(),
                )?;
                let enroll = format!(
                    "/t/{}/{}",
                    tenant.slug(),
                    step_page(Step::EnrollSecondFactor)
                );
                return Ok(super::see_other(&state, &enroll, vec![cookie]));
            }
            let session = start(&state, &tenant, &ctx, &accepted, amr).await?;
            Ok(signed_in(&state, &tenant, &ctx, &session, &tenant.home()))
        }
        Ok(_) => Ok(super::see_other(&state, &tenant.home(), Vec::new())),
        Err(Refusal::Invalid(message)) => again(&message, StatusCode::BAD_REQUEST).await,
        Err(Refusal::HasAccount) => {
            again(
                "An account with this address exists: sign in to accept.",
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(Refusal::Unusable) => {
            // Accepted, resent or revoked in between: say what the link is worth now.
            Err(usable_offer(&state, &tenant, &token)
                .await
                .err()
                .unwrap_or_else(|| unusable(&tenant.frame, Some(LinkState::Used))))
        }
        Err(Refusal::Failed(error)) => Err(error.framed(&tenant.frame)),
    }
}

/// Why an acceptance was refused.
enum Refusal {
    /// A field (the password, the name) was refused: the message says why.
    Invalid(String),
    /// The address has an account: its owner signs in first.
    HasAccount,
    /// The link cannot be used (any more).
    Unusable,
    Failed(PageError),
}

async fn accept(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    token: &str,
    who: Acceptance,
) -> Result<Accepted, Refusal> {
    let actor = match &who {
        Acceptance::SignedIn { user_id } => tessera_commands::person(*user_id),
        Acceptance::NewUser { .. } => tessera_event_schemas::Actor {
            kind: tessera_event_schemas::ActorKind::System,
            id: "invitation".to_owned(),
            name: None,
        },
    };
    let accepted = state
        .commands
        .accept_invitation(ctx.metadata(actor), tenant.tenant_id, token, who)
        .await;
    match accepted {
        Ok(accepted) => {
            state
                .projected(accepted.position)
                .await
                .map_err(|error| Refusal::Failed(error.into()))?;
            Ok(accepted)
        }
        Err(CommandError::Rejected(DomainError::Validation { message, field })) => {
            let what = if field == "password" {
                "The password"
            } else {
                "The name"
            };
            Err(Refusal::Invalid(format!("{what} {message}.")))
        }
        Err(CommandError::Rejected(DomainError::AlreadyExists(_))) => Err(Refusal::HasAccount),
        Err(CommandError::Rejected(_) | CommandError::NotFound { .. }) => Err(Refusal::Unusable),
        Err(other) => Err(Refusal::Failed(other.into())),
    }
}

/// Whether the tenant requires a second factor the new user does not have yet.
async fn must_enroll(
    state: &AppState,
    tenant: &PageTenant,
    accepted: &Accepted,
) -> Result<bool, PageError> {
    let factors = state
        .commands
        .second_factors(tenant.tenant_id, accepted.user_id)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    Ok(factors.must_enroll)
}

/// Starts the new user's session: the link proved the address, the form what it says.
async fn start(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    accepted: &Accepted,
    amr: &str,
) -> Result<StartedSession, PageError> {
    let (session, _) = state
        .commands
        .start_session(
            ctx.metadata(tessera_commands::person(accepted.user_id)),
            tenant.tenant_id,
            accepted.user_id,
            vec![amr.to_owned()],
        )
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    Ok(session)
}

fn json_error(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({
            "error": error,
            "message": message.into(),
            "correlation_id": crate::correlation::current().to_string(),
        })),
    )
        .into_response()
}

/// Seed 001's acceptance: `{"password": ..., "name": ...}` makes the account (or, with the
/// session of the address's holder, adds the roles) and answers JSON with the session's cookie.
async fn submit_json(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    headers: &HeaderMap,
    token: &str,
    body: &[u8],
) -> Response {
    let Ok(input) = serde_json::from_slice::<JsonAcceptance>(body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send {\"password\": ..., \"name\": ...}",
        );
    };
    let offer = match state
        .commands
        .invitation_offer(tenant.tenant_id, token)
        .await
    {
        Ok(Some(offer)) if offer.state == LinkState::Usable => offer,
        Ok(Some(offer)) => {
            let message = match offer.state {
                LinkState::Expired => "the invitation has expired",
                LinkState::Revoked => "the invitation was revoked",
                LinkState::Used => "the invitation was already accepted",
                LinkState::Replaced | LinkState::Usable => "a newer link replaced this one",
            };
            return json_error(StatusCode::GONE, "invitation_unusable", message);
        }
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "not_found", "no such invitation"),
        Err(error) => return crate::error::ApiError::from(error).into_response(),
    };
    let session = current_session(state, tenant, headers)
        .await
        .map(|s| s.user_id);
    let who = match (offer.existing_user, session) {
        (Some(holder), Some(user)) if holder == user => Acceptance::SignedIn { user_id: user },
        (Some(_), _) => {
            return json_error(
                StatusCode::CONFLICT,
                "sign_in_required",
                "an account has this address: sign in to it, then accept",
            );
        }
        (None, _) => Acceptance::NewUser {
            password: input.password,
            name: input.name,
        },
    };
    let accepted = match accept(state, tenant, ctx, token, who).await {
        Ok(accepted) => accepted,
        Err(Refusal::Invalid(message)) => {
            return json_error(StatusCode::BAD_REQUEST, "validation_failed", message);
        }
        Err(Refusal::HasAccount) => {
            return json_error(
                StatusCode::CONFLICT,
                "sign_in_required",
                "an account has this address: sign in to it, then accept",
            );
        }
        Err(Refusal::Unusable) => {
            return json_error(
                StatusCode::GONE,
                "invitation_unusable",
                "the invitation can no longer be accepted",
            );
        }
        Err(Refusal::Failed(error)) => return error.into_response(),
    };
    let mut answer = json!({
        "accepted": true,
        "tenant_id": tenant.tenant_id,
        "user_id": accepted.user_id,
        "created_user": accepted.created_user,
    });
    let enroll_first = match must_enroll(state, tenant, &accepted).await {
        Ok(enroll) => enroll,
        Err(error) => return error.into_response(),
    };
    if !accepted.created_user || enroll_first {
        // Without a session: the holder signs in (and sets up a second factor when the
        // tenant requires one) as anyone would.
        answer["signed_in"] = json!(false);
        return Json(answer).into_response();
    }
    let amr = if offer.existing_user.is_none() && body_has_password(body) {
        "pwd"
    } else {
        "email"
    };
    match start(state, tenant, ctx, &accepted, amr).await {
        Ok(session) => {
            super::login::note_started(state, tenant, ctx, &session);
            answer["signed_in"] = json!(true);
            answer["session_id"] = json!(session.session_id);
            let mut response = Json(answer).into_response();
            for cookie in signed_in_cookies(state, tenant, &session) {
                response
                    .headers_mut()
                    .append(axum::http::header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => error.into_response(),
    }
}

fn body_has_password(body: &[u8]) -> bool {
    serde_json::from_slice::<JsonAcceptance>(body).is_ok_and(|input| input.password.is_some())
}

/// `POST /invite/{token}`: seed 001's slug-less acceptance. The token names its invitation,
/// whose tenant the invitations read model knows; the rest is the tenant's JSON acceptance.
pub async fn submit_without_slug(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tenant = match LinkSecrets::link_id(&token) {
        Some(id) => match state.store.invitation_tenant(id).await {
            Ok(Some(tenant_id)) => page_tenant(&state, tenant_id),
            Ok(None) => None,
            Err(error) => return crate::error::ApiError::from(error).into_response(),
        },
        None => None,
    };
    let Some(tenant) = tenant else {
        return json_error(StatusCode::NOT_FOUND, "not_found", "no such invitation");
    };
    submit_json(&state, &tenant, &ctx, &headers, &token, &body).await
}

/// The page tenant of `tenant_id`, if it exists and serves.
fn page_tenant(state: &AppState, tenant_id: uuid::Uuid) -> Option<PageTenant> {
    let tenant = state.directory.tenant(tenant_id)?.tenant.clone()?;
    if !tenant.serves() {
        return None;
    }
    Some(PageTenant {
        tenant_id,
        frame: Frame {
            tenant_name: tenant.name.clone(),
            slug: tenant.slug.clone(),
            base_path: base_path(&state.public_url).to_owned(),
        },
    })
}
