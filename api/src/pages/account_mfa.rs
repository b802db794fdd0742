//! The account page's "Two-step verification": setting up an authenticator app (QR code, the
//! secret for manual entry, a code to confirm it), the recovery codes shown once and generated
//! anew, turning the app off, and the person's passkeys with a "Remove" button each.
//!
//! Like the rest of the account page, everything acts as the person on their own user only:
//! the user id comes from the session, a passkey is found among their own.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_commands::{CommandError, RecoveryCodes, person};
use tessera_domain::DomainError;
use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::PASSKEY_NAME_FIELD;
use tessera_projections::TotpStatus;
use uuid::Uuid;

use super::csrf;
use super::second_factor::{ENROLL_FAILURE, RecoveryCodesPage, setup_page};
use super::{PageError, PageForm, SignedIn, base_path, render, see_other};
use crate::extract::RequestContext;
use crate::state::AppState;

/// One passkey as the page lists it.
pub struct PasskeyRow {
    pub name: String,
    pub created: String,
    pub last_used: String,
    /// The form action that removes it.
    pub remove: String,
}

/// The person's second factors as the page shows them.
#[derive(Default)]
pub struct TwoStep {
    pub totp: bool,
    pub recovery_codes_left: u32,
    pub passkeys: Vec<PasskeyRow>,
}

fn when(at: Timestamp) -> String {
    at.to_datetime().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The second factors of the signed-in person, from the read model, passkey names opened.
pub(super) async fn two_step(state: &AppState, signed_in: &SignedIn) -> Result<TwoStep, PageError> {
    let tenant = &signed_in.tenant;
    let user_id = signed_in.user_id();
    let Some(view) = state
        .store
        .user_mfa(tenant.tenant_id, user_id)
        .await
        .map_err(crate::error::ApiError::from)?
    else {
        return Ok(TwoStep::default());
    };
    let mut passkeys = Vec::with_capacity(view.passkeys.len());
    for passkey in &view.passkeys {
        let name = state
            .personal
            .open(tenant.tenant_id, user_id, PASSKEY_NAME_FIELD, &passkey.name)
            .await
            .map_err(|error| PageError::internal(format!("opening a passkey's name: {error}")))?
            .unwrap_or_default();
        passkeys.push(PasskeyRow {
            name,
            created: when(passkey.created_at),
            last_used: passkey
                .last_used_at
                .map(when)
                .unwrap_or_else(|| "Never".into()),
            remove: tenant.frame.url(&format!(
                "account/passkeys/{}/remove",
                URL_SAFE_NO_PAD.encode(&passkey.credential_id)
            )),
        });
    }
    Ok(TwoStep {
        totp: view.totp == TotpStatus::Enrolled,
        recovery_codes_left: view.recovery_codes_left,
        passkeys,
    })
}

fn account(state: &AppState, signed_in: &SignedIn, done: &str) -> Response {
    let slug = signed_in.tenant.slug();
    see_other(state, &format!("/t/{slug}/account?done={done}"), Vec::new())
}

/// The new recovery codes, shown once, then back to the account page.
fn codes_page(
    state: &AppState,
    signed_in: &SignedIn,
    codes: &RecoveryCodes,
    done: &str,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    let page = RecoveryCodesPage {
        frame: &tenant.frame,
        codes: codes.codes.iter().map(|c| c.to_string()).collect(),
        next: format!(
            "{}/t/{}/account?done={done}",
            base_path(&state.public_url),
            tenant.slug()
        ),
    };
    render(&page, StatusCode::OK, Vec::new())
}

/// `POST /t/{slug}/account/totp`: `step=begin` shows a new secret; `step=confirm` with a code
/// of it turns the app on and shows the recovery codes once.
pub async fn set_up_totp(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    csrf::verify_form(&state, &headers, tenant, &form)?;
    let user_id = signed_in.user_id();
    let meta = ctx.metadata(person(user_id));
    let action = tenant.frame.url("account/totp");
    if form.get("step") != Some("confirm") {
        return setup_page(&state, tenant, &headers, meta, user_id, action, None).await;
    }
    match state
        .commands
        .confirm_totp_enrollment(
            meta.clone(),
            tenant.tenant_id,
            user_id,
            form.text("code").trim(),
        )
        .await
    {
        Ok(codes) => {
            state.projected(codes.position).await?;
            codes_page(&state, &signed_in, &codes, "totp")
        }
        Err(CommandError::Rejected(_)) => {
            let error = Some(ENROLL_FAILURE);
            setup_page(&state, tenant, &headers, meta, user_id, action, error).await
        }
        Err(other) => Err(PageError::from(other).framed(&tenant.frame)),
    }
}

/// `POST /t/{slug}/account/totp/remove`: turns the authenticator app off (its recovery codes go
/// with it).
pub async fn remove_totp(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    csrf::verify_form(&state, &headers, tenant, &form)?;
    let user_id = signed_in.user_id();
    let outcome = state
        .commands
        .remove_totp(ctx.metadata(person(user_id)), tenant.tenant_id, user_id)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    state.projected(outcome.position).await?;
    Ok(account(&state, &signed_in, "totp-off"))
}

/// `POST /t/{slug}/account/recovery-codes`: ten new recovery codes, shown once; the old ones
/// stop working.
pub async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    csrf::verify_form(&state, &headers, tenant, &form)?;
    let user_id = signed_in.user_id();
    let codes = state
        .commands
        .regenerate_recovery_codes(ctx.metadata(person(user_id)), tenant.tenant_id, user_id)
        .await
        .map_err(|error| PageError::from(error).framed(&tenant.frame))?;
    state.projected(codes.position).await?;
    codes_page(&state, &signed_in, &codes, "recovery-codes")
}

/// `POST /t/{slug}/account/passkeys/{id}/remove`: removes one of the person's passkeys (an
/// unknown one, or another person's, is not found).
pub async fn remove_passkey(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    headers: HeaderMap,
    Path((_, credential_id)): Path<(String, String)>,
    form: PageForm,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    csrf::verify_form(&state, &headers, tenant, &form)?;
    let not_found = || PageError::not_found().framed(&tenant.frame);
    let credential_id = URL_SAFE_NO_PAD
        .decode(credential_id.as_bytes())
        .map_err(|_| not_found())?;
    let user_id: Uuid = signed_in.user_id();
    let outcome = state
        .commands
        .remove_passkey(
            ctx.metadata(person(user_id)),
            tenant.tenant_id,
            user_id,
            &credential_id,
        )
        .await
        .map_err(|error| match error {
            CommandError::NotFound { .. } | CommandError::Rejected(DomainError::NotFound) => {
                not_found()
            }
            other => PageError::from(other).framed(&tenant.frame),
        })?;
    state.projected(outcome.position).await?;
    Ok(account(&state, &signed_in, "passkey-removed"))
}
