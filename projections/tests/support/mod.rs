//! Helpers shared by the integration tests and the catch-up benchmark.

pub mod backend;
pub mod workload;
