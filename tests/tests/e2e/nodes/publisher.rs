//! One Kafka publisher at a time across nodes, and its failover with no gap.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tessera_test_support::kafka::Broker;

use super::{Cluster, access_token, register_client, tenant_with_client};
use crate::helpers::{ADMIN_KEY, TestServer, eventually};
use crate::kafka::{ALL, GroupConsumer};

/// Which nodes say they publish (`/readyz`'s `kafka.publishing`); `None` for a node that did
/// not answer.
async fn publishers(nodes: &[&TestServer]) -> Vec<Option<bool>> {
    let mut seen = Vec::new();
    for node in nodes {
        let (_, body) = node.send(node.request(Method::GET, "/readyz", None)).await;
        seen.push(body["kafka"]["publishing"].as_bool());
    }
    seen
}

/// Waits until exactly one of `nodes` publishes, checking on the way that never two do;
/// returns its index.
async fn the_one_publisher(nodes: &[&TestServer]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = publishers(nodes).await;
        let publishing: Vec<usize> = (0..seen.len()).filter(|n| seen[*n] == Some(true)).collect();
        assert!(publishing.len() <= 1, "two nodes publish at once: {seen:?}");
        if let [one] = publishing[..] {
            return one;
        }
        assert!(
            Instant::now() < deadline,
            "no node took the lease: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three nodes with Kafka configured: exactly one publishes. It is killed with SIGKILL while
/// the others take writes; another takes over within seconds, and the consumers receive every
/// position of the log, with duplicates (at least once) but no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_node_publishes_at_a_time_and_another_takes_over_with_no_gap_when_it_dies() {
    let broker = Broker::start();
    let brokers = broker.bootstrap_servers();
    let mut cluster = Cluster::start(&[
        ("TESSERA_KAFKA_BROKERS", brokers.as_str()),
        ("TESSERA_KAFKA_PARTITIONS", "3"),
        ("TESSERA_KAFKA_DELIVERY_TIMEOUT_MS", "5000"),
    ])
    .await;
    let consumer = GroupConsumer::start(&brokers, "nodes-auditors", &[ALL]);
    let all: Vec<&TestServer> = cluster.nodes.iter().collect();
    let leader = the_one_publisher(&all).await;
    let client = tenant_with_client(cluster.node(0), "nodes-kafka").await;
    for n in 0..9 {
        let node = cluster.node(n);
        let fresh = register_client(node, &client.tenant_id, &client.slug).await;
        access_token(node, &fresh).await;
    }

    // Writes through the two other nodes keep going while the publisher dies.
    let survivors: Vec<usize> = (0..3).filter(|n| *n != leader).collect();
    let writing = Arc::new(AtomicBool::new(true));
    let mut writers = Vec::new();
    for n in &survivors {
        let node = cluster.node(*n);
        let (http, base) = (node.client.clone(), node.base.clone());
        let (writing, tenant_id) = (writing.clone(), client.tenant_id.clone());
        writers.push(tokio::spawn(async move {
            let mut written = 0;
            while writing.load(Ordering::Relaxed) {
                let response = http
                    .post(format!("{base}/v1/tenants/{tenant_id}/clients"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"name": "machine", "allowed_scopes": ["read"]}))
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                written += 1;
            }
            written
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.nodes[leader].kill9();
    let killed = Instant::now();
    let remaining: Vec<&TestServer> = survivors.iter().map(|n| cluster.node(*n)).collect();
    let successor = survivors[the_one_publisher(&remaining).await];
    let takeover = killed.elapsed();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    writing.store(false, Ordering::Relaxed);
    let mut written = 0;
    for writer in writers {
        written += writer.await.unwrap();
    }
    assert!(written > 10, "too few writes under the failover: {written}");

    // Every position of the log reaches the consumers.
    let head = cluster.node(successor).log_head().await;
    let complete = eventually(Duration::from_secs(60), || async {
        consumer.positions(ALL).len() as u64 >= head
    })
    .await;
    let received = consumer.stop().await;
    // The consumer follows only the topic of every event.
    let positions: BTreeSet<u64> = received.iter().map(|r| r.position()).collect();
    let missing: Vec<u64> = (1..=head).filter(|p| !positions.contains(p)).collect();
    assert!(
        complete && missing.is_empty(),
        "missing positions: {missing:?}"
    );
    let copies = received.len();
    eprintln!(
        "the publisher on node {leader} died; node {successor} took over after {takeover:?}; \
         {head} events, {copies} messages on {ALL} ({} sent again)",
        copies as u64 - head
    );
    assert!(
        takeover < Duration::from_secs(10),
        "the takeover took {takeover:?}"
    );
}
