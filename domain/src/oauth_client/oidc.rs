//! The rules on a client's OpenID Connect settings ([`OidcClientSettingsV1`]), checked with the
//! rest of its configuration on registration and on the merged result of every update; every
//! violation names its field.
//!
//! - **post_logout_redirect_uris**: the redirect URIs' rules (at most
//!   [`super::MAX_REDIRECT_URIS`], no duplicates, absolute `https` or loopback `http`, no
//!   fragment, no user information); RP-Initiated Logout compares them exactly.
//! - **refresh_token_ttl_secs** (a family's absolute lifetime): [`MIN_REFRESH_TTL_SECS`] (five
//!   minutes) to [`MAX_REFRESH_TTL_SECS`] (365 days).
//! - **refresh_token_idle_secs**: [`MIN_REFRESH_IDLE_SECS`] (one minute) up to the absolute
//!   lifetime: an idle timeout longer than the family's life could never apply, so it is
//!   refused rather than silently meaningless (`idle ≤ absolute`).
//! - **id_token_signed_response_alg**: `RS256` or `ES256`. Every tenant keeps an active RS256
//!   key beside its default ES256 one, so both can always sign. `EdDSA` is refused: a tenant
//!   holds an EdDSA key only if an administrator chose it as the default algorithm, so a client
//!   asking for it would break on every other tenant, and OpenID Connect's certified relying
//!   parties do not all verify it.
//! - **backchannel_logout_uri**: like a redirect URI (absolute `https`, or `http` on a loopback
//!   host; no fragment, no user information), as Back-Channel Logout 1.0 §2.2 asks.

use tessera_event_schemas::events::{OidcClientSettingsV1, SigningAlg};

use super::{redirect_uri, uri_list};
use crate::DomainError;

/// Shortest absolute lifetime of a refresh-token family: five minutes.
pub const MIN_REFRESH_TTL_SECS: u32 = 300;
/// Longest absolute lifetime of a refresh-token family: 365 days.
pub const MAX_REFRESH_TTL_SECS: u32 = 365 * 86_400;
/// Shortest idle timeout of a refresh-token family: one minute.
pub const MIN_REFRESH_IDLE_SECS: u32 = 60;
/// The ID token algorithms a client may ask for.
pub const ID_TOKEN_ALGS: [SigningAlg; 2] = [SigningAlg::RS256, SigningAlg::ES256];

pub(super) fn settings(oidc: &OidcClientSettingsV1) -> Result<(), DomainError> {
    uri_list("post_logout_redirect_uris", &oidc.post_logout_redirect_uris)?;
    let ttl = oidc.refresh_token_ttl_secs;
    if !(MIN_REFRESH_TTL_SECS..=MAX_REFRESH_TTL_SECS).contains(&ttl) {
        return Err(DomainError::invalid(
            "refresh_token_ttl_secs",
            format!(
                "must be between {MIN_REFRESH_TTL_SECS} and {MAX_REFRESH_TTL_SECS} seconds, got {ttl}"
            ),
        ));
    }
    let idle = oidc.refresh_token_idle_secs;
    if !(MIN_REFRESH_IDLE_SECS..=ttl).contains(&idle) {
        return Err(DomainError::invalid(
            "refresh_token_idle_secs",
            format!(
                "must be between {MIN_REFRESH_IDLE_SECS} seconds and refresh_token_ttl_secs ({ttl}), got {idle}"
            ),
        ));
    }
    if !ID_TOKEN_ALGS.contains(&oidc.id_token_signed_response_alg) {
        return Err(DomainError::invalid(
            "id_token_signed_response_alg",
            "must be RS256 or ES256",
        ));
    }
    if let Some(uri) = &oidc.backchannel_logout_uri {
        redirect_uri("backchannel_logout_uri", uri)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
