//! Federated sign-in (issue 19): starting a round trip to a tenant's upstream identity
//! provider and finishing it, shared by the hosted pages (`pages::federation`) and seed 002's
//! frontend flow (`routes::federation_auth`).
//!
//! **The state** is sealed ([`tessera_crypto::FederationSecrets::seal_state`]): it carries the
//! sign-in's id, tenant, provider alias, PKCE verifier, nonce, redirect URI, where to go after,
//! its expiry (`OIDC_STATE_TTL_SECONDS` after its start, by the injected clock) and the keyed
//! hash of a random cookie set on the browser that started it. Finishing checks, in order: it
//! opens (else forged), it is of the tenant it is presented at, unexpired, presented by the
//! browser that holds the cookie (login CSRF), not used (its stream is empty), its provider
//! still configured, its redirect URI still accepted (the grace period after an origin change);
//! then the code is exchanged and the ID token validated; then the address (`claims_mapping`)
//! must be verified and its domain allowed. The command then decides "once" in the append.
//!
//! Every refusal is recorded (`federation.refused` with its reason) and answered with the
//! correlation id, which the person can quote.
//!
//! # Layout
//! - [`upstream`]: discovery, JWKS, code exchange, ID token validation (timeouts, no redirects).
//! - [`frontend_token`]: the access token seed 002's `POST /auth/callback` answers, and the
//!   tenant's built-in client it is issued for.

pub mod frontend_token;
pub mod upstream;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_commands::{CommandError, FederatedIdentity, FederatedOutcome};
use tessera_domain::identity_provider::IdentityProvider;
use tessera_event_schemas::events::FederationRefusal;
use tessera_event_schemas::{Actor, Hash32, Timestamp};
use uuid::Uuid;

use crate::extract::RequestContext;
use crate::pages::cookies;
use crate::state::AppState;

/// The state as sealed. Short field names: it travels in URLs.
#[derive(Clone, Serialize, Deserialize)]
pub struct StatePayload {
    /// The sign-in's id (its stream).
    pub id: Uuid,
    pub tenant: Uuid,
    pub alias: String,
    pub nonce: String,
    pub verifier: String,
    pub redirect_uri: String,
    /// Where the hosted flow goes once signed in (a path of the tenant), if anywhere.
    pub return_to: Option<String>,
    /// Microseconds since the epoch.
    pub expires: i64,
    /// Hex of the keyed hash of the browser's binding cookie.
    pub browser: String,
}

/// A started round trip: where to send the browser, the state, and the binding cookie to set
/// (when the browser had none).
pub struct Started {
    pub authorization_url: String,
    pub state: String,
    pub cookie: Option<axum::http::HeaderValue>,
}

/// Why a federated sign-in was refused: what the person is told, and what is recorded.
#[derive(Debug)]
pub struct Refused {
    pub reason: FederationRefusal,
    pub title: &'static str,
    pub message: String,
}

impl Refused {
    fn new(reason: FederationRefusal, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            title,
            message: message.into(),
        }
    }

    fn bad_state(message: &str) -> Self {
        Self::new(
            FederationRefusal::BadState,
            "Sign-in could not be completed",
            message,
        )
    }
}

/// How finishing ended.
pub enum Finished {
    SignedIn {
        tenant_id: Uuid,
        session: tessera_commands::StartedSession,
        return_to: Option<String>,
    },
    LinkRequired {
        tenant_id: Uuid,
        state_id: Uuid,
        return_to: Option<String>,
    },
}

/// An internal failure (the log, the key table) rather than a refusal.
pub enum Failure {
    Refused(Refused),
    Command(CommandError),
}

impl From<CommandError> for Failure {
    fn from(error: CommandError) -> Self {
        Failure::Command(error)
    }
}

/// The browser binding cookie of the tenant `slug`: one per tenant, so a state started at one
/// tenant cannot be finished at another by the same browser either.
pub fn binding_cookie_name(slug: &str, secure: bool) -> String {
    format!("{}-federation", cookies::session_name(slug, secure))
}

/// Starts a round trip to `alias` of the tenant: the state, the binding cookie (kept if the
/// browser has one), and the upstream's authorization URL with PKCE and a nonce.
pub fn start(
    state: &AppState,
    headers: &HeaderMap,
    tenant_id: Uuid,
    slug: &str,
    alias: &str,
    provider: &IdentityProvider,
    return_to: Option<String>,
) -> Result<Started, CommandError> {
    let name = binding_cookie_name(slug, state.secure_cookies);
    let (binding, cookie) = match cookies::read(headers, &name) {
        Some(value) => (value.to_owned(), None),
        None => {
            let value = tessera_crypto::generate_secret()?;
            let cookie = cookies::set(&name, &value, state.secure_cookies);
            (value, Some(cookie))
        }
    };
    let nonce = upstream::random_value()?;
    let verifier = upstream::random_value()?;
    let payload = StatePayload {
        id: state.ids.new_id(),
        tenant: tenant_id,
        alias: alias.to_owned(),
        nonce: nonce.clone(),
        verifier: verifier.clone(),
        redirect_uri: provider.redirect_uri(),
        return_to,
        expires: state
            .clock
            .now()
            .plus_seconds(state.federation.state_ttl_seconds)
            .as_micros(),
        browser: state.crypto.session_token_hash(&binding).to_hex(),
    };
    let bytes = serde_json::to_vec(&payload)
        .map_err(|error| CommandError::Internal(format!("encoding a state: {error}")))?;
    let sealed = state.crypto.federation().seal_state(&bytes)?;
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", &payload.redirect_uri)
        .append_pair("scope", &provider.scopes.join(" "))
        .append_pair("state", &sealed)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &upstream::challenge(&verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if provider.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok(Started {
        authorization_url: format!("{}{separator}{query}", provider.authorization_endpoint),
        state: sealed,
        cookie,
    })
}

/// The tenant a state names, if it opens: where a refusal of it is recorded and shown.
pub fn tenant_of(state: &AppState, sealed: &str) -> Option<(Uuid, String)> {
    let payload = open(state, sealed)?;
    Some((payload.tenant, payload.alias))
}

/// The path of the redirect URI a state was started for, if it opens: where the upstream
/// sends the browser back (a provider's `redirect_path`).
pub fn redirect_path_of(state: &AppState, sealed: &str) -> Option<String> {
    url_path(&open(state, sealed)?.redirect_uri)
}

/// The first path segments of Tessera's own routes: a provider whose callback is on this
/// server may not take a path under them (`PUT` answers 400), since the route there would win.
/// `/login/callback`, seed 002's default, is the callback's own route.
pub const RESERVED_SEGMENTS: [&str; 11] = [
    "t",
    "v1",
    "api",
    "auth",
    ".well-known",
    "assets",
    "invite",
    "healthz",
    "readyz",
    "metrics",
    "openapi.json",
];

/// Whether a callback at `path` on this server would collide with one of its own routes.
pub fn collides_with_own_routes(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    path != tessera_domain::identity_provider::DEFAULT_REDIRECT_PATH
        && (first.is_empty() || RESERVED_SEGMENTS.contains(&first))
}

fn open(state: &AppState, sealed: &str) -> Option<StatePayload> {
    let bytes = state.crypto.federation().open_state(sealed)?;
    serde_json::from_slice(&bytes).ok()
}

/// Finishes a round trip: `code` and `state` as the upstream sent them back, presented at the
/// tenant `at` (when the route names one) by the browser of `headers`.
pub async fn finish(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    at: Option<Uuid>,
    sealed: &str,
    code: &str,
    arrived_path: Option<&str>,
) -> Result<Finished, Failure> {
    let meta = ctx.metadata(Actor::system());
    let Some(payload) = open(state, sealed) else {
        if let Some(tenant) = at {
            let _ = state
                .commands
                .record_federation_refusal(meta, tenant, "", None, FederationRefusal::BadState)
                .await;
        }
        return Err(Failure::Refused(Refused::bad_state(
            "The sign-in link is not valid. Please start signing in again.",
        )));
    };
    let tenant_id = payload.tenant;
    let alias = payload.alias.clone();
    let refuse = |refused: Refused, on_state: bool| {
        let meta = meta.clone();
        let alias = alias.clone();
        async move {
            let state_id = on_state.then_some(payload.id);
            let recorded_at = at.unwrap_or(tenant_id);
            if let Err(error) = state
                .commands
                .record_federation_refusal(meta, recorded_at, &alias, state_id, refused.reason)
                .await
            {
                return Failure::Command(error);
            }
            Failure::Refused(refused)
        }
    };
    if at.is_some_and(|at| at != tenant_id) {
        return Err(refuse(
            Refused::bad_state("This sign-in was started for another organisation."),
            false,
        )
        .await);
    }
    let now = state.clock.now();
    let browser = tenant_slug(state, tenant_id).and_then(|slug| {
        cookies::read(headers, &binding_cookie_name(&slug, state.secure_cookies))
            .map(|value| state.crypto.session_token_hash(value))
    });
    let same_browser = browser.is_some_and(|hash| {
        Hash32::from_hex(&payload.browser)
            .is_some_and(|expected| tessera_crypto::federation::same_hash(&hash, &expected))
    });
    if !same_browser {
        return Err(refuse(
            Refused::bad_state(
                "This sign-in was started in another browser. Please start signing in again here.",
            ),
            false,
        )
        .await);
    }
    let expected_path = url_path(&payload.redirect_uri);
    if state.federation.strict_redirect_validation
        && arrived_path.is_some_and(|path| Some(path) != expected_path.as_deref())
    {
        return Err(refuse(
            Refused::bad_state("The sign-in came back to an unexpected address."),
            false,
        )
        .await);
    }
    if state
        .commands
        .federated_sign_in_used(tenant_id, payload.id)
        .await?
    {
        return Err(refuse(
            Refused::bad_state("This sign-in was already used. Please start signing in again."),
            false,
        )
        .await);
    }
    if Timestamp::from_micros(payload.expires) <= now {
        return Err(refuse(
            Refused::bad_state("This sign-in took too long and has expired. Please start again."),
            true,
        )
        .await);
    }
    let Some(provider) = state.commands.identity_provider(tenant_id, &alias).await? else {
        return Err(refuse(
            Refused::bad_state("This organisation no longer signs in this way."),
            true,
        )
        .await);
    };
    if !provider.accepts_redirect_uri(&payload.redirect_uri, now) {
        return Err(refuse(
            Refused::bad_state(
                "The sign-in came back to an address that is no longer valid. Please start again.",
            ),
            true,
        )
        .await);
    }
    let claims = match exchange(state, tenant_id, &alias, &provider, &payload, code).await {
        Ok(claims) => claims,
        Err(message) => {
            tracing::warn!(correlation_id = %crate::correlation::current(), %tenant_id, %alias, error = %message, "federated sign-in: upstream failed");
            return Err(refuse(
                Refused::new(
                    FederationRefusal::Upstream,
                    "Sign-in could not be completed",
                    "The identity provider could not confirm who you are. Please try again later.",
                ),
                true,
            )
            .await);
        }
    };
    let text = |claim: &str| {
        claims
            .get(provider.claim_name(claim))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let subject = text("sub").unwrap_or_default();
    let Some(email) = text("email").filter(|email| email.contains('@')) else {
        return Err(refuse(
            Refused::new(
                FederationRefusal::EmailUnverified,
                "Email address not verified",
                "The identity provider did not give a verified email address.",
            ),
            true,
        )
        .await);
    };
    let verified = match claims.get(provider.claim_name("email_verified")) {
        Some(Value::Bool(verified)) => *verified,
        Some(Value::String(verified)) => verified == "true",
        _ => false,
    };
    if !verified && !provider.trust_email {
        return Err(refuse(
            Refused::new(
                FederationRefusal::EmailUnverified,
                "Email address not verified",
                "The identity provider has not verified your email address.",
            ),
            true,
        )
        .await);
    }
    let domain = email.rsplit_once('@').map_or("", |(_, domain)| domain);
    if !provider.allows_domain(domain) {
        return Err(refuse(
            Refused::new(
                FederationRefusal::EmailDomain,
                "Email domain not allowed",
                "Your email address's domain is not allowed to sign in to this organisation.",
            ),
            true,
        )
        .await);
    }
    let identity = FederatedIdentity {
        tenant_id,
        alias: alias.clone(),
        state_id: payload.id,
        subject,
        email,
        name: text("name"),
        given_name: text("given_name"),
        family_name: text("family_name"),
        browser_hash: browser.unwrap_or_default(),
    };
    match state
        .commands
        .federated_sign_in(meta.clone(), identity)
        .await
    {
        Ok(FederatedOutcome::SignedIn {
            session, position, ..
        }) => {
            // Read-your-writes: the pages that follow read the new user's row.
            state
                .projected(position)
                .await
                .map_err(|error| Failure::Command(CommandError::Unavailable(error.to_string())))?;
            Ok(Finished::SignedIn {
                tenant_id,
                session,
                return_to: payload.return_to,
            })
        }
        Ok(FederatedOutcome::LinkRequired { .. }) => Ok(Finished::LinkRequired {
            tenant_id,
            state_id: payload.id,
            return_to: payload.return_to,
        }),
        Err(CommandError::Rejected(error)) => {
            tracing::info!(correlation_id = %crate::correlation::current(), %tenant_id, %error, "federated sign-in refused");
            Err(Failure::Refused(Refused::new(
                FederationRefusal::AccountUnusable,
                "Sign-in could not be completed",
                "This account cannot sign in. Please contact your administrator.",
            )))
        }
        Err(other) => Err(Failure::Command(other)),
    }
}

async fn exchange(
    state: &AppState,
    tenant_id: Uuid,
    alias: &str,
    provider: &IdentityProvider,
    payload: &StatePayload,
    code: &str,
) -> Result<Map<String, Value>, String> {
    let secret = state
        .commands
        .open_client_secret(tenant_id, alias, provider)
        .map_err(|error| error.to_string())?;
    let id_token = state
        .upstream
        .exchange_code(
            provider,
            &secret,
            code,
            &payload.redirect_uri,
            &payload.verifier,
        )
        .await
        .map_err(|error| error.to_string())?;
    state
        .upstream
        .validate_id_token(provider, &id_token, &payload.nonce, state.clock.now())
        .await
        .map_err(|error| error.to_string())
}

fn url_path(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()
        .map(|url| url.path().to_owned())
}

/// The slug of a tenant the directory knows.
pub fn tenant_slug(state: &AppState, tenant_id: Uuid) -> Option<String> {
    state
        .directory
        .tenant(tenant_id)
        .and_then(|tenant| tenant.tenant.as_ref().map(|tenant| tenant.slug.clone()))
}

/// Federation settings (seed 002's names; see `config::FederationSettings`).
#[derive(Clone, Debug)]
pub struct FederationConfig {
    pub state_ttl_seconds: i64,
    pub redirect_grace_seconds: i64,
    pub strict_redirect_validation: bool,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            state_ttl_seconds: 600,
            redirect_grace_seconds: 600,
            strict_redirect_validation: true,
        }
    }
}
