//! The hosted federated sign-in (issue 19): "Sign in with {provider}" on the sign-in page
//! (`GET /t/{slug}/login/federation/{alias}` starts the round trip), the callback the upstream
//! sends the browser back to (`GET /login/callback`, seed 002's default `redirect_path`, served
//! when `canonical_public_origin` is this server; a provider's own `redirect_path` through the
//! router's fallback, [`callback_at_redirect_path`]), and the page where a person who already has
//! an account here links the upstream identity to it after signing in
//! (`/t/{slug}/login/federation/link/{state}`).
//!
//! A finished sign-in ends like any other: the session cookie, then `return_to` (an
//! authorization request's continuation, or the account page). A refusal is an HTML page with
//! seed 002's wording ("Email domain not allowed", ...) and the correlation id.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use tessera_commands::CommandError;
use tessera_domain::identity_provider::DEFAULT_ALIAS;
use uuid::Uuid;

use super::csrf::{self, Csrf};
use super::login::note_started;
use super::{
    Frame, PageError, PageForm, PageTenant, SignedIn, cookies, render, safe_return_to, see_other,
};
use crate::extract::RequestContext;
use crate::federation::{self, Failure, Finished};
use crate::state::AppState;

/// What the sign-in page shows for a tenant's provider.
pub struct ProviderButton {
    pub href: String,
    pub label: String,
}

/// A button for each of the tenant's providers (`default` first, then by alias), each
/// starting its own round trip. The list is the `rm_identity_providers` read model; a read that
/// fails shows no button rather than no sign-in page (the password form still works).
pub async fn buttons(
    state: &AppState,
    tenant: &PageTenant,
    return_to: &str,
) -> Vec<ProviderButton> {
    let mut providers = match state.store.identity_providers(tenant.tenant_id).await {
        Ok(providers) => providers,
        Err(error) => {
            tracing::warn!(%error, tenant_id = %tenant.tenant_id, "the sign-in page could not list the identity providers");
            return Vec::new();
        }
    };
    providers.sort_by_key(|provider| provider.alias != DEFAULT_ALIAS);
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    providers
        .into_iter()
        .map(|provider| ProviderButton {
            href: format!(
                "{}?{query}",
                tenant
                    .frame
                    .url(&format!("login/federation/{}", provider.alias))
            ),
            label: format!("Sign in with {}", provider.display_name),
        })
        .collect()
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `GET /t/{slug}/login/federation/{alias}[?return_to=...]`: to the upstream, with a fresh
/// state bound to this browser.
pub async fn start(
    State(state): State<AppState>,
    tenant: PageTenant,
    Path((_, alias)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let provider = state
        .commands
        .identity_provider(tenant.tenant_id, &alias)
        .await?
        .ok_or_else(|| PageError::not_found().framed(&tenant.frame))?;
    let return_to = safe_return_to(tenant.slug(), query_param(&uri, "return_to").as_deref());
    let started = federation::start(
        &state,
        &headers,
        tenant.tenant_id,
        tenant.slug(),
        &alias,
        &provider,
        return_to,
    )?;
    let mut response =
        StatusCode::SEE_OTHER.into_response_with_location(&started.authorization_url);
    if let Some(cookie) = started.cookie {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, cookie);
    }
    Ok(response)
}

trait SeeOther {
    fn into_response_with_location(self, location: &str) -> Response;
}

impl SeeOther for StatusCode {
    fn into_response_with_location(self, location: &str) -> Response {
        use axum::response::IntoResponse;
        let mut response = self.into_response();
        if let Ok(value) = axum::http::HeaderValue::from_str(location) {
            response
                .headers_mut()
                .insert(axum::http::header::LOCATION, value);
        }
        response
    }
}

/// The page a refusal shows: its title and words, with the correlation id to quote.
pub fn refusal_page(state: &AppState, tenant_id: Option<Uuid>, failure: Failure) -> PageError {
    match failure {
        Failure::Command(error) => error.into(),
        Failure::Refused(refused) => {
            let message = format!(
                "{} Reference: {}",
                refused.message,
                crate::correlation::current()
            );
            let error = PageError::new(StatusCode::FORBIDDEN, refused.title, message);
            match tenant_id.and_then(|id| frame_of(state, id)) {
                Some(frame) => error.framed(&frame),
                None => error,
            }
        }
    }
}

pub(super) fn frame_of(state: &AppState, tenant_id: Uuid) -> Option<Frame> {
    let tenant = state.directory.tenant(tenant_id)?;
    let tenant = tenant.tenant.as_ref()?;
    Some(Frame {
        tenant_name: tenant.name.clone(),
        slug: tenant.slug.clone(),
        base_path: super::base_path(&state.public_url).to_owned(),
    })
}

/// `GET /login/callback?code=...&state=...`: the upstream's answer; the tenant is the state's.
pub async fn callback(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let sealed = query_param(&uri, "state").unwrap_or_default();
    let tenant = federation::tenant_of(&state, &sealed).map(|(tenant, _)| tenant);
    let code = match (query_param(&uri, "code"), query_param(&uri, "error")) {
        (Some(code), None) => code,
        // The upstream refused or the person cancelled: no code to exchange.
        _ => String::new(),
    };
    let finished = federation::finish(
        &state,
        &ctx,
        &headers,
        None,
        &sealed,
        &code,
        Some(uri.path()),
    )
    .await
    .map_err(|failure| refusal_page(&state, tenant, failure))?;
    match finished {
        Finished::SignedIn {
            tenant_id,
            session,
            return_to,
        } => {
            let frame = frame_of(&state, tenant_id).ok_or_else(PageError::not_found)?;
            let page_tenant = PageTenant { tenant_id, frame };
            note_started(&state, &page_tenant, &ctx, &session);
            let to = return_to.unwrap_or_else(|| page_tenant.home());
            Ok(see_other(
                &state,
                &to,
                vec![super::login::session_cookie(&state, &page_tenant, &session)],
            ))
        }
        Finished::LinkRequired {
            tenant_id,
            state_id,
            return_to,
        } => {
            let slug =
                federation::tenant_slug(&state, tenant_id).ok_or_else(PageError::not_found)?;
            let mut to = format!("/t/{slug}/login/federation/link/{state_id}");
            if let Some(return_to) = return_to {
                to.push_str("?return_to=");
                to.extend(form_urlencoded::byte_serialize(return_to.as_bytes()));
            }
            Ok(see_other(&state, &to, Vec::new()))
        }
    }
}

/// The router's fallback: the callback at a provider's own `redirect_path` (issue 19), served
/// when a `GET` arrives at the very path the presented state was started for; anything else is
/// the API's 404. Paths under Tessera's own routes cannot be configured (`PUT` refuses them),
/// so this never shadows a route.
pub async fn callback_at_redirect_path(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    method: axum::http::Method,
    uri: Uri,
) -> Response {
    use axum::response::IntoResponse;
    let arrived = method == axum::http::Method::GET
        && query_param(&uri, "state")
            .and_then(|sealed| federation::redirect_path_of(&state, &sealed))
            .is_some_and(|path| path == uri.path());
    if !arrived {
        return crate::error::ApiError::NotFound("route".to_owned()).into_response();
    }
    let answer = match callback(State(state), ctx, headers, uri).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    super::security_headers(answer).await
}

#[derive(Template)]
#[template(path = "federation_link.html")]
struct LinkPage<'a> {
    frame: &'a Frame,
    csrf_token: String,
    return_to: &'a str,
    action: String,
}

/// `GET /t/{slug}/login/federation/link/{state}`: someone whose address already has an
/// account here signs in to it (the sign-in page brings them back), then confirms.
pub async fn show_link(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((_, state_id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    let return_to = safe_return_to(tenant.slug(), query_param(&uri, "return_to").as_deref())
        .unwrap_or_else(|| tenant.home());
    let csrf = Csrf::of(&state, &headers)?;
    let page = LinkPage {
        frame: &tenant.frame,
        csrf_token: csrf.token(&state, tenant.slug()),
        return_to: &return_to,
        action: tenant
            .frame
            .url(&format!("login/federation/link/{state_id}")),
    };
    render(&page, StatusCode::OK, csrf.set_cookie(&state))
}

/// `POST /t/{slug}/login/federation/link/{state}`: links the upstream identity to the signed-in
/// account, if the sign-in asked for this account from this browser, once.
pub async fn submit_link(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ctx: RequestContext,
    Path((_, state_id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    form: PageForm,
) -> Result<Response, PageError> {
    let tenant = &signed_in.tenant;
    csrf::verify_form(&state, &headers, tenant, &form)?;
    let return_to =
        safe_return_to(tenant.slug(), form.get("return_to")).unwrap_or_else(|| tenant.home());
    let browser = cookies::read(
        &headers,
        &federation::binding_cookie_name(tenant.slug(), state.secure_cookies),
    )
    .map(|value| state.crypto.session_token_hash(value))
    .unwrap_or_default();
    let meta = ctx.metadata(tessera_event_schemas::Actor::system());
    match state
        .commands
        .link_federated_identity(
            meta,
            tenant.tenant_id,
            state_id,
            signed_in.user_id(),
            &browser,
        )
        .await
    {
        Ok(_) => Ok(see_other(&state, &return_to, Vec::new())),
        Err(CommandError::Rejected(_) | CommandError::NotFound { .. }) => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "The sign-in could not be linked",
            format!(
                "This link was made for another account or browser, or was already used. \
                 Nothing was changed. Reference: {}",
                crate::correlation::current()
            ),
        )
        .framed(&tenant.frame)),
        Err(other) => Err(other.into()),
    }
}
