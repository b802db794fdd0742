//! `/v1/audit`: the audit trail. Every event of the log has one entry (secrets redacted), and
//! products append entries of their own (`audit.recorded`).
//!
//! Every entry says who recorded it (`recorded_by`: the caller Tessera authenticated, never
//! anything a request body says). For Tessera's own events that is also the entry's actor. For
//! an appended entry, `actor_*` is whom the product says acted (its own user, say), and the
//! entry can never pass for one of Tessera's: its action is none of Tessera's event types and
//! its actor is of no kind only Tessera records (see `tessera_commands::RecordAudit`).

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_commands::RecordAudit;
use tessera_event_schemas::SYSTEM_TENANT_ID;
use tessera_projections::{AuditFilter, AuditView};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestContext};
use crate::scopes::{AUDIT_WRITE, TENANT_ADMIN};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit", get(list_audit).post(append_audit))
}

/// An entry a product appends.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditAppend {
    /// Defaults to the calling key's tenant.
    pub tenant_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    /// Whom the product says acted, with `actor_type`; both or neither. Without them the entry's
    /// actor is the calling key.
    pub actor_id: Option<String>,
    /// Needs `actor_id`.
    pub actor_name: Option<String>,
    /// The kind of `actor_id`, e.g. `user`; not `system`, `api_key` or `client`, which only
    /// Tessera records.
    pub actor_type: Option<String>,
    /// 1 to 128 characters of `a-z`, `0-9`, `.`, `_`, `:`, `-`, e.g. `invoice.paid`, and not the
    /// type of an event Tessera records itself (`api_key.revoked`, `tenant.created`, ...).
    pub action: String,
    pub target_id: Option<String>,
    pub target_type: Option<String>,
    pub target_name: Option<String>,
    pub product: Option<String>,
    /// A JSON object of at most 16 KiB. Fields named like secrets (`*secret*`, `*password`,
    /// `*token`, `*api_key`, `authorization`, ... in any case and word style, at any depth) are
    /// dropped before the entry is recorded.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// One audit entry.
#[derive(Serialize, ToSchema)]
pub struct AuditEvent {
    /// The event's global position in the log.
    pub id: u64,
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<Uuid>,
    /// The stored event type (`audit.recorded` for entries products appended).
    pub event_type: String,
    /// The event type, or the action a product recorded.
    pub action: String,
    /// Who acted: for Tessera's own events the caller it authenticated (`system`, `api_key`,
    /// `client`); for an entry a product appended, whom the product says acted (`user`, ...),
    /// or the appending key when it named nobody.
    pub actor_type: String,
    pub actor_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    /// Who recorded the entry: the caller Tessera authenticated, for an appended entry the key
    /// that appended it. No request can set it.
    pub recorded_by: RecordedBy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The event's payload without any secret or key material; for an entry a product
    /// appended, its metadata.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// The caller Tessera authenticated for an entry.
#[derive(Serialize, ToSchema)]
pub struct RecordedBy {
    /// `system`, `api_key` or `client`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this tenant's entries (a tenant key sees only its own tenant anyway).
    pub tenant_id: Option<Uuid>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub product: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn to_dto(mut view: AuditView) -> AuditEvent {
    let (metadata, recorder) = view.take_metadata_and_recorder();
    AuditEvent {
        id: view.position,
        event_id: view.event_id,
        tenant_id: view.tenant_id,
        project_id: view.project_id,
        event_type: view.event_type,
        action: view.action,
        actor_type: view.actor_kind,
        actor_id: view.actor_id,
        actor_name: view.actor_name,
        recorded_by: RecordedBy {
            kind: recorder.kind,
            id: recorder.id,
            name: recorder.name,
        },
        target_type: view.target_type,
        target_id: view.target_id,
        target_name: view.target_name,
        product: view.product,
        metadata,
        correlation_id: view.correlation_id,
        source_ip: view.source_ip,
        user_agent: view.user_agent,
        created_at: view.recorded_at.to_rfc3339(),
    }
}

/// Lists audit entries, **newest first** (by global log position, descending), filtered by
/// tenant, actor, action, target, product and time (`since` inclusive, `until` exclusive).
/// Pages with `limit` (1 to 500, default 50) and `cursor`; `next_cursor` is absent on the last
/// page. Needs `platform:admin` (every tenant), or `tenant:admin`, which sees its own tenant
/// only: without `tenant_id` it gets its own tenant's entries, and another tenant is 404.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_audit(
    principal: Principal,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let tenant_id = if principal.is_platform_admin() {
        query.tenant_id
    } else if principal.has_scope(TENANT_ADMIN) {
        let tenant_id = query.tenant_id.unwrap_or(principal.tenant_id);
        principal.authorize_tenant(&state, tenant_id).await?;
        Some(tenant_id)
    } else {
        return Err(ApiError::Forbidden(format!(
            "this key lacks the {TENANT_ADMIN} scope"
        )));
    };
    let limit = super::page_limit(query.limit)?;
    let filter = AuditFilter {
        tenant_id,
        actor_id: query.actor_id,
        action: query.action,
        target_id: query.target_id,
        product: query.product,
        since: super::parse_time("since", query.since.as_deref())?,
        until: super::parse_time("until", query.until.as_deref())?,
    };
    let page = state
        .store
        .audit(&filter, limit, query.cursor.as_deref())
        .await?;
    Ok(Json(AuditPage {
        items: page.items.into_iter().map(to_dto).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A caller that may append audit entries: `platform:admin`, `tenant:admin` or `audit:write`.
/// Checked before the body is read (see [`crate::auth::PlatformAdmin`]); which tenant the key
/// may write for is checked once the body names it.
pub struct AuditWriter(Principal);

impl FromRequestParts<AppState> for AuditWriter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if principal.is_platform_admin()
            || principal.has_scope(TENANT_ADMIN)
            || principal.has_scope(AUDIT_WRITE)
        {
            Ok(Self(principal))
        } else {
            Err(ApiError::Forbidden(format!(
                "this key lacks the {TENANT_ADMIN} or {AUDIT_WRITE} scope"
            )))
        }
    }
}

/// Appends an audit entry (`audit.recorded` on the log) and returns it. `tenant_id` defaults to
/// the calling key's tenant. Needs `platform:admin` (any tenant), or `tenant:admin` or
/// `audit:write` on the key's own tenant (another tenant is 404). A bad field is 400 and
/// appends nothing.
#[utoipa::path(post, path = "/v1/audit", tag = "audit", request_body = AuditAppend,
    responses((status = 201, body = AuditEvent), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn append_audit(
    AuditWriter(principal): AuditWriter,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<AuditAppend>,
) -> Result<(StatusCode, Json<AuditEvent>), ApiError> {
    let tenant_id = if principal.is_platform_admin() {
        body.tenant_id.unwrap_or(SYSTEM_TENANT_ID)
    } else {
        let tenant_id = body.tenant_id.unwrap_or(principal.tenant_id);
        if tenant_id != principal.tenant_id {
            return Err(ApiError::NotFound(format!("tenant {tenant_id}")));
        }
        tenant_id
    };
    let position = state
        .commands
        .record_audit(
            ctx.metadata(principal.actor()),
            tenant_id,
            RecordAudit {
                action: body.action,
                project_id: body.project_id,
                actor_id: body.actor_id,
                actor_name: body.actor_name,
                actor_type: body.actor_type,
                target_id: body.target_id,
                target_type: body.target_type,
                target_name: body.target_name,
                // A product's key records its product unless the entry names one.
                product: body.product.or_else(|| principal.product.clone()),
                metadata: body.metadata,
            },
        )
        .await
        .map_err(|error| match error {
            tessera_commands::CommandError::NotFound { .. } => {
                ApiError::NotFound(format!("tenant {tenant_id}"))
            }
            other => other.into(),
        })?;
    state.projected(position).await?;
    let view = state
        .store
        .audit_entry(position)
        .await?
        .ok_or_else(|| ApiError::Internal("audit entry missing from read model".to_owned()))?;
    Ok((StatusCode::CREATED, Json(to_dto(view))))
}
