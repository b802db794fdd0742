//! The document a connection's sealed secret holds, [`CredentialSecret`] (`access_token`,
//! `refresh_token`, `token_type`), made from a provider's token response, so that a connection
//! made by the connect flow and one stored directly are read alike by access and refresh.

use tessera_commands::CredentialSecret;
use zeroize::Zeroizing;

use super::provider::Tokens;

/// The sealed document of fresh `tokens`; `kept_refresh_token` stands in when the provider sent
/// no new refresh token (a refresh without rotation keeps the old one).
pub fn document(
    tokens: &Tokens,
    kept_refresh_token: Option<&str>,
) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    let document = CredentialSecret {
        access_token: Some(tokens.access_token.to_string()),
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|token| token.to_string())
            .or_else(|| kept_refresh_token.map(str::to_owned)),
        token_type: tokens.token_type.clone(),
        api_key: None,
    };
    serde_json::to_vec(&document).map(Zeroizing::new)
}

/// Reads an opened document.
pub fn read(opened: &[u8]) -> Option<CredentialSecret> {
    serde_json::from_slice(opened).ok()
}
