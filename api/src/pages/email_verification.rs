//! Address verification (ADR 0004): `GET /t/{slug}/email/verify/{token}` shows a "Verify my
//! address" button, its POST verifies the address (`user.email_verified`) and shows
//! `GET /t/{slug}/email/verified`. A GET never uses the link (mail scanners follow links).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_commands::LinkKind;
use tessera_event_schemas::Actor;

use super::csrf::{self, Csrf};
use super::password_reset::link_refused;
use super::{Frame, PageError, PageForm, PageTenant, render, see_other};
use crate::extract::RequestContext;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "verify_email.html")]
struct VerifyPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    action: String,
    done: bool,
}

/// `GET /t/{slug}/email/verify/{token}`: the button, if the link works.
pub async fn show(
    State(state): State<AppState>,
    tenant: PageTenant,
    Path((_, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let checked = state
        .commands
        .check_link(tenant.tenant_id, &token, LinkKind::EmailVerification)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    if let Err(refusal) = checked {
        return Err(link_refused(refusal, &tenant, LinkKind::EmailVerification));
    }
    page(&state, &tenant, &headers, Some(&token))
}

/// `GET /t/{slug}/email/verified`: where a verification ends.
pub async fn show_verified(
    State(state): State<AppState>,
    tenant: PageTenant,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    page(&state, &tenant, &headers, None)
}

fn page(
    state: &AppState,
    tenant: &PageTenant,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<Response, PageError> {
    let csrf = Csrf::of(state, headers)?;
    let page = VerifyPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(state, tenant.slug()),
        action: tenant
            .frame
            .url(&format!("email/verify/{}", token.unwrap_or_default())),
        done: token.is_none(),
    };
    render(&page, StatusCode::OK, csrf.set_cookie(state))
}

/// `POST /t/{slug}/email/verify/{token}`: verifies the address the link was sent to.
pub async fn submit(
    State(state): State<AppState>,
    tenant: PageTenant,
    Path((_, token)): Path<(String, String)>,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    csrf::verify_form(&state, &headers, &tenant, &form)?;
    let verified = state
        .commands
        .verify_email(ctx.metadata(Actor::system()), tenant.tenant_id, &token)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    match verified {
        Ok(outcome) => {
            state.projected(outcome.position).await?;
            let done = format!("/t/{}/email/verified", tenant.slug());
            Ok(see_other(&state, &done, Vec::new()))
        }
        Err(refusal) => Err(link_refused(refusal, &tenant, LinkKind::EmailVerification)),
    }
}
