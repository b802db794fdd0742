//! Nodes that agree (issue 22): three `tessera serve` processes on one PostgreSQL database,
//! as production runs them behind a load balancer.
//!
//! - [`agree`]: a token, a client or a signing key written through one node is known on every
//!   other node at once (the first request, with no retry), and what takes something away
//!   (revocation, secret regeneration, deactivation, suspension, key retirement) reaches every
//!   node within 50 ms at p99.
//! - [`writes`]: concurrent admin writes through all nodes lose nothing and leave no gap in
//!   the log; `kill -9` of one node under load leaves the others serving, and the killed node
//!   restarts and catches up.
//! - [`publisher`]: one Kafka publisher at a time, and a failover with no gap.

mod agree;
mod publisher;
mod writes;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, spawn_app_with_env};

/// Three nodes on one database. The first owns the database, so the others are stopped
/// before it.
pub struct Cluster {
    pub nodes: Vec<TestServer>,
}

impl Cluster {
    pub async fn start(env: &[(&str, &str)]) -> Cluster {
        let first = spawn_app_with_env(Store::Postgres, env).await;
        let second = first.spawn_node(env).await;
        let third = first.spawn_node(env).await;
        Cluster {
            nodes: vec![first, second, third],
        }
    }

    pub fn node(&self, n: usize) -> &TestServer {
        &self.nodes[n % self.nodes.len()]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        while let Some(node) = self.nodes.pop() {
            drop(node);
        }
    }
}

/// A confidential client of a tenant: what a resource server or a machine holds.
#[derive(Clone, Debug)]
pub struct Client {
    pub tenant_id: String,
    pub slug: String,
    pub id: String,
    pub secret: String,
}

/// Registers a `client_credentials` client allowed `read` through `node`.
pub async fn register_client(node: &TestServer, tenant_id: &str, slug: &str) -> Client {
    let (status, created) = node
        .send(
            node.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/clients"))
                .json(&json!({"name": "machine", "allowed_scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    Client {
        tenant_id: tenant_id.to_owned(),
        slug: slug.to_owned(),
        id: created["client"]["client_id"].as_str().unwrap().to_owned(),
        secret: created["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// A tenant created through `node` and a client of it.
pub async fn tenant_with_client(node: &TestServer, slug: &str) -> Client {
    let (tenant_id, id, secret) = node.tenant_and_client(slug).await;
    Client {
        tenant_id,
        slug: slug.to_owned(),
        id,
        secret,
    }
}

/// A client-credentials grant on `node`: the status and the body.
pub async fn token(node: &TestServer, client: &Client) -> (StatusCode, Value) {
    node.send(
        node.request(
            Method::POST,
            &format!("/t/{}/oauth/token", client.slug),
            None,
        )
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")]),
    )
    .await
}

/// An access token issued to `client` by `node`.
pub async fn access_token(node: &TestServer, client: &Client) -> String {
    let (status, body) = token(node, client).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// `node`'s introspection of `access_token`, `caller` authenticating.
pub async fn introspect(node: &TestServer, caller: &Client, access_token: &str) -> Value {
    let (status, body) = node
        .send(
            node.request(
                Method::POST,
                &format!("/t/{}/oauth/introspect", caller.slug),
                None,
            )
            .basic_auth(&caller.id, Some(&caller.secret))
            .form(&[("token", access_token)]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The `p`th percentile (0 to 100) of `samples`, by nearest rank.
pub fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}
