//! `/t/{slug}/account`: a signed-in person's own page. Their profile (names; the address is
//! shown, and changed by an administrator), their password, their active sessions, each
//! with a "Sign out" button, the applications they allowed ("Connected applications", each
//! with a "Revoke access" button); the second factors ([`super::account_mfa`]); and for a
//! tenant admin, the tenant's API keys ([`super::account_api_keys`]).
//!
//! Everything here acts as the person (`{kind: user, id}` in the envelope) on their own user
//! only: the user id comes from the session, never from the form.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use tessera_commands::{CommandError, UpdateUser, person};
use tessera_domain::DomainError;
use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::user::fields;
use uuid::Uuid;

use super::account_api_keys::{self, ApiKeysSection};
use super::account_mfa::{TwoStep, two_step};
use super::csrf::{self, Csrf};
use super::{Frame, PageError, PageForm, SignedIn, logout, render, see_other};
use crate::extract::RequestContext;
use crate::oauth::authorize::consent::scope_in_words;
use crate::state::AppState;

/// Errors of a refused form, by field, shown next to their input.
#[derive(Default)]
pub struct FieldErrors(Vec<(String, String)>);

impl FieldErrors {
    fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![(field.into(), message.into())])
    }

    /// The error of `field`, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

/// One active session as the page lists it.
pub struct SessionRow {
    pub started: String,
    pub last_used: String,
    pub address: String,
    pub browser: String,
    pub current: bool,
    /// The form action that signs it out.
    pub sign_out: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    email: String,
    name: String,
    given_name: String,
    family_name: String,
    notice: Option<&'static str>,
    errors: &'a FieldErrors,
    sessions: Vec<SessionRow>,
    two_step: TwoStep,
    applications: Vec<ApplicationRow>,
    api_keys: Option<ApiKeysSection>,
}

/// One client the person allowed, as "Connected applications" lists it.
pub struct ApplicationRow {
    pub client_id: String,
    /// The client's name, or its id if it is gone.
    pub name: String,
    /// What it may do, in words.
    pub scopes: Vec<String>,
    pub granted: String,
}

/// What the profile form holds when it is shown again with an error.
#[derive(Default)]
struct Entered {
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
}

fn when(at: Timestamp) -> String {
    at.to_datetime().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `GET /t/{slug}/account`.
pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let notice = uri.query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "done")
            .and_then(|(_, done)| match done.as_ref() {
                "profile" => Some("Your profile was saved."),
                "password" => {
                    Some("Your password was changed. Your other sessions were signed out.")
                }
                "session" => Some("The session was signed out."),
                "totp" => Some("Your authenticator app is on."),
                "totp-off" => Some("Your authenticator app is off."),
                "recovery-codes" => Some("New recovery codes were generated."),
                "passkey-removed" => Some("The passkey was removed."),
                "passkey" => Some("Your passkey was added."),
                "consent" => Some("The application's access was revoked."),
                "api-key-revoked" => Some("The API key was revoked."),
                _ => None,
            })
    });
    page(
        &state,
        &signed_in,
        &headers,
        notice,
        &FieldErrors::default(),
        Entered::default(),
        StatusCode::OK,
    )
    .await
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    headers: &HeaderMap,
    notice: Option<&'static str>,
    errors: &FieldErrors,
    entered: Entered,
    status: StatusCode,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    let user_id = signed_in.user_id();
    let view = state
        .user_views
        .user(&state.projections, &state.store, tenant.tenant_id, user_id)
        .await?
        .ok_or_else(|| PageError::not_found().framed(&tenant.frame))?;
    let open = |field: &'static str, sealed: Option<Vec<u8>>| async move {
        match sealed {
            Some(sealed) => state
                .personal
                .open(tenant.tenant_id, user_id, field, &sealed)
                .await
                .map(Option::unwrap_or_default)
                .map_err(|error| PageError::internal(format!("opening {field}: {error}"))),
            None => Ok(String::new()),
        }
    };
    let email = open(fields::EMAIL, view.email.clone()).await?;
    let name = match entered.name {
        Some(name) => name,
        None => open(fields::NAME, view.name.clone()).await?,
    };
    let given_name = match entered.given_name {
        Some(name) => name,
        None => open(fields::GIVEN_NAME, view.given_name.clone()).await?,
    };
    let family_name = match entered.family_name {
        Some(name) => name,
        None => open(fields::FAMILY_NAME, view.family_name.clone()).await?,
    };
    let now = state.clock.now();
    let sessions = state
        .sessions
        .user_sessions(tenant.tenant_id, user_id, now)
        .iter()
        .map(|session| SessionRow {
            started: when(session.auth_time),
            last_used: when(session.last_seen()),
            address: session.source_ip.clone().unwrap_or_default(),
            browser: session.user_agent.clone().unwrap_or_default(),
            current: session.session_id == signed_in.session.session_id,
            sign_out: tenant
                .frame
                .url(&format!("account/sessions/{}/sign-out", session.session_id)),
        })
        .collect();
    let csrf = Csrf::of(state, headers)?;
    let page = AccountPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(state, tenant.slug()),
        email,
        name,
        given_name,
        family_name,
        notice,
        errors,
        sessions,
        two_step: two_step(state, signed_in).await?,
        applications: applications(state, tenant.tenant_id, user_id).await?,
        api_keys: account_api_keys::section(state, signed_in, &view.roles).await?,
    };
    render(&page, status, csrf.set_cookie(state))
}

/// The clients the person allowed, read from the log (a person's consents are few).
async fn applications(
    state: &AppState,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<Vec<ApplicationRow>, PageError> {
    let consents = state.commands.list_consents(tenant_id, user_id).await?;
    Ok(consents
        .into_iter()
        .map(|consent| ApplicationRow {
            name: state
                .directory
                .client(tenant_id, &consent.client_id)
                .map_or_else(|| consent.client_id.clone(), |c| c.client.name.clone()),
            scopes: consent.scopes.iter().map(|s| scope_in_words(s)).collect(),
            granted: when(consent.granted_at),
            client_id: consent.client_id,
        })
        .collect())
}

/// A name field as the form sends it: blank removes the name.
fn name_field(form: &PageForm, field: &str) -> Option<Option<String>> {
    let value = form.text(field).trim();
    Some((!value.is_empty()).then(|| value.to_owned()))
}

/// `POST /t/{slug}/account/profile`: the person's names.
pub async fn save_profile(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    csrf::verify_form(&state, &headers, tenant, &form)?;
    let update = UpdateUser {
        name: name_field(&form, "name"),
        given_name: name_field(&form, "given_name"),
        family_name: name_field(&form, "family_name"),
        ..UpdateUser::default()
    };
    let result = state
        .commands
        .update_user(
            ctx.metadata(person(signed_in.user_id())),
            tenant.tenant_id,
            signed_in.user_id(),
            update,
        )
        .await;
    match result {
        Ok(outcome) => {
            state.projected(outcome.position).await?;
            Ok(see_other(
                &state,
                &format!("/t/{}/account?done=profile", tenant.slug()),
                Vec::new(),
            ))
        }
        Err(CommandError::Rejected(DomainError::Validation { field, message })) => {
            let entered = Entered {
                name: Some(form.text("name").to_owned()),
                given_name: Some(form.text("given_name").to_owned()),
                family_name: Some(form.text("family_name").to_owned()),
            };
            let errors = FieldErrors::one(field, format!("This {message}."));
            page(
                &state,
                &signed_in,
                &headers,
                None,
                &errors,
                entered,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(other) => Err(PageError::from(other).framed(&tenant.frame)),
    }
}

/// `POST /t/{slug}/account/password`: a new password, given the current one; the person's
/// other sessions end.
pub async fn change_password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    csrf::verify_form(&state, &headers, tenant, &form)?;
    let result = state
        .commands
        .change_own_password(
            ctx.metadata(person(signed_in.user_id())),
            tenant.tenant_id,
            signed_in.user_id(),
            form.text("current_password"),
            form.text("new_password"),
            signed_in.session.session_id,
        )
        .await;
    match result {
        Ok(position) => {
            state.projected(position).await?;
            Ok(see_other(
                &state,
                &format!("/t/{}/account?done=password", tenant.slug()),
                Vec::new(),
            ))
        }
        Err(CommandError::Rejected(DomainError::Validation { field, message })) => {
            let (field, message) = if field == "current_password" {
                (field, "This is not your current password.".to_owned())
            } else {
                (
                    "new_password".to_owned(),
                    format!("The new password {message}."),
                )
            };
            page(
                &state,
                &signed_in,
                &headers,
                None,
                &FieldErrors::one(field, message),
                Entered::default(),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(other) => Err(PageError::from(other).framed(&tenant.frame)),
    }
}

/// `POST /t/{slug}/account/sessions/{session_id}/sign-out`: ends one of the person's own
/// sessions (another person's, or an unknown one, is not found). Signing out this browser's
/// session signs out here too.
pub async fn sign_out_session(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    headers: HeaderMap,
    Path((_, session_id)): Path<(String, String)>,
    form: PageForm,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    csrf::verify_form(&state, &headers, tenant, &form)?;
    let session = Uuid::parse_str(&session_id)
        .ok()
        .and_then(|id| {
            state
                .sessions
                .session(tenant.tenant_id, id, state.clock.now())
        })
        .filter(|session| session.user_id == signed_in.user_id())
        .ok_or_else(|| PageError::not_found().framed(&tenant.frame))?;
    logout::end(&state, tenant, &ctx, session.user_id, session.session_id).await?;
    if session.session_id == signed_in.session.session_id {
        return Ok(logout::signed_out(&state, tenant));
    }
    Ok(see_other(
        &state,
        &format!("/t/{}/account?done=session", tenant.slug()),
        Vec::new(),
    ))
}

/// `POST /t/{slug}/account/consents/revoke` (`client_id` in the form): withdraws what the
/// person allowed an application; its refresh tokens stop working (ADR 0003's revocation
/// horizon). A client the person did not allow is not found.
pub async fn revoke_consent(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    csrf::verify_form(&state, &headers, tenant, &form)?;
    let outcome = state
        .commands
        .revoke_consent(
            ctx.metadata(person(signed_in.user_id())),
            tenant.tenant_id,
            signed_in.user_id(),
            form.text("client_id"),
        )
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    state.projected(outcome.position).await?;
    Ok(see_other(
        &state,
        &format!("/t/{}/account?done=consent", tenant.slug()),
        Vec::new(),
    ))
}
