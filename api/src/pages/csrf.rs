//! CSRF tokens for the pages' forms.
//!
//! Each browser gets a random 256-bit CSRF cookie (`HttpOnly`, `SameSite=Lax`, `__Host-` when
//! secure) the first time it loads a page. A form carries `csrf_token`: HMAC-SHA-256, under a
//! sub-key of the master key, of that cookie and the tenant's slug. Another site can neither
//! read the cookie nor compute the token, and a token made for one tenant's page is refused by
//! another's. A form without the cookie or with a token that does not match is refused before
//! anything is read from it ([`verify`]).

use axum::http::{HeaderMap, HeaderValue};

use super::{PageError, PageForm, PageTenant, cookies};
use crate::state::AppState;

/// The name of the field every form carries.
pub const FIELD: &str = "csrf_token";

/// The browser's CSRF cookie, new when it had none.
pub struct Csrf {
    cookie: String,
    fresh: bool,
}

impl Csrf {
    /// The request's CSRF cookie, or a new one to set.
    pub fn of(state: &AppState, headers: &HeaderMap) -> Result<Self, PageError> {
        let name = cookies::csrf_name(state.secure_cookies);
        match cookies::read(headers, &name) {
            Some(cookie) if cookie.len() >= 32 => Ok(Self {
                cookie: cookie.to_owned(),
                fresh: false,
            }),
            _ => Ok(Self {
                cookie: tessera_crypto::generate_secret()
                    .map_err(|error| PageError::internal(error.to_string()))?,
                fresh: true,
            }),
        }
    }

    /// The token for the forms of `slug`'s pages.
    pub fn token(&self, state: &AppState, slug: &str) -> String {
        state.crypto.csrf_token(&binding(&self.cookie, slug))
    }

    /// The `Set-Cookie` to send with the page, when the cookie is new.
    pub fn set_cookie(&self, state: &AppState) -> Vec<HeaderValue> {
        if self.fresh {
            let name = cookies::csrf_name(state.secure_cookies);
            vec![cookies::set(&name, &self.cookie, state.secure_cookies)]
        } else {
            Vec::new()
        }
    }
}

fn binding(cookie: &str, slug: &str) -> Vec<u8> {
    format!("{cookie}\n{slug}").into_bytes()
}

/// Refuses a form posted to `tenant`'s pages without the token matching the browser's CSRF
/// cookie, with the error page framed for that tenant: what every form handler does first.
pub fn verify_form(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &PageTenant,
    form: &PageForm,
) -> Result<(), PageError> {
    verify(state, headers, tenant.slug(), form.get(FIELD))
        .map_err(|error| error.framed(&tenant.frame))
}

/// Refuses a form of `slug`'s pages whose `token` does not match the browser's CSRF cookie.
pub fn verify(
    state: &AppState,
    headers: &HeaderMap,
    slug: &str,
    token: Option<&str>,
) -> Result<(), PageError> {
    let name = cookies::csrf_name(state.secure_cookies);
    match (cookies::read(headers, &name), token) {
        (Some(cookie), Some(token)) if state.crypto.verify_csrf(&binding(cookie, slug), token) => {
            Ok(())
        }
        _ => Err(PageError::forged()),
    }
}
