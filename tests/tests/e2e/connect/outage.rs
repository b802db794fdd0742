//! The provider down, then up again: the refresh fails and backs off, then succeeds with the
//! refresh token it kept; nothing is lost.

use super::*;
use crate::helpers::spawn_app_with_env;
use crate::http_browser::advance_clock;

#[tokio::test]
async fn a_provider_that_is_down_makes_a_refresh_back_off_and_then_succeed_when_it_is_back() {
    let store = Store::Embedded;
    let app = spawn_app_with_env(store, CONSUMER_ENV).await;
    let mut provider = provider(store, free_port(), &[&app.base]).await;
    let consumer = consumer(&app, &provider).await;
    connect(&app, &provider, &consumer).await;

    provider.app.stop().await;
    advance_clock(&app, 31).await;
    assert!(wait_for(&app, &consumer, "credential.refresh_failed", 1).await);
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "credential.refreshed").await,
        0
    );

    // Back on the same port; the next attempt waits for its backoff (30 s), then refreshes.
    provider.app.start().await;
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "credential.refreshed").await,
        0
    );
    advance_clock(&app, 31).await;
    assert!(wait_for(&app, &consumer, "credential.refreshed", 1).await);
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "credential.refresh_failed").await,
        1
    );
    assert_eq!(
        audit_count(&app, &consumer.tenant_id, "credential.needs_reauth").await,
        0
    );
    assert_eq!(provider.count("refresh_token.rotated").await, 1);
}
