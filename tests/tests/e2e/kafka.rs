//! The Kafka audit topics, against a real Kafka-protocol broker (tansu) and real rdkafka
//! consumers in a consumer group: every event of the log arrives exactly once after
//! deduplication on the CloudEvent id, in order per tenant, through a broker outage and
//! through `kill -9` of the server.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_test_support::kafka::Broker;

use crate::helpers::{Store, TestServer, eventually, read_log, spawn_app_with_env};

pub(crate) const ALL: &str = "tessera.audit.v1";
const OAUTH: &str = "tessera.audit.oauth.v1";
pub(crate) const SECURITY: &str = "tessera.audit.security.v1";

/// One message as a consumer received it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) topic: String,
    key: String,
    pub(crate) cloud_event: Value,
}

impl Received {
    fn id(&self) -> String {
        self.cloud_event["id"].as_str().unwrap().to_owned()
    }

    pub(crate) fn position(&self) -> u64 {
        self.cloud_event["position"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// A consumer in a consumer group, collecting everything it receives in the background.
pub(crate) struct GroupConsumer {
    received: Arc<Mutex<Vec<Received>>>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl GroupConsumer {
    pub(crate) fn start(brokers: &str, group: &str, topics: &[&str]) -> Self {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "200")
            // A topic the publisher has not created yet is waited for, not an error.
            .set("allow.auto.create.topics", "false")
            .set("topic.metadata.refresh.interval.ms", "500")
            .create()
            .expect("creating the consumer");
        consumer.subscribe(topics).expect("subscribing");
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = received.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    next = consumer.recv() => next,
                    _ = &mut stopped => break,
                };
                // Errors (a broker going away, a topic not there yet) are retried by
                // librdkafka; the consumer simply keeps polling.
                let Ok(message) = next else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let cloud_event: Value =
                    serde_json::from_slice(message.payload().expect("a message value"))
                        .expect("the value is JSON");
                let key = String::from_utf8(message.key().expect("a message key").to_vec())
                    .expect("the key is UTF-8");
                sink.lock().unwrap().push(Received {
                    topic: message.topic().to_owned(),
                    key,
                    cloud_event,
                });
            }
            // Closing leaves the group, which waits for the coordinator: off the runtime's
            // workers, and while the broker is still there.
            tokio::task::spawn_blocking(move || drop(consumer))
                .await
                .unwrap();
        });
        Self {
            received,
            stop,
            task,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub(crate) fn positions(&self, topic: &str) -> BTreeSet<u64> {
        self.received()
            .iter()
            .filter(|r| r.topic == topic)
            .map(Received::position)
            .collect()
    }

    /// Leaves the group and returns everything received.
    pub(crate) async fn stop(self) -> Vec<Received> {
        let _ = self.stop.send(());
        self.task.await.unwrap();
        self.received.lock().unwrap().clone()
    }
}

async fn kafka_app(store: Store, broker: &Broker) -> TestServer {
    spawn_app_with_env(
        store,
        &[
            ("TESSERA_KAFKA_BROKERS", broker.bootstrap_servers().as_str()),
            ("TESSERA_KAFKA_PARTITIONS", "3"),
            // Fail over to a fresh producer quickly when a broker loses its state.
            ("TESSERA_KAFKA_DELIVERY_TIMEOUT_MS", "5000"),
            (
                "TESSERA_LOG",
                "warn,tessera_projections=debug,librdkafka=info",
            ),
        ],
    )
    .await
}

/// Builds a history for `tenants` tenants concurrently, so that tenants interleave in the
/// log: create, rename, an API key, an OAuth client, a token, and its revocation.
async fn workload(app: &TestServer, tag: &str, tenants: usize) {
    let mut tasks = Vec::new();
    for i in 0..tenants {
        let client = app.client.clone();
        let base = app.base.clone();
        let slug = format!("{tag}-{i}");
        tasks.push(tokio::spawn(async move {
            let admin = |method: Method, path: String| {
                client
                    .request(method, format!("{base}{path}"))
                    .bearer_auth(crate::helpers::ADMIN_KEY)
            };
            let tenant: Value = expect(
                admin(Method::POST, "/v1/tenants".into())
                    .json(&json!({"slug": slug, "name": "Kafka"})),
                StatusCode::CREATED,
            )
            .await;
            let id = tenant["id"].as_str().unwrap().to_owned();
            expect(
                admin(Method::PATCH, format!("/v1/tenants/{id}"))
                    .json(&json!({"name": "Kafka renamed"})),
                StatusCode::OK,
            )
            .await;
            expect(
                admin(Method::POST, format!("/v1/tenants/{id}/api-keys"))
                    .json(&json!({"name": "ci", "scopes": ["tenant:admin"]})),
                StatusCode::CREATED,
            )
            .await;
            let registered = expect(
                admin(Method::POST, format!("/v1/tenants/{id}/clients"))
                    .json(&json!({"name": "svc", "allowed_scopes": ["read"]})),
                StatusCode::CREATED,
            )
            .await;
            let client_id = registered["client"]["client_id"].as_str().unwrap();
            let secret = registered["client_secret"].as_str().unwrap();
            let token = expect(
                client
                    .post(format!("{base}/t/{slug}/oauth/token"))
                    .basic_auth(client_id, Some(secret))
                    .form(&[("grant_type", "client_credentials"), ("scope", "read")]),
                StatusCode::OK,
            )
            .await;
            expect(
                client
                    .post(format!("{base}/t/{slug}/oauth/revoke"))
                    .basic_auth(client_id, Some(secret))
                    .form(&[("token", token["access_token"].as_str().unwrap())]),
                StatusCode::OK,
            )
            .await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn expect(request: reqwest::RequestBuilder, status: StatusCode) -> Value {
    let response = request.send().await.unwrap();
    let actual = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    assert_eq!(actual, status, "{body}");
    body
}

/// The server's `/readyz` Kafka detail.
async fn kafka_readiness(app: &TestServer) -> Value {
    let (status, body) = app
        .send(
            app.request(Method::GET, "/readyz", None)
                .timeout(Duration::from_secs(10)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["kafka"].clone()
}

/// Positions on the all-events topic that `consumer` or the group's earlier consumers
/// (`others`) received.
fn seen_by_group(consumer: &GroupConsumer, others: &[Received]) -> BTreeSet<u64> {
    let mut seen = consumer.positions(ALL);
    seen.extend(
        others
            .iter()
            .filter(|r| r.topic == ALL)
            .map(Received::position),
    );
    seen
}

/// Waits until the publisher reports no lag and `consumer` holds every position up to the
/// log head on the all-events topic.
async fn wait_until_consumed(app: &TestServer, consumer: &GroupConsumer, others: &[Received]) {
    let head = app.log_head().await;
    let published = eventually(Duration::from_secs(60), || async {
        kafka_readiness(app).await["lag"] == json!(0)
    })
    .await;
    assert!(published, "publisher lag: {}", kafka_readiness(app).await);
    let consumed = eventually(Duration::from_secs(60), || async {
        let seen = seen_by_group(consumer, others);
        (1..=head).all(|p| seen.contains(&p))
    })
    .await;
    assert!(
        consumed,
        "the group is missing positions up to {head}: has {} distinct",
        seen_by_group(consumer, others).len()
    );
}

/// Stops the server and returns its whole log once `consumer` (with `others`, what earlier
/// consumers of the group received) has caught up with it: a clean stop itself appends (the
/// API key usage flush) and publishes those last events on the way out.
async fn stop_and_drain(
    app: &mut TestServer,
    consumer: &GroupConsumer,
    others: &[Received],
) -> Vec<tessera_event_schemas::RecordedEvent> {
    app.stop().await;
    let log = read_log(app).await;
    let caught_up = eventually(Duration::from_secs(30), || async {
        let seen = seen_by_group(consumer, others);
        log.iter()
            .all(|e| seen.contains(&e.envelope.global_position))
    })
    .await;
    assert!(
        caught_up || log.is_empty(),
        "the consumer never caught up with the log"
    );
    log
}

/// The central check: over everything the group received on `tessera.audit.v1`, each event of
/// the log exactly once after deduplication on the id, with its position, tenant key and
/// type, nothing that is not in the log, and each tenant's events in log order.
fn assert_exactly_the_log(received: &[Received], log: &[tessera_event_schemas::RecordedEvent]) {
    let by_id: HashMap<String, &tessera_event_schemas::RecordedEvent> = log
        .iter()
        .map(|e| (e.envelope.event_id.to_string(), e))
        .collect();
    let mut first_seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut distinct = BTreeSet::new();
    for message in received.iter().filter(|r| r.topic == ALL) {
        let id = message.id();
        let recorded = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("received an event that is not in the log: {id}"));
        let envelope = &recorded.envelope;
        assert_eq!(message.position(), envelope.global_position);
        assert_eq!(message.key, envelope.tenant_id.to_string());
        assert_eq!(
            message.cloud_event["type"],
            format!("io.tessera.{}", envelope.event_type)
        );
        if distinct.insert(id) {
            first_seen
                .entry(message.key.clone())
                .or_default()
                .push(envelope.global_position);
        }
    }
    let missing: Vec<u64> = log
        .iter()
        .filter(|e| !distinct.contains(&e.envelope.event_id.to_string()))
        .map(|e| e.envelope.global_position)
        .collect();
    assert!(missing.is_empty(), "never delivered: positions {missing:?}");
    assert_eq!(distinct.len(), log.len());
    for (tenant, positions) in first_seen {
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "tenant {tenant} received out of order: {positions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_group_receives_every_event_once_in_tenant_order_as_cloudevents() {
    let broker = Broker::start();
    let mut app = kafka_app(Store::Embedded, &broker).await;
    let consumer = GroupConsumer::start(
        &broker.bootstrap_servers(),
        "auditors",
        &[ALL, OAUTH, SECURITY],
    );
    workload(&app, "kafka", 6).await;
    wait_until_consumed(&app, &consumer, &[]).await;

    let readiness = kafka_readiness(&app).await;
    assert_eq!(readiness["published_position"], json!(app.log_head().await));
    assert!(readiness["last_error"].is_null(), "{readiness}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("\ntessera_kafka_publisher_lag_events 0\n"),
        "{metrics}"
    );

    let log = stop_and_drain(&mut app, &consumer, &[]).await;
    let positions_of = |wanted: &dyn Fn(&str) -> bool| -> BTreeSet<u64> {
        log.iter()
            .filter(|e| wanted(&e.envelope.event_type))
            .map(|e| e.envelope.global_position)
            .collect()
    };
    let oauth = positions_of(&|t| t.starts_with("oauth_client.") || t.starts_with("token."));
    let security = positions_of(&|t| {
        t.starts_with("api_key.")
            || t.starts_with("tenant.signing_key_")
            || matches!(
                t,
                "tenant.suspended"
                    | "tenant.reactivated"
                    | "tenant.frozen"
                    | "oauth_client.secret_regenerated"
                    | "oauth_client.deactivated"
                    | "token.revoked"
            )
    });
    assert!(!oauth.is_empty() && !security.is_empty());
    // Category topics fill alongside the main one; give them the same chance to be read.
    for (topic, expected) in [(OAUTH, &oauth), (SECURITY, &security)] {
        let filled = eventually(Duration::from_secs(30), || async {
            expected.is_subset(&consumer.positions(topic))
        })
        .await;
        assert!(filled, "{topic} is missing events");
        assert_eq!(&consumer.positions(topic), expected, "{topic}");
    }

    let received = consumer.stop().await;
    assert_exactly_the_log(&received, &log);
    for message in received.iter().filter(|r| r.topic == ALL) {
        let ce = &message.cloud_event;
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["datacontenttype"], "application/json");
        assert!(
            ce["source"]
                .as_str()
                .unwrap()
                .starts_with("urn:tessera:tenant:")
        );
        assert!(ce["subject"].is_string() && ce["time"].is_string());
        assert!(ce["streamversion"].as_str().unwrap().parse::<u64>().is_ok());
        assert!(ce["data"].is_object());
        let text = ce.to_string();
        for secret in ["sealed_private_key", "secret_hash", "token_hash"] {
            assert!(!text.contains(secret), "{secret} published: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_loses_nothing_and_publishing_resumes_by_itself() {
    let mut broker = Broker::start();
    let mut app = kafka_app(Store::Embedded, &broker).await;
    let first = GroupConsumer::start(&broker.bootstrap_servers(), "auditors", &[ALL]);
    workload(&app, "before", 4).await;
    wait_until_consumed(&app, &first, &[]).await;
    let before_outage = first.stop().await;

    // The broker dies, and the server keeps serving while it is gone.
    broker.stop();
    let down_since = Instant::now();
    workload(&app, "during", 4).await;
    let stalled = kafka_readiness(&app).await;
    assert!(stalled["lag"].as_u64().unwrap() > 0, "{stalled}");
    // Long enough for deliveries to time out and the producer to be replaced at least once.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(down_since.elapsed())).await;
    assert!(kafka_readiness(&app).await["last_error"].is_string());

    // A new, empty broker on the same address (memory storage: a single node that lost its
    // disk), and the group's consumers start over on it.
    broker.start_again();
    let second = GroupConsumer::start(&broker.bootstrap_servers(), "auditors", &[ALL]);
    workload(&app, "after", 4).await;
    wait_until_consumed(&app, &second, &before_outage).await;

    let log = stop_and_drain(&mut app, &second, &before_outage).await;
    let mut received = before_outage;
    received.extend(second.stop().await);
    assert_exactly_the_log(&received, &log);
}

/// Writers that create tenants until told to stop (or the server goes away); returns how
/// many writes were acknowledged.
fn start_writers(
    app: &TestServer,
    tag: &str,
    count: usize,
) -> (
    tokio::sync::watch::Sender<bool>,
    Vec<tokio::task::JoinHandle<usize>>,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writers = (0..count)
        .map(|w| {
            let client = app.client.clone();
            let base = app.base.clone();
            let tag = tag.to_owned();
            let stopped = stopped.clone();
            tokio::spawn(async move {
                let mut acknowledged = 0;
                for i in 0.. {
                    if *stopped.borrow() {
                        break;
                    }
                    let sent = client
                        .post(format!("{base}/v1/tenants"))
                        .bearer_auth(crate::helpers::ADMIN_KEY)
                        .json(&json!({"slug": format!("{tag}-{w}-{i}"), "name": "writer"}))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().is_success() => acknowledged += 1,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    (stop, writers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_frozen_mid_stream_loses_nothing() {
    let broker = Broker::start();
    let mut app = kafka_app(Store::Embedded, &broker).await;
    let consumer = GroupConsumer::start(&broker.bootstrap_servers(), "auditors", &[ALL]);
    let (stop, writers) = start_writers(&app, "frozen", 3);
    let published = eventually(Duration::from_secs(30), || async {
        !consumer.positions(ALL).is_empty()
    })
    .await;
    assert!(published, "nothing published before the freeze");

    // Frozen while writers append and messages are in flight, for longer than the delivery
    // timeout, so the publisher gives up on its producer and starts over from the checkpoint.
    broker.pause();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let frozen = kafka_readiness(&app).await;
    broker.resume();
    assert!(frozen["lag"].as_u64().unwrap() > 0, "{frozen}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop.send(true);
    let mut acknowledged = 0;
    for writer in writers {
        acknowledged += writer.await.unwrap();
    }
    assert!(acknowledged > 50, "too few writes: {acknowledged}");

    wait_until_consumed(&app, &consumer, &[]).await;
    let log = stop_and_drain(&mut app, &consumer, &[]).await;
    assert_exactly_the_log(&consumer.stop().await, &log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_mid_stream_loses_nothing() {
    let broker = Broker::start();
    let mut app = kafka_app(Store::Embedded, &broker).await;
    let consumer = GroupConsumer::start(&broker.bootstrap_servers(), "auditors", &[ALL]);
    workload(&app, "warm", 2).await;

    // Writers keep appending while the server is killed under them.
    let (_writing, writers) = start_writers(&app, "kill", 4);
    // Three seconds: a tenant's creation makes an RSA key (its ID token key) too.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let before_kill = kafka_readiness(&app).await;
    app.kill9();
    for writer in writers {
        writer.await.unwrap();
    }

    app.start().await;
    // The restarted publisher resumes from its checkpoint, which is no further than what
    // had been acknowledged when the server died.
    let resumed = kafka_readiness(&app).await;
    assert!(
        resumed["published_position"].as_u64() >= before_kill["published_position"].as_u64(),
        "{before_kill} then {resumed}"
    );
    workload(&app, "restarted", 2).await;
    wait_until_consumed(&app, &consumer, &[]).await;
    let log = stop_and_drain(&mut app, &consumer, &[]).await;
    assert!(
        log.len() > 100,
        "the writers appended too little: {}",
        log.len()
    );
    assert_exactly_the_log(&consumer.stop().await, &log);
}
