//! Parsing and validating an authorization request (ADR 0003 §Authorization, steps 1 and 2).
//!
//! The order matters: the client and the redirect URI are checked first, and a problem with
//! either is an HTML error page ([`Refusal::Page`]), never a redirect, because the redirect URI
//! is not yet known to be the client's (an open redirect otherwise). Only then do errors go
//! back to the client, at its redirect URI, with `state` and `iss` ([`Refusal::Redirect`]).
//!
//! Unknown parameters, `display`, `ui_locales`, `claims_locales` and `acr_values` are
//! accepted and ignored, as OpenID Connect Core §3.1.2.1 asks of a server that does not use
//! them.

use std::collections::HashMap;
use std::sync::Arc;

use tessera_domain::authorization_code::is_s256_challenge;
use tessera_domain::oauth_client::{GRANT_AUTHORIZATION_CODE, ScopeError, grant_scopes};
use tessera_event_schemas::events::ClientType;
use tessera_projections::ClientEntry;
use uuid::Uuid;

use crate::state::AppState;

/// The marker a continuation carries: the time (microseconds since the epoch) of the request
/// that sent the person to sign in. A session is then good enough only if it started at or
/// after it, so that `prompt=login` and `max_age` do not loop once the person signed in again.
pub const AUTH_AFTER: &str = "tessera_auth_after";

/// Longest `state` and `nonce` accepted, in bytes: they travel in URLs and in the event.
const MAX_ECHOED_BYTES: usize = 1024;

/// The request's parameters in order, as sent (query string or form body).
#[derive(Clone, Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(encoded: &[u8]) -> Self {
        Self {
            pairs: form_urlencoded::parse(encoded).into_owned().collect(),
        }
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// The value of `name` if it is sent exactly once; `Err` if it is sent more than once.
    /// An empty value counts as absent (RFC 6749 §3.1).
    pub fn one(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(key, value)| key == name && !value.is_empty());
        let first = values.next().map(|(_, value)| value.as_str());
        match values.next() {
            Some(_) => Err(Repeated),
            None => Ok(first),
        }
    }

    /// Every pair but those named in `drop`.
    pub fn without(&self, drop: &[&str]) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(key, _)| !drop.contains(&key.as_str()))
            .cloned()
            .collect()
    }

    /// The first repeated parameter, if any.
    fn repeated(&self) -> Option<&str> {
        let mut seen: HashMap<&str, ()> = HashMap::new();
        self.pairs
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .find(|(key, _)| seen.insert(key.as_str(), ()).is_some())
            .map(|(key, _)| key.as_str())
    }
}

/// A parameter sent more than once.
#[derive(Debug)]
pub struct Repeated;

/// What the request's `prompt` asks (OpenID Connect Core §3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A valid authorization request.
#[derive(Clone, Debug)]
pub struct AuthorizeRequest {
    pub params: Params,
    pub client: Arc<ClientEntry>,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    /// The continuation's marker ([`AUTH_AFTER`]), in microseconds.
    pub auth_after: Option<i64>,
}

/// Where the client is to be told about an error: its redirect URI and `state`, now known.
#[derive(Clone, Debug)]
pub struct Callback {
    pub redirect_uri: String,
    pub state: Option<String>,
}

/// Why a request is refused, and how the refusal is shown.
#[derive(Debug)]
pub enum Refusal {
    /// The client or redirect URI is bad: an HTML error page (400) with this message.
    Page(&'static str),
    /// An OAuth error sent back to the client.
    Redirect {
        callback: Callback,
        error: &'static str,
        description: String,
    },
}

impl Callback {
    pub fn refuse(&self, error: &'static str, description: impl Into<String>) -> Refusal {
        Refusal::Redirect {
            callback: self.clone(),
            error,
            description: description.into(),
        }
    }
}

/// Validates `params` as an authorization request to `tenant_id` (steps 1 and 2 of ADR 0003
/// §Authorization).
pub fn validate(
    state: &AppState,
    tenant_id: Uuid,
    params: Params,
) -> Result<AuthorizeRequest, Refusal> {
    let client_id = params
        .one("client_id")
        .map_err(|Repeated| Refusal::Page("The request names its application more than once."))?
        .ok_or(Refusal::Page(
            "The request does not say which application it is for.",
        ))?;
    // A client of another tenant is not found, exactly like an unknown one.
    let client = state
        .directory
        .client(tenant_id, client_id)
        .filter(|client| client.client.active)
        .ok_or(Refusal::Page("The application is not known here."))?;
    let redirect_uri = params
        .one("redirect_uri")
        .map_err(|Repeated| Refusal::Page("The request names its return address more than once."))?
        .ok_or(Refusal::Page(
            "The request does not say where to return to.",
        ))?;
    if !client.client.redirect_uri_matches(redirect_uri) {
        return Err(Refusal::Page(
            "The application asked to return to an address it did not register.",
        ));
    }
    let redirect_uri = redirect_uri.to_owned();
    let callback = Callback {
        redirect_uri: redirect_uri.clone(),
        state: params.one("state").ok().flatten().map(str::to_owned),
    };
    let invalid = |description: &str| callback.refuse("invalid_request", description);
    if let Some(name) = params.repeated() {
        return Err(invalid(&format!("the parameter {name} is repeated")));
    }
    let get = |name: &str| params.one(name).ok().flatten();
    if get("request").is_some() {
        return Err(callback.refuse("request_not_supported", "request objects are not supported"));
    }
    if get("request_uri").is_some() {
        return Err(callback.refuse("request_uri_not_supported", "request_uri is not supported"));
    }
    match get("response_type") {
        None => return Err(invalid("response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(callback.refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.client.allows_grant(GRANT_AUTHORIZATION_CODE) {
        return Err(callback.refuse(
            "unauthorized_client",
            "the client is not registered for the authorization code grant",
        ));
    }
    if get("state").is_some_and(|s| s.len() > MAX_ECHOED_BYTES) {
        return Err(invalid("state is too long"));
    }
    let code_challenge =
        pkce(&client, get("code_challenge"), get("code_challenge_method")).map_err(&invalid)?;
    let scopes =
        match get("scope") {
            None => return Err(callback.refuse("invalid_scope", "scope is required")),
            Some(requested) => grant_scopes(&client.client.allowed_scopes, Some(requested))
                .map_err(|error| match error {
                    ScopeError::Malformed(_) | ScopeError::NotAllowed(_) => {
                        callback.refuse("invalid_scope", error.to_string())
                    }
                })?,
        };
    let nonce = get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_ECHOED_BYTES) {
        return Err(invalid("nonce is too long"));
    }
    let prompt = prompt(get("prompt")).map_err(&invalid)?;
    let max_age = match get("max_age") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|age| *age >= 0)
                .ok_or_else(|| invalid("max_age must be a number of seconds"))?,
        ),
    };
    Ok(AuthorizeRequest {
        redirect_uri,
        state: callback.state.clone(),
        scopes,
        code_challenge,
        nonce,
        prompt,
        max_age,
        login_hint: get("login_hint").map(str::to_owned),
        id_token_hint: get("id_token_hint").map(str::to_owned),
        auth_after: get(AUTH_AFTER).and_then(|text| text.parse().ok()),
        client,
        params,
    })
}

/// PKCE (RFC 7636), S256 only: `plain` (and a challenge without a method, which means
/// `plain`) is refused, and a public client must send a challenge (RFC 9700 §2.1.1).
fn pkce(
    client: &ClientEntry,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, &'static str> {
    match (challenge, method) {
        (None, None) if client.client.client_type == ClientType::Public => {
            Err("a public client must send a PKCE code_challenge (S256)")
        }
        (None, None) => Ok(None),
        (None, Some(_)) => Err("code_challenge_method without a code_challenge"),
        (Some(_), Some("S256")) => match challenge {
            Some(challenge) if is_s256_challenge(challenge) => Ok(Some(challenge.to_owned())),
            _ => Err("code_challenge must be 43 base64url characters"),
        },
        (Some(_), _) => Err("code_challenge_method must be S256; plain is not supported"),
    }
}

fn prompt(value: Option<&str>) -> Result<Prompt, &'static str> {
    let mut prompt = Prompt::default();
    let Some(value) = value else {
        return Ok(prompt);
    };
    for word in value.split(' ').filter(|word| !word.is_empty()) {
        match word {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // Tessera keeps one session per browser and tenant: nothing to choose from.
            "select_account" => {}
            _ => return Err("prompt must be none, login, consent or select_account"),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err("prompt=none cannot be combined with other values");
    }
    Ok(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_sent_twice_is_told_apart_from_one_sent_once() {
        let params = Params::parse(b"a=1&b=2&b=3&c=");
        assert_eq!(params.one("a").unwrap(), Some("1"));
        assert!(params.one("b").is_err());
        assert_eq!(params.one("c").unwrap(), None);
        assert_eq!(params.repeated(), Some("b"));
    }

    #[test]
    fn prompt_none_stands_alone() {
        assert!(prompt(Some("none")).unwrap().none);
        let both = prompt(Some("login consent")).unwrap();
        assert!(both.login && both.consent);
        assert!(prompt(Some("none login")).is_err());
        assert!(prompt(Some("bogus")).is_err());
    }
}
