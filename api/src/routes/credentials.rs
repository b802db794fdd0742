//! A tenant's connections to third-party services (issue 20, seed 004's paths under our `/v1`
//! root): store directly, list (never a secret), access (the secret, for a service holding
//! `vault:read`), remove.
//!
//! - `POST /v1/tenants/{id}/integrations/{integration}/credentials`: tokens (`access_token`,
//!   optional `refresh_token`, `expires_in` or `expires_at`, `scopes`) or an API key
//!   (`api_key`), sealed under the tenant's vault; seed 004's camelCase names are accepted too
//!   (`accessToken`, `expiresIn`, ...; `expiresIn: 0` means no expiry). Tenant admin.
//! - `GET /v1/tenants/{id}/integrations`: the tenant's connections from `rm_credentials`.
//!   Tenant admin.
//! - `POST .../credentials/access`: an API key of this very tenant with `vault:read` (a
//!   platform admin's key included: the scope is about who reads secrets, and the platform's
//!   keys read none); another tenant's connection is 404 like a missing one. The access is
//!   appended durably (`credential.accessed`, with the key's id and the correlation id) before
//!   the secret is answered. `needs_reauth` is 409; a destroyed vault 410.
//! - `DELETE .../credentials`: `credential.removed`. Tenant admin.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_commands::{CredentialSecret, StoreCredentialInput};
use tessera_domain::credential::CredentialStatus;
use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::{CredentialKind, OAuthAppSource};
use tessera_projections::{CredentialView, app_name, failure_name, kind_name};
use utoipa::ToSchema;
use uuid::Uuid;

use super::credential_refresh::refresh_if_expiring;
use crate::auth::{Principal, TenantAdmin};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, RequestContext};
use crate::scopes::VAULT_READ;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{id}/integrations", get(list_connections))
        .route(
            "/v1/tenants/{id}/integrations/{integration}/credentials",
            post(store_credential).delete(remove_credential),
        )
        .route(
            "/v1/tenants/{id}/integrations/{integration}/credentials/access",
            post(access_credential),
        )
}

/// Tokens or an API key to store. Seed 004's camelCase names are accepted as aliases.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreCredentialRequest {
    #[serde(alias = "accessToken")]
    pub access_token: Option<String>,
    #[serde(alias = "refreshToken")]
    pub refresh_token: Option<String>,
    /// Default `Bearer`.
    #[serde(alias = "tokenType")]
    pub token_type: Option<String>,
    /// Seconds from now; 0 (seed 004's "does not expire") or absent: no expiry.
    #[serde(alias = "expiresIn")]
    pub expires_in: Option<i64>,
    /// RFC 3339; instead of `expires_in`.
    #[serde(alias = "expiresAt")]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A static API key, instead of tokens.
    #[serde(alias = "apiKey")]
    pub api_key: Option<String>,
}

/// A connection as listed: never its secret.
#[derive(Serialize, ToSchema)]
pub struct Connection {
    pub integration: String,
    /// Seed 004's name for `integration`.
    pub name: String,
    /// `oauth` or `api_key`.
    pub kind: &'static str,
    /// `active`, `refresh_failing` or `needs_reauth`.
    pub status: String,
    pub scopes: Vec<String>,
    pub issued_at: String,
    pub expires_at: Option<String>,
    pub refreshable: bool,
    /// Whose OAuth app made it: `platform`, `tenant`, or `none` (stored directly).
    pub app: &'static str,
    pub last_refreshed_at: Option<String>,
    /// `invalid_grant`, `unreachable` or `rejected`.
    pub last_error: Option<&'static str>,
    pub consecutive_failures: u64,
    pub next_attempt_at: Option<String>,
    /// The vault key version its secret is sealed under.
    pub key_version: u32,
    /// Seed 004: always true for a listed connection.
    #[serde(rename = "hasCredentials")]
    pub has_credentials: bool,
    /// Seed 004's name for `expires_at`.
    #[serde(rename = "expiresAt")]
    pub expires_at_seed: Option<String>,
}

fn to_connection(view: CredentialView) -> Connection {
    let time = |at: Option<Timestamp>| at.map(Timestamp::to_rfc3339);
    Connection {
        name: view.integration.clone(),
        integration: view.integration,
        kind: kind_name(view.kind),
        status: view.status,
        scopes: view.scopes,
        issued_at: view.issued_at.to_rfc3339(),
        expires_at: time(view.expires_at),
        refreshable: view.refreshable,
        app: app_name(view.app),
        last_refreshed_at: time(view.last_refreshed_at),
        last_error: view.last_error.map(failure_name),
        consecutive_failures: view.consecutive_failures,
        next_attempt_at: time(view.next_attempt_at),
        key_version: view.key_version,
        has_credentials: true,
        expires_at_seed: time(view.expires_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConnectionList {
    pub tenant_id: Uuid,
    #[serde(rename = "tenantId")]
    pub tenant_id_seed: Uuid,
    pub integrations: Vec<Connection>,
}

/// The opened credential: tokens or an API key.
#[derive(Serialize, ToSchema)]
pub struct AccessedCredential {
    pub integration: String,
    /// `oauth` or `api_key`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    pub expires_at: Option<String>,
    pub scopes: Vec<String>,
}

/// What a removal answers (seed 004's shape, with our names beside).
#[derive(Serialize, ToSchema)]
pub struct Removed {
    pub success: bool,
    pub tenant_id: Uuid,
    #[serde(rename = "tenantId")]
    pub tenant_id_seed: Uuid,
    pub integration: String,
    pub revoked_at: String,
    #[serde(rename = "revokedAt")]
    pub revoked_at_seed: String,
    /// The provider confirmed the revocation of the connection's tokens (RFC 7009).
    pub revoked_at_provider: bool,
    /// `revoked`, `not_supported` (the integration has no revocation endpoint) or `failed`
    /// (the provider could not be reached or refused: the connection is removed here all the
    /// same, and its tokens may still work at the provider until they expire).
    pub provider_revocation: &'static str,
}

fn integration_name(integration: &str) -> Result<(), ApiError> {
    tessera_domain::credential::integration(integration).map_err(ApiError::from)
}

/// What a `POST` stores, checked.
fn store_input(
    body: StoreCredentialRequest,
    now: Timestamp,
) -> Result<StoreCredentialInput, ApiError> {
    let present = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
    let kind = match (present(&body.access_token), present(&body.api_key)) {
        (true, false) => CredentialKind::Oauth,
        (false, true) => CredentialKind::ApiKey,
        _ => {
            return Err(ApiError::validation(
                "access_token",
                "give either access_token (OAuth tokens) or api_key, not both",
            ));
        }
    };
    for (field, value) in [
        ("access_token", &body.access_token),
        ("refresh_token", &body.refresh_token),
        ("api_key", &body.api_key),
    ] {
        if value.as_deref().is_some_and(|v| v.len() > 16_384) {
            return Err(ApiError::validation(field, "at most 16384 characters"));
        }
    }
    if kind == CredentialKind::ApiKey
        && (body.refresh_token.is_some() || body.expires_in.is_some() || body.expires_at.is_some())
    {
        return Err(ApiError::validation(
            "api_key",
            "an API key has no refresh token and no expiry",
        ));
    }
    let expires_at = match (body.expires_in, body.expires_at.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "expires_in",
                "give expires_in or expires_at, not both",
            ));
        }
        (Some(seconds), None) if !(0..=10 * 365 * 86_400).contains(&seconds) => {
            return Err(ApiError::validation(
                "expires_in",
                "must be 0 (no expiry) or a number of seconds up to ten years",
            ));
        }
        (Some(0) | None, None) => None,
        (Some(seconds), None) => Some(now.plus_seconds(seconds)),
        (None, Some(text)) => super::parse_time("expires_at", Some(text))?,
    };
    Ok(StoreCredentialInput {
        kind,
        secret: CredentialSecret {
            access_token: body.access_token.filter(|v| !v.is_empty()),
            refresh_token: body.refresh_token.filter(|v| !v.is_empty()),
            token_type: match kind {
                CredentialKind::Oauth => Some(body.token_type.unwrap_or_else(|| "Bearer".into())),
                CredentialKind::ApiKey => None,
            },
            api_key: body.api_key.filter(|v| !v.is_empty()),
        },
        scopes: body.scopes,
        expires_at,
        app: OAuthAppSource::None,
    })
}

/// The connection as the read model holds it after `position`.
async fn listed(
    state: &AppState,
    tenant_id: Uuid,
    integration: &str,
) -> Result<Option<Connection>, ApiError> {
    Ok(state
        .store
        .list_credentials(tenant_id)
        .await?
        .into_iter()
        .find(|view| view.integration == integration)
        .map(to_connection))
}

/// Stores a connection's tokens or API key directly, sealed under the tenant's vault. Needs
/// `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/integrations/{integration}/credentials", tag = "vault",
    request_body = StoreCredentialRequest,
    params(("id" = Uuid, Path, description = "tenant id"), ("integration" = String, Path, description = "integration name")),
    responses((status = 201, body = Connection), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn store_credential(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, integration)): ApiPath<(Uuid, String)>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<StoreCredentialRequest>,
) -> Result<(StatusCode, Json<Connection>), ApiError> {
    integration_name(&integration)?;
    let input = store_input(body, state.clock.now())?;
    vault_usable(&state, tenant_id).await?;
    let position = state
        .commands
        .store_credential(
            ctx.metadata(principal.actor()),
            tenant_id,
            &integration,
            input,
        )
        .await?;
    state.projected(position).await?;
    let connection = listed(&state, tenant_id, &integration)
        .await?
        .ok_or_else(|| ApiError::Internal("stored connection missing from read model".into()))?;
    Ok((StatusCode::CREATED, Json(connection)))
}

/// Lists the tenant's connections: status, scopes, expiry, last refresh and last error; never
/// a secret. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/integrations", tag = "vault",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = ConnectionList), (status = 404, body = ErrorBody)))]
pub async fn list_connections(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
) -> Result<Json<ConnectionList>, ApiError> {
    let integrations = state
        .store
        .list_credentials(tenant_id)
        .await?
        .into_iter()
        .map(to_connection)
        .collect();
    Ok(Json(ConnectionList {
        tenant_id,
        tenant_id_seed: tenant_id,
        integrations,
    }))
}

/// Removes a connection. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(delete, path = "/v1/tenants/{id}/integrations/{integration}/credentials", tag = "vault",
    params(("id" = Uuid, Path, description = "tenant id"), ("integration" = String, Path, description = "integration name")),
    responses((status = 200, body = Removed), (status = 404, body = ErrorBody)))]
pub async fn remove_credential(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, integration)): ApiPath<(Uuid, String)>,
    ctx: RequestContext,
) -> Result<Json<Removed>, ApiError> {
    integration_name(&integration)?;
    // The provider first, where it can revoke (the connect flow's part); whatever it answers,
    // the connection is removed here.
    let revocation = crate::connect::revoke::revoke_at_provider(&state, tenant_id, &integration)
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%tenant_id, integration, %error, "revocation at the provider not tried");
            crate::connect::revoke::Revocation::Failed
        });
    let position = state
        .commands
        .remove_credential(
            ctx.metadata(principal.actor()),
            tenant_id,
            &integration,
            revocation.confirmed(),
        )
        .await
        .map_err(|error| match ApiError::from(error) {
            ApiError::NotFound(_) => ApiError::NotFound(format!("connection {integration}")),
            other => other,
        })?;
    state.projected(position).await?;
    let now = state.clock.now().to_rfc3339();
    Ok(Json(Removed {
        success: true,
        tenant_id,
        tenant_id_seed: tenant_id,
        integration,
        revoked_at: now.clone(),
        revoked_at_seed: now,
        revoked_at_provider: revocation.confirmed(),
        provider_revocation: revocation.as_str(),
    }))
}

/// A destroyed vault is gone for good: 410 rather than the 409 of a refused command.
async fn vault_usable(state: &AppState, tenant_id: Uuid) -> Result<(), ApiError> {
    if state.commands.vault_state(tenant_id).await?.destroyed {
        return Err(ApiError::Gone(
            "the tenant's vault was destroyed (offboarding): nothing of it opens again".into(),
        ));
    }
    Ok(())
}

/// Returns the connection's secret in clear, after recording the access durably. Needs an API
/// key of this tenant holding `vault:read`; any other tenant's connection is 404.
#[utoipa::path(post, path = "/v1/tenants/{id}/integrations/{integration}/credentials/access", tag = "vault",
    params(("id" = Uuid, Path, description = "tenant id"), ("integration" = String, Path, description = "integration name")),
    responses((status = 200, body = AccessedCredential), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn access_credential(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((tenant_id, integration)): ApiPath<(Uuid, String)>,
    ctx: RequestContext,
) -> Result<Json<AccessedCredential>, ApiError> {
    // Another tenant's connection looks like a missing one, whatever the key holds.
    if principal.tenant_id != tenant_id {
        return Err(ApiError::NotFound(format!("connection {integration}")));
    }
    if !principal.has_scope(VAULT_READ) {
        return Err(ApiError::Forbidden(format!(
            "this key lacks the {VAULT_READ} scope"
        )));
    }
    integration_name(&integration)?;
    // A destroyed vault is refused by the open below (410), which reads the vault's state
    // anyway: the hot path reads it once.
    let read = state
        .commands
        .read_credential(tenant_id, &integration)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("connection {integration}")))?;
    if read.credential.status == CredentialStatus::NeedsReauth {
        return Err(ApiError::IllegalTransition(format!(
            "the connection {integration} needs to be made again (needs_reauth): the \
             provider no longer accepts its grant"
        )));
    }
    let meta = ctx.metadata(principal.actor());
    let (read, refreshed) =
        refresh_if_expiring(&state, &meta, tenant_id, &integration, read).await?;
    let credential = read.credential;
    let secret = state
        .commands
        .open_credential(tenant_id, &integration, &credential)
        .await
        .map_err(|error| match ApiError::from(error) {
            ApiError::IllegalTransition(message) => ApiError::Gone(message),
            other => other,
        })?;
    state
        .commands
        .record_credential_access(meta, tenant_id, &integration, principal.key_id, refreshed)
        .await?;
    Ok(Json(AccessedCredential {
        integration,
        kind: kind_name(credential.kind),
        access_token: secret.access_token.clone(),
        token_type: secret.token_type.clone(),
        api_key: secret.api_key.clone(),
        expires_at: credential.expires_at.map(Timestamp::to_rfc3339),
        scopes: credential.scopes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

    #[test]
    fn seed_004s_body_stores_tokens_that_do_not_expire() {
        let body: StoreCredentialRequest = serde_json::from_str(
            r#"{"accessToken": "secret_abc", "tokenType": "bearer", "expiresIn": 0,
                "scopes": ["read:pages"]}"#,
        )
        .unwrap();
        let input = store_input(body, NOW).unwrap();
        assert_eq!(input.kind, CredentialKind::Oauth);
        assert_eq!(input.expires_at, None);
        assert_eq!(input.secret.token_type.as_deref(), Some("bearer"));
        assert_eq!(input.scopes, vec!["read:pages".to_owned()]);
    }

    #[test]
    fn a_body_with_both_or_neither_secret_or_both_expiries_is_refused_by_field() {
        let field = |json: &str| match store_input(serde_json::from_str(json).unwrap(), NOW) {
            Err(ApiError::Validation { field, .. }) => field,
            other => format!("{:?}", other.map(|i| i.kind)),
        };
        assert_eq!(field(r#"{}"#), "access_token");
        assert_eq!(
            field(r#"{"access_token": "a", "api_key": "k"}"#),
            "access_token"
        );
        assert_eq!(
            field(
                r#"{"access_token": "a", "expires_in": 5, "expires_at": "2030-01-01T00:00:00Z"}"#
            ),
            "expires_in"
        );
        assert_eq!(
            field(r#"{"access_token": "a", "expires_in": -1}"#),
            "expires_in"
        );
        assert_eq!(field(r#"{"api_key": "k", "expires_in": 60}"#), "api_key");
        assert_eq!(
            field(r#"{"access_token": "a", "expires_at": "soon"}"#),
            "expires_at"
        );
        let input = store_input(
            serde_json::from_str(r#"{"access_token": "a", "expires_in": 60}"#).unwrap(),
            NOW,
        )
        .unwrap();
        assert_eq!(input.expires_at, Some(NOW.plus_seconds(60)));
    }
}
