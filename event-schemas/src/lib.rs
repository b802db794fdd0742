//! Tessera's events and their envelope: the one vocabulary every other crate speaks.
//!
//! This crate owns what is written to the event log and therefore what must decode forever:
//! the versioned payload types (encoded with postcard), the envelope that wraps every stored
//! event, the canonical hash chain that makes tampering evident, and the JSON form (with a
//! JSON Schema per event type) that consumers outside Rust read.
//!
//! It is pure: no I/O, no clock, no randomness, and no other Tessera crate. Callers pass in
//! event ids and times.
//!
//! # Layout
//! - [`primitives`]: `Timestamp`, `Date`, `Hash32`, the small value types stored everywhere.
//! - [`envelope`]: `Envelope`, `RecordedEvent`, `ProposedEvent`, `EventMetadata`, `Actor`.
//! - [`streams`]: `StreamId`, the typed stream ids (spelled and parsed only there), and the
//!   system tenant id.
//! - [`events`]: the payload types, one module per aggregate, and the `Event` registry.
//! - [`hash`]: the canonical byte layout that event hashes, log links and checkpoints cover.
//! - [`json`]: the JSON form of a recorded event, its public (secret-free) data, and the JSON
//!   Schemas.
//! - [`cloudevents`]: the CloudEvents 1.0 form the Kafka audit topics carry.
//! - [`sensitive`]: `Secret<T>` and `Personal<T>`, the field types no public form carries.
//! - [`redact`]: serializing a value without its sensitive fields, straight to the output.
//! - `testing` (tests, and the `testing` feature only): an `Envelope` builder and a finder of
//!   sensitive values, for tests here and in other crates.

pub mod cloudevents;
pub mod envelope;
pub mod events;
pub mod hash;
pub mod json;
pub mod primitives;
pub mod redact;
pub mod sensitive;
pub mod streams;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use envelope::{Actor, ActorKind, Envelope, EventMetadata, ProposedEvent, RecordedEvent};
pub use events::{DecodeError, Event};
pub use primitives::{Date, Hash32, Timestamp};
pub use sensitive::{Personal, Secret};
pub use streams::{SYSTEM_TENANT_ID, StreamId};
