//! The Kafka audit publisher: every event of the log, as a CloudEvent, on Kafka topics.
//!
//! A publisher is a projection whose read model lives in a broker. It follows the log from its
//! checkpoint, sends each event to `tessera.audit.v1` (and to the per-category topics that are
//! enabled) keyed by tenant id, waits until the broker has acknowledged every message of the
//! batch, and only then advances its checkpoint. So delivery is at least once with no gaps:
//! - after a crash (even `kill -9`) it resumes at the checkpoint and re-sends what was sent
//!   but not yet checkpointed;
//! - during a broker outage librdkafka retries; a message that still fails (after
//!   `delivery_timeout`, or because the producer hit a fatal error) drops the producer, and a
//!   new one starts again at the checkpoint.
//!
//! The producer is idempotent (`enable.idempotence`: acks from all in-sync replicas, retries
//! without duplicates or reordering within a session), and the key is the tenant id, so a
//! tenant's events stay in log order within their partition. The re-sends above can still
//! duplicate across sessions: consumers deduplicate on the CloudEvent `id` (the event id).
//!
//! The checkpoint is kept in the read-model database but outside the `rm_` read models
//! ([`ReadStore::publisher_checkpoint`]), so rebuilding read models does not republish.
//!
//! With several nodes on one PostgreSQL database, one publishes at a time: the holder of a
//! [`PublisherLease`] (an advisory lock; see [`lease`]). The others stand by, following the
//! holder's checkpoint, and one of them takes over within about a second of the holder's
//! death, from that checkpoint.

mod lease;

pub use lease::PublisherLease;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryFuture, FutureProducer, FutureRecord};
use serde::Serialize;
use tessera_event_log::EventLog;
use tessera_event_schemas::RecordedEvent;
use tessera_event_schemas::cloudevents::CloudEvent;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ReadError;
use crate::kafka_properties::KafkaProperties;
use crate::store::ReadStore;

/// The topic that carries every event.
pub const DEFAULT_TOPIC: &str = "tessera.audit.v1";
/// Events read from the log per batch; a batch is acknowledged, then checkpointed, as a whole.
const READ_BATCH: usize = 2500;
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How long a stopping publisher waits for acknowledgements already under way.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A group of event types with a topic of its own, `tessera.audit.{name}.v1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicCategory {
    /// Tenant lifecycle, settings and signing keys (`tenant.*`, `reservation.*`), and the
    /// WebAuthn policy (`webauthn_policy.*`).
    Tenants,
    /// OAuth clients and tokens (`oauth_client.*`, `token.*`).
    OAuth,
    /// Credentials and access: API keys, signing-key rotation, suspension, client secrets,
    /// client deactivation, token revocation, users disabled, enabled, erased or given a
    /// password, second factors set up, removed or reset, the WebAuthn policy, and the
    /// credential vault (`vault.*`, `integration.*`, `integration_app.*`, `credential.*`,
    /// `connect.*`, `provider_key.*`).
    Security,
    /// Entries products appended through `POST /v1/audit` (`audit.*`).
    Products,
    /// The people of tenants (`user.*`, `sign_in.*`, `session.*`), their second factors
    /// (`mfa.*`), invitations (`invitation.*`) and the mail sent to them (`email.*`): ids,
    /// statuses, roles, reasons, times and time steps, never personal data or secrets.
    People,
}

impl TopicCategory {
    pub const ALL: [TopicCategory; 5] = [
        TopicCategory::Tenants,
        TopicCategory::OAuth,
        TopicCategory::Security,
        TopicCategory::Products,
        TopicCategory::People,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TopicCategory::Tenants => "tenants",
            TopicCategory::OAuth => "oauth",
            TopicCategory::Security => "security",
            TopicCategory::Products => "products",
            TopicCategory::People => "people",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name.trim())
    }

    pub fn topic(self) -> String {
        format!("tessera.audit.{}.v1", self.name())
    }

    /// Whether events of `event_type` go to this category's topic. An event can belong to
    /// several categories (a signing-key rotation is both a tenant and a security event).
    pub fn covers(self, event_type: &str) -> bool {
        match self {
            TopicCategory::Tenants => {
                event_type.starts_with("tenant.")
                    || event_type.starts_with("reservation.")
                    || event_type.starts_with("webauthn_policy.")
                    || event_type.starts_with("product.")
                    || event_type.starts_with("entitlement.")
                    || matches!(event_type, "federation.configured" | "federation.removed")
            }
            TopicCategory::OAuth => {
                event_type.starts_with("oauth_client.")
                    || event_type.starts_with("token.")
                    || event_type.starts_with("authorization_code.")
                    || event_type.starts_with("refresh_token.")
            }
            TopicCategory::Security => {
                event_type.starts_with("api_key.")
                    || VAULT_PREFIXES
                        .iter()
                        .any(|prefix| event_type.starts_with(prefix))
                    || event_type.starts_with("tenant.signing_key_")
                    || matches!(
                        event_type,
                        "tenant.suspended"
                            | "tenant.reactivated"
                            | "tenant.frozen"
                            | "oauth_client.secret_regenerated"
                            | "oauth_client.deactivated"
                            | "token.revoked"
                            | "user.disabled"
                            | "user.enabled"
                            | "user.password_set"
                            | "user.password_reset_requested"
                            | "user.erased"
                            | "sign_in.failed"
                            | "sign_in.unlocked"
                            | "session.ended"
                            | "mfa.totp_enrolled"
                            | "mfa.totp_removed"
                            | "mfa.recovery_codes_generated"
                            | "mfa.recovery_codes_revoked"
                            | "mfa.passkey_registered"
                            | "mfa.passkey_removed"
                            | "mfa.reset"
                            | "webauthn_policy.changed"
                            | "authorization_code.reused"
                            | "refresh_token.revoked"
                            | "consent.revoked"
                            | "federation.configured"
                            | "federation.removed"
                            | "federation.linked"
                            | "federation.refused"
                    )
            }
            TopicCategory::Products => event_type.starts_with("audit."),
            TopicCategory::People => {
                event_type.starts_with("user.")
                    || event_type.starts_with("sign_in.")
                    || event_type.starts_with("session.")
                    || event_type.starts_with("mfa.")
                    || event_type.starts_with("consent.")
                    || event_type.starts_with("invitation.")
                    || event_type.starts_with("email.")
                    || (event_type.starts_with("federation.")
                        && !matches!(event_type, "federation.configured" | "federation.removed"))
            }
        }
    }
}

/// The credential vault's event types (issue 20), all of them security events: keys, the
/// connections' lives (a `credential.needs_reauth` is how a service learns it must ask for a
/// new connection) and every access.
const VAULT_PREFIXES: [&str; 6] = [
    "vault.",
    "integration.",
    "integration_app.",
    "credential.",
    "connect.",
    "provider_key.",
];

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// `bootstrap.servers`: comma-separated `host:port`.
    pub brokers: String,
    /// The topic every event goes to.
    pub topic: String,
    /// Categories that also get a topic of their own.
    pub categories: Vec<TopicCategory>,
    /// Whether to create missing topics at start (with `partitions` and `replication_factor`).
    pub create_topics: bool,
    pub partitions: i32,
    pub replication_factor: i32,
    /// How long librdkafka keeps retrying a message before the publisher starts over from its
    /// checkpoint with a new producer.
    pub delivery_timeout: Duration,
    /// librdkafka properties passed through to every client (TLS, SASL, `client.id`, ...),
    /// already checked by [`KafkaProperties::validate`].
    pub properties: KafkaProperties,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: DEFAULT_TOPIC.to_owned(),
            categories: TopicCategory::ALL.to_vec(),
            create_topics: true,
            partitions: 6,
            replication_factor: 1,
            delivery_timeout: Duration::from_secs(30),
            properties: KafkaProperties::new(),
        }
    }

    /// Creates (and drops) a producer with the whole configuration, so that what librdkafka
    /// checks only across properties (a SASL mechanism it was not built with, a CA file that
    /// cannot be read) stops the server at start instead of failing every session.
    pub fn check_client(&self) -> Result<(), String> {
        let producer: BaseProducer = client_config(self).create().map_err(|error| {
            let mut message = error.to_string();
            for (name, value) in self.properties.iter() {
                if crate::kafka_properties::is_secret(name) && !value.is_empty() {
                    message = message.replace(value, "[redacted]");
                }
            }
            format!("the Kafka client configuration was refused: {message}")
        })?;
        drop(OffWorkers(Some(producer)));
        Ok(())
    }

    /// The checkpoint's name: one per main topic, so pointing Tessera at a new topic
    /// publishes the whole log there.
    pub fn checkpoint_name(&self) -> String {
        format!("kafka:{}", self.topic)
    }

    fn topics(&self) -> Vec<String> {
        let mut topics = vec![self.topic.clone()];
        topics.extend(self.categories.iter().map(|c| c.topic()));
        topics
    }
}

/// What `/readyz` and the metrics report about the publisher.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PublisherStatus {
    /// Every event up to this global position has been acknowledged by the broker.
    pub published_position: u64,
    /// Messages acknowledged since this process started (all topics).
    pub messages_published: u64,
    /// The latest error from the broker connection or a delivery, cleared by the next
    /// acknowledged batch.
    pub last_error: Option<String>,
    /// Whether this node publishes; `false` while another node holds the lease (then
    /// `published_position` is the holder's checkpoint, as last read).
    pub publishing: bool,
}

struct Shared {
    position: watch::Sender<u64>,
    messages: AtomicU64,
    publishing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }
}

/// librdkafka's logs and client errors, routed to `tracing` and the status.
struct PublisherContext {
    shared: Arc<Shared>,
}

impl ClientContext for PublisherContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka has already logged the cause through `log` above.
        tracing::debug!(%error, reason, "Kafka client error");
        self.shared.set_error(Some(format!("{error}: {reason}")));
    }
}

/// A running publisher. Dropping it stops the task at its next wait; `shutdown` also waits.
pub struct KafkaPublisher {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl KafkaPublisher {
    /// Starts publishing from the stored checkpoint, once it holds `lease` when there is one
    /// (several nodes on PostgreSQL). Fails only if the checkpoint cannot be read; an
    /// unreachable broker is retried in the background.
    pub async fn start(
        log: Arc<dyn EventLog>,
        store: ReadStore,
        settings: KafkaSettings,
        lease: Option<PublisherLease>,
    ) -> Result<Self, ReadError> {
        let from = store
            .publisher_checkpoint(&settings.checkpoint_name())
            .await?;
        let shared = Arc::new(Shared {
            position: watch::channel(from).0,
            messages: AtomicU64::new(0),
            publishing: AtomicBool::new(lease.is_none()),
            last_error: Mutex::new(None),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(log, store, settings, lease, shared.clone(), stop_rx));
        Ok(Self {
            shared,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn status(&self) -> PublisherStatus {
        PublisherStatus {
            published_position: *self.shared.position.borrow(),
            messages_published: self.shared.messages.load(Ordering::Relaxed),
            last_error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            publishing: self.shared.publishing.load(Ordering::Relaxed),
        }
    }

    /// Waits until everything up to `position` is acknowledged; false on timeout.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.shared.position.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position)).await,
            Ok(Ok(_))
        )
    }

    /// Stops publishing; acknowledgements already under way get a few seconds to arrive.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(Err(error)) = match task {
            Some(task) => Some(task.await),
            None => None,
        } {
            tracing::error!(%error, "Kafka publisher task failed");
        }
    }
}

/// Why a publishing session ended before it was asked to stop.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("creating topic {topic}: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("delivery failed: {0}")]
    Delivery(KafkaError),
    #[error("the producer dropped a message before delivery")]
    Canceled,
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] ReadError),
    #[error("undecodable event at position {position}: {error}")]
    Undecodable { position: u64, error: String },
    #[error("the publisher lease was lost: {0}")]
    LeaseLost(sqlx::Error),
}

async fn run(
    log: Arc<dyn EventLog>,
    store: ReadStore,
    settings: KafkaSettings,
    mut lease: Option<PublisherLease>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF_START;
    loop {
        if *stop.borrow() {
            return;
        }
        if let Some(lease) = &mut lease
            && !stand_by(lease, &store, &settings, &shared, &mut stop).await
        {
            return;
        }
        let published_before = *shared.position.borrow();
        match session(&log, &store, &settings, lease.as_mut(), &shared, &mut stop).await {
            Ok(()) => return,
            Err(SessionError::Undecodable { position, error }) => {
                // Publishing past it would leave a gap that no consumer could notice.
                tracing::error!(
                    position,
                    %error,
                    "undecodable event in the log: Kafka publishing stops before it until a \
                     build that understands it is deployed"
                );
                shared.set_error(Some(format!(
                    "undecodable event at position {position}: {error}"
                )));
                let _ = stop.wait_for(|s| *s).await;
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "Kafka publishing interrupted; resuming from the checkpoint");
                shared.set_error(Some(error.to_string()));
            }
        }
        if *shared.position.borrow() > published_before {
            backoff = BACKOFF_START;
        }
        let stopped = tokio::select! {
            _ = tokio::time::sleep(backoff) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if stopped {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Waits until this node holds `lease`, following the holder's checkpoint meanwhile; `false`
/// when asked to stop first.
async fn stand_by(
    lease: &mut PublisherLease,
    store: &ReadStore,
    settings: &KafkaSettings,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut told = false;
    loop {
        match lease.try_acquire().await {
            Ok(true) => {
                tracing::info!("this node holds the Kafka publisher lease and publishes");
                shared.publishing.store(true, Ordering::Relaxed);
                return true;
            }
            Ok(false) if !told => {
                tracing::info!("another node publishes to Kafka; this one stands by");
                told = true;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot take the Kafka publisher lease; trying again");
            }
        }
        shared.publishing.store(false, Ordering::Relaxed);
        if let Ok(position) = store
            .publisher_checkpoint(&settings.checkpoint_name())
            .await
        {
            shared.position.send_replace(position);
        }
        tokio::select! {
            () = tokio::time::sleep(lease::RETRY) => {}
            _ = stop.wait_for(|s| *s) => return false,
        }
    }
}

/// What every client of the publisher (the producer, the admin client) shares: the brokers,
/// the pass-through properties, and librdkafka's log level. rdkafka derives that level from
/// the `log` crate, which this server does not use, so without it librdkafka would drop its
/// own debug lines even where `TESSERA_LOG` asks for them (`librdkafka=debug` with a `debug`
/// property).
fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &settings.brokers);
    settings.properties.apply(&mut config);
    let level = if tracing::enabled!(target: "librdkafka", tracing::Level::DEBUG) {
        RDKafkaLogLevel::Debug
    } else if tracing::enabled!(target: "librdkafka", tracing::Level::INFO) {
        RDKafkaLogLevel::Info
    } else if tracing::enabled!(target: "librdkafka", tracing::Level::WARN) {
        RDKafkaLogLevel::Warning
    } else {
        RDKafkaLogLevel::Error
    };
    config.set_log_level(level);
    config
}

fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = base_config(settings);
    // A `client.id` among the pass-through properties names the client instead.
    if settings.properties.get("client.id").is_none() {
        config.set("client.id", "tessera-audit-publisher");
    }
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // The same key-to-partition mapping as the Java client, so other producers of these
        // topics (a replay, a backfill) agree on where a tenant lives.
        .set("partitioner", "murmur2_random")
        .set(
            "message.timeout.ms",
            settings.delivery_timeout.as_millis().to_string(),
        );
    config
}

/// One producer's life: from the checkpoint until a failure (Err) or stop (Ok).
async fn session(
    log: &Arc<dyn EventLog>,
    store: &ReadStore,
    settings: &KafkaSettings,
    mut lease: Option<&mut PublisherLease>,
    shared: &Arc<Shared>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let producer: FutureProducer<PublisherContext> =
        client_config(settings).create_with_context(PublisherContext {
            shared: shared.clone(),
        })?;
    let producer = OffWorkers(Some(producer));
    if settings.create_topics {
        tokio::select! {
            created = ensure_topics(settings) => created?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    }
    let checkpoint = settings.checkpoint_name();
    let from = store.publisher_checkpoint(&checkpoint).await?;
    shared.position.send_replace(from);
    tracing::info!(from, topic = %settings.topic, "publishing audit events to Kafka");

    let events = tessera_event_log::subscribe(log.clone(), from, READ_BATCH);
    let mut events = std::pin::pin!(events);
    let mut lease_check = tokio::time::interval(lease::RETRY);
    loop {
        let next = tokio::select! {
            next = events.next() => Some(next),
            _ = stop.wait_for(|s| *s) => return Ok(()),
            _ = lease_check.tick(), if lease.is_some() => None,
        };
        let Some(next) = next else {
            // Idle or not, a holder whose connection died steps down promptly.
            if let Some(lease) = lease.as_mut() {
                lease.check().await.map_err(SessionError::LeaseLost)?;
            }
            continue;
        };
        let batch = match next {
            Some(Ok(batch)) => batch,
            Some(Err(error)) => {
                // The subscription waits a poll interval before retrying.
                tracing::warn!(%error, "reading the event log failed; retrying");
                continue;
            }
            None => return Ok(()),
        };
        let Some(last) = batch.last().map(|e| e.envelope.global_position) else {
            continue;
        };
        let deliveries = send_batch(&producer, settings, &batch).await?;
        let count = deliveries.len() as u64;
        let acknowledged = futures::future::join_all(deliveries);
        let mut acknowledged = std::pin::pin!(acknowledged);
        let acked = tokio::select! {
            results = &mut acknowledged => Some(results),
            _ = stop.wait_for(|s| *s) => None,
        };
        let stopping = acked.is_none();
        let results = match acked {
            Some(results) => results,
            // Give what is under way a moment, so a clean stop re-sends little.
            None => match tokio::time::timeout(STOP_GRACE, acknowledged).await {
                Ok(results) => results,
                Err(_) => return Ok(()),
            },
        };
        for result in results {
            match result {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(SessionError::Delivery(error)),
                Err(_) => return Err(SessionError::Canceled),
            }
        }
        match lease.as_mut() {
            Some(lease) => lease
                .set_checkpoint(&checkpoint, last)
                .await
                .map_err(SessionError::LeaseLost)?,
            None => store.set_publisher_checkpoint(&checkpoint, last).await?,
        }
        shared.messages.fetch_add(count, Ordering::Relaxed);
        shared.set_error(None);
        shared.position.send_replace(last);
        if stopping {
            return Ok(());
        }
    }
}

/// Drops an rdkafka client on a blocking thread: destroying one purges, flushes and joins
/// librdkafka's threads, which can take a while with a broker gone, and must not stall the
/// runtime's workers (or the HTTP server on them).
struct OffWorkers<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> std::ops::Deref for OffWorkers<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // Only `drop` takes the value out.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Send + 'static> Drop for OffWorkers<T> {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(move || drop(client));
                }
                Err(_) => drop(client),
            }
        }
    }
}

/// Enqueues every message of `batch` in log order (so that per-partition order is log order)
/// and returns their delivery futures in the same order.
async fn send_batch(
    producer: &FutureProducer<PublisherContext>,
    settings: &KafkaSettings,
    batch: &[RecordedEvent],
) -> Result<Vec<DeliveryFuture>, SessionError> {
    let mut deliveries = Vec::with_capacity(batch.len() * 2);
    for recorded in batch {
        let envelope = &recorded.envelope;
        let event = recorded
            .decode()
            .map_err(|error| SessionError::Undecodable {
                position: envelope.global_position,
                error: error.to_string(),
            })?;
        let value = CloudEvent::new(recorded, &event).to_json_bytes();
        let key = envelope.tenant_id.to_string();
        let categories = settings
            .categories
            .iter()
            .filter(|c| c.covers(&envelope.event_type))
            .map(|c| c.topic());
        for topic in std::iter::once(settings.topic.clone()).chain(categories) {
            let mut record = FutureRecord::to(&topic).key(&key).payload(&value);
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    // librdkafka's queue is full: wait for it to drain rather than reorder.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((error, _)) => return Err(SessionError::Kafka(error)),
                }
            }
        }
    }
    Ok(deliveries)
}

/// Creates whichever of the publisher's topics do not exist yet.
async fn ensure_topics(settings: &KafkaSettings) -> Result<(), SessionError> {
    // The admin client needs the same TLS and SASL settings as the producer to reach the
    // broker at all.
    let admin: AdminClient<DefaultClientContext> = base_config(settings).create()?;
    let admin = OffWorkers(Some(admin));
    let names = settings.topics();
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                settings.partitions,
                TopicReplication::Fixed(settings.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(SessionError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_event_schemas::Event;

    #[test]
    fn every_event_type_has_a_category_topic() {
        // A new event type that no category covers would silently miss the category topics.
        for (event_type, _) in Event::current_types() {
            assert!(
                TopicCategory::ALL.iter().any(|c| c.covers(event_type)),
                "{event_type} belongs to no topic category"
            );
        }
    }

    #[test]
    fn security_covers_credentials_and_access_but_not_routine_changes() {
        let security = TopicCategory::Security;
        for event_type in [
            "api_key.issued",
            "api_key.revoked",
            "tenant.signing_key_rotated",
            "tenant.suspended",
            "oauth_client.secret_regenerated",
            "token.revoked",
        ] {
            assert!(security.covers(event_type), "{event_type}");
        }
        for event_type in ["tenant.updated", "token.issued", "oauth_client.registered"] {
            assert!(!security.covers(event_type), "{event_type}");
        }
    }

    #[test]
    fn names_round_trip_and_topics_follow_the_pattern() {
        for category in TopicCategory::ALL {
            assert_eq!(TopicCategory::parse(category.name()), Some(category));
        }
        assert_eq!(TopicCategory::parse("nope"), None);
        assert_eq!(TopicCategory::OAuth.topic(), "tessera.audit.oauth.v1");
    }
}
