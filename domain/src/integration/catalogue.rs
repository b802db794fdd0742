//! The built-in integration providers (issue 20, seed 004): where each one's OAuth endpoints
//! are, what it asks for by default, and what it supports (PKCE, refresh tokens, RFC 7009
//! revocation).
//!
//! Only facts published by the providers belong here. The definitions are resolved into an
//! `integration.defined` event when the operator defines an integration, so a later edit of
//! this table never changes an integration already recorded.

/// One built-in provider's definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtin {
    pub provider: &'static str,
    /// `None` for `generic_oauth2`, whose URLs the operator gives.
    pub authorization_url: Option<&'static str>,
    pub token_url: Option<&'static str>,
    /// An endpoint that takes RFC 7009's `token` parameter, where the provider has one.
    pub revocation_url: Option<&'static str>,
    pub default_scopes: &'static [&'static str],
    pub pkce: bool,
    pub refreshes: bool,
}

/// The provider every integration that is not a hosted service uses: any OAuth 2.0
/// authorization server with the code flow (a Tessera tenant, Keycloak, Zitadel, ...).
pub const GENERIC: &str = "generic_oauth2";

/// The built-ins, by name.
pub const BUILTINS: [Builtin; 5] = [
    // Notion's public integrations: tokens that do not expire, no PKCE, no refresh token.
    Builtin {
        provider: "notion",
        authorization_url: Some("https://api.notion.com/v1/oauth/authorize?owner=user"),
        token_url: Some("https://api.notion.com/v1/oauth/token"),
        revocation_url: None,
        default_scopes: &[],
        pkce: false,
        refreshes: false,
    },
    // GitHub Apps issue expiring user tokens with refresh tokens; OAuth apps' tokens do not
    // expire, and then no refresh token comes back and nothing is scheduled. GitHub's grant
    // revocation (`DELETE /applications/{client_id}/grant`) is not RFC 7009, so it is not used.
    Builtin {
        provider: "github",
        authorization_url: Some("https://github.com/login/oauth/authorize"),
        token_url: Some("https://github.com/login/oauth/access_token"),
        revocation_url: None,
        default_scopes: &["read:user"],
        pkce: true,
        refreshes: true,
    },
    // Google hands out a refresh token only for `access_type=offline`, and again on a later
    // consent only with `prompt=consent`: both are part of the recorded URL.
    Builtin {
        provider: "google",
        authorization_url: Some(
            "https://accounts.google.com/o/oauth2/v2/auth?access_type=offline&prompt=consent",
        ),
        token_url: Some("https://oauth2.googleapis.com/token"),
        revocation_url: Some("https://oauth2.googleapis.com/revoke"),
        default_scopes: &["openid", "email", "profile"],
        pkce: true,
        refreshes: true,
    },
    // Slack's v2 flow; refresh tokens come with token rotation turned on for the app.
    Builtin {
        provider: "slack",
        authorization_url: Some("https://slack.com/oauth/v2/authorize"),
        token_url: Some("https://slack.com/api/oauth.v2.access"),
        revocation_url: Some("https://slack.com/api/auth.revoke"),
        default_scopes: &["channels:read", "chat:write"],
        pkce: false,
        refreshes: true,
    },
    Builtin {
        provider: GENERIC,
        authorization_url: None,
        token_url: None,
        revocation_url: None,
        default_scopes: &[],
        pkce: true,
        refreshes: true,
    },
];

/// The built-in named `provider`.
pub fn builtin(provider: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|builtin| builtin.provider == provider)
}

/// The built-ins' names, for an error message.
pub fn names() -> String {
    BUILTINS
        .iter()
        .map(|builtin| builtin.provider)
        .collect::<Vec<_>>()
        .join(", ")
}
