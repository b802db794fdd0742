//! Tessera's HTTP server: the admin API on top of commands (write side) and read models (read
//! side), plus the wiring that starts everything.
//!
//! **Architecture Invariant:** this is the only crate that knows HTTP and JSON request shapes.
//! Handlers never touch SQL or the log directly, except `/readyz`, which pings the log.
//!
//! # Layout
//! - [`cli`]: the `tessera` command line; [`config`]: flags and `TESSERA_*` variables;
//!   [`data_dir`]: the embedded data directory, private to the server's user.
//! - [`server`]: opens storage, bootstraps, starts projections, serves until shutdown;
//!   [`http`]: the HTTP/1 connection loop with its limits.
//! - [`routes`]: handlers, one module per resource; [`openapi`] collects them.
//! - [`auth`], [`extract`], [`error`], [`correlation`]: the request edge; [`scopes`]: the
//!   catalogue of API key scopes; [`key_cache`]: API keys recently looked up;
//!   [`catch_up`]: read-your-writes across nodes (catching up with the log after a miss).
//! - [`oauth`]: each tenant's OAuth 2.0 authorization server (`/t/{slug}/...`).
//! - [`lifecycle`]: scheduled transitions (cancellation at period end); [`registry_expiry`]:
//!   entitlements and trials reaching their expiry; [`backchannel`]: Back-Channel Logout's
//!   deliveries of logout tokens; [`mail`]: the outbox's delivery loop (SMTP, or `.eml` files
//!   in the data directory).
//! - [`connect`]: the OAuth connect flow to an integration (issue 20); [`vault_refresh`]:
//!   connections refreshed before they expire (the scheduler and the refresh).
//! - [`usage`]: API key usage, counted in memory and recorded in aggregate; [`activity`]: the
//!   same for the last use of sessions.
//! - [`vault_rewrap`]: the credential vault's rewraps, run in the background and resumed at
//!   start (issue 20).
//! - [`pages`]: each tenant's hosted pages (`/t/{slug}/login`, `logout`, `account`, the forced
//!   password change), server-rendered from `api/templates/`; [`rate_limit`]: sign-in limits.

pub mod activity;
pub mod auth;
pub mod backchannel;
pub mod catch_up;
pub mod cli;
pub mod config;
pub mod connect;
pub mod correlation;
pub mod data_dir;
pub mod error;
pub mod extract;
pub mod federation;
pub mod http;
pub mod key_cache;
pub mod lifecycle;
pub mod mail;
pub mod oauth;
pub mod openapi;
pub mod pages;
pub mod rate_limit;
pub mod registry_expiry;
pub mod routes;
pub mod scopes;
pub mod server;
pub mod state;
pub mod usage;
pub mod vault_refresh;
pub mod vault_rewrap;
