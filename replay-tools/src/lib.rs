//! Compliance tooling over the event log. Everything here reads the log and never writes to it.
//!
//! # Layout
//! - [`verify`]: the pure verifier of hash links, the global chain and signed checkpoints, and
//!   [`verify::verify_log`], which streams a whole log through it.

pub mod verify;
