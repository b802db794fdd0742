//! Back-Channel Logout 1.0 (ADR 0003): when a session ends, every client that got a code in it
//! and registered a `backchannel_logout_uri` is posted a logout token.
//!
//! A follower of the log like the Kafka publisher: it folds every event with
//! [`BackchannelLogout`] (from position 0 at each start, since which clients a session gave
//! codes to is needed for sessions of any age), delivers what the events after its checkpoint
//! owe, and stores its checkpoint (`publisher_checkpoints`, outside the `rm_` read models) only
//! past events whose deliveries are done. The log itself is the queue of pending deliveries: a
//! restart, or a crash, folds again and delivers again what came after the checkpoint, so a
//! delivery is at least once and survives restarts. A failed post (no answer, or not 2xx) is
//! tried again with backoff from [`FIRST_RETRY`] doubling to [`MAX_RETRY`], for at most
//! [`GIVE_UP_AFTER`]; deliveries go one at a time in log order, so a receiver that is down
//! holds back the ones after it (the known limit of using the log as the queue).
//!
//! The logout token (§2.4) is a JWT with `typ: logout+jwt`, signed with the tenant's active key
//! of the client's `id_token_signed_response_alg` (else its default key): `iss`, `aud` (the
//! client), `iat`, `exp` (two minutes), `jti`, `sub`, `sid` and the back-channel logout event.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tessera_projections::backchannel::{self, BackchannelLogout, LogoutOwed};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::oauth::issuer;
use crate::state::AppState;

/// The follower's name in `publisher_checkpoints`.
pub const PUBLISHER: &str = "backchannel_logout";
/// The first wait after a failed post.
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest wait between two tries.
pub const MAX_RETRY: Duration = Duration::from_secs(30);
/// A delivery still failing after this long is dropped (with a warning).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(6 * 3600);
const READ_BATCH: usize = 1000;
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The running follower.
pub struct BackchannelTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl BackchannelTask {
    pub fn start(state: AppState) -> Self {
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(run(state, stopped));
        Self { stop, handle }
    }

    /// Stops between two tries; what is not delivered yet is delivered after the next start.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

/// Waits `wait`; true when asked to stop meanwhile.
async fn stopped_during(stop: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let checkpoint = loop {
        match state.store.publisher_checkpoint(PUBLISHER).await {
            Ok(position) => break position,
            Err(error) => {
                tracing::warn!(%error, "back-channel logout: reading the checkpoint");
                if stopped_during(&mut stop, FIRST_RETRY).await {
                    return;
                }
            }
        }
    };
    let Ok(http) = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    else {
        tracing::error!("back-channel logout: no HTTP client");
        return;
    };
    let mut fold = BackchannelLogout::default();
    let events = tessera_event_log::subscribe(state.log.clone(), 0, READ_BATCH);
    let mut events = std::pin::pin!(events);
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            _ = stop.wait_for(|s| *s) => return,
        };
        let batch = match next {
            Some(Ok(batch)) => batch,
            Some(Err(error)) => {
                tracing::warn!(%error, "back-channel logout: reading the log; it stops until the next start");
                return;
            }
            None => return,
        };
        let mut delivered_to = None;
        for recorded in &batch {
            let position = recorded.envelope.global_position;
            if !backchannel::folded(&recorded.envelope.event_type) {
                if position > checkpoint {
                    delivered_to = Some(position);
                }
                continue;
            }
            let Ok(event) = recorded.decode() else {
                tracing::error!(
                    position,
                    "back-channel logout: an undecodable event; it stops before it"
                );
                return;
            };
            let owed = fold.fold(&recorded.envelope, &event);
            if position <= checkpoint {
                continue;
            }
            for logout in &owed {
                if !deliver(&state, &http, logout, &mut stop).await {
                    return;
                }
            }
            delivered_to = Some(position);
        }
        if let Some(position) = delivered_to
            && let Err(error) = state
                .store
                .set_publisher_checkpoint(PUBLISHER, position)
                .await
        {
            tracing::warn!(%error, "back-channel logout: storing the checkpoint");
        }
    }
}

/// Posts the logout token owed, trying again until it is taken, given up, or the follower is
/// asked to stop (false: nothing after it may be marked delivered).
async fn deliver(
    state: &AppState,
    http: &reqwest::Client,
    logout: &LogoutOwed,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut wait = FIRST_RETRY;
    let started = tokio::time::Instant::now();
    loop {
        let Some((uri, token)) = logout_token(state, logout) else {
            // No URI (any more), or no client or tenant: nothing is owed.
            return true;
        };
        let posted = http
            .post(&uri)
            .form(&[("logout_token", token.as_str())])
            .send()
            .await;
        match posted {
            Ok(answer) if answer.status().is_success() => return true,
            Ok(answer) => {
                tracing::warn!(status = %answer.status(), client = %logout.client_id, "back-channel logout refused; trying again");
            }
            Err(error) => {
                tracing::warn!(%error, client = %logout.client_id, "back-channel logout not delivered; trying again");
            }
        }
        if started.elapsed() > GIVE_UP_AFTER {
            tracing::warn!(client = %logout.client_id, session = %logout.session_id, "back-channel logout given up");
            return true;
        }
        if stopped_during(stop, wait).await {
            return false;
        }
        wait = (wait * 2).min(MAX_RETRY);
    }
}

/// The client's back-channel URI and a fresh logout token for it, if it has one.
fn logout_token(state: &AppState, logout: &LogoutOwed) -> Option<(String, String)> {
    let client = state
        .directory
        .client(logout.tenant_id, &logout.client_id)?;
    let uri = client.client.oidc.backchannel_logout_uri.clone()?;
    let tenant_state = state.directory.tenant(logout.tenant_id)?;
    let tenant = tenant_state.tenant.as_ref()?;
    let key = tenant
        .active_key_for(client.client.oidc.id_token_signed_response_alg)
        .or_else(|| tenant.active_key())?;
    let signer = state
        .crypto
        .token_signer(tenant.id, &key.kid, key.alg, &key.sealed_private_key)
        .ok()?;
    let iat = state.clock.now().as_micros() / 1_000_000;
    let claims = json!({
        "iss": issuer(state, &tenant.slug),
        "aud": logout.client_id,
        "iat": iat,
        "exp": iat + 120,
        "jti": state.ids.new_id().to_string(),
        "sub": logout.user_id.to_string(),
        "sid": logout.session_id.to_string(),
        "events": { EVENT: {} },
    });
    let token = signer.sign_with_typ("logout+jwt", &claims).ok()?;
    Some((uri, token))
}
