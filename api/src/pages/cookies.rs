//! The pages' cookies: their names, reading them, and setting and clearing them.
//!
//! Every cookie is `HttpOnly` (no script reads it), `SameSite=Lax` (another site's form cannot
//! send it with a POST) and `Path=/`; where the public URL is https it is also `Secure` with the
//! `__Host-` prefix, which a browser accepts only from this host over https, for the whole
//! host, so no subdomain can plant or shadow it. On a plain-http loopback URL (development,
//! tests) the same cookies go without `Secure` and the prefix. Since `__Host-` requires
//! `Path=/`, a tenant's cookies are told apart by name: `__Host-tessera-{slug}` (the session),
//! `__Host-tessera-{slug}-pending` (a sign-in waiting for a step). The CSRF cookie
//! (`__Host-tessera-csrf`) is one per browser.
//!
//! The session cookie has no `Max-Age`: it lasts as long as the browser's session, and the
//! server ends it when it is idle for the tenant's `session_timeout_minutes`.

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};

fn prefix(secure: bool) -> &'static str {
    if secure { "__Host-" } else { "" }
}

/// The session cookie of the tenant `slug`.
pub fn session_name(slug: &str, secure: bool) -> String {
    format!("{}tessera-{slug}", prefix(secure))
}

/// The cookie of a sign-in at `slug` waiting for a step before its session starts.
pub fn pending_name(slug: &str, secure: bool) -> String {
    format!("{}tessera-{slug}-pending", prefix(secure))
}

/// The browser's CSRF cookie.
pub fn csrf_name(secure: bool) -> String {
    format!("{}tessera-csrf", prefix(secure))
}

/// The value of the cookie `name` the request carries (the first, if it carries several).
pub fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` for `name=value` with the attributes above.
pub fn set(name: &str, value: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("tessera-invalid=; Max-Age=0"))
}

/// `Set-Cookie` that removes the cookie `name`.
pub fn clear(name: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("tessera-invalid=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_host_prefix_only_when_secure() {
        assert_eq!(session_name("acme", true), "__Host-tessera-acme");
        assert_eq!(session_name("acme", false), "tessera-acme");
        assert_eq!(pending_name("acme", true), "__Host-tessera-acme-pending");
        assert_eq!(csrf_name(false), "tessera-csrf");
        let set = set("__Host-tessera-acme", "abc", true);
        assert_eq!(
            set.to_str().unwrap(),
            "__Host-tessera-acme=abc; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(
            clear("tessera-acme", false)
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
    }

    #[test]
    fn a_cookie_is_read_by_its_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("tessera-acme-pending=p; tessera-acme=s1"),
        );
        headers.append(COOKIE, HeaderValue::from_static("tessera-csrf=c"));
        assert_eq!(read(&headers, "tessera-acme"), Some("s1"));
        assert_eq!(read(&headers, "tessera-acme-pending"), Some("p"));
        assert_eq!(read(&headers, "tessera-csrf"), Some("c"));
        assert_eq!(read(&headers, "tessera-other"), None);
    }
}
