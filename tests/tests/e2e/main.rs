//! End-to-end tests: the real `tessera` binary, started on port 0 with its own data directory
//! (embedded SQLite) or its own throwaway PostgreSQL, driven over HTTP.
//!
//! One test binary on purpose: add modules here rather than new files under `tests/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::disallowed_methods,
    reason = "the server under test runs on the wall clock and makes its own ids, so these tests \
              compare with the wall clock and make up ids (unknown tenants, correlation ids) \
              the same way"
)]

mod helpers;
mod http_browser;
mod smtp;

mod api_key_usage;
mod audit;
mod auth;
mod browser;
mod compose;
mod connect;
mod crash;
mod disk;
mod federation;
mod federation_gaps;
mod hardening;
mod invitations;
mod invitations_mail;
mod kafka;
mod kafka_properties;
mod kafka_sasl_plain;
mod kafka_tls;
mod mail;
mod mfa;
mod mfa_account;
mod mfa_passkeys;
mod mfa_signin;
mod nodes;
mod oauth;
mod oidc;
mod oidc_clients;
mod oidc_tokens;
mod openapi_fuzz;
mod pages;
mod provider_keys;
mod registry;
mod restart;
mod sessions;
mod signin;
mod tenants;
mod tidy;
mod users;
mod vault;
