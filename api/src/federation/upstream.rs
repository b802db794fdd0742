//! Talking to an upstream OpenID provider: its discovery document, its JWKS (cached, fetched
//! again on an unknown `kid`), the code exchange, and the ID token's validation.
//!
//! Every call has a timeout and follows no redirect (an upstream URL is an administrator's
//! input, and a redirect could point the server at its own network: SSRF). The answers the
//! server acts on are checked here: the issuer a discovery document names, the ID token's
//! signature under a key of the JWKS, `iss` (an Entra multi-tenant `{tenantid}` template
//! matched with the token's `tid`), `aud`, `exp` against the injected clock, and `nonce`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tessera_domain::identity_provider::IdentityProvider;
use tessera_event_schemas::Timestamp;

/// How long any upstream call may take, connection included.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a JWKS is used before it is fetched again.
const JWKS_TTL: Duration = Duration::from_secs(300);
/// An unknown `kid` fetches the JWKS again at most this often, so that tokens naming made-up
/// keys cannot make the server hammer the upstream.
const JWKS_REFETCH: Duration = Duration::from_secs(10);
/// Clock skew allowed on an ID token's `exp`.
const LEEWAY_SECS: i64 = 60;
/// The largest answer read from an upstream.
const MAX_BODY: usize = 256 * 1024;

/// Why an upstream call failed, in words an administrator or a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{0}")]
    Invalid(String),
}

/// What a discovery document says, checked.
#[derive(Clone, Debug)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
}

struct CachedJwks {
    keys: Vec<Value>,
    fetched: Instant,
}

/// The upstream client and the JWKS cache, one per process.
pub struct Upstream {
    http: reqwest::Client,
    jwks: Mutex<HashMap<String, CachedJwks>>,
}

impl Upstream {
    pub fn new() -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(UPSTREAM_TIMEOUT)
            .connect_timeout(UPSTREAM_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| format!("building the upstream HTTP client: {error}"))?;
        Ok(Self {
            http,
            jwks: Mutex::new(HashMap::new()),
        })
    }

    async fn json(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Value, UpstreamError> {
        let response = request
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|error| UpstreamError::Unreachable {
                url: url.to_owned(),
                reason: if error.is_timeout() {
                    "timed out".to_owned()
                } else if error.is_connect() {
                    "connection refused or failed".to_owned()
                } else {
                    "request failed".to_owned()
                },
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(UpstreamError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|_| UpstreamError::Unreachable {
                url: url.to_owned(),
                reason: "the answer could not be read".to_owned(),
            })?;
        if body.len() > MAX_BODY {
            return Err(UpstreamError::Invalid(format!("{url} answered too much")));
        }
        serde_json::from_slice(&body)
            .map_err(|_| UpstreamError::Invalid(format!("{url} did not answer JSON")))
    }

    /// Fetches `url` and checks it is a discovery document whose issuer is the one the URL
    /// names (or an Entra `{tenantid}` template of it).
    pub async fn discover(&self, url: &str) -> Result<Discovery, UpstreamError> {
        let document = self.json(self.http.get(url), url).await?;
        let text = |name: &str| {
            document
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let issuer = text("issuer").ok_or_else(|| {
            UpstreamError::Invalid(format!("the discovery document at {url} names no issuer"))
        })?;
        let expected = url
            .strip_suffix("/.well-known/openid-configuration")
            .unwrap_or(url);
        let matches = issuer.trim_end_matches('/') == expected.trim_end_matches('/')
            || (issuer.contains("{tenantid}") && template_matches(&issuer, expected));
        if !matches {
            return Err(UpstreamError::Invalid(format!(
                "issuer mismatch: the discovery document at {url} names the issuer {issuer:?}, \
                 expected {expected:?}"
            )));
        }
        Ok(Discovery {
            issuer,
            authorization_endpoint: text("authorization_endpoint"),
            token_endpoint: text("token_endpoint"),
            jwks_uri: text("jwks_uri"),
        })
    }

    /// Exchanges `code` at the provider's token endpoint (`client_secret_basic`, PKCE) and
    /// returns the ID token.
    pub async fn exchange_code(
        &self,
        provider: &IdentityProvider,
        client_secret: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<String, UpstreamError> {
        let encode =
            |value: &str| form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
        let request = self
            .http
            .post(&provider.token_endpoint)
            .basic_auth(encode(&provider.client_id), Some(encode(client_secret)))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ]);
        let answer = self.json(request, &provider.token_endpoint).await?;
        answer
            .get("id_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| UpstreamError::Invalid("the token endpoint returned no ID token".into()))
    }

    /// The ID token's claims, once its signature, issuer, audience, expiry and nonce hold.
    pub async fn validate_id_token(
        &self,
        provider: &IdentityProvider,
        id_token: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let invalid = |what: &str| UpstreamError::Invalid(format!("the ID token {what}"));
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| invalid("is malformed"))?;
        let kid = header.kid.clone().unwrap_or_default();
        let jwk = self
            .key(&provider.jwks_uri, &kid, header.alg)
            .await?
            .ok_or_else(|| invalid("names a key the provider's JWKS does not have"))?;
        let decoding = decoding_key(&jwk).ok_or_else(|| invalid("names an unusable key"))?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Map<String, Value>>(id_token, &decoding, &validation)
            .map_err(|_| invalid("has a signature that does not verify"))?
            .claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let iss = text("iss").unwrap_or_default();
        let issuer_ok = iss == provider.issuer
            || (provider.issuer.contains("{tenantid}")
                && text("tid")
                    .is_some_and(|tid| provider.issuer.replace("{tenantid}", tid) == iss));
        if !issuer_ok {
            return Err(invalid("is from another issuer"));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == provider.client_id,
            Some(Value::Array(auds)) => {
                auds.iter().any(|a| a.as_str() == Some(&provider.client_id))
            }
            _ => false,
        };
        if !audience_ok {
            return Err(invalid("is for another client"));
        }
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if exp.saturating_add(LEEWAY_SECS) * 1_000_000 <= now.as_micros() {
            return Err(invalid("has expired"));
        }
        let nonce_ok = text("nonce").is_some_and(|n| same_text(n.as_bytes(), nonce.as_bytes()));
        if !nonce_ok {
            return Err(invalid("carries another nonce"));
        }
        if text("sub").is_none_or(str::is_empty) {
            return Err(invalid("names no subject"));
        }
        Ok(claims)
    }

    /// The key `kid` of the JWKS at `url`: from the cache, else fetched (again).
    async fn key(
        &self,
        url: &str,
        kid: &str,
        alg: Algorithm,
    ) -> Result<Option<Value>, UpstreamError> {
        let cached = {
            let cache = self
                .jwks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            cache.get(url).map(|jwks| {
                (
                    find_key(&jwks.keys, kid, alg),
                    jwks.fetched.elapsed() < JWKS_TTL,
                    jwks.fetched.elapsed() >= JWKS_REFETCH,
                )
            })
        };
        match cached {
            Some((Some(key), true, _)) => return Ok(Some(key)),
            Some((None, true, false)) => return Ok(None),
            _ => {}
        }
        let document = self.json(self.http.get(url), url).await?;
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| UpstreamError::Invalid(format!("{url} is not a JWKS")))?;
        let found = find_key(&keys, kid, alg);
        self.jwks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                url.to_owned(),
                CachedJwks {
                    keys,
                    fetched: Instant::now(),
                },
            );
        Ok(found)
    }
}

/// Equality of two short public strings; the nonce is no secret once the token is signed,
/// but comparing it without an early exit costs nothing.
fn same_text(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether an issuer template with `{tenantid}` matches `url` (the part it stands for is one
/// path segment).
fn template_matches(template: &str, url: &str) -> bool {
    let Some((before, after)) = template.trim_end_matches('/').split_once("{tenantid}") else {
        return false;
    };
    let url = url.trim_end_matches('/');
    url.strip_prefix(before)
        .and_then(|rest| rest.strip_suffix(after))
        .is_some_and(|segment| !segment.is_empty() && !segment.contains('/'))
}

fn find_key(keys: &[Value], kid: &str, alg: Algorithm) -> Option<Value> {
    let kty = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => "RSA",
        Algorithm::ES256 | Algorithm::ES384 => "EC",
        _ => return None,
    };
    keys.iter()
        .find(|key| {
            key.get("kty").and_then(Value::as_str) == Some(kty)
                && (kid.is_empty() || key.get("kid").and_then(Value::as_str) == Some(kid))
                && key
                    .get("use")
                    .and_then(Value::as_str)
                    .is_none_or(|u| u == "sig")
        })
        .cloned()
}

fn decoding_key(jwk: &Value) -> Option<DecodingKey> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    match text("kty")? {
        "RSA" => DecodingKey::from_rsa_components(text("n")?, text("e")?).ok(),
        "EC" => DecodingKey::from_ec_components(text("x")?, text("y")?).ok(),
        _ => None,
    }
}

/// A random URL-safe value of 256 bits (PKCE verifier, nonce).
pub fn random_value() -> Result<String, tessera_crypto::CryptoError> {
    tessera_crypto::generate_secret()
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 section 4.2).
pub fn challenge(verifier: &str) -> String {
    tessera_crypto::pkce_s256(verifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entra_template_matches_one_path_segment_only() {
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(template_matches(
            template,
            "https://login.microsoftonline.com/common/v2.0"
        ));
        assert!(!template_matches(
            template,
            "https://login.microsoftonline.com/a/b/v2.0"
        ));
        assert!(!template_matches(
            template,
            "https://evil.example/common/v2.0"
        ));
    }
}
