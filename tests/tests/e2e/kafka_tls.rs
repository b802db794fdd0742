//! The Kafka audit publisher over TLS, configured only through `TESSERA_KAFKA_PROPERTIES`
//! (`security.protocol=SSL`, `ssl.ca.location`). tansu 0.6 listens in plain TCP only, so a TLS
//! terminator (Python's `ssl` and `asyncio`) stands in front of it, as a load balancer or a
//! Kafka TLS listener would: it presents a certificate for 127.0.0.1 signed by a test
//! authority and relays the decrypted bytes to tansu, which advertises the terminator, so every
//! connection of every client is TLS. A publisher that trusts the authority delivers every
//! event; one that trusts another authority refuses the broker's certificate and delivers
//! nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use serde_json::Value;
use tessera_test_support::kafka::Broker;

use crate::helpers::{Store, eventually, spawn_app_with_env};
use crate::mail::tls::certificates;

/// tansu behind a TLS terminator on `port`; both stop on drop.
struct TlsBroker {
    /// `bootstrap.servers` for clients: the terminator.
    address: String,
    terminator: Child,
    _broker: Broker,
}

impl TlsBroker {
    fn start(cert: &Path, key: &Path) -> Self {
        let port = tessera_test_support::free_port();
        let broker = Broker::start_behind_proxy(port);
        let upstream_port = broker
            .bootstrap_servers()
            .rsplit_once(':')
            .unwrap()
            .1
            .to_owned();
        let script = format!(
            "import asyncio, ssl\n\
             context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
             context.load_cert_chain({cert:?}, {key:?})\n\
             async def pipe(reader, writer):\n\
             \x20   try:\n\
             \x20       while data := await reader.read(65536):\n\
             \x20           writer.write(data)\n\
             \x20           await writer.drain()\n\
             \x20   except Exception:\n\
             \x20       pass\n\
             \x20   finally:\n\
             \x20       writer.close()\n\
             async def serve(reader, writer):\n\
             \x20   try:\n\
             \x20       up_reader, up_writer = await asyncio.open_connection('127.0.0.1', {upstream_port})\n\
             \x20   except Exception:\n\
             \x20       writer.close()\n\
             \x20       return\n\
             \x20   await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))\n\
             async def main():\n\
             \x20   server = await asyncio.start_server(serve, '127.0.0.1', {port}, ssl=context)\n\
             \x20   async with server:\n\
             \x20       await server.serve_forever()\n\
             asyncio.run(main())\n",
        );
        let terminator = Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        // The terminator listens once Python has started; wait for its port.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the TLS terminator did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            address: format!("127.0.0.1:{port}"),
            terminator,
            _broker: broker,
        }
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.terminator.kill();
        let _ = self.terminator.wait();
    }
}

#[tokio::test]
async fn the_publisher_delivers_every_event_over_tls_to_a_broker_it_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, cert, key) = certificates(dir.path());
    let broker = TlsBroker::start(&cert, &key);
    let properties = format!(
        "security.protocol=SSL,ssl.ca.location={}",
        authority.display()
    );
    let app = spawn_app_with_env(
        Store::Embedded,
        &[
            ("TESSERA_KAFKA_BROKERS", broker.address.as_str()),
            ("TESSERA_KAFKA_PARTITIONS", "1"),
            ("TESSERA_KAFKA_PROPERTIES", properties.as_str()),
        ],
    )
    .await;
    app.create_tenant("kafka-tls").await;
    let head = app.log_head().await;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", authority.to_str().unwrap())
        .set("group.id", "tls-readers")
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
}

#[tokio::test]
async fn a_broker_certificate_of_an_untrusted_authority_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificates(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (other_authority, _, _) = certificates(other.path());
    let broker = TlsBroker::start(&cert, &key);
    let properties = format!(
        "security.protocol=SSL,ssl.ca.location={}",
        other_authority.display()
    );
    let app = spawn_app_with_env(
        Store::Embedded,
        &[
            ("TESSERA_KAFKA_BROKERS", broker.address.as_str()),
            ("TESSERA_KAFKA_PARTITIONS", "1"),
            ("TESSERA_KAFKA_PROPERTIES", properties.as_str()),
            ("TESSERA_LOG", "warn,librdkafka=info"),
        ],
    )
    .await;
    app.create_tenant("kafka-tls-untrusted").await;
    let refused = eventually(Duration::from_secs(30), || async {
        app.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("certificate verify failed"))
    })
    .await;
    assert!(
        refused,
        "the untrusted certificate was not refused: {:?}",
        app.stderr.lock().unwrap()
    );
    // Nothing was published: the publisher's checkpoint never moved.
    let metrics = app.metrics().await;
    let published = metrics
        .lines()
        .find(|line| line.starts_with("tessera_kafka_published_position "))
        .map(|line| line.rsplit(' ').next().unwrap().to_owned());
    assert!(
        matches!(published.as_deref(), None | Some("0")),
        "published through an untrusted broker: {published:?}"
    );
}
