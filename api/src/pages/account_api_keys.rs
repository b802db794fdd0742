//! The "API keys" section of the account page, for a person with the role `tenant:admin`: they
//! list their tenant's keys, create one with a name and the scopes such a key may have (the
//! plaintext shown once), and revoke one. This is how a tenant is handed over without the
//! platform admin key (seed 003).
//!
//! The API keys command and `crate::scopes`'s rules apply as they do to the admin API: the
//! person stands for a tenant admin of their own tenant, so a key they create holds at most
//! `tenant:admin` and `audit:write`. The actor recorded is the person. The role is checked
//! afresh on every form, from the read model the write landed in, never from the form.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_commands::{CommandError, IssueApiKey, person};
use tessera_domain::DomainError;
use tessera_event_schemas::Timestamp;
use uuid::Uuid;

use super::csrf;
use super::{Frame, PageError, PageForm, SignedIn, render, see_other};
use crate::auth::Principal;
use crate::extract::RequestContext;
use crate::scopes::{self, AUDIT_WRITE, TENANT_ADMIN};
use crate::state::AppState;

/// The scopes the page offers: those a tenant admin may grant on keys without a product.
pub const OFFERED_SCOPES: [(&str, &str); 2] = [
    (
        TENANT_ADMIN,
        "Administer this organisation (users, keys, clients, audit)",
    ),
    (AUDIT_WRITE, "Record audit entries"),
];

/// One key as the section lists it.
pub struct ApiKeyRow {
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created: String,
    /// Where its "Revoke key" form posts.
    pub revoke: String,
}

/// The section, shown to tenant admins only.
pub struct ApiKeysSection {
    pub keys: Vec<ApiKeyRow>,
    pub scopes: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "api_key_created.html")]
struct CreatedPage<'a> {
    frame: &'a Frame,
    name: String,
    plaintext: String,
    scopes: String,
    next: String,
}

fn when(at: Timestamp) -> String {
    at.to_datetime().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Whether `roles` make their holder an administrator of their tenant.
pub fn is_tenant_admin(roles: &[String]) -> bool {
    roles.iter().any(|role| role == TENANT_ADMIN)
}

/// The section for a person with `roles`: `None` unless they are a tenant admin.
pub async fn section(
    state: &AppState,
    signed_in: &SignedIn,
    roles: &[String],
) -> Result<Option<ApiKeysSection>, PageError> {
    if !is_tenant_admin(roles) {
        return Ok(None);
    }
    let tenant = &signed_in.tenant;
    let page = state
        .store
        .list_api_keys(tenant.tenant_id, 500, None)
        .await
        .map_err(|error| PageError::from(crate::error::ApiError::from(error)))?;
    let keys = page
        .items
        .into_iter()
        .filter(|key| key.revoked_at.is_none())
        .map(|key| ApiKeyRow {
            revoke: tenant
                .frame
                .url(&format!("account/api-keys/{}/revoke", key.key_id)),
            name: key.name,
            prefix: key.prefix,
            scopes: key.scopes.join(", "),
            created: when(key.created_at),
        })
        .collect();
    Ok(Some(ApiKeysSection {
        keys,
        scopes: OFFERED_SCOPES.to_vec(),
    }))
}

/// The signed-in person, required to hold `tenant:admin` now (read afresh); else 403.
async fn require_admin(state: &AppState, signed_in: &SignedIn) -> Result<(), PageError> {
    let tenant = &signed_in.tenant;
    let user = state
        .store
        .user(tenant.tenant_id, signed_in.user_id())
        .await
        .map_err(|error| PageError::from(crate::error::ApiError::from(error)))?;
    match user {
        Some(user) if is_tenant_admin(&user.roles) => Ok(()),
        _ => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Only an administrator of this organisation manages its API keys.",
        )
        .framed(&tenant.frame)),
    }
}

/// The person as a tenant admin of their tenant, for [`scopes::check_grant`].
fn as_principal(signed_in: &SignedIn) -> Principal {
    Principal {
        key_id: signed_in.user_id(),
        tenant_id: signed_in.tenant.tenant_id,
        name: format!("user {}", signed_in.user_id()),
        scopes: vec![TENANT_ADMIN.to_owned()],
        product: None,
    }
}

/// `POST /t/{slug}/account/api-keys`: creates a key (`name`, `scopes` checked) and shows its
/// plaintext once. Needs the role `tenant:admin`.
pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    let form = PageForm::parse(&body);
    csrf::verify_form(&state, &headers, tenant, &form)?;
    require_admin(&state, &signed_in).await?;
    // Checkboxes repeat their name, which `PageForm` folds into one: read them from the body.
    let chosen: Vec<String> = form_urlencoded::parse(&body)
        .filter(|(key, _)| key == "scopes")
        .map(|(_, value)| value.into_owned())
        .collect();
    let refused = |message: String| {
        PageError::new(StatusCode::BAD_REQUEST, "The key was not created", message)
            .framed(&tenant.frame)
    };
    if chosen.is_empty() {
        return Err(refused(
            "Choose at least one permission for the key.".to_owned(),
        ));
    }
    scopes::check_grant(&as_principal(&signed_in), tenant.tenant_id, None, &chosen)
        .map_err(|error| refused(error.to_string()))?;
    let name = form.text("name").trim().to_owned();
    let issued = state
        .commands
        .issue_api_key(
            ctx.metadata(person(signed_in.user_id())),
            tenant.tenant_id,
            IssueApiKey {
                name: name.clone(),
                scopes: chosen.clone(),
                product: None,
                expires_at: None,
                created_by: format!("user {}", signed_in.user_id()),
                key_id: None,
                plaintext: None,
            },
        )
        .await;
    let issued = match issued {
        Ok(issued) => issued,
        Err(CommandError::Rejected(DomainError::Validation { field, message })) => {
            let what = if field == "name" {
                "The key's name"
            } else {
                "The key"
            };
            return Err(refused(format!("{what} {message}.")));
        }
        Err(other) => return Err(PageError::from(other).framed(&tenant.frame)),
    };
    state.projected(issued.position).await?;
    let page = CreatedPage {
        frame: &tenant.frame,
        name,
        plaintext: issued.plaintext,
        scopes: chosen.join(", "),
        next: format!("{}#api-keys-heading", tenant.frame.url("account")),
    };
    render(&page, StatusCode::OK, Vec::new())
}

/// `POST /t/{slug}/account/api-keys/{key_id}/revoke`: revokes one of the tenant's keys. Needs
/// the role `tenant:admin`.
pub async fn revoke(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    Path((_, key_id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    csrf::verify_form(&state, &headers, tenant, &form)?;
    require_admin(&state, &signed_in).await?;
    // A key of another tenant is not found here: the command addresses this tenant's stream.
    let done = state
        .commands
        .revoke_api_key(
            ctx.metadata(person(signed_in.user_id())),
            tenant.tenant_id,
            key_id,
        )
        .await;
    match done {
        Ok(done) => state.projected(done.position).await?,
        Err(CommandError::Rejected(DomainError::Conflict(_))) => {}
        Err(other) => return Err(PageError::from(other).framed(&tenant.frame)),
    }
    Ok(see_other(
        &state,
        &format!("/t/{}/account?done=api-key-revoked", tenant.slug()),
        Vec::new(),
    ))
}
