//! People's tokens: the RFC 9068 access token a person's grant issues, the OpenID Connect ID
//! token beside it, and the person's claims both they and userinfo carry.
//!
//! - **Access token** (`typ: at+jwt`, the tenant's active key, like a machine token): `sub` is
//!   the person, with `client_id`, `scope`, `auth_time`, `acr` and `sid` (ADR 0003). Its event
//!   was appended by the grant's command; it is signed here with the id, time and key recorded
//!   there.
//! - **ID token** (`typ: JWT`, with `openid`): `iss`, `sub`, `aud` (the client), `exp`, `iat`,
//!   `auth_time`, `nonce` (code grant only), `acr`, `amr`, `azp`, `sid`, `at_hash` (OpenID
//!   Connect Core §3.1.3.6), and the profile and email claims its scopes allow. Signed with the
//!   key [`id_token_key`] picks for the client's `id_token_signed_response_alg`.
//! - **Claims** ([`person_claims`]): the user's row from the bounded user-view cache, personal
//!   fields opened at this edge with the person's cached data key (as the account page does).
//!   A person who is not active has no claims.

use std::sync::Arc;

use serde::Serialize;
use tessera_crypto::JwsSigner;
use tessera_crypto::jws::at_hash;
use tessera_domain::tenant::{Tenant, TenantKey};
use tessera_domain::user::UserStatus;
use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::{SigningAlg, fields};
use tessera_projections::ClientEntry;
use uuid::Uuid;

use super::OAuthError;
use super::tenant_claims::TenantClaims;
use super::token::AccessTokenClaims;
use super::verify::{PersonFacts, VerifiedToken};
use crate::state::AppState;

/// The scope that asks for an ID token.
pub const OPENID: &str = "openid";

/// What a person's grant issues tokens for: who, how they authenticated, for which client
/// and scopes, with the access token's id and time from the grant's event.
pub struct PersonGrant<'a> {
    pub tenant: &'a Tenant,
    pub client: &'a ClientEntry,
    pub issuer: &'a str,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub scopes: &'a [String],
    pub auth_time: Timestamp,
    pub amr: &'a [String],
    pub acr: &'a str,
    /// The code grant's nonce; a refresh has none.
    pub nonce: Option<&'a str>,
    pub jti: Uuid,
    /// The time of the grant's event: the tokens' `iat`, truncated to the second.
    pub issued_at: Timestamp,
    /// The key the grant's event names (its `kid`): the one read before the command, so that
    /// a rotation in between cannot leave the event naming another key than the token.
    pub signer: &'a JwsSigner,
}

/// A person's signed tokens, and what this node's cache of verified tokens holds for the
/// access token.
pub struct PeopleTokens {
    pub access_token: String,
    pub id_token: Option<String>,
    pub scope: String,
    pub expires_in: u32,
    pub verified: VerifiedToken,
}

/// The key that signs a tenant's access tokens: its active key.
pub fn access_token_signer(
    state: &AppState,
    tenant: &Tenant,
) -> Result<Arc<JwsSigner>, OAuthError> {
    let key = tenant
        .active_key()
        .ok_or_else(|| OAuthError::server_error("the tenant has no active signing key"))?;
    state
        .signers
        .get(&state.crypto, tenant.id, key)
        .map_err(OAuthError::server_error)
}

/// The key that signs ID tokens for a client asking for `alg`: the tenant's active key of that
/// algorithm (every tenant keeps an RS256 key beside its default one, so RS256, the default,
/// always has one), or, for an algorithm the ring lacks (ES256 in a tenant whose default is
/// EdDSA), its default key, whose own `alg` a relying party then finds in the token's header
/// and the JWKS.
pub fn id_token_key(tenant: &Tenant, alg: SigningAlg) -> Option<&TenantKey> {
    tenant.active_key_for(alg).or_else(|| tenant.active_key())
}

/// Signs a person's access token and, with `openid`, their ID token.
pub async fn mint(state: &AppState, grant: &PersonGrant<'_>) -> Result<PeopleTokens, OAuthError> {
    let signer = grant.signer;
    let client = &grant.client.client;
    let ttl = client.access_token_ttl_secs;
    let iat = grant.issued_at.as_micros() / 1_000_000;
    let exp = iat + i64::from(ttl);
    let scope = grant.scopes.join(" ");
    let auth_time = grant.auth_time.as_micros() / 1_000_000;
    let sid = grant.session_id.to_string();
    let sub = grant.user_id.to_string();
    // The person's roles become `org_roles`; the row is the bounded user-view cache's, which
    // the ID token's claims read too.
    let view = state
        .user_views
        .user(
            &state.projections,
            &state.store,
            grant.tenant.id,
            grant.user_id,
        )
        .await
        .map_err(OAuthError::server_error)?;
    let roles: &[String] = view.as_deref().map_or(&[], |view| &view.roles);
    let tenant_claims = TenantClaims::new(state, grant.tenant, &client.client_id, grant.issued_at)
        .with_roles(roles);
    let id_tenant_claims = tenant_claims.for_id_token();
    let access_token = signer
        .sign(&AccessTokenClaims {
            iss: grant.issuer,
            sub: &sub,
            aud: grant.issuer,
            client_id: &client.client_id,
            scope: &scope,
            jti: grant.jti.to_string(),
            iat,
            exp,
            tenant_id: grant.tenant.id,
            auth_time: Some(auth_time),
            acr: Some(grant.acr),
            sid: Some(&sid),
            tenant_claims,
        })
        .map_err(OAuthError::server_error)?;
    let id_token = if grant.scopes.iter().any(|scope| scope == OPENID) {
        let claims = person_claims(state, grant.tenant.id, grant.user_id, grant.scopes)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("the person is no longer active"))?;
        let key = id_token_key(grant.tenant, client.oidc.id_token_signed_response_alg)
            .ok_or_else(|| OAuthError::server_error("the tenant has no key for ID tokens"))?;
        let id_signer = state
            .signers
            .get(&state.crypto, grant.tenant.id, key)
            .map_err(OAuthError::server_error)?;
        let at_hash = at_hash(id_signer.alg(), &access_token);
        Some(
            id_signer
                .sign_with_typ(
                    "JWT",
                    &IdTokenClaims {
                        iss: grant.issuer,
                        sub: &sub,
                        aud: &client.client_id,
                        exp,
                        iat,
                        auth_time,
                        nonce: grant.nonce,
                        acr: grant.acr,
                        amr: grant.amr,
                        azp: &client.client_id,
                        sid: &sid,
                        at_hash: &at_hash,
                        person: &claims,
                        tenant: &id_tenant_claims,
                    },
                )
                .map_err(OAuthError::server_error)?,
        )
    } else {
        None
    };
    let verified = VerifiedToken {
        tenant_id: grant.tenant.id,
        client_id: client.client_id.clone(),
        jti: grant.jti,
        scope: scope.clone(),
        audience: grant.issuer.to_owned(),
        kid: signer.kid().to_owned(),
        issued_at: Timestamp::from_micros(iat * 1_000_000),
        expires_at: Timestamp::from_micros(exp * 1_000_000),
        person: Some(Box::new(PersonFacts {
            user_id: grant.user_id,
            auth_time,
            acr: grant.acr.to_owned(),
            session_id: grant.session_id,
        })),
    };
    Ok(PeopleTokens {
        access_token,
        id_token,
        scope,
        expires_in: ttl,
        verified,
    })
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    acr: &'a str,
    amr: &'a [String],
    azp: &'a str,
    sid: &'a str,
    at_hash: &'a str,
    #[serde(flatten)]
    person: &'a PersonClaims,
    /// Issue 21's tenant claims, `tenant_id` included, as the client chose them.
    #[serde(flatten)]
    tenant: &'a TenantClaims<'a>,
}

/// The profile and email claims of a person that their scopes allow (OpenID Connect Core
/// §5.4): `name`, `given_name`, `family_name` with `profile`; `email`, `email_verified` with
/// `email`. Absent values are left out.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct PersonClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// The claims of an active person for `scopes`; `None` when there is no such active person.
pub async fn person_claims(
    state: &AppState,
    tenant_id: Uuid,
    user_id: Uuid,
    scopes: &[String],
) -> Result<Option<PersonClaims>, OAuthError> {
    let view = state
        .user_views
        .user(&state.projections, &state.store, tenant_id, user_id)
        .await
        .map_err(OAuthError::server_error)?;
    let Some(view) = view.filter(|view| view.status == UserStatus::Active) else {
        return Ok(None);
    };
    let has = |wanted: &str| scopes.iter().any(|scope| scope == wanted);
    let open = |field: &'static str, sealed: &Option<Vec<u8>>| {
        let sealed = sealed.clone();
        async move {
            match sealed {
                Some(sealed) => state
                    .personal
                    .open(tenant_id, user_id, field, &sealed)
                    .await
                    .map_err(OAuthError::server_error),
                None => Ok(None),
            }
        }
    };
    let mut claims = PersonClaims::default();
    if has("profile") {
        claims.name = open(fields::NAME, &view.name).await?;
        claims.given_name = open(fields::GIVEN_NAME, &view.given_name).await?;
        claims.family_name = open(fields::FAMILY_NAME, &view.family_name).await?;
    }
    if has("email") {
        claims.email = open(fields::EMAIL, &view.email).await?;
        claims.email_verified = claims.email.as_ref().map(|_| view.email_verified);
    }
    Ok(Some(claims))
}
