//! The document a connection's sealed secret holds: the provider's tokens as a small JSON
//! object (`access_token`, `refresh_token`, `token_type`), the same shape a direct store of
//! OAuth tokens seals, so that access and refresh read either alike.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::provider::Tokens;

/// The sealed document. Never `Debug`-printed.
#[derive(Serialize, Deserialize)]
pub struct TokenDocument {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

impl Drop for TokenDocument {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.access_token.zeroize();
        if let Some(token) = &mut self.refresh_token {
            token.zeroize();
        }
    }
}

/// The document of fresh `tokens`; `kept_refresh_token` stands in when the provider sent no
/// new refresh token (a refresh without rotation keeps the old one).
pub fn document(
    tokens: &Tokens,
    kept_refresh_token: Option<&str>,
) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    let document = TokenDocument {
        access_token: tokens.access_token.to_string(),
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|token| token.to_string())
            .or_else(|| kept_refresh_token.map(str::to_owned)),
        token_type: tokens.token_type.clone(),
    };
    serde_json::to_vec(&document).map(Zeroizing::new)
}

/// Reads an opened document; `None` when it holds no access token.
pub fn read(opened: &[u8]) -> Option<TokenDocument> {
    serde_json::from_slice(opened).ok()
}
