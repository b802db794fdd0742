//! Authorization codes at the token endpoint: redeeming one (ADR 0003); the authorization
//! endpoint issues them (`authorization.rs`).
//!
//! A redemption is ONE append: `authorization_code.redeemed` on the code's stream expecting
//! version 1, the access token's `token.issued` on `{tenant}/tokens/{client}`, and, when a
//! refresh token is due, `refresh_token.issued` opening a new family stream. Two concurrent
//! redemptions (on any nodes) cannot both append at version 1: the loser is retried by the
//! engine, reads the code redeemed, and records the reuse instead, in one append too:
//! `authorization_code.reused`, `token.revoked` for the access token the code was redeemed for,
//! and `refresh_token.revoked {code_reused}` for its family. The access token is signed by the
//! caller after the append, with the id, time and key recorded here, so a token is never handed
//! out before its event is durable.

use tessera_crypto::{GrantSecrets, pkce_s256};
use tessera_domain::Aggregate;
use tessera_domain::authorization_code::{
    AuthorizationCodeCommand, AuthorizationCodeState, IssuedCode, PkceVerifier,
    RedeemCode as RedeemRule, Redemption,
};
use tessera_domain::refresh_token::OFFLINE_ACCESS;
use tessera_event_log::ExpectedVersion;
use tessera_event_schemas::events::{
    GrantType, RefreshRevocationReason, RefreshTokenIssuedV1, RefreshTokenRevokedV1, TokenIssuedV2,
    TokenRevokedV1,
};
use tessera_event_schemas::{Event, EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::CommandService;
use super::engine::{Address, Plan};
use crate::CommandError;

impl Address<AuthorizationCodeState> {
    pub(super) fn code(tenant_id: Uuid, code_id: Uuid) -> Self {
        Self::new(streams::code(tenant_id, code_id), code_id)
    }
}

/// Whether, and for how long, a redemption opens a refresh-token family: the client is
/// registered for the refresh grant.
#[derive(Clone, Copy, Debug)]
pub struct RefreshPolicy {
    /// Open one even without `offline_access` (the client's `refresh_without_offline_access`).
    pub without_offline_access: bool,
    pub ttl_secs: u32,
    pub idle_secs: u32,
}

/// Input of [`CommandService::redeem_code`]: a token request presenting a code.
#[derive(Clone, Copy, Debug)]
pub struct RedeemCode<'a> {
    pub tenant_id: Uuid,
    /// The client that authenticated (or, public, named itself).
    pub client_id: &'a str,
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    /// The access token the caller will sign: its lifetime and its key.
    pub access_token_ttl_secs: u32,
    pub kid: &'a str,
    /// `None` when the client may not have refresh tokens.
    pub refresh: Option<RefreshPolicy>,
}

/// What a redemption issued, for the caller to sign and answer with.
#[derive(Clone, Debug)]
pub struct CodeGrant {
    pub code: IssuedCode,
    /// The access token's id and time (its `iat`, truncated to the second, is this).
    pub jti: Uuid,
    pub issued_at: Timestamp,
    /// The new family's first refresh token, when one was due.
    pub refresh_token: Option<String>,
}

/// The outcome of presenting a code.
#[derive(Clone, Debug)]
pub enum CodeRedemption {
    Issued(Box<CodeGrant>),
    /// The code had been redeemed: what it was redeemed for is now revoked (the access token
    /// `jti` of `client_id`, valid at most until `expires_at`), and the request must fail.
    Reused {
        jti: Uuid,
        client_id: String,
        expires_at: Timestamp,
    },
}

impl CommandService {
    /// Redeems a code (see the module's doc). A code that does not parse, was never issued or
    /// does not verify is not found; the domain's other refusals are rejections; a reuse
    /// returns [`CodeRedemption::Reused`] once its revocations are durable.
    pub async fn redeem_code(
        &self,
        meta: &EventMetadata,
        request: RedeemCode<'_>,
    ) -> Result<(CodeRedemption, u64), CommandError> {
        let code_id = GrantSecrets::code_id(request.code)
            .ok_or_else(|| CommandError::not_found("authorization_code", "presented"))?;
        let address = Address::code(request.tenant_id, code_id);
        let verifier = request.code_verifier.map(|verifier| PkceVerifier {
            verifier: verifier.to_owned(),
            s256: pkce_s256(verifier),
        });
        let (address, verifier) = (&address, &verifier);
        self.run(&address.stream, move || async move {
            let loaded = self.load::<AuthorizationCodeState>(&address.stream).await?;
            let now = self.clock.now();
            let issued = loaded.state.code.clone();
            let code_matches = issued.as_ref().is_some_and(|code| {
                self.crypto
                    .grants()
                    .verify_code(request.code, &code.code_hash)
            });
            let refresh = request.refresh.filter(|policy| {
                issued.as_ref().is_some_and(|code| {
                    policy.without_offline_access
                        || code.scopes.iter().any(|scope| scope == OFFLINE_ACCESS)
                })
            });
            let redemption = Redemption {
                jti: self.ids.new_id(),
                access_token_ttl_secs: request.access_token_ttl_secs,
                refresh_family: refresh.map(|_| self.ids.new_id()),
            };
            let events = loaded
                .state
                .decide(AuthorizationCodeCommand::Redeem(Box::new(RedeemRule {
                    code_matches,
                    client_id: request.client_id.to_owned(),
                    redirect_uri: request.redirect_uri.map(str::to_owned),
                    code_verifier: verifier.clone(),
                    now,
                    redemption: redemption.clone(),
                })))
                .map_err(|error| loaded.reject(error, address))?;
            let Some(code) = issued else {
                return Err(address.not_found());
            };
            let tenant_id = request.tenant_id;
            let reused = matches!(events.first(), Some(Event::AuthorizationCodeReused(_)));
            let mut plan = Plan::new((), loaded.position);
            plan.push(self.write(
                meta,
                now,
                address.stream.clone(),
                loaded.expected(),
                tenant_id,
                events,
            ));
            if reused {
                let Some(earlier) = loaded.state.redeemed.clone() else {
                    return Err(CommandError::Internal(
                        "a reuse of an unredeemed code".into(),
                    ));
                };
                // The code expired at most 60 s after its redemption: its access token
                // expires no later than that plus its lifetime.
                let expires_at = code
                    .expires_at
                    .plus_seconds(i64::from(earlier.access_token_ttl_secs));
                plan.push(self.write(
                    meta,
                    now,
                    streams::client_tokens(tenant_id, &code.client_id),
                    ExpectedVersion::Any,
                    tenant_id,
                    vec![Event::TokenRevoked(TokenRevokedV1 {
                        jti: earlier.jti,
                        client_id: code.client_id.clone(),
                        expires_at,
                    })],
                ));
                if let Some(family) = earlier.refresh_family {
                    plan.push(self.write(
                        meta,
                        now,
                        streams::refresh(tenant_id, family),
                        ExpectedVersion::Any,
                        tenant_id,
                        vec![Event::RefreshTokenRevoked(RefreshTokenRevokedV1 {
                            reason: RefreshRevocationReason::CodeReused,
                        })],
                    ));
                }
                return Ok(plan.with_value(CodeRedemption::Reused {
                    jti: earlier.jti,
                    client_id: code.client_id,
                    expires_at,
                }));
            }
            plan.push(self.write(
                meta,
                now,
                streams::client_tokens(tenant_id, &code.client_id),
                ExpectedVersion::Any,
                tenant_id,
                vec![Event::TokenIssued(TokenIssuedV2 {
                    jti: redemption.jti,
                    grant_type: GrantType::AuthorizationCode,
                    scopes: code.scopes.clone(),
                    audience: Vec::new(),
                    kid: request.kid.to_owned(),
                    ttl_secs: request.access_token_ttl_secs,
                })],
            ));
            let mut refresh_token = None;
            if let (Some(policy), Some(family)) = (refresh, redemption.refresh_family) {
                let token = self.crypto.grants().refresh_token(tenant_id, family, 0);
                plan.push(self.write(
                    meta,
                    now,
                    streams::refresh(tenant_id, family),
                    ExpectedVersion::NoStream,
                    tenant_id,
                    vec![Event::RefreshTokenIssued(RefreshTokenIssuedV1 {
                        client_id: code.client_id.clone(),
                        user_id: code.user_id,
                        session_id: code.session_id,
                        scopes: code.scopes.clone(),
                        offline: code.scopes.iter().any(|scope| scope == OFFLINE_ACCESS),
                        auth_time: code.auth_time,
                        amr: code.amr.clone(),
                        acr: code.acr.clone(),
                        token_hash: self.crypto.grants().refresh_token_hash(&token).into(),
                        expires_at: now.plus_seconds(i64::from(policy.ttl_secs)),
                        idle_secs: policy.idle_secs,
                    })],
                ));
                refresh_token = Some(token);
            }
            Ok(plan.with_value(CodeRedemption::Issued(Box::new(CodeGrant {
                code,
                jti: redemption.jti,
                issued_at: now,
                refresh_token,
            }))))
        })
        .await
    }
}
