//! The OAuth connect flow (issue 20, seed 004): a tenant administrator starts a connection to
//! an integration (`GET /v1/tenants/{id}/integrations/{integration}/connect`), the person who
//! holds the third-party account consents at the provider, and the provider sends the browser
//! back to `GET /oauth/callback/{integration}` (seed 004's path), where the code is exchanged
//! and the tokens sealed and stored.
//!
//! **The state** is sealed with AES-256-GCM under the platform's sealing key (its AAD names the
//! purpose), so the browser can neither read it (it holds the PKCE verifier, which must not
//! travel in clear, or PKCE would protect nothing) nor forge or alter it. It carries its id,
//! the tenant, the integration, the verifier, the redirect URI, the API key that started the
//! flow (the actor of what the callback records) and its expiry ([`STATE_TTL_SECS`] after its
//! start, by the injected clock). Finishing checks, in order: it opens (else forged), it names
//! the integration of the path, it is unexpired, it is unused (its stream
//! `{tenant}/connect/{state}` is empty); then the provider's `error` (recorded as
//! `connect.failed`) or the code exchange; then the command stores the connection and appends
//! `connect.completed` with expected version "no stream", so a state is used once on any
//! number of servers. A forged, expired, replayed or misdirected state stores nothing.
//!
//! # Layout
//! - [`provider`]: the provider's token endpoint (code exchange, refresh) and RFC 7009
//!   revocation (timeouts, no redirects).
//! - [`revoke`]: revoking a connection's tokens at the provider before it is removed.
//! - [`tokens`]: the document sealed in a connection.

pub mod provider;
pub mod revoke;
pub mod tokens;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tessera_commands::{CommandError, ConnectTokens};
use tessera_event_schemas::{Actor, ActorKind};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::state::AppState;

/// How long a connect flow's state works: long enough to sign in and consent at the provider.
pub const STATE_TTL_SECS: i64 = 600;
/// The AAD of a sealed state: its purpose, so no other sealed value passes for one.
const STATE_AAD: &[u8] = b"tessera/v1/connect/state";

/// The state as sealed. Short field names: it travels in URLs.
#[derive(Serialize, Deserialize)]
struct StatePayload {
    id: Uuid,
    tenant: Uuid,
    integration: String,
    verifier: Option<String>,
    redirect_uri: String,
    /// The API key that started the flow.
    key: Uuid,
    key_name: Option<String>,
    /// Microseconds since the epoch.
    expires: i64,
}

/// A started connect flow: where to send the browser, and the state it carries.
pub struct Started {
    pub authorization_url: String,
    pub state: String,
}

/// `{public URL}/oauth/callback/{integration}`: the redirect URI registered at the provider.
pub fn redirect_uri(state: &AppState, integration: &str) -> String {
    format!("{}/oauth/callback/{integration}", state.public_url)
}

/// Starts a connect flow for the tenant's `integration`: the sealed state and the provider's
/// authorization URL (the tenant's own app when it set one, PKCE S256 where the provider takes
/// it). 404 for an integration that is not defined.
pub async fn start(
    state: &AppState,
    tenant_id: Uuid,
    integration: &str,
    started_by: &Actor,
) -> Result<Started, ApiError> {
    tessera_domain::integration::name(integration)?;
    let defined = state
        .commands
        .integration(integration)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("integration {integration}")))?;
    let (client_id, scopes) = match state
        .commands
        .integration_app(tenant_id, integration)
        .await?
    {
        Some(app) => (
            app.client_id,
            app.scopes.unwrap_or_else(|| defined.scopes.clone()),
        ),
        None => (defined.client_id.clone(), defined.scopes.clone()),
    };
    let verifier = if defined.pkce {
        Some(tessera_crypto::generate_secret().map_err(CommandError::from)?)
    } else {
        None
    };
    let payload = StatePayload {
        id: state.ids.new_id(),
        tenant: tenant_id,
        integration: integration.to_owned(),
        verifier: verifier.clone(),
        redirect_uri: redirect_uri(state, integration),
        key: started_by.id.parse().unwrap_or_default(),
        key_name: started_by.name.clone(),
        expires: state.clock.now().plus_seconds(STATE_TTL_SECS).as_micros(),
    };
    let bytes = serde_json::to_vec(&payload)
        .map_err(|error| ApiError::Internal(format!("encoding a connect state: {error}")))?;
    let sealed = state
        .crypto
        .seal(STATE_AAD, &bytes)
        .map_err(CommandError::from)?;
    let sealed = URL_SAFE_NO_PAD.encode(sealed);
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &payload.redirect_uri)
        .append_pair("state", &sealed);
    if !scopes.is_empty() {
        query.append_pair("scope", &scopes.join(" "));
    }
    if let Some(verifier) = &verifier {
        query
            .append_pair("code_challenge", &tessera_crypto::pkce_s256(verifier))
            .append_pair("code_challenge_method", "S256");
    }
    let separator = if defined.authorization_url.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok(Started {
        authorization_url: format!("{}{separator}{}", defined.authorization_url, query.finish()),
        state: sealed,
    })
}

fn open(state: &AppState, sealed: &str) -> Option<StatePayload> {
    if sealed.is_empty() || sealed.len() > 8_192 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let plain = state.crypto.open(STATE_AAD, &bytes).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// How a callback ended, for the page that tells the person.
pub enum Finished {
    Connected {
        tenant_id: Uuid,
    },
    /// The provider refused or the exchange failed: recorded as `connect.failed`.
    NotConnected {
        reason: String,
    },
}

/// Why a callback stored nothing and recorded nothing: the page's title and message.
pub struct Refused {
    pub title: &'static str,
    pub message: &'static str,
}

const INVALID: Refused = Refused {
    title: "This connection link is not valid",
    message: "The link did not come from a connection started here, or it was altered. \
              Nothing was stored: start the connection again.",
};

/// Finishes a connect flow at `/oauth/callback/{integration}`.
pub async fn finish(
    state: &AppState,
    ctx: &RequestContext,
    integration: &str,
    sealed: &str,
    code: Option<&str>,
    provider_error: Option<&str>,
) -> Result<Finished, Result<Refused, ApiError>> {
    let payload = open(state, sealed).ok_or(Ok(INVALID))?;
    if payload.integration != integration {
        return Err(Ok(INVALID));
    }
    if state.clock.now().as_micros() >= payload.expires {
        return Err(Ok(Refused {
            title: "This connection link has expired",
            message: "Connection links work for ten minutes. Nothing was stored: start the \
                      connection again.",
        }));
    }
    let tenant_id = payload.tenant;
    if state
        .commands
        .connect_used(tenant_id, payload.id)
        .await
        .map_err(|error| Err(error.into()))?
    {
        return Err(Ok(Refused {
            title: "This connection link was already used",
            message: "Each connection link works once. Nothing more was stored: start the \
                      connection again if it is not connected.",
        }));
    }
    let meta = ctx.metadata(Actor {
        kind: ActorKind::ApiKey,
        id: payload.key.to_string(),
        name: payload.key_name.clone(),
    });
    let app = state
        .commands
        .oauth_app(tenant_id, integration)
        .await
        .map_err(|error| Err(error.into()))?;
    let outcome = match (app, code, provider_error) {
        (None, _, _) => Err("integration_removed".to_owned()),
        (Some(_), _, Some(error)) => Err(error
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect()),
        (Some(_), None, None) => Err("invalid_request".to_owned()),
        (Some(app), Some(code), None) => match state
            .connect
            .provider
            .exchange_code(
                &app,
                code,
                &payload.redirect_uri,
                payload.verifier.as_deref(),
            )
            .await
        {
            Ok(tokens) => Ok((app, tokens)),
            Err(error) => {
                tracing::warn!(%error, integration, "connect: the code exchange failed");
                Err(error.code())
            }
        },
    };
    let stored = match outcome {
        Ok((app, tokens)) => {
            let now = state.clock.now();
            let connection = ConnectTokens {
                document: tokens::document(&tokens, None).map_err(|error| {
                    Err(ApiError::Internal(format!("a token document: {error}")))
                })?,
                scopes: tessera_domain::integration::scopes("scopes", &tokens.scopes(&app.scopes))
                    .map(|()| tokens.scopes(&app.scopes))
                    .unwrap_or_else(|_| app.scopes.clone()),
                issued_at: now,
                expires_at: tokens.expires_in.map(|seconds| now.plus_seconds(seconds)),
                refreshable: tokens.refresh_token.is_some() && app.integration.refreshes,
                app: app.source,
            };
            state
                .commands
                .complete_connect(meta, tenant_id, integration, payload.id, connection)
                .await
                .map(|position| (position, Finished::Connected { tenant_id }))
        }
        Err(reason) => state
            .commands
            .fail_connect(meta, tenant_id, integration, payload.id, &reason)
            .await
            .map(|position| (position, Finished::NotConnected { reason })),
    };
    match stored {
        Ok((position, finished)) => {
            // The listing reads the read models: let them show what was just stored.
            let _ = state.projected(position).await;
            Ok(finished)
        }
        Err(CommandError::Rejected(tessera_domain::DomainError::Conflict(_))) => Err(Ok(Refused {
            title: "This connection link was already used",
            message: "Each connection link works once. Nothing more was stored.",
        })),
        Err(other) => Err(Err(other.into())),
    }
}

/// The connect flow's and the refresher's share of the state: the provider client, the
/// in-process refresh locks and the refresh settings.
pub struct Connect {
    pub provider: provider::Provider,
    pub flights: crate::vault_refresh::Flights,
    pub refresh: crate::vault_refresh::RefreshSettings,
    pub stats: crate::vault_refresh::RefreshStats,
}

impl Connect {
    pub fn new(refresh: crate::vault_refresh::RefreshSettings) -> Result<Self, String> {
        Ok(Self {
            provider: provider::Provider::new()?,
            flights: crate::vault_refresh::Flights::default(),
            refresh,
            stats: crate::vault_refresh::RefreshStats::default(),
        })
    }
}
