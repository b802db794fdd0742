//! Writes through every node at once, and a node killed under load.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Client, Cluster, access_token, introspect, tenant_with_client};
use crate::helpers::{ADMIN_KEY, eventually, read_log};

/// 60 API keys issued through three nodes at once (20 each) are all there, on every node;
/// nine attempts at one tenant slug through three nodes at once create exactly one tenant; and
/// the log has no gap in its positions nor in any stream's versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admin_writes_through_all_nodes_lose_no_update_and_leave_no_gap() {
    let cluster = Cluster::start(&[]).await;
    let tenant = tenant_with_client(cluster.node(0), "nodes-writes").await;
    let mut tasks = Vec::new();
    for n in 0..60 {
        let node = cluster.node(n);
        let request = node
            .admin(
                Method::POST,
                &format!("/v1/tenants/{}/api-keys", tenant.tenant_id),
            )
            .json(&json!({"name": format!("key-{n}"), "scopes": ["tenant:admin"]}));
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["api_key"]["id"].as_str().unwrap().to_owned()
        }));
    }
    let mut slug_attempts = Vec::new();
    for n in 0..9 {
        let request = cluster
            .node(n)
            .admin(Method::POST, "/v1/tenants")
            .json(&json!({"slug": "nodes-one-slug", "name": format!("Claimant {n}")}));
        slug_attempts.push(tokio::spawn(async move {
            request.send().await.unwrap().status()
        }));
    }
    let mut key_ids = BTreeSet::new();
    for task in tasks {
        key_ids.insert(task.await.unwrap());
    }
    assert_eq!(key_ids.len(), 60);
    let mut statuses = BTreeMap::new();
    for attempt in slug_attempts {
        *statuses.entry(attempt.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&StatusCode::CREATED), Some(&1), "{statuses:?}");
    assert_eq!(
        statuses.get(&StatusCode::CONFLICT),
        Some(&8),
        "{statuses:?}"
    );

    // Every node has every key.
    for node in &cluster.nodes {
        for key in &key_ids {
            let path = format!("/v1/tenants/{}/api-keys/{key}", tenant.tenant_id);
            let found = eventually(Duration::from_secs(5), || async {
                node.send(node.admin(Method::GET, &path)).await.0 == StatusCode::OK
            })
            .await;
            assert!(found, "{} lacks key {key}", node.base);
        }
    }

    // The log: positions 1..=head with no gap, each stream's versions 1..=n, 60 keys issued.
    let events = read_log(cluster.node(0)).await;
    let positions: Vec<u64> = events.iter().map(|e| e.envelope.global_position).collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(positions, expected, "the log's positions have a gap");
    let mut versions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for event in &events {
        versions
            .entry(event.envelope.stream_id.as_str())
            .or_default()
            .push(event.envelope.stream_version);
    }
    for (stream, versions) in versions {
        let dense: Vec<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(versions, dense, "stream {stream} has a gap");
    }
    let issued = events
        .iter()
        .filter(|e| {
            e.envelope.event_type == "api_key.issued"
                && e.envelope.tenant_id.to_string() == tenant.tenant_id
        })
        .count();
    assert_eq!(issued, 60);
    let slugs = events
        .iter()
        .filter(|e| e.envelope.event_type == "tenant.created")
        .count();
    // The system tenant, the test's tenant and the one slug's winner.
    assert_eq!(slugs, 3);
}

/// Load on all three nodes (tokens issued on one and introspected on another, a client
/// registered now and then); node 2 is killed with SIGKILL in the middle, and nodes 0 and 1
/// answer every request meanwhile. Node 2 restarts, catches up, and knows the clients and
/// tokens written while it was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_under_load_leaves_the_others_serving_and_rejoins_caught_up() {
    let mut cluster = Cluster::start(&[]).await;
    let resource_server = tenant_with_client(cluster.node(0), "nodes-kill").await;
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let registered = Arc::new(std::sync::Mutex::new(Vec::<(Client, String)>::new()));
    let mut load = Vec::new();
    for survivor in [0, 1] {
        let issuer = Node::of(cluster.node(survivor));
        let other = Node::of(cluster.node(survivor + 1));
        let (stop, failures, served) = (stop.clone(), failures.clone(), served.clone());
        let (resource_server, registered) = (resource_server.clone(), registered.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let ok = if n % 10 == 0 {
                    match issuer.register(&resource_server).await {
                        Some(client) => {
                            let token = issuer.token(&client).await;
                            let ok = token.is_some();
                            if let Some(token) = token {
                                registered.lock().unwrap().push((client, token));
                            }
                            ok
                        }
                        None => false,
                    }
                } else {
                    match issuer.token(&resource_server).await {
                        // Node 0's tokens are introspected on node 1, which must say active;
                        // node 1's on node 2, which may be down: not counted.
                        Some(token) => {
                            let active = other.active(&resource_server, &token).await;
                            survivor == 1 || active == Some(true)
                        }
                        None => false,
                    }
                };
                if ok {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.nodes[2].kill9();
    let served_before = served.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        served.load(Ordering::Relaxed) > served_before,
        "nodes 0 and 1 stopped serving"
    );
    cluster.nodes[2].start().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "nodes 0 and 1 failed requests while node 2 was down"
    );
    let registered = registered.lock().unwrap().clone();
    assert!(
        registered.len() >= 3,
        "too little load: {}",
        registered.len()
    );
    let rejoined = cluster.node(2);
    for (client, token) in &registered {
        let answer = introspect(rejoined, client, token).await;
        assert_eq!(answer["active"], true, "{answer}");
    }
    let access = access_token(rejoined, &resource_server).await;
    assert_eq!(
        introspect(cluster.node(0), &resource_server, &access).await["active"],
        true
    );
    let head = cluster.node(0).log_head().await;
    let caught_up = eventually(Duration::from_secs(10), || async {
        rejoined.log_head().await >= head && projection_lag(rejoined).await == Some(0)
    })
    .await;
    assert!(caught_up, "node 2 did not catch up with the log");
    eprintln!(
        "{} requests served by nodes 0 and 1 across node 2's death and return",
        served.load(Ordering::Relaxed)
    );
}

/// `tessera_projection_lag_events` of `node`.
async fn projection_lag(node: &crate::helpers::TestServer) -> Option<u64> {
    node.metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix("tessera_projection_lag_events "))
        .and_then(|value| value.trim().parse().ok())
}

/// What a load task needs of a node: its address (the node itself stays with the cluster,
/// which kills and restarts it).
#[derive(Clone)]
struct Node {
    base: String,
    http: reqwest::Client,
}

impl Node {
    fn of(server: &crate::helpers::TestServer) -> Self {
        Self {
            base: server.base.clone(),
            http: server.client.clone(),
        }
    }

    async fn token(&self, client: &Client) -> Option<String> {
        let response = self
            .http
            .post(format!("{}/t/{}/oauth/token", self.base, client.slug))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "read")])
            .send()
            .await
            .ok()?;
        if response.status() != StatusCode::OK {
            return None;
        }
        let body: serde_json::Value = response.json().await.ok()?;
        Some(body["access_token"].as_str()?.to_owned())
    }

    /// Whether `token` introspects active, `caller` authenticating; `None` when the node does
    /// not answer.
    async fn active(&self, caller: &Client, token: &str) -> Option<bool> {
        let response = self
            .http
            .post(format!("{}/t/{}/oauth/introspect", self.base, caller.slug))
            .basic_auth(&caller.id, Some(&caller.secret))
            .form(&[("token", token)])
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = response.json().await.ok()?;
        body["active"].as_bool()
    }

    async fn register(&self, like: &Client) -> Option<Client> {
        let response = self
            .http
            .post(format!(
                "{}/v1/tenants/{}/clients",
                self.base, like.tenant_id
            ))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"name": "machine", "allowed_scopes": ["read"]}))
            .send()
            .await
            .ok()?;
        if response.status() != StatusCode::CREATED {
            return None;
        }
        let created: serde_json::Value = response.json().await.ok()?;
        Some(Client {
            tenant_id: like.tenant_id.clone(),
            slug: like.slug.clone(),
            id: created["client"]["client_id"].as_str()?.to_owned(),
            secret: created["client_secret"].as_str()?.to_owned(),
        })
    }
}

/// What an administrator creates through one node reads back through the next at once, with
/// no retry on the caller's side: a tenant, a client and an API key, twenty times each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_an_administrator_creates_through_one_node_reads_back_through_another_at_once() {
    let cluster = Cluster::start(&[]).await;
    for n in 0..20 {
        let (writer, reader) = (cluster.node(n), cluster.node(n + 1));
        let tenant = writer.create_tenant(&format!("nodes-read-{n}")).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let client = super::register_client(writer, &tenant, &format!("nodes-read-{n}")).await;
        let key = writer
            .create_api_key(
                &tenant,
                json!({"name": "reader", "scopes": ["tenant:admin"]}),
            )
            .await["api_key"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for path in [
            format!("/v1/tenants/{tenant}"),
            format!("/v1/tenants/{tenant}/clients/{}", client.id),
            format!("/v1/tenants/{tenant}/api-keys/{key}"),
        ] {
            let (status, body) = reader.send(reader.admin(Method::GET, &path)).await;
            assert_eq!(status, StatusCode::OK, "try {n}, {path}: {body}");
        }
    }
}
