//! Compliance tooling over the event log. Everything here reads the log and never writes to it.
//!
//! # Layout
//! - [`cli`]: the `tessera-replay` command line (the binary's `main` calls [`cli::main`]).
//! - [`verify`]: the pure verifier of hash links, the global chain and signed checkpoints, and
//!   [`verify::verify_log`], which streams a whole log through it.
//! - [`source`]: opening the log read-only, moments ([`source::Bound`]), tenants by id or slug,
//!   and the paged scan every tool uses.
//! - [`asof`]: [`asof::TenantSnapshot`], the pure fold of one tenant as of a moment.
//! - [`people`]: the users of a snapshot, their personal fields opened through the key table
//!   while their key exists (`erased` after).
//! - [`diff`]: what changed between two snapshots.
//! - [`history`]: the timeline of a tenant's events with one-line summaries.
//! - [`export`]: the evidence export (JSON Lines or CSV) with everything needed to re-verify
//!   each event's hash.

pub mod asof;
pub mod cli;
pub mod diff;
pub mod export;
pub mod history;
pub mod people;
pub mod source;
pub mod verify;
