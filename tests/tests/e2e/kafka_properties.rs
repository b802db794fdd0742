//! librdkafka properties passed through to the Kafka audit publisher
//! (`TESSERA_KAFKA_PROPERTIES`, `TESSERA_KAFKA_PROPERTIES_FILE`), against a tansu broker that
//! requires SASL: with SCRAM properties the publisher gets as far as the broker's SCRAM
//! exchange (tansu 0.6 keeps no credentials, so no SASL login can succeed against it), without
//! them it never does; the password is never printed; a property librdkafka refuses stops the
//! server at start with a message that names it.

use std::time::Duration;

use reqwest::Method;
use tessera_test_support::kafka::Broker;

use crate::helpers::{Store, TestServer, eventually, spawn_app, spawn_app_with_env};

/// Distinctive, so that a leak anywhere in the server's output is found by search.
const PASSWORD: &str = "pw-d7f3a91c-never-printed";

fn everything_printed(app: &TestServer) -> String {
    let mut printed = app.stdout.lock().unwrap().join("\n");
    printed.push('\n');
    printed.push_str(&app.stderr.lock().unwrap().join("\n"));
    printed
}

/// The broker's SASL answer as librdkafka logged it: tansu 0.6 with in-memory storage offers
/// SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER but keeps no credentials, so a SCRAM client
/// that gets as far as sending its user name is answered `unknown-user`.
const SCRAM_REACHED: &str = "SASL SCRAM authentication failed: broker responded with unknown-user";

#[tokio::test]
async fn scram_properties_from_a_file_and_the_environment_reach_the_broker_s_scram_exchange_without_printing_the_password()
 {
    let broker = Broker::start_requiring_sasl();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kafka.properties");
    std::fs::write(
        &file,
        "# The same keys as a Java client's file, where librdkafka shares them.\n\
         security.protocol=SASL_PLAINTEXT\n\
         sasl.mechanism = SCRAM-SHA-256\n\
         sasl.username=tessera-publisher\n\
         sasl.password=replaced-by-the-environment\n\
         client.id=tessera-e2e\n",
    )
    .unwrap();
    let app = spawn_app_with_env(
        Store::Embedded,
        &[
            ("TESSERA_KAFKA_BROKERS", broker.bootstrap_servers().as_str()),
            ("TESSERA_KAFKA_PARTITIONS", "1"),
            ("TESSERA_KAFKA_PROPERTIES_FILE", file.to_str().unwrap()),
            // librdkafka's security debugging on, so that a password it logged would show.
            (
                "TESSERA_KAFKA_PROPERTIES",
                &format!("sasl.password={PASSWORD},debug=security\\,broker"),
            ),
            ("TESSERA_LOG", "warn,librdkafka=debug"),
        ],
    )
    .await;
    app.create_tenant("scram").await;
    let reached = eventually(Duration::from_secs(30), || async {
        everything_printed(&app).contains(SCRAM_REACHED)
    })
    .await;
    assert!(
        reached,
        "the publisher never reached the broker's SCRAM exchange"
    );
    let printed = everything_printed(&app);
    assert!(
        printed.contains("Initializing SASL client"),
        "librdkafka's security debugging did not reach the log, so the leak check below would prove nothing"
    );
    assert!(!printed.contains(PASSWORD), "the SASL password was printed");
    assert!(!printed.contains("replaced-by-the-environment"));
}

#[tokio::test]
async fn without_the_properties_the_publisher_never_gets_to_authenticate() {
    let broker = Broker::start_requiring_sasl();
    let app = spawn_app_with_env(
        Store::Embedded,
        &[
            ("TESSERA_KAFKA_BROKERS", broker.bootstrap_servers().as_str()),
            ("TESSERA_KAFKA_PARTITIONS", "1"),
            ("TESSERA_LOG", "warn,librdkafka=debug"),
        ],
    )
    .await;
    app.create_tenant("no-sasl").await;
    let reported = eventually(Duration::from_secs(30), || async {
        let (_, body) = app.send(app.request(Method::GET, "/readyz", None)).await;
        body["kafka"]["last_error"].is_string() && body["kafka"]["published_position"] == 0
    })
    .await;
    assert!(reported, "the publisher did not report its failure");
    assert!(!everything_printed(&app).contains(SCRAM_REACHED));
}

/// Runs `serve` on a stopped server's storage with `env`, expecting it to refuse to start;
/// returns what it printed on stderr.
async fn refused_start(app: &TestServer, env: &[(&str, &str)]) -> String {
    let output = app
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_KAFKA_BROKERS", "127.0.0.1:9")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success(), "the server started with {env:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_property_librdkafka_refuses_stops_the_server_with_a_message_naming_it() {
    let mut app = spawn_app(Store::Embedded).await;
    // Only its storage and environment are needed; how it stops does not matter here.
    app.kill9();

    let stderr = refused_start(
        &app,
        &[(
            "TESSERA_KAFKA_PROPERTIES",
            "sasl.password=hunter2-secret,security.protocol=carrier-pigeon",
        )],
    )
    .await;
    assert!(stderr.contains("TESSERA_KAFKA_PROPERTIES"), "{stderr}");
    assert!(stderr.contains("\"security.protocol\""), "{stderr}");
    assert!(!stderr.contains("hunter2-secret"), "{stderr}");

    // A codec this build of librdkafka lacks (no zlib) is refused at start, not at first send.
    let stderr = refused_start(
        &app,
        &[("TESSERA_KAFKA_PROPERTIES", "compression.type=gzip")],
    )
    .await;
    assert!(stderr.contains("\"compression.type\""), "{stderr}");

    // A Java client file: the property librdkafka does not know is named with its line's file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.properties");
    std::fs::write(
        &file,
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
         username=\"u\" password=\"hunter3-secret\";\n",
    )
    .unwrap();
    let stderr = refused_start(
        &app,
        &[("TESSERA_KAFKA_PROPERTIES_FILE", file.to_str().unwrap())],
    )
    .await;
    assert!(stderr.contains("client.properties"), "{stderr}");
    assert!(stderr.contains("sasl.username"), "{stderr}");
    assert!(!stderr.contains("hunter3-secret"), "{stderr}");

    // What librdkafka checks only across properties (a CA file it cannot read for TLS) is
    // checked at start too, and before the first start writes anything.
    let fresh = tempfile::tempdir().unwrap();
    let output = app
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_DATA_DIR", fresh.path())
        .env("TESSERA_KAFKA_BROKERS", "127.0.0.1:9")
        .env(
            "TESSERA_KAFKA_PROPERTIES",
            "security.protocol=SSL,ssl.ca.location=/nonexistent/ca.pem",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ssl.ca.location"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(fresh.path()).unwrap().count(),
        0,
        "a refused start left files behind"
    );

    // The publisher's own guarantees cannot be switched off.
    let stderr = refused_start(&app, &[("TESSERA_KAFKA_PROPERTIES", "acks=1")]).await;
    assert!(stderr.contains("\"acks\""), "{stderr}");
}
