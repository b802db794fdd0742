//! `/t/{slug}/logout`: signing out of this browser's session. The page asks; the form (with
//! its CSRF token, so that another site cannot sign a person out) ends the session on the log,
//! forgets it in the session directory at once, clears the cookie and goes to the sign-in page.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_commands::{CommandError, person};
use tessera_event_schemas::events::SessionEndReason;

use super::csrf::{self, Csrf};
use super::{Frame, PageError, PageForm, PageTenant, cookies, current_session, render, see_other};
use crate::extract::RequestContext;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
}

/// `GET /t/{slug}/logout`: "Sign out" for a signed-in person; anyone else goes to sign-in.
pub async fn show(
    State(state): State<AppState>,
    tenant: PageTenant,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if current_session(&state, &tenant, &headers).await.is_none() {
        return Ok(see_other(
            &state,
            &format!("/t/{}/login", tenant.slug()),
            Vec::new(),
        ));
    }
    let csrf = Csrf::of(&state, &headers)?;
    let page = LogoutPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(&state, tenant.slug()),
    };
    render(&page, StatusCode::OK, csrf.set_cookie(&state))
}

/// `POST /t/{slug}/logout`: ends this browser's session (if it has one) and clears its cookie.
pub async fn submit(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    csrf::verify_form(&state, &headers, &tenant, &form)?;
    if let Some(session) = current_session(&state, &tenant, &headers).await {
        end(&state, &tenant, &ctx, session.user_id, session.session_id).await?;
    }
    Ok(signed_out(&state, &tenant))
}

/// Ends one of the person's sessions and forgets it at once (already ended: nothing to do).
pub async fn end(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    user_id: uuid::Uuid,
    session_id: uuid::Uuid,
) -> Result<(), PageError> {
    let ended = state
        .commands
        .end_session(
            ctx.metadata(person(user_id)),
            tenant.tenant_id,
            user_id,
            session_id,
            SessionEndReason::SignedOut,
        )
        .await;
    match ended {
        Ok(_) | Err(CommandError::NotFound { .. }) => {
            state.sessions.note_ended(&[session_id]);
            Ok(())
        }
        Err(other) => Err(PageError::from(other).framed(&tenant.frame)),
    }
}

/// To the sign-in page, with the session cookie cleared.
pub fn signed_out(state: &AppState, tenant: &PageTenant) -> Response {
    let name = cookies::session_name(tenant.slug(), state.secure_cookies);
    see_other(
        state,
        &format!("/t/{}/login", tenant.slug()),
        vec![cookies::clear(&name, state.secure_cookies)],
    )
}
