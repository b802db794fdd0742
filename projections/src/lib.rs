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
//! - [`views`]: the row types queries return (`TenantView`, `SigningKeyView`, `ApiKeyView`).
//! - [`audit`]: the audit trail's rows (one per event, secrets redacted).
//! - [`reduce`]: pure reducers and the in-memory batch fold, tested without a database.
//! - [`store`]: `ReadStore`: connection, schema, queries, canonical snapshot.
//! - `write`: applies one batch (load, fold, upsert, checkpoint) in one transaction: the
//!   steps, statements and row encodings both backends share.
//! - `write_sqlite`: its writer for SQLite read models, on a rusqlite connection.
//! - `write_postgres`: its writer for PostgreSQL read models, on a native sqlx pool (`COPY`
//!   for a rebuild's audit rows).
//! - [`runtime`]: `ProjectionRuntime`, the live projector with `wait_for`.
//! - [`rebuild`]: drop and replay everything, offline.
//! - [`directory`]: the in-memory OAuth directory (tenants by slug, clients, issued and
//!   revoked tokens) that the authorization server's hot paths read.
//! - [`kafka`]: the Kafka audit publisher (CloudEvents on `tessera.audit.v1` and per-category
//!   topics), checkpointed after the broker acknowledges.
//! - [`error`]: `ReadError`, `ProjectionError`, `WaitTimeout`.

pub mod audit;
pub mod directory;
pub mod error;
pub mod kafka;
pub mod rebuild;
pub mod reduce;
pub mod runtime;
pub mod store;
mod swap;
pub mod views;
mod write;
mod write_postgres;
mod write_sqlite;

pub use directory::{ClientEntry, Directory, DirectoryTask, IssuedToken};
pub use error::{ProjectionError, ReadError, WaitTimeout};
pub use kafka::{KafkaPublisher, KafkaSettings, PublisherStatus, TopicCategory};
pub use rebuild::{RebuildStats, rebuild, rebuild_in_batches};
pub use reduce::{Checkpoints, Projection};
pub use runtime::ProjectionRuntime;
pub use store::ReadStore;
pub use views::{
    ApiKeyView, AuditFilter, AuditRow, AuditView, Page, PendingCancellation, SigningKeyStatus,
    SigningKeyView, TenantFilter, TenantView,
};
