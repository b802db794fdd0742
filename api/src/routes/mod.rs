//! HTTP routes, one module per resource. Each handler's doc names the permission it needs, and
//! the permission check is its first statement.

pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod health;
pub mod tenants;
