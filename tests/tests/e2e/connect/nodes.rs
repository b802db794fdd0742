//! Two connecting servers on one PostgreSQL database, both refreshing one connection when it
//! falls due: the log decides, so exactly one refresh is recorded and the provider rotates its
//! refresh token once.

use super::*;
use crate::helpers::spawn_app_with_env;
use crate::http_browser::advance_clock;

/// A counter of `/metrics`.
async fn metric(app: &TestServer, name: &str) -> u64 {
    app.metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// How many refreshes a node has tried (whatever came of them).
async fn attempts(app: &TestServer) -> u64 {
    let mut total = 0;
    for name in [
        "tessera_credential_refreshes_total",
        "tessera_credential_refresh_races_lost_total",
        "tessera_credential_refresh_not_due_total",
        "tessera_credential_refresh_failures_total",
    ] {
        total += metric(app, name).await;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_refreshing_one_connection_record_one_refresh_and_rotate_once() {
    let first = spawn_app_with_env(Store::Postgres, CONSUMER_ENV).await;
    let second = first.spawn_node(CONSUMER_ENV).await;
    let provider = provider(Store::Embedded, free_port(), &[&first.base, &second.base]).await;
    let consumer = consumer(&first, &provider).await;
    connect(&first, &provider, &consumer).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            metric(&second, "tessera_credential_refresh_scheduled").await == 1
        })
        .await
    );

    // Both clocks pass the due time together: each scheduler tries.
    tokio::join!(advance_clock(&first, 31), advance_clock(&second, 31));
    assert!(
        eventually(Duration::from_secs(20), || async {
            attempts(&first).await >= 1 && attempts(&second).await >= 1
        })
        .await
    );
    assert_eq!(
        audit_count(&first, &consumer.tenant_id, "credential.refreshed").await,
        1
    );
    assert_eq!(
        metric(&first, "tessera_credential_refreshes_total").await
            + metric(&second, "tessera_credential_refreshes_total").await,
        1
    );
    assert_eq!(provider.count("refresh_token.rotated").await, 1);
    assert_eq!(
        audit_count(&first, &consumer.tenant_id, "credential.refresh_failed").await,
        0
    );
}
