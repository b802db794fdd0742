//! Helpers for tests, here and in other crates: an [`Envelope`](crate::Envelope) builder and a
//! finder of the secret- and personal-typed values in a payload.
//!
//! Compiled for this crate's own tests and, elsewhere, only with the `testing` feature, which
//! other crates enable from their dev-dependencies: none of it is production API.

mod envelope;
mod recorder;

pub use envelope::EnvelopeBuilder;
pub use recorder::{SensitiveValue, remove_sensitive, sensitive_values};
