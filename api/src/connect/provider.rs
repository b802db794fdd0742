//! Talking to an integration's OAuth provider: the code exchange, the refresh grant and RFC 7009
//! revocation.
//!
//! Every call has a timeout and follows no redirect (a provider URL is an operator's input, and
//! a redirect could point the server at its own network). The client authenticates with HTTP
//! Basic (RFC 6749 section 2.3.1, id and secret form-encoded first), which every built-in
//! provider and any RFC 6749 server accepts. Answers are read as JSON (GitHub answers a form
//! unless asked for JSON); an OAuth error's `error` code is kept, since `invalid_grant` is what
//! marks a connection `needs_reauth`. Slack answers errors with 200 and `"ok": false`, which is
//! read as the error it is. No token is ever logged.

use std::time::Duration;

use serde_json::Value;
use tessera_commands::OAuthApp;
use zeroize::Zeroizing;

/// How long any provider call may take, connection included.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a provider.
const MAX_BODY: usize = 256 * 1024;

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No answer (refused, timed out, cut off): worth trying again later.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider answered an OAuth error (`invalid_grant`, `access_denied`, ...).
    #[error("the provider answered {0}")]
    OAuth(String),
    /// The provider answered something that is not a usable token response.
    #[error("{0}")]
    Invalid(String),
}

impl ProviderError {
    /// The OAuth error code, or what stands for it (`exchange_failed`), for `connect.failed`.
    pub fn code(&self) -> String {
        match self {
            ProviderError::OAuth(code) => code.clone(),
            ProviderError::Unreachable(_) | ProviderError::Invalid(_) => "exchange_failed".into(),
        }
    }
}

/// A token response (RFC 6749 section 5.1). Never `Debug`-printed with its tokens.
pub struct Tokens {
    pub access_token: Zeroizing<String>,
    pub refresh_token: Option<Zeroizing<String>>,
    pub token_type: Option<String>,
    /// The granted scopes, when the provider says (space- or comma-separated: Slack and GitHub
    /// use commas).
    pub scope: Option<String>,
    pub expires_in: Option<i64>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// The granted scopes as a list: the provider's, else `requested`.
    pub fn scopes(&self, requested: &[String]) -> Vec<String> {
        match &self.scope {
            Some(scope) => scope
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => requested.to_vec(),
        }
    }
}

/// The provider client, one per process.
pub struct Provider {
    http: reqwest::Client,
}

fn form(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl Provider {
    pub fn new() -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| format!("building the provider HTTP client: {error}"))?;
        Ok(Self { http })
    }

    /// Posts `params` to the app's token endpoint and reads the token response.
    async fn token(
        &self,
        app: &OAuthApp,
        params: &[(&str, &str)],
    ) -> Result<Tokens, ProviderError> {
        let url = &app.integration.token_url;
        let response = self
            .http
            .post(url)
            .basic_auth(form(&app.client_id), Some(form(&app.client_secret)))
            .header("accept", "application/json")
            .form(params)
            .send()
            .await
            .map_err(|error| ProviderError::Unreachable(describe(&error)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| ProviderError::Unreachable(describe(&error)))?;
        if body.len() > MAX_BODY {
            return Err(ProviderError::Invalid(
                "the provider answered too much".into(),
            ));
        }
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let error = json
            .as_ref()
            .and_then(|json| json.get("error"))
            .and_then(Value::as_str)
            .filter(|error| !error.is_empty());
        let slack_refused = json
            .as_ref()
            .and_then(|json| json.get("ok"))
            .and_then(Value::as_bool)
            == Some(false);
        if let Some(error) = error
            && (!status.is_success() || slack_refused || json_lacks_token(json.as_ref()))
        {
            return Err(ProviderError::OAuth(oauth_code(error)));
        }
        if status.is_server_error() {
            return Err(ProviderError::Unreachable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(ProviderError::Invalid(format!(
                "the token endpoint answered HTTP {status}"
            )));
        }
        let json = json.ok_or_else(|| {
            ProviderError::Invalid("the token endpoint did not answer JSON".into())
        })?;
        let text = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_owned);
        let access_token = text("access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::Invalid("the token endpoint returned no access token".into())
            })?;
        let expires_in = match json.get("expires_in") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .filter(|seconds| *seconds > 0);
        Ok(Tokens {
            access_token: Zeroizing::new(access_token),
            refresh_token: text("refresh_token")
                .filter(|t| !t.is_empty())
                .map(Zeroizing::new),
            token_type: text("token_type"),
            scope: text("scope"),
            expires_in,
        })
    }

    /// Exchanges an authorization code (RFC 6749 section 4.1.3), with the PKCE verifier when
    /// the flow used one.
    pub async fn exchange_code(
        &self,
        app: &OAuthApp,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<Tokens, ProviderError> {
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(verifier) = verifier {
            params.push(("code_verifier", verifier));
        }
        self.token(app, &params).await
    }

    /// Uses a refresh token (RFC 6749 section 6).
    pub async fn refresh(
        &self,
        app: &OAuthApp,
        refresh_token: &str,
    ) -> Result<Tokens, ProviderError> {
        self.token(
            app,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// Revokes a token at the integration's revocation endpoint (RFC 7009). `Ok(false)` when
    /// the integration has none.
    pub async fn revoke(
        &self,
        app: &OAuthApp,
        token: &str,
        hint: &str,
    ) -> Result<bool, ProviderError> {
        let Some(url) = &app.integration.revocation_url else {
            return Ok(false);
        };
        let response = self
            .http
            .post(url)
            .basic_auth(form(&app.client_id), Some(form(&app.client_secret)))
            .header("accept", "application/json")
            .form(&[("token", token), ("token_type_hint", hint)])
            .send()
            .await
            .map_err(|error| ProviderError::Unreachable(describe(&error)))?;
        let status = response.status();
        if status.is_success() {
            // Slack answers 200 with `"ok": false` when it did not revoke.
            let body = response.bytes().await.unwrap_or_default();
            let refused = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|json| json.get("ok").and_then(Value::as_bool))
                == Some(false);
            if refused {
                return Err(ProviderError::OAuth("revocation_refused".into()));
            }
            return Ok(true);
        }
        if status.is_server_error() {
            return Err(ProviderError::Unreachable(format!("HTTP {status}")));
        }
        Err(ProviderError::Invalid(format!(
            "the revocation endpoint answered HTTP {status}"
        )))
    }
}

/// Slack's and GitHub's error codes for a dead refresh token, as RFC 6749's `invalid_grant`, so
/// that one rule marks any provider's dead grant; other codes are kept (ASCII, bounded).
fn oauth_code(error: &str) -> String {
    match error {
        "invalid_refresh_token" | "bad_refresh_token" | "token_revoked" | "invalid_code" => {
            "invalid_grant".to_owned()
        }
        other => other
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect(),
    }
}

/// GitHub answers some errors with 200 and no token: an `error` without an `access_token` is an
/// error whatever the status.
fn json_lacks_token(json: Option<&Value>) -> bool {
    json.and_then(|json| json.get("access_token")).is_none()
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection refused or failed".to_owned()
    } else {
        "request failed".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_and_github_dead_grants_read_as_invalid_grant() {
        assert_eq!(oauth_code("invalid_refresh_token"), "invalid_grant");
        assert_eq!(oauth_code("bad_refresh_token"), "invalid_grant");
        assert_eq!(oauth_code("invalid_grant"), "invalid_grant");
        assert_eq!(oauth_code("access_denied"), "access_denied");
        assert_eq!(oauth_code("a b\u{7f}c"), "abc");
    }

    #[test]
    fn granted_scopes_split_on_spaces_and_commas() {
        let tokens = Tokens {
            access_token: Zeroizing::new("a".into()),
            refresh_token: None,
            token_type: None,
            scope: Some("repo,read:user openid".into()),
            expires_in: None,
        };
        assert_eq!(tokens.scopes(&[]), vec!["repo", "read:user", "openid"]);
        let unsaid = Tokens {
            scope: None,
            ..tokens
        };
        assert_eq!(unsaid.scopes(&["x".to_owned()]), vec!["x"]);
    }
}
