//! The authorization endpoint, `GET`/`POST /t/{slug}/oauth/authorize` (OpenID Connect Core
//! §3.1.2, authorization code with PKCE only), and the consent page's decision,
//! `POST /t/{slug}/oauth/authorize/consent`. ADR 0003 §Authorization, step by step:
//!
//! 1. Client and redirect URI ([`request`]): a bad one is an HTML error page, never a redirect.
//! 2. Every other error goes back to the redirect URI with `error`, `state` and `iss` (RFC 9207).
//! 3. The session (the tenant's cookie, in the session directory). None, `prompt=login`, or one
//!    older than `max_age`: 303 to the sign-in page with the continuation, this same request
//!    as a same-tenant path, in `return_to` (password, second factor and passkey sign-ins all
//!    end there, and a federated sign-in will too). The continuation drops `prompt=login` and
//!    carries [`request::AUTH_AFTER`], so that the session the person then starts is accepted
//!    and the sign-in does not loop. `prompt=none` never shows a page.
//! 4. Consent, decided by the command from the log ([`consent`] shows the page).
//! 5. The code, then 303 to the redirect URI with `code`, `state` and `iss`.
//!
//! These are hosted pages: they live in the pages' router, so every answer (redirects to the
//! client included) carries the pages' headers (CSP, `no-store`, anti-framing), and the consent
//! form its CSRF token. Browsers apply a page's `form-action` to every redirect after its form
//! is sent, so the consent page and the sign-in pages of a continuation name the client's
//! redirect origin there ([`continuation_target`], [`crate::pages::FormTarget`]); without it,
//! the last 303, to the client, would be blocked.

pub mod consent;
pub mod request;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tessera_commands::{Authorization, CodeRequest, IssuedCode, person};
use tessera_projections::SessionEntry;

use self::request::{AUTH_AFTER, AuthorizeRequest, Callback, Params, Refusal};
use super::{hint, issuer};
use crate::extract::RequestContext;
use crate::pages::{
    PageError, PageForm, PageTenant, csrf, current_session, is_form, see_other, with_form_target,
};
use crate::state::AppState;

/// What the person answered on the consent page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny,
}

/// `GET /t/{slug}/oauth/authorize?...`: an authorization request. Public: the person is
/// identified by their session cookie.
pub async fn get(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let params = Params::parse(uri.query().unwrap_or_default().as_bytes());
    authorize(&state, &tenant, &ctx, &headers, params, None).await
}

/// `POST /t/{slug}/oauth/authorize`: the same request as a form (OpenID Connect Core
/// §3.1.2.1). It changes nothing by itself, so it needs no CSRF token.
pub async fn post(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    require_form(&headers, &tenant)?;
    authorize(&state, &tenant, &ctx, &headers, Params::parse(&body), None).await
}

/// `POST /t/{slug}/oauth/authorize/consent`: "Allow" or "Deny" on the consent page, with the
/// request in hidden fields and the CSRF token. The request is validated again, whole.
pub async fn decide(
    State(state): State<AppState>,
    tenant: PageTenant,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    require_form(&headers, &tenant)?;
    let form = PageForm::parse(&body);
    csrf::verify_form(&state, &headers, &tenant, &form)?;
    let decision = match form.get("decision") {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => {
            return Err(PageError::bad_request("Choose Allow or Deny.").framed(&tenant.frame));
        }
    };
    let params = Params::from_pairs(Params::parse(&body).without(consent::FORM_FIELDS));
    authorize(&state, &tenant, &ctx, &headers, params, Some(decision)).await
}

fn require_form(headers: &HeaderMap, tenant: &PageTenant) -> Result<(), PageError> {
    if is_form(headers) {
        Ok(())
    } else {
        Err(PageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unexpected request",
            "This page takes a form.",
        )
        .framed(&tenant.frame))
    }
}

async fn authorize(
    state: &AppState,
    tenant: &PageTenant,
    ctx: &RequestContext,
    headers: &HeaderMap,
    params: Params,
    decision: Option<Decision>,
) -> Result<Response, PageError> {
    let iss = issuer(state, tenant.slug());
    let request = match request::validate(state, tenant.tenant_id, params) {
        Ok(request) => request,
        Err(refusal) => return refuse(tenant, &iss, refusal),
    };
    let callback = Callback {
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
    };
    let now = state.clock.now().as_micros();
    let current = current_session(state, tenant, headers).await;
    let Some(session) = current.clone().filter(|s| fresh_enough(&request, s, now)) else {
        if request.prompt.none {
            return refuse(
                tenant,
                &iss,
                callback.refuse("login_required", "the person must sign in"),
            );
        }
        return Ok(to_sign_in(state, tenant, &request, now, current.is_some()));
    };
    if let Some(token) = &request.id_token_hint {
        let known = state
            .directory
            .tenant_by_slug(tenant.slug())
            .and_then(|t| t.tenant.clone())
            .and_then(|t| hint::verify(&t, &iss, token));
        match known {
            None => {
                return refuse(
                    tenant,
                    &iss,
                    callback.refuse("invalid_request", "id_token_hint is not a valid ID token"),
                );
            }
            Some(hint) if hint.sub != session.user_id.to_string() => {
                return refuse(
                    tenant,
                    &iss,
                    callback.refuse(
                        "login_required",
                        "the person signed in is not the one id_token_hint names",
                    ),
                );
            }
            Some(_) => {}
        }
    }
    let code_request = CodeRequest {
        tenant_id: tenant.tenant_id,
        client_id: request.client.client.client_id.clone(),
        require_consent: request.client.client.oidc.require_consent,
        force_consent: request.prompt.consent,
        redirect_uri: request.redirect_uri.clone(),
        scopes: request.scopes.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        user_id: session.user_id,
        session_id: session.session_id,
        auth_time: session.auth_time,
        amr: session.amr.clone(),
    };
    let meta = ctx.metadata(person(session.user_id));
    let framed =
        |error: tessera_commands::CommandError| PageError::from(error).framed(&tenant.frame);
    match decision {
        Some(Decision::Deny) => refuse(
            tenant,
            &iss,
            callback.refuse("access_denied", "the person did not allow the request"),
        ),
        Some(Decision::Allow) => {
            let code = state
                .commands
                .grant_consent_and_issue(meta, &code_request)
                .await
                .map_err(framed)?;
            issued(tenant, &iss, &callback, &code)
        }
        None => match state
            .commands
            .authorize(meta, &code_request)
            .await
            .map_err(framed)?
        {
            Authorization::Issued(code) => issued(tenant, &iss, &callback, &code),
            Authorization::ConsentNeeded { .. } if request.prompt.none => refuse(
                tenant,
                &iss,
                callback.refuse("consent_required", "the person must allow the request"),
            ),
            Authorization::ConsentNeeded { scopes } => {
                consent::page(state, tenant, headers, &request, &scopes)
                    .map(|page| with_form_target(page, origin(&request.redirect_uri)))
            }
        },
    }
}

/// Whether `session` is recent enough for `request`: it started after the continuation's
/// marker (the person signed in for this very request), or else `prompt=login` is not asked
/// and it is no older than `max_age`.
fn fresh_enough(request: &AuthorizeRequest, session: &SessionEntry, now_micros: i64) -> bool {
    let auth_time = session.auth_time.as_micros();
    if request.auth_after.is_some_and(|after| auth_time >= after) {
        return true;
    }
    if request.prompt.login {
        return false;
    }
    request
        .max_age
        .is_none_or(|age| now_micros.saturating_sub(auth_time) <= age.saturating_mul(1_000_000))
}

/// 303 to the sign-in page, with this request as the continuation (see the module's doc).
/// `signed_in`: the browser has a session, which is not good enough; the sign-in page is then
/// asked to show its form anyway.
fn to_sign_in(
    state: &AppState,
    tenant: &PageTenant,
    request: &AuthorizeRequest,
    now_micros: i64,
    signed_in: bool,
) -> Response {
    let mut pairs = request.params.without(&["prompt", AUTH_AFTER]);
    // `login` is done by this sign-in; what else was asked stays.
    if request.prompt.consent {
        pairs.push(("prompt".to_owned(), "consent".to_owned()));
    }
    pairs.push((AUTH_AFTER.to_owned(), now_micros.to_string()));
    let continuation = format!(
        "/t/{}/oauth/authorize?{}",
        tenant.slug(),
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish()
    );
    let mut login = form_urlencoded::Serializer::new(String::new());
    login.append_pair("return_to", &continuation);
    if let Some(hint) = &request.login_hint {
        login.append_pair("login_hint", hint);
    }
    if signed_in {
        login.append_pair("prompt", "login");
    }
    see_other(
        state,
        &format!("/t/{}/login?{}", tenant.slug(), login.finish()),
        Vec::new(),
    )
}

fn issued(
    tenant: &PageTenant,
    iss: &str,
    callback: &Callback,
    code: &IssuedCode,
) -> Result<Response, PageError> {
    let mut pairs = vec![("code", code.code.as_str())];
    if let Some(state) = &callback.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", iss));
    to_client(tenant, &callback.redirect_uri, &pairs)
}

/// The answer to a refused request: the error page, or the error sent to the client.
fn refuse(tenant: &PageTenant, iss: &str, refusal: Refusal) -> Result<Response, PageError> {
    match refusal {
        Refusal::Page(message) => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "This sign-in request cannot be used",
            message,
        )
        .framed(&tenant.frame)),
        Refusal::Redirect {
            callback,
            error,
            description,
        } => {
            let mut pairs = vec![("error", error), ("error_description", &description)];
            if let Some(state) = &callback.state {
                pairs.push(("state", state));
            }
            pairs.push(("iss", iss));
            to_client(tenant, &callback.redirect_uri, &pairs)
        }
    }
}

/// 303 to the client's registered `redirect_uri` with `pairs` added to its own query.
fn to_client(
    tenant: &PageTenant,
    redirect_uri: &str,
    pairs: &[(&str, &str)],
) -> Result<Response, PageError> {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location =
        HeaderValue::from_str(&format!("{redirect_uri}{separator}{query}")).map_err(|error| {
            PageError::internal(format!("a redirect URI as a header: {error}"))
                .framed(&tenant.frame)
        })?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

/// The origin a form continuing `return_to` may end up at (see [`crate::pages::FormTarget`]):
/// when `return_to` is an authorization request of `tenant` naming an active client and one of
/// its registered redirect URIs, that URI's origin; else `None`.
pub fn continuation_target(
    state: &AppState,
    tenant: &PageTenant,
    return_to: &str,
) -> Option<String> {
    let (path, query) = return_to.split_once('?')?;
    if path != format!("/t/{}/oauth/authorize", tenant.slug()) {
        return None;
    }
    let params = Params::parse(query.as_bytes());
    let client = state
        .directory
        .client(tenant.tenant_id, params.one("client_id").ok()??)
        .filter(|client| client.client.active)?;
    let redirect_uri = params.one("redirect_uri").ok()??;
    client
        .client
        .redirect_uri_matches(redirect_uri)
        .then(|| origin(redirect_uri))?
}

/// A redirect URI's origin as a CSP source: `scheme://host[:port]`, or `scheme:` for a
/// private-use scheme without an authority (native apps, RFC 8252 §7.1). Anything that could
/// end a CSP directive or source (`;`, `,`, quotes, spaces) gives `None`.
pub fn origin(redirect_uri: &str) -> Option<String> {
    let source = match redirect_uri.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next()?;
            format!("{scheme}://{authority}")
        }
        None => format!("{}:", redirect_uri.split_once(':')?.0),
    };
    let clean = source.len() > 1
        && source
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\'' | b'"'));
    clean.then_some(source)
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn a_redirect_uris_origin_is_a_csp_source() {
        assert_eq!(
            origin("https://photos.example/cb?x=1").as_deref(),
            Some("https://photos.example")
        );
        assert_eq!(
            origin("http://127.0.0.1:5123/native").as_deref(),
            Some("http://127.0.0.1:5123")
        );
        assert_eq!(
            origin("com.example.app:/oauth").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(origin("https://a.example;script-src *"), None);
        assert_eq!(origin("no scheme"), None);
    }
}
