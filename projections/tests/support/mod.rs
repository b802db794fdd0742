//! Helpers shared by the integration tests and the catch-up benchmark.

pub mod workload;
