//! Tessera's read side: SQL read models folded from the event log, the projector that keeps
//! them current, and the queries the API serves from them.
//!
//! Read models are disposable: everything here can be rebuilt from the log, so the read
//! store favours speed (`synchronous=NORMAL` on SQLite) and never holds a secret (no sealed
//! private keys; API keys by hash only). Each batch's checkpoints commit in the same
//! transaction as its rows, so an event is applied exactly once across crashes and restarts.
//! This crate reads the log and never appends to it; it knows nothing of HTTP or of command
//! handling, and uniqueness decisions are never made from these eventually consistent tables.
//!
//! # Layout
//! - [`views`]: the row types queries return (`TenantView`, `SigningKeyView`, `ApiKeyView`,
//!   `UserView`, `AuditView`).
//! - `tables`: one module per read-model table (`tenants`, `signing_keys`, `api_keys`,
//!   `users`), each
//!   implementing `TableProjection` (its key, pure reducer, columns and cells, DDL, row
//!   decoding) and holding its queries; the registry (`tables!`) that lists them and gives
//!   [`Projection`]; [`Checkpoints`]; and `audit_trail`, the insert-only `rm_audit`.
//! - [`audit`]: the audit trail's rows (one per event, secrets redacted).
//! - [`backchannel`]: Back-Channel Logout's fold: the logout tokens a session's end owes.
//! - `fold`: the in-memory batch fold over every table, tested without a database.
//! - `cache`: the row cache of the batch writers, and a rebuild's write-behind.
//! - `write`: applies one batch (load, fold, upsert, checkpoint) in one transaction: the
//!   steps both backends share. `sql`: the statements and bound values they share.
//! - `write_sqlite`: its writer for SQLite read models, on a rusqlite connection.
//! - `write_postgres`: its writer for PostgreSQL read models, on a native sqlx pool (`COPY`
//!   for a rebuild's rows).
//! - [`store`]: `ReadStore`: connections, publisher checkpoints, checkpoints. `schema`: DDL,
//!   schema version, resets. `snapshot`: the canonical dump. `decode`, `paging`: reading
//!   rows back, and keyset pagination.
//! - [`runtime`]: `ProjectionRuntime`, the live projector with `wait_for`.
//! - [`rebuild`](mod@rebuild): drop and replay everything, offline; `swap` swaps a rebuilt SQLite file in.
//! - [`retention`]: the audit trail's retention, its sweep and what the fold skips.
//! - [`directory`]: the in-memory OAuth directory (tenants by slug, clients, revoked tokens)
//!   that the authorization server's hot paths read, and its snapshots.
//! - [`sessions`]: the in-memory session directory (active sessions by cookie hash) that the
//!   hosted pages read on every signed-in request.
//! - [`registry`](mod@registry): the in-memory catalog, entitlements and clients' tenant-claims
//!   choices that the claims resolver and the token endpoint read (issue 21).
//! - [`kafka`]: the Kafka audit publisher (CloudEvents on `tessera.audit.v1` and per-category
//!   topics), checkpointed after the broker acknowledges; [`kafka_properties`]: the librdkafka
//!   properties operators pass through to it (TLS, SASL), parsed, checked and kept secret.
//! - [`error`]: `ReadError`, `ProjectionError`, `WaitTimeout`.

pub mod audit;
pub mod backchannel;
mod cache;
mod decode;
pub mod directory;
pub mod error;
mod fold;
mod follow;
mod isolation;
pub mod kafka;
pub mod kafka_properties;
mod paging;
pub mod rebuild;
pub mod registry;
pub mod retention;
pub mod runtime;
mod schema;
pub mod sessions;
mod snapshot;
mod sql;
pub mod store;
mod swap;
mod tables;
pub mod views;
mod write;
mod write_postgres;
mod write_sqlite;

pub use directory::{ClientEntry, Directory, DirectorySnapshots, DirectoryTask, StartReport};
pub use error::{ProjectionError, ReadError, WaitTimeout};
pub use kafka::{KafkaPublisher, KafkaSettings, PublisherLease, PublisherStatus, TopicCategory};
pub use kafka_properties::KafkaProperties;
pub use rebuild::{RebuildStats, rebuild, rebuild_in_batches};
pub use registry::{CatalogEntry, EntitlementEntry, Registry, RegistryTask, TenantProducts};
pub use retention::{AuditRetention, RetentionTask};
pub use runtime::ProjectionRuntime;
pub use sessions::{SessionDirectory, SessionDirectoryTask, SessionEntry, UnrecordedUse};
pub use store::ReadStore;
pub use tables::credentials::{CredentialView, app_name, failure_name, kind_name};
pub use tables::emails::{EmailStatus, EmailView};
pub use tables::vault_secrets::VaultSecretView;
pub use tables::{Checkpoints, Projection};
pub use views::{
    ApiKeyView, AuditFilter, AuditRow, AuditView, InvitationFilter, InvitationView, Page,
    PendingCancellation, SigningKeyStatus, SigningKeyView, TenantFilter, TenantView, UserFilter,
    UserView,
};
pub use views::{MfaView, PasskeyView, TotpStatus, WebauthnPolicyView};
