//! One upstream identity provider of a tenant (issue 19): configured, replaced, removed.
//!
//! One stream per (tenant, alias), `{tenant}/identity-provider/{alias}`; seed 002's single
//! provider per tenant is the alias `default`. Pure: the discovery document is fetched and
//! checked by the API before the command is built, the client secret arrives sealed, and the
//! time of a change arrives inside the command.
//!
//! # Rules
//! - `provider` is one of seed 002's kinds; `canonical_public_origin` is an https origin (no
//!   path), or plain http on `localhost` or `127.0.0.1`; the endpoints are absolute https URLs
//!   (loopback http likewise); `redirect_path` is an absolute path without a query.
//! - `scopes` contain `openid`; `allowed_domains` are hostnames, lower-cased; `claims_mapping`
//!   maps only the claims sign-in reads (`email`, `email_verified`, `name`, `given_name`,
//!   `family_name`, `sub`) to claim names.
//! - A first configuration needs a client secret; a later one without a secret keeps the one
//!   recorded.
//! - A change of redirect URI (origin or path) keeps the old one accepted for the grace period
//!   the command carries, so that sign-ins in flight can finish.
//! - Putting the same configuration again appends nothing; removing an absent provider is not
//!   found.

use std::collections::BTreeMap;

use tessera_event_schemas::Event;
use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::{FederationConfiguredV1, FederationRemovedV1};

use crate::validate;
use crate::{Aggregate, DomainError};

/// Seed 002's provider kinds.
pub const PROVIDERS: [&str; 5] = ["entra_id", "okta", "auth0", "mobilityguard", "generic_oidc"];
/// The claims a sign-in reads, which `claims_mapping` may rename.
pub const MAPPABLE_CLAIMS: [&str; 6] = [
    "sub",
    "email",
    "email_verified",
    "name",
    "given_name",
    "family_name",
];
/// Seed 002's default callback path.
pub const DEFAULT_REDIRECT_PATH: &str = "/login/callback";
/// The alias of `/v1/tenants/{id}/federation`, seed 002's one provider per tenant.
pub const DEFAULT_ALIAS: &str = "default";

/// A provider's configuration as recorded (the secret sealed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityProvider {
    pub provider: String,
    pub display_name: String,
    pub canonical_public_origin: String,
    pub redirect_path: String,
    pub discovery_endpoint: Option<String>,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub client_id: String,
    pub sealed_client_secret: Vec<u8>,
    pub scopes: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub claims_mapping: BTreeMap<String, String>,
    pub trust_email: bool,
    pub previous_redirect_uri: Option<String>,
    pub previous_until: Option<Timestamp>,
}

impl IdentityProvider {
    /// Where the upstream sends people back: `{canonical_public_origin}{redirect_path}`.
    pub fn redirect_uri(&self) -> String {
        format!("{}{}", self.canonical_public_origin, self.redirect_path)
    }

    /// Whether a sign-in started for `redirect_uri` may finish at `now`: the current one, or
    /// the one a change replaced, until its grace period ends.
    pub fn accepts_redirect_uri(&self, redirect_uri: &str, now: Timestamp) -> bool {
        redirect_uri == self.redirect_uri()
            || (self.previous_redirect_uri.as_deref() == Some(redirect_uri)
                && self.previous_until.is_some_and(|until| now < until))
    }

    /// The upstream claim that carries `claim` (`claims_mapping`, else the same name).
    pub fn claim_name<'a>(&'a self, claim: &'a str) -> &'a str {
        self.claims_mapping.get(claim).map_or(claim, String::as_str)
    }

    /// Whether an address at `domain` may sign in (`allowed_domains` empty: any).
    pub fn allows_domain(&self, domain: &str) -> bool {
        self.allowed_domains.is_empty()
            || self
                .allowed_domains
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(domain))
    }
}

/// The provider's state: `None` when never configured or removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityProviderState {
    pub provider: Option<IdentityProvider>,
}

/// What a `PUT` sets: the configuration with the secret sealed, or `None` to keep the
/// recorded one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configure {
    pub config: IdentityProvider,
    pub sealed_client_secret: Option<Vec<u8>>,
    pub now: Timestamp,
    /// `OIDC_REDIRECT_GRACE_PERIOD_SECONDS`.
    pub grace_seconds: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityProviderCommand {
    Configure(Box<Configure>),
    Remove,
}

/// Checks an alias before it names a stream.
pub fn alias(value: &str) -> Result<(), DomainError> {
    validate::identifier("alias", value)
}

/// An origin: https, or http on loopback (tests, development), with no path, query or
/// fragment. Returns it without a trailing slash.
pub fn origin(field: &str, value: &str) -> Result<String, DomainError> {
    let url = url::Url::parse(value).map_err(|_| {
        DomainError::invalid(
            field,
            "must be an absolute URL such as https://login.example.com",
        )
    })?;
    secure_or_loopback(field, &url)?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(DomainError::invalid(
            field,
            "must be an origin: scheme, host and port only",
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// An endpoint: an absolute https URL (loopback http likewise), without a fragment.
pub fn endpoint(field: &str, value: &str) -> Result<(), DomainError> {
    let url = url::Url::parse(value)
        .map_err(|_| DomainError::invalid(field, "must be an absolute https URL"))?;
    secure_or_loopback(field, &url)?;
    if url.fragment().is_some() || value.len() > 2_048 {
        return Err(DomainError::invalid(
            field,
            "must have no fragment and at most 2048 characters",
        ));
    }
    Ok(())
}

/// Plain http only on `localhost` and `127.0.0.1` (seed 002's rule for public origins).
fn secure_or_loopback(field: &str, url: &url::Url) -> Result<(), DomainError> {
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
    match url.scheme() {
        "https" if url.has_host() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(DomainError::invalid(
            field,
            "must use https (plain http only on localhost or 127.0.0.1)",
        )),
    }
}

fn check(input: &IdentityProvider) -> Result<IdentityProvider, DomainError> {
    if !PROVIDERS.contains(&input.provider.as_str()) {
        return Err(DomainError::invalid(
            "provider",
            format!("must be one of {}", PROVIDERS.join(", ")),
        ));
    }
    let display_name = validate::display_text("display_name", &input.display_name, 100)?;
    let origin = origin("canonical_public_origin", &input.canonical_public_origin)?;
    let path = &input.redirect_path;
    let path_ok = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 200
        && path
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/-_.~".contains(&c))
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    if !path_ok {
        return Err(DomainError::invalid(
            "redirect_path",
            "must be an absolute path such as /login/callback, without a query",
        ));
    }
    if let Some(discovery) = &input.discovery_endpoint {
        endpoint("discovery_endpoint", discovery)?;
    }
    if input.issuer.is_empty() || input.issuer.len() > 2_048 {
        return Err(DomainError::invalid(
            "issuer",
            "the discovery document names no issuer",
        ));
    }
    endpoint("authorization_endpoint", &input.authorization_endpoint)?;
    endpoint("token_endpoint", &input.token_endpoint)?;
    endpoint("jwks_uri", &input.jwks_uri)?;
    if input.client_id.trim().is_empty() || input.client_id.len() > 255 {
        return Err(DomainError::invalid(
            "client_id",
            "must be 1 to 255 characters",
        ));
    }
    if !input.scopes.iter().any(|scope| scope == "openid") {
        return Err(DomainError::invalid("scopes", "must include openid"));
    }
    for scope in &input.scopes {
        validate::scope("scopes", scope)?;
    }
    let domains: Vec<String> = input
        .allowed_domains
        .iter()
        .map(|domain| domain.trim().to_ascii_lowercase())
        .collect();
    validate::hostnames("allowed_domains", &domains, 100)?;
    for (ours, theirs) in &input.claims_mapping {
        if !MAPPABLE_CLAIMS.contains(&ours.as_str()) {
            return Err(DomainError::invalid(
                "claims_mapping",
                format!("maps only {}", MAPPABLE_CLAIMS.join(", ")),
            ));
        }
        if theirs.is_empty() || theirs.len() > 100 {
            return Err(DomainError::invalid(
                "claims_mapping",
                "claim names are 1 to 100 characters",
            ));
        }
    }
    Ok(IdentityProvider {
        display_name,
        canonical_public_origin: origin,
        allowed_domains: domains,
        ..input.clone()
    })
}

impl Aggregate for IdentityProviderState {
    type Command = IdentityProviderCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::FederationConfigured(e) => {
                self.provider = Some(IdentityProvider {
                    provider: e.provider.clone(),
                    display_name: e.display_name.clone(),
                    canonical_public_origin: e.canonical_public_origin.clone(),
                    redirect_path: e.redirect_path.clone(),
                    discovery_endpoint: e.discovery_endpoint.clone(),
                    issuer: e.issuer.clone(),
                    authorization_endpoint: e.authorization_endpoint.clone(),
                    token_endpoint: e.token_endpoint.clone(),
                    jwks_uri: e.jwks_uri.clone(),
                    client_id: e.client_id.clone(),
                    sealed_client_secret: e.client_secret.expose().clone(),
                    scopes: e.scopes.clone(),
                    allowed_domains: e.allowed_domains.clone(),
                    claims_mapping: e.claims_mapping.clone(),
                    trust_email: e.trust_email,
                    previous_redirect_uri: e.previous_redirect_uri.clone(),
                    previous_until: e.previous_until,
                });
            }
            Event::FederationRemoved(_) => self.provider = None,
            _ => {}
        }
    }

    fn decide(&self, command: IdentityProviderCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            IdentityProviderCommand::Configure(configure) => {
                let Configure {
                    config,
                    sealed_client_secret,
                    now,
                    grace_seconds,
                } = *configure;
                let mut next = check(&config)?;
                let current = self.provider.as_ref();
                next.sealed_client_secret = match (sealed_client_secret, current) {
                    (Some(sealed), _) => sealed,
                    (None, Some(current)) => current.sealed_client_secret.clone(),
                    (None, None) => {
                        return Err(DomainError::invalid(
                            "client_secret",
                            "is required when the provider is first configured",
                        ));
                    }
                };
                (next.previous_redirect_uri, next.previous_until) = match current {
                    Some(current) if current.redirect_uri() != next.redirect_uri() => (
                        Some(current.redirect_uri()),
                        Some(now.plus_seconds(grace_seconds)),
                    ),
                    Some(current) => (
                        current.previous_redirect_uri.clone(),
                        current.previous_until,
                    ),
                    None => (None, None),
                };
                // A new secret is sealed afresh each time (a new nonce), so only an absent one
                // can leave the configuration unchanged.
                if current == Some(&next) {
                    return Ok(vec![]);
                }
                Ok(vec![Event::FederationConfigured(FederationConfiguredV1 {
                    provider: next.provider,
                    display_name: next.display_name,
                    canonical_public_origin: next.canonical_public_origin,
                    redirect_path: next.redirect_path,
                    discovery_endpoint: next.discovery_endpoint,
                    issuer: next.issuer,
                    authorization_endpoint: next.authorization_endpoint,
                    token_endpoint: next.token_endpoint,
                    jwks_uri: next.jwks_uri,
                    client_id: next.client_id,
                    client_secret: next.sealed_client_secret.into(),
                    scopes: next.scopes,
                    allowed_domains: next.allowed_domains,
                    claims_mapping: next.claims_mapping,
                    trust_email: next.trust_email,
                    previous_redirect_uri: next.previous_redirect_uri,
                    previous_until: next.previous_until,
                })])
            }
            IdentityProviderCommand::Remove => match self.provider {
                Some(_) => Ok(vec![Event::FederationRemoved(FederationRemovedV1 {})]),
                None => Err(DomainError::NotFound),
            },
        }
    }
}

#[cfg(test)]
mod tests;
