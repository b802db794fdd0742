//! A successful SASL PLAIN login by the Kafka audit publisher, configured only through
//! `TESSERA_KAFKA_PROPERTIES`. tansu 0.6 offers no PLAIN (and keeps no SCRAM credentials), so a
//! small proxy in front of a plain tansu plays the broker's side of SASL, as a SASL listener of
//! Kafka does (SaslHandshake, then SaslAuthenticate with `\0user\0password`), refuses any other
//! password, closes a connection that sends anything but ApiVersions before logging in, and
//! relays everything after the login to tansu untouched. tansu advertises the
//! proxy, so every connection of every client goes through it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use serde_json::Value;
use tessera_test_support::kafka::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Store, spawn_app_with_env};

const USER: &str = "tessera";
const PASSWORD: &str = "pw-plain-5c2e-not-printed";
const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const API_VERSIONS: i16 = 18;

/// One request frame: its bytes (without the length) and header fields.
struct Frame {
    bytes: Vec<u8>,
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
}

async fn read_frame(stream: &mut TcpStream) -> Option<Frame> {
    let length = stream.read_i32().await.ok()?;
    let mut bytes = vec![0; usize::try_from(length).ok()?];
    stream.read_exact(&mut bytes).await.ok()?;
    Some(Frame {
        api_key: i16::from_be_bytes([bytes[0], bytes[1]]),
        api_version: i16::from_be_bytes([bytes[2], bytes[3]]),
        correlation_id: i32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        bytes,
    })
}

async fn write_frame(stream: &mut TcpStream, body: &[u8]) {
    let mut framed = (body.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(body);
    stream.write_all(&framed).await.unwrap();
}

/// The request body after the v1 header (api key, version, correlation id, client id).
fn body(frame: &Frame) -> &[u8] {
    let client_id = i16::from_be_bytes([frame.bytes[8], frame.bytes[9]]);
    &frame.bytes[10 + usize::try_from(client_id.max(0)).unwrap()..]
}

/// Serves one client connection: SASL here, everything else relayed to `upstream`.
async fn serve(mut client: TcpStream, upstream: String, logins: Arc<AtomicUsize>) {
    let mut broker = TcpStream::connect(upstream).await.unwrap();
    loop {
        let Some(frame) = read_frame(&mut client).await else {
            return;
        };
        let mut response = frame.correlation_id.to_be_bytes().to_vec();
        match frame.api_key {
            SASL_HANDSHAKE => {
                let body = body(&frame);
                let length = usize::try_from(i16::from_be_bytes([body[0], body[1]])).unwrap();
                let offered = &body[2..2 + length];
                let error: i16 = if offered == b"PLAIN" { 0 } else { 33 };
                response.extend_from_slice(&error.to_be_bytes());
                response.extend_from_slice(&1i32.to_be_bytes());
                response.extend_from_slice(&5i16.to_be_bytes());
                response.extend_from_slice(b"PLAIN");
                write_frame(&mut client, &response).await;
            }
            SASL_AUTHENTICATE => {
                let body = body(&frame);
                let length =
                    usize::try_from(i32::from_be_bytes(body[..4].try_into().unwrap())).unwrap();
                let token = &body[4..4 + length];
                let expected = format!("\0{USER}\0{PASSWORD}");
                let accepted = token == expected.as_bytes();
                // 58: SASL_AUTHENTICATION_FAILED.
                let error: i16 = if accepted { 0 } else { 58 };
                response.extend_from_slice(&error.to_be_bytes());
                response.extend_from_slice(&(-1i16).to_be_bytes());
                response.extend_from_slice(&0i32.to_be_bytes());
                if frame.api_version >= 1 {
                    response.extend_from_slice(&0i64.to_be_bytes());
                }
                write_frame(&mut client, &response).await;
                if !accepted {
                    return;
                }
                logins.fetch_add(1, Ordering::Relaxed);
                // Logged in: from here on the connection is the broker's.
                let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                return;
            }
            API_VERSIONS => {
                // The one request a SASL listener answers before the login: relayed as is.
                write_frame(&mut broker, &frame.bytes).await;
                let Some(answer) = read_frame(&mut broker).await else {
                    return;
                };
                write_frame(&mut client, &answer.bytes).await;
            }
            // Anything else before the login is refused, as Kafka does: the connection closes.
            _ => return,
        }
    }
}

/// tansu behind the proxy, and the proxy's count of successful logins.
struct SaslProxy {
    /// `bootstrap.servers` for clients: the proxy.
    address: String,
    logins: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    _broker: Broker,
}

impl SaslProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let broker = Broker::start_behind_proxy(port);
        let upstream = broker.bootstrap_servers();
        let logins = Arc::new(AtomicUsize::new(0));
        let counted = logins.clone();
        let task = tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(client, upstream.clone(), counted.clone()));
            }
        });
        Self {
            address: format!("127.0.0.1:{port}"),
            logins,
            task,
            _broker: broker,
        }
    }

    fn logins(&self) -> usize {
        self.logins.load(Ordering::Relaxed)
    }
}

impl Drop for SaslProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn the_publisher_logs_in_with_sasl_plain_from_the_properties_and_its_events_arrive() {
    let proxy = SaslProxy::start().await;
    let through_proxy = proxy.address.clone();
    let properties = format!(
        "security.protocol=SASL_PLAINTEXT,sasl.mechanism=PLAIN,sasl.username={USER},sasl.password={PASSWORD}"
    );
    let app = spawn_app_with_env(
        Store::Embedded,
        &[
            ("TESSERA_KAFKA_BROKERS", through_proxy.as_str()),
            ("TESSERA_KAFKA_PARTITIONS", "1"),
            ("TESSERA_KAFKA_PROPERTIES", properties.as_str()),
            ("TESSERA_LOG", "warn,librdkafka=debug"),
        ],
    )
    .await;
    app.create_tenant("plain").await;
    let head = app.log_head().await;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &through_proxy)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", USER)
        .set("sasl.password", PASSWORD)
        .set("group.id", "plain-readers")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .unwrap();
    consumer.subscribe(&["tessera.audit.v1"]).unwrap();
    let mut positions = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !positions.contains(&head) {
        let next = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("positions up to {head} not consumed: {positions:?}"));
        let Ok(message) = next else { continue };
        let event: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        positions.insert(event["position"].as_str().unwrap().parse::<u64>().unwrap());
    }
    tokio::task::spawn_blocking(move || drop(consumer))
        .await
        .unwrap();
    assert_eq!(positions, (1..=head).collect::<BTreeSet<_>>());
    assert!(proxy.logins() >= 2, "the server never logged in");
    let printed = format!(
        "{}\n{}",
        app.stdout.lock().unwrap().join("\n"),
        app.stderr.lock().unwrap().join("\n")
    );
    assert!(!printed.contains(PASSWORD), "the SASL password was printed");
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_no_connection_gets_through() {
    let proxy = SaslProxy::start().await;
    let through_proxy = proxy.address.clone();
    let app = spawn_app_with_env(
        Store::Embedded,
        &[
            ("TESSERA_KAFKA_BROKERS", through_proxy.as_str()),
            ("TESSERA_KAFKA_PARTITIONS", "1"),
            (
                "TESSERA_KAFKA_PROPERTIES",
                &format!("security.protocol=SASL_PLAINTEXT,sasl.mechanism=PLAIN,sasl.username={USER},sasl.password=wrong"),
            ),
            ("TESSERA_LOG", "warn,librdkafka=info"),
        ],
    )
    .await;
    app.create_tenant("plain-wrong").await;
    let refused = crate::helpers::eventually(Duration::from_secs(30), || async {
        app.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("SASL authentication error"))
    })
    .await;
    assert!(refused, "the refused login was not reported");
    assert_eq!(proxy.logins(), 0);
}
