//! Stream ids: the only place that spells them and the only place that parses them. The owning
//! tenant's id leads every stream id.
//!
//! Stream ids are plain strings in the log (and in the envelope's hash layout); [`StreamId`] is
//! their typed form, with `Display` giving exactly the stored spelling and [`StreamId::parse`]
//! reading it back, so that the tenant is never left out and the shapes stay consistent:
//!
//! | kind | spelling |
//! |---|---|
//! | tenant | `{tenant}/tenant` |
//! | API key | `{tenant}/api-key/{key}` |
//! | OAuth client | `{tenant}/oauth-client/{client_id}` |
//! | tokens | `{tenant}/tokens/{client_id}` |
//! | audit | `{tenant}/audit` |
//! | user | `{tenant}/user/{user}` |
//! | sign-ins and sessions of a user | `{tenant}/sessions/{user}` |
//! | sign-ins for addresses no user has | `{tenant}/sign-ins` |
//! | second factors | `{tenant}/mfa/{user}` |
//! | WebAuthn policy | `{tenant}/webauthn-policy` |
//! | authorization code | `{tenant}/code/{code}` |
//! | a person's consents | `{tenant}/consents/{user}` |
//! | refresh-token family | `{tenant}/refresh/{family}` |
//! | invitation | `{tenant}/invitation/{invitation}` |
//! | one email (the outbox) | `{tenant}/email/{email}` |
//! | a tenant's entitlement to one product | `{tenant}/entitlement/{product}` |
//! | one catalog product | `{system}/product/{key}` |
//! | an upstream identity provider | `{tenant}/identity-provider/{alias}` |
//! | one federated sign-in | `{tenant}/federated-sign-in/{state}` |
//! | a tenant's vault keys | `{tenant}/vault` |
//! | an integration the operator defined | `{system}/integration/{integration}` |
//! | a tenant's own OAuth app for it | `{tenant}/integration-app/{integration}` |
//! | one connection (credential) | `{tenant}/credential/{integration}` |
//! | accesses to a connection | `{tenant}/credential-access/{integration}` |
//! | one connect flow, by its state | `{tenant}/connect/{state}` |
//! | an LLM provider key (the system tenant's: the platform's) | `{tenant}/provider-key/{provider}` |
//! | accesses to a provider key | `{tenant}/provider-key-access/{provider}` |
//! | reservation | `{system}/reservation/{kind}/{value}` |
//!
//! A client id or a reservation value is everything after its prefix, `/` included; a
//! reservation kind never contains `/`.

use std::fmt;

use uuid::Uuid;

/// The system tenant (slug `system`), created on first start. Only it manages other tenants.
pub const SYSTEM_TENANT_ID: Uuid = Uuid::from_u128(1);

/// The typed form of a stream id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamId {
    /// `{tenant}/tenant`: the tenant aggregate's own stream.
    Tenant(Uuid),
    /// `{tenant}/api-key/{key}`: one API key.
    ApiKey { tenant_id: Uuid, key_id: Uuid },
    /// `{tenant}/oauth-client/{client_id}`: one OAuth client's registration and lifecycle.
    OAuthClient { tenant_id: Uuid, client_id: String },
    /// `{tenant}/tokens/{client_id}`: every access token issued to (and revoked for) one
    /// client, appended with expected version "any" so that concurrent issuance never
    /// conflicts.
    Tokens { tenant_id: Uuid, client_id: String },
    /// `{tenant}/audit`: audit entries products recorded for the tenant (`audit.recorded`),
    /// appended with expected version "any": entries are facts, never decisions.
    Audit(Uuid),
    /// `{tenant}/user/{user}`: one person of the tenant.
    User { tenant_id: Uuid, user_id: Uuid },
    /// `{tenant}/sessions/{user}`: one person's sign-in attempts, lockouts and sessions, on one
    /// stream so that lockouts and session limits are decided by its expected version.
    Sessions { tenant_id: Uuid, user_id: Uuid },
    /// `{tenant}/sign-ins`: sign-in attempts for addresses no user of the tenant has, appended
    /// with expected version "any" (facts).
    SignIns(Uuid),
    /// `{tenant}/mfa/{user}`: one person's second factors (authenticator app, recovery codes,
    /// passkeys).
    Mfa { tenant_id: Uuid, user_id: Uuid },
    /// `{tenant}/webauthn-policy`: the tenant's WebAuthn policy.
    WebauthnPolicy(Uuid),
    /// `{tenant}/code/{code}`: one authorization code, by its id (the code's first 16 bytes).
    /// Issued at version 1; redeemed at most once, by the append that expects version 1.
    Code { tenant_id: Uuid, code_id: Uuid },
    /// `{tenant}/consents/{user}`: what one person allowed each client.
    Consents { tenant_id: Uuid, user_id: Uuid },
    /// `{tenant}/refresh/{family}`: one refresh-token family: the grant a code exchange opened,
    /// each rotation, and its end. Rotation is decided by this stream's expected version.
    Refresh { tenant_id: Uuid, family_id: Uuid },
    /// `{tenant}/invitation/{invitation}`: one invitation to join the tenant. Accepted at most
    /// once, by the append that expects the version its token was checked at.
    Invitation {
        tenant_id: Uuid,
        invitation_id: Uuid,
    },
    /// `{tenant}/email/{email}`: one email of the outbox: queued, then each delivery attempt.
    Email { tenant_id: Uuid, email_id: Uuid },
    /// `{tenant}/entitlement/{product}`: one tenant's entitlement to one product (grants,
    /// trial, revocation, expiry) and its requests. "One trial" and "expired once" are
    /// decided by its expected version. A product key never contains `/`.
    Entitlement { tenant_id: Uuid, product: String },
    /// `{system}/product/{key}`: one product of the catalog; the key is unique by its stream.
    Product(String),
    /// `{tenant}/identity-provider/{alias}`: one upstream identity provider of the tenant
    /// (issue 19; seed 002's single provider is `default`). An alias never contains `/`.
    IdentityProvider { tenant_id: Uuid, alias: String },
    /// `{tenant}/federated-sign-in/{state}`: one federated sign-in, by its state's id. Its first
    /// event is appended with expected version "no stream": a state is used once.
    FederatedSignIn { tenant_id: Uuid, state_id: Uuid },
    /// `{tenant}/vault`: the tenant's vault key versions, minimum version, rewraps and
    /// offboarding (issue 20).
    Vault(Uuid),
    /// `{system}/integration/{integration}`: one integration the operator defined. An
    /// integration name never contains `/`.
    Integration(String),
    /// `{tenant}/integration-app/{integration}`: the tenant's own OAuth app for an integration.
    IntegrationApp {
        tenant_id: Uuid,
        integration: String,
    },
    /// `{tenant}/credential/{integration}`: one connection. A refresh is decided by its
    /// expected version.
    Credential {
        tenant_id: Uuid,
        integration: String,
    },
    /// `{tenant}/credential-access/{integration}`: accesses to one connection, appended with
    /// expected version "any".
    CredentialAccess {
        tenant_id: Uuid,
        integration: String,
    },
    /// `{tenant}/connect/{state}`: one connect flow's end, appended with expected version "no
    /// stream": a state is redeemed once.
    Connect { tenant_id: Uuid, state_id: Uuid },
    /// `{tenant}/provider-key/{provider}`: one LLM provider key; the system tenant's are the
    /// platform's defaults. A provider name never contains `/`.
    ProviderKey { tenant_id: Uuid, provider: String },
    /// `{tenant}/provider-key-access/{provider}`: resolutions of a tenant's provider key,
    /// appended with expected version "any".
    ProviderKeyAccess { tenant_id: Uuid, provider: String },
    /// `{system}/reservation/{kind}/{value}`: a platform-wide unique name (a slug, a domain).
    /// Appending its first event with expected version "no stream" is what makes the name
    /// unique. `kind` never contains `/`.
    Reservation { kind: String, value: String },
}

impl StreamId {
    /// Reads a stream id as [`Display`](fmt::Display) spells it; `None` for anything else.
    pub fn parse(stream_id: &str) -> Option<StreamId> {
        let (tenant_id, rest) = split_tenant(stream_id)?;
        match rest {
            "tenant" => return Some(StreamId::Tenant(tenant_id)),
            "audit" => return Some(StreamId::Audit(tenant_id)),
            "sign-ins" => return Some(StreamId::SignIns(tenant_id)),
            "webauthn-policy" => return Some(StreamId::WebauthnPolicy(tenant_id)),
            "vault" => return Some(StreamId::Vault(tenant_id)),
            _ => {}
        }
        let (kind, id) = rest.split_once('/')?;
        match kind {
            "api-key" => Uuid::parse_str(id)
                .ok()
                .map(|key_id| StreamId::ApiKey { tenant_id, key_id }),
            "user" => Uuid::parse_str(id)
                .ok()
                .map(|user_id| StreamId::User { tenant_id, user_id }),
            "sessions" => Uuid::parse_str(id)
                .ok()
                .map(|user_id| StreamId::Sessions { tenant_id, user_id }),
            "mfa" => Uuid::parse_str(id)
                .ok()
                .map(|user_id| StreamId::Mfa { tenant_id, user_id }),
            "code" => Uuid::parse_str(id)
                .ok()
                .map(|code_id| StreamId::Code { tenant_id, code_id }),
            "consents" => Uuid::parse_str(id)
                .ok()
                .map(|user_id| StreamId::Consents { tenant_id, user_id }),
            "refresh" => Uuid::parse_str(id).ok().map(|family_id| StreamId::Refresh {
                tenant_id,
                family_id,
            }),
            "invitation" => Uuid::parse_str(id)
                .ok()
                .map(|invitation_id| StreamId::Invitation {
                    tenant_id,
                    invitation_id,
                }),
            "email" => Uuid::parse_str(id).ok().map(|email_id| StreamId::Email {
                tenant_id,
                email_id,
            }),
            "entitlement" if !id.contains('/') => Some(StreamId::Entitlement {
                tenant_id,
                product: id.to_owned(),
            }),
            "identity-provider" if !id.contains('/') => Some(StreamId::IdentityProvider {
                tenant_id,
                alias: id.to_owned(),
            }),
            "federated-sign-in" => {
                Uuid::parse_str(id)
                    .ok()
                    .map(|state_id| StreamId::FederatedSignIn {
                        tenant_id,
                        state_id,
                    })
            }
            "integration" if tenant_id == SYSTEM_TENANT_ID && !id.contains('/') => {
                Some(StreamId::Integration(id.to_owned()))
            }
            "integration-app" if !id.contains('/') => Some(StreamId::IntegrationApp {
                tenant_id,
                integration: id.to_owned(),
            }),
            "credential" if !id.contains('/') => Some(StreamId::Credential {
                tenant_id,
                integration: id.to_owned(),
            }),
            "credential-access" if !id.contains('/') => Some(StreamId::CredentialAccess {
                tenant_id,
                integration: id.to_owned(),
            }),
            "connect" => Uuid::parse_str(id).ok().map(|state_id| StreamId::Connect {
                tenant_id,
                state_id,
            }),
            "provider-key" if !id.contains('/') => Some(StreamId::ProviderKey {
                tenant_id,
                provider: id.to_owned(),
            }),
            "provider-key-access" if !id.contains('/') => Some(StreamId::ProviderKeyAccess {
                tenant_id,
                provider: id.to_owned(),
            }),
            "product" if tenant_id == SYSTEM_TENANT_ID && !id.contains('/') => {
                Some(StreamId::Product(id.to_owned()))
            }
            "oauth-client" => Some(StreamId::OAuthClient {
                tenant_id,
                client_id: id.to_owned(),
            }),
            "tokens" => Some(StreamId::Tokens {
                tenant_id,
                client_id: id.to_owned(),
            }),
            "reservation" if tenant_id == SYSTEM_TENANT_ID => {
                let (kind, value) = id.split_once('/')?;
                Some(StreamId::Reservation {
                    kind: kind.to_owned(),
                    value: value.to_owned(),
                })
            }
            _ => None,
        }
    }

    /// The tenant the stream belongs to (the system tenant for reservations).
    pub fn tenant_id(&self) -> Uuid {
        match self {
            StreamId::Tenant(tenant_id)
            | StreamId::Audit(tenant_id)
            | StreamId::SignIns(tenant_id)
            | StreamId::WebauthnPolicy(tenant_id)
            | StreamId::Vault(tenant_id) => *tenant_id,
            StreamId::ApiKey { tenant_id, .. }
            | StreamId::User { tenant_id, .. }
            | StreamId::Sessions { tenant_id, .. }
            | StreamId::Mfa { tenant_id, .. }
            | StreamId::Code { tenant_id, .. }
            | StreamId::Consents { tenant_id, .. }
            | StreamId::Refresh { tenant_id, .. }
            | StreamId::Invitation { tenant_id, .. }
            | StreamId::Email { tenant_id, .. }
            | StreamId::Entitlement { tenant_id, .. }
            | StreamId::IdentityProvider { tenant_id, .. }
            | StreamId::FederatedSignIn { tenant_id, .. }
            | StreamId::IntegrationApp { tenant_id, .. }
            | StreamId::Credential { tenant_id, .. }
            | StreamId::CredentialAccess { tenant_id, .. }
            | StreamId::Connect { tenant_id, .. }
            | StreamId::ProviderKey { tenant_id, .. }
            | StreamId::ProviderKeyAccess { tenant_id, .. }
            | StreamId::OAuthClient { tenant_id, .. }
            | StreamId::Tokens { tenant_id, .. } => *tenant_id,
            StreamId::Reservation { .. } | StreamId::Product(_) | StreamId::Integration(_) => {
                SYSTEM_TENANT_ID
            }
        }
    }

    /// The stream id without its leading `{tenant}/`, e.g. `api-key/{key}`.
    pub fn relative(&self) -> String {
        let id = self.to_string();
        id.split_once('/')
            .map_or_else(String::new, |(_, rest)| rest.to_owned())
    }

    fn spelling(&self) -> Spelling<'_> {
        match self {
            StreamId::Tenant(tenant_id) => Spelling::Tenant(*tenant_id),
            StreamId::ApiKey { tenant_id, key_id } => Spelling::ApiKey(*tenant_id, *key_id),
            StreamId::OAuthClient {
                tenant_id,
                client_id,
            } => Spelling::OAuthClient(*tenant_id, client_id),
            StreamId::Tokens {
                tenant_id,
                client_id,
            } => Spelling::Tokens(*tenant_id, client_id),
            StreamId::Audit(tenant_id) => Spelling::Audit(*tenant_id),
            StreamId::User { tenant_id, user_id } => Spelling::User(*tenant_id, *user_id),
            StreamId::Sessions { tenant_id, user_id } => Spelling::Sessions(*tenant_id, *user_id),
            StreamId::SignIns(tenant_id) => Spelling::SignIns(*tenant_id),
            StreamId::Mfa { tenant_id, user_id } => Spelling::Mfa(*tenant_id, *user_id),
            StreamId::WebauthnPolicy(tenant_id) => Spelling::WebauthnPolicy(*tenant_id),
            StreamId::Code { tenant_id, code_id } => Spelling::Code(*tenant_id, *code_id),
            StreamId::Consents { tenant_id, user_id } => Spelling::Consents(*tenant_id, *user_id),
            StreamId::Refresh {
                tenant_id,
                family_id,
            } => Spelling::Refresh(*tenant_id, *family_id),
            StreamId::Invitation {
                tenant_id,
                invitation_id,
            } => Spelling::Invitation(*tenant_id, *invitation_id),
            StreamId::Email {
                tenant_id,
                email_id,
            } => Spelling::Email(*tenant_id, *email_id),
            StreamId::Entitlement { tenant_id, product } => {
                Spelling::Entitlement(*tenant_id, product)
            }
            StreamId::Product(key) => Spelling::Product(key),
            StreamId::IdentityProvider { tenant_id, alias } => {
                Spelling::IdentityProvider(*tenant_id, alias)
            }
            StreamId::FederatedSignIn {
                tenant_id,
                state_id,
            } => Spelling::FederatedSignIn(*tenant_id, *state_id),
            StreamId::Vault(tenant_id) => Spelling::Vault(*tenant_id),
            StreamId::Integration(name) => Spelling::Integration(name),
            StreamId::IntegrationApp {
                tenant_id,
                integration,
            } => Spelling::IntegrationApp(*tenant_id, integration),
            StreamId::Credential {
                tenant_id,
                integration,
            } => Spelling::Credential(*tenant_id, integration),
            StreamId::CredentialAccess {
                tenant_id,
                integration,
            } => Spelling::CredentialAccess(*tenant_id, integration),
            StreamId::Connect {
                tenant_id,
                state_id,
            } => Spelling::Connect(*tenant_id, *state_id),
            StreamId::ProviderKey {
                tenant_id,
                provider,
            } => Spelling::ProviderKey(*tenant_id, provider),
            StreamId::ProviderKeyAccess {
                tenant_id,
                provider,
            } => Spelling::ProviderKeyAccess(*tenant_id, provider),
            StreamId::Reservation { kind, value } => Spelling::Reservation(kind, value),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spelling().fmt(f)
    }
}

/// A stream id's parts, borrowed, and their one spelling: [`StreamId`] and the functions below
/// both write through it, so that building an id from a `&str` copies nothing first.
enum Spelling<'a> {
    Tenant(Uuid),
    ApiKey(Uuid, Uuid),
    OAuthClient(Uuid, &'a str),
    Tokens(Uuid, &'a str),
    Audit(Uuid),
    User(Uuid, Uuid),
    Sessions(Uuid, Uuid),
    SignIns(Uuid),
    Mfa(Uuid, Uuid),
    WebauthnPolicy(Uuid),
    Code(Uuid, Uuid),
    Consents(Uuid, Uuid),
    Refresh(Uuid, Uuid),
    Invitation(Uuid, Uuid),
    Email(Uuid, Uuid),
    Entitlement(Uuid, &'a str),
    Product(&'a str),
    IdentityProvider(Uuid, &'a str),
    FederatedSignIn(Uuid, Uuid),
    Vault(Uuid),
    Integration(&'a str),
    IntegrationApp(Uuid, &'a str),
    Credential(Uuid, &'a str),
    CredentialAccess(Uuid, &'a str),
    Connect(Uuid, Uuid),
    ProviderKey(Uuid, &'a str),
    ProviderKeyAccess(Uuid, &'a str),
    Reservation(&'a str, &'a str),
}

impl fmt::Display for Spelling<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spelling::Tenant(tenant_id) => write!(f, "{tenant_id}/tenant"),
            Spelling::ApiKey(tenant_id, key_id) => write!(f, "{tenant_id}/api-key/{key_id}"),
            Spelling::OAuthClient(tenant_id, client_id) => {
                write!(f, "{tenant_id}/oauth-client/{client_id}")
            }
            Spelling::Tokens(tenant_id, client_id) => write!(f, "{tenant_id}/tokens/{client_id}"),
            Spelling::Audit(tenant_id) => write!(f, "{tenant_id}/audit"),
            Spelling::User(tenant_id, user_id) => write!(f, "{tenant_id}/user/{user_id}"),
            Spelling::Sessions(tenant_id, user_id) => {
                write!(f, "{tenant_id}/sessions/{user_id}")
            }
            Spelling::SignIns(tenant_id) => write!(f, "{tenant_id}/sign-ins"),
            Spelling::Mfa(tenant_id, user_id) => write!(f, "{tenant_id}/mfa/{user_id}"),
            Spelling::WebauthnPolicy(tenant_id) => write!(f, "{tenant_id}/webauthn-policy"),
            Spelling::Code(tenant_id, code_id) => write!(f, "{tenant_id}/code/{code_id}"),
            Spelling::Consents(tenant_id, user_id) => write!(f, "{tenant_id}/consents/{user_id}"),
            Spelling::Refresh(tenant_id, family_id) => write!(f, "{tenant_id}/refresh/{family_id}"),
            Spelling::Invitation(tenant_id, invitation_id) => {
                write!(f, "{tenant_id}/invitation/{invitation_id}")
            }
            Spelling::Email(tenant_id, email_id) => write!(f, "{tenant_id}/email/{email_id}"),
            Spelling::Entitlement(tenant_id, product) => {
                write!(f, "{tenant_id}/entitlement/{product}")
            }
            Spelling::Product(key) => write!(f, "{SYSTEM_TENANT_ID}/product/{key}"),
            Spelling::IdentityProvider(tenant_id, alias) => {
                write!(f, "{tenant_id}/identity-provider/{alias}")
            }
            Spelling::FederatedSignIn(tenant_id, state_id) => {
                write!(f, "{tenant_id}/federated-sign-in/{state_id}")
            }
            Spelling::Vault(tenant_id) => write!(f, "{tenant_id}/vault"),
            Spelling::Integration(name) => write!(f, "{SYSTEM_TENANT_ID}/integration/{name}"),
            Spelling::IntegrationApp(tenant_id, integration) => {
                write!(f, "{tenant_id}/integration-app/{integration}")
            }
            Spelling::Credential(tenant_id, integration) => {
                write!(f, "{tenant_id}/credential/{integration}")
            }
            Spelling::CredentialAccess(tenant_id, integration) => {
                write!(f, "{tenant_id}/credential-access/{integration}")
            }
            Spelling::Connect(tenant_id, state_id) => write!(f, "{tenant_id}/connect/{state_id}"),
            Spelling::ProviderKey(tenant_id, provider) => {
                write!(f, "{tenant_id}/provider-key/{provider}")
            }
            Spelling::ProviderKeyAccess(tenant_id, provider) => {
                write!(f, "{tenant_id}/provider-key-access/{provider}")
            }
            Spelling::Reservation(kind, value) => {
                write!(f, "{SYSTEM_TENANT_ID}/reservation/{kind}/{value}")
            }
        }
    }
}

/// `{tenant}/tenant`: the tenant aggregate's own stream.
pub fn tenant(tenant_id: Uuid) -> String {
    Spelling::Tenant(tenant_id).to_string()
}

/// `{tenant}/api-key/{key}`: one API key.
pub fn api_key(tenant_id: Uuid, key_id: Uuid) -> String {
    Spelling::ApiKey(tenant_id, key_id).to_string()
}

/// `{tenant}/oauth-client/{client_id}`: one OAuth client's registration and lifecycle.
pub fn oauth_client(tenant_id: Uuid, client_id: &str) -> String {
    Spelling::OAuthClient(tenant_id, client_id).to_string()
}

/// `{tenant}/tokens/{client_id}`: every access token issued to (and revoked for) one client.
pub fn client_tokens(tenant_id: Uuid, client_id: &str) -> String {
    Spelling::Tokens(tenant_id, client_id).to_string()
}

/// `{tenant}/audit`: audit entries products recorded for the tenant.
pub fn audit(tenant_id: Uuid) -> String {
    Spelling::Audit(tenant_id).to_string()
}

/// `{tenant}/user/{user}`: one person of the tenant.
pub fn user(tenant_id: Uuid, user_id: Uuid) -> String {
    Spelling::User(tenant_id, user_id).to_string()
}

/// `{tenant}/sessions/{user}`: one person's sign-ins, lockouts and sessions.
pub fn sessions(tenant_id: Uuid, user_id: Uuid) -> String {
    Spelling::Sessions(tenant_id, user_id).to_string()
}

/// `{tenant}/sign-ins`: sign-in attempts for addresses no user of the tenant has.
pub fn sign_ins(tenant_id: Uuid) -> String {
    Spelling::SignIns(tenant_id).to_string()
}

/// `{tenant}/mfa/{user}`: one person's second factors.
pub fn mfa(tenant_id: Uuid, user_id: Uuid) -> String {
    Spelling::Mfa(tenant_id, user_id).to_string()
}

/// `{tenant}/webauthn-policy`: the tenant's WebAuthn policy.
pub fn webauthn_policy(tenant_id: Uuid) -> String {
    Spelling::WebauthnPolicy(tenant_id).to_string()
}

/// `{tenant}/code/{code}`: one authorization code.
pub fn code(tenant_id: Uuid, code_id: Uuid) -> String {
    Spelling::Code(tenant_id, code_id).to_string()
}

/// `{tenant}/consents/{user}`: what one person allowed each client.
pub fn consents(tenant_id: Uuid, user_id: Uuid) -> String {
    Spelling::Consents(tenant_id, user_id).to_string()
}

/// `{tenant}/refresh/{family}`: one refresh-token family.
pub fn refresh(tenant_id: Uuid, family_id: Uuid) -> String {
    Spelling::Refresh(tenant_id, family_id).to_string()
}

/// `{tenant}/invitation/{invitation}`: one invitation to join the tenant.
pub fn invitation(tenant_id: Uuid, invitation_id: Uuid) -> String {
    Spelling::Invitation(tenant_id, invitation_id).to_string()
}

/// `{tenant}/email/{email}`: one email of the outbox.
pub fn email(tenant_id: Uuid, email_id: Uuid) -> String {
    Spelling::Email(tenant_id, email_id).to_string()
}

/// `{tenant}/entitlement/{product}`: one tenant's entitlement to one product.
pub fn entitlement(tenant_id: Uuid, product: &str) -> String {
    Spelling::Entitlement(tenant_id, product).to_string()
}

/// `{system}/product/{key}`: one product of the catalog.
pub fn product(key: &str) -> String {
    Spelling::Product(key).to_string()
}

/// `{tenant}/identity-provider/{alias}`: one upstream identity provider of the tenant.
pub fn identity_provider(tenant_id: Uuid, alias: &str) -> String {
    Spelling::IdentityProvider(tenant_id, alias).to_string()
}

/// `{tenant}/federated-sign-in/{state}`: one federated sign-in, by its state's id.
pub fn federated_sign_in(tenant_id: Uuid, state_id: Uuid) -> String {
    Spelling::FederatedSignIn(tenant_id, state_id).to_string()
}

/// `{tenant}/vault`: the tenant's vault keys.
pub fn vault(tenant_id: Uuid) -> String {
    Spelling::Vault(tenant_id).to_string()
}

/// `{system}/integration/{integration}`: one integration the operator defined.
pub fn integration(name: &str) -> String {
    Spelling::Integration(name).to_string()
}

/// `{tenant}/integration-app/{integration}`: the tenant's own OAuth app for an integration.
pub fn integration_app(tenant_id: Uuid, integration: &str) -> String {
    Spelling::IntegrationApp(tenant_id, integration).to_string()
}

/// `{tenant}/credential/{integration}`: one connection.
pub fn credential(tenant_id: Uuid, integration: &str) -> String {
    Spelling::Credential(tenant_id, integration).to_string()
}

/// `{tenant}/credential-access/{integration}`: accesses to one connection.
pub fn credential_access(tenant_id: Uuid, integration: &str) -> String {
    Spelling::CredentialAccess(tenant_id, integration).to_string()
}

/// `{tenant}/connect/{state}`: one connect flow's end.
pub fn connect(tenant_id: Uuid, state_id: Uuid) -> String {
    Spelling::Connect(tenant_id, state_id).to_string()
}

/// `{tenant}/provider-key/{provider}`: one LLM provider key (the system tenant's: the
/// platform's default).
pub fn provider_key(tenant_id: Uuid, provider: &str) -> String {
    Spelling::ProviderKey(tenant_id, provider).to_string()
}

/// `{tenant}/provider-key-access/{provider}`: resolutions of a tenant's provider key.
pub fn provider_key_access(tenant_id: Uuid, provider: &str) -> String {
    Spelling::ProviderKeyAccess(tenant_id, provider).to_string()
}

/// `{system}/reservation/{kind}/{value}`: a platform-wide unique name.
pub fn reservation(kind: &str, value: &str) -> String {
    Spelling::Reservation(kind, value).to_string()
}

/// The tenant id that leads a stream id, if it has one, whatever kind of stream follows.
pub fn tenant_of(stream_id: &str) -> Option<Uuid> {
    split_tenant(stream_id).map(|(tenant_id, _)| tenant_id)
}

/// The principal a stream id names after its kind, as spelled there: the key of
/// `{tenant}/api-key/{key}`, the client of `{tenant}/oauth-client/{client}` and
/// `{tenant}/tokens/{client}`, the user of `{tenant}/user/{user}`; `None` for any other stream
/// (and for anything [`StreamId::parse`] refuses). Borrowed, so that it costs no allocation.
///
/// The event log stores an event's actor id as "implied" when it is exactly this (a token's
/// client, a key's own use), and reads it back from here.
pub fn subject_of(stream_id: &str) -> Option<&str> {
    let (_, rest) = split_tenant(stream_id)?;
    let (kind, id) = rest.split_once('/')?;
    match kind {
        "oauth-client" | "tokens" => Some(id),
        "api-key" | "user" => Uuid::parse_str(id).is_ok().then_some(id),
        _ => None,
    }
}

/// `{tenant}/{rest}`, with the tenant parsed.
fn split_tenant(stream_id: &str) -> Option<(Uuid, &str)> {
    let (tenant, rest) = stream_id.split_once('/')?;
    Some((Uuid::parse_str(tenant).ok()?, rest))
}

#[cfg(test)]
mod tests;
