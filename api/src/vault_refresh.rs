//! Automatic refresh of OAuth connections (issue 20, ADR 0007): a scheduler built from the log,
//! and the refresh itself, shared by the scheduler and by an access that finds its credential
//! about to expire.
//!
//! **The scheduler** is a follower of the log like the back-channel logout's (not a projection:
//! it acts). It folds every `credential.*` event from position 0 at each start into one number
//! per refreshable connection, its next due time ([`due_at`]): [`RefreshSettings::lead_secs`]
//! (15 minutes by default, `TESSERA_CREDENTIAL_REFRESH_LEAD_SECS`) before expiry, never sooner
//! than half the token's lifetime after its issue, and a day after issue when the provider gave
//! no `expires_in` (Nango lost connections that way, its issue #6775); after a failure, the
//! backoff's `next_attempt_at`; nothing once the connection needs to be made again or is
//! removed. That is a key (tenant, integration) and a time: about a hundred bytes a connection
//! with the map's overhead, so 100,000 connections take about 10 MB. Each tick
//! (`TESSERA_CREDENTIAL_REFRESH_TICK_MS`) starts the refreshes that are due, a few at a time,
//! by the injected clock (which the end-to-end tests move).
//!
//! **A refresh** ([`refresh`]) reads the connection at version `v`, calls the provider's token
//! endpoint with the refresh token, and appends `credential.refreshed` expecting `v`
//! ([`tessera_commands::RefreshAppend`]). Every node runs the scheduler, so several may try at
//! once: the log decides, exactly one append wins, and a loser reads the winner's tokens and
//! asks the provider to revoke the access token it got for nothing (never its refresh token:
//! with rotation, revoking a refresh token may end the whole grant, the winner's included).
//! Within one process, callers of one connection queue on a lock ([`Flights`]) and the ones
//! after the first find it fresh: one refresh shared (an optimisation; the log is what
//! decides). A failure appends `credential.refresh_failed` with its backoff; the domain marks
//! the connection `needs_reauth` after repeated `invalid_grant`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures::StreamExt;
use tessera_commands::{CommandError, OAuthApp, RefreshAppend, RefreshedTokens};
use tessera_domain::credential::{Credential, CredentialStatus};
use tessera_event_schemas::events::RefreshFailure;
use tessera_event_schemas::{Actor, ActorKind, Event, EventMetadata, StreamId, Timestamp, streams};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use crate::connect::provider::ProviderError;
use crate::connect::tokens;
use crate::state::AppState;

/// A day: the refresh of a token whose provider did not say when it expires.
pub const WITHOUT_EXPIRY_SECS: i64 = 24 * 3600;
/// A refresh that could not even be tried (the vault refused, the log failed) is tried again
/// this much later.
const RETRY_AFTER_ERROR_SECS: i64 = 300;
/// Refreshes running at once per process.
const IN_FLIGHT: usize = 8;
const READ_BATCH: usize = 1000;

/// The refresh rules' settings.
#[derive(Clone, Copy, Debug)]
pub struct RefreshSettings {
    /// How long before expiry a token is refreshed (seconds).
    pub lead_secs: i64,
    /// How often the scheduler looks for due refreshes.
    pub tick: Duration,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            lead_secs: 900,
            tick: Duration::from_secs(1),
        }
    }
}

/// When a token issued at `issued_at` and expiring at `expires_at` is refreshed: `lead_secs`
/// before expiry, but never before half its lifetime has passed; a day after issue without an
/// expiry.
pub fn due_at(issued_at: Timestamp, expires_at: Option<Timestamp>, lead_secs: i64) -> Timestamp {
    match expires_at {
        Some(expires_at) => {
            let issued = issued_at.as_micros();
            let expires = expires_at.as_micros();
            let before_expiry = expires.saturating_sub(lead_secs.saturating_mul(1_000_000));
            let half_life = issued.saturating_add(expires.saturating_sub(issued).max(0) / 2);
            Timestamp::from_micros(before_expiry.max(half_life))
        }
        None => issued_at.plus_seconds(WITHOUT_EXPIRY_SECS),
    }
}

/// Whether `credential` is due at `now` (a failing one waits for its backoff).
pub fn is_due(credential: &Credential, now: Timestamp, lead_secs: i64) -> bool {
    if !credential.refreshable || credential.status == CredentialStatus::NeedsReauth {
        return false;
    }
    let due = match (credential.status, credential.next_attempt_at) {
        (CredentialStatus::RefreshFailing, Some(next)) => next,
        _ => due_at(credential.issued_at, credential.expires_at, lead_secs),
    };
    due <= now
}

/// A connection: its tenant and integration.
type Key = (Uuid, Box<str>);

/// One lock per connection being refreshed in this process. Entries are weak and swept when
/// the map grows, so idle connections cost nothing.
#[derive(Default)]
pub struct Flights {
    locks: Mutex<HashMap<Key, Weak<tokio::sync::Mutex<()>>>>,
}

impl Flights {
    async fn lock(&self, tenant_id: Uuid, integration: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = {
            // The map holds no invariant a panic could break.
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            if locks.len() >= 1024 {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            let key: Key = (tenant_id, integration.into());
            match locks.get(&key).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    let mutex = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key, Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        mutex.lock_owned().await
    }
}

/// What this process's refreshes came to, for `/metrics`.
#[derive(Debug, Default)]
pub struct RefreshStats {
    /// New tokens recorded.
    pub refreshed: AtomicU64,
    /// Refreshes whose append lost to another one (on this node or another).
    pub lost: AtomicU64,
    /// Refreshes that found the connection fresh already (another caller refreshed it).
    pub not_due: AtomicU64,
    /// Failures recorded (with their backoff).
    pub failed: AtomicU64,
    /// Connections the scheduler tracks.
    pub scheduled: AtomicU64,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What a refresh came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// New tokens recorded by this call.
    Refreshed,
    /// Not due (another caller just refreshed it), or another node's refresh won.
    Fresh,
    /// The refresh failed and was recorded, with its backoff.
    Failed(RefreshFailure),
    /// Nothing to refresh: no connection, no refresh token, or it needs to be made again.
    NotRefreshable,
}

fn refresher() -> Actor {
    Actor {
        kind: ActorKind::System,
        id: "credential-refresh".to_owned(),
        name: None,
    }
}

fn metadata(state: &AppState) -> EventMetadata {
    EventMetadata {
        actor: refresher(),
        correlation_id: state.ids.new_id().to_string(),
        causation_id: None,
        source_ip: None,
        user_agent: None,
    }
}

/// When a refresh is wanted, checked again once the connection's lock is held, so that callers
/// queued behind one refresh find the connection fresh and share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// The scheduler's rule ([`is_due`]).
    Due,
    /// An access: the access token expires within this many seconds.
    ExpiringWithin(i64),
}

impl When {
    pub fn holds(self, credential: &Credential, now: Timestamp, lead_secs: i64) -> bool {
        match self {
            When::Due => is_due(credential, now, lead_secs),
            // Within `seconds` of expiry, and past half its lifetime (the scheduler's floor),
            // so that a short-lived token is not refreshed by every access.
            When::ExpiringWithin(seconds) => {
                credential.refreshable
                    && credential.status != CredentialStatus::NeedsReauth
                    && credential.expires_at.is_some_and(|expires| {
                        expires <= now.plus_seconds(seconds)
                            && now >= due_at(credential.issued_at, Some(expires), i64::MAX)
                    })
            }
        }
    }
}

/// Refreshes the connection if `when` holds; see the module doc. What it appends carries
/// `meta` (an access's: its key and correlation id), else the refresher's own.
pub async fn refresh(
    state: &AppState,
    tenant_id: Uuid,
    integration: &str,
    when: When,
    meta: Option<EventMetadata>,
) -> Result<Refresh, CommandError> {
    let _flight = state.connect.flights.lock(tenant_id, integration).await;
    let Some((credential, version)) = state
        .commands
        .credential_for_refresh(tenant_id, integration)
        .await?
    else {
        return Ok(Refresh::NotRefreshable);
    };
    if !credential.refreshable || credential.status == CredentialStatus::NeedsReauth {
        return Ok(Refresh::NotRefreshable);
    }
    let lead = state.connect.refresh.lead_secs;
    if !when.holds(&credential, state.clock.now(), lead) {
        count(&state.connect.stats.not_due);
        return Ok(Refresh::Fresh);
    }
    let Some(app) = state.commands.oauth_app(tenant_id, integration).await? else {
        return Ok(Refresh::NotRefreshable);
    };
    let stream = streams::credential(tenant_id, integration);
    let opened = state
        .commands
        .vault_open(tenant_id, &stream, &credential.sealed)
        .await?;
    let Some(refresh_token) = tokens::read(&opened).and_then(|doc| doc.refresh_token.clone())
    else {
        return Ok(Refresh::NotRefreshable);
    };
    let answer = state.connect.provider.refresh(&app, &refresh_token).await;
    let meta = meta.unwrap_or_else(|| metadata(state));
    match answer {
        Ok(fresh) => {
            let now = state.clock.now();
            let document = tokens::document(&fresh, Some(&refresh_token))
                .map_err(|error| CommandError::Internal(format!("a token document: {error}")))?;
            let scopes = fresh.scopes(&credential.scopes);
            let recorded = state
                .commands
                .record_refreshed(
                    meta,
                    tenant_id,
                    integration,
                    version,
                    RefreshedTokens {
                        document,
                        scopes,
                        issued_at: now,
                        expires_at: fresh.expires_in.map(|seconds| now.plus_seconds(seconds)),
                        refreshable: true,
                    },
                )
                .await?;
            match recorded {
                RefreshAppend::Appended(_) => {
                    count(&state.connect.stats.refreshed);
                    Ok(Refresh::Refreshed)
                }
                RefreshAppend::Lost => {
                    count(&state.connect.stats.lost);
                    discard(state, &app, tenant_id, integration, &fresh.access_token).await;
                    Ok(Refresh::Fresh)
                }
            }
        }
        Err(error) => {
            let reason = match &error {
                ProviderError::OAuth(code) if code == "invalid_grant" => {
                    RefreshFailure::InvalidGrant
                }
                ProviderError::Unreachable(_) => RefreshFailure::Unreachable,
                ProviderError::OAuth(_) | ProviderError::Invalid(_) => RefreshFailure::Rejected,
            };
            tracing::warn!(%tenant_id, integration, %error, "a connection's refresh failed");
            let recorded = state
                .commands
                .record_refresh_failed(meta, tenant_id, integration, version, reason)
                .await?;
            Ok(match recorded {
                RefreshAppend::Appended(_) => {
                    count(&state.connect.stats.failed);
                    Refresh::Failed(reason)
                }
                RefreshAppend::Lost => {
                    count(&state.connect.stats.lost);
                    Refresh::Fresh
                }
            })
        }
    }
}

/// A refresh that lost the race: the winner's tokens are the connection's; the access token
/// this one got is revoked where the provider can (unless the provider handed both the same).
async fn discard(
    state: &AppState,
    app: &OAuthApp,
    tenant_id: Uuid,
    integration: &str,
    access_token: &str,
) {
    let winner = match state
        .commands
        .credential_for_refresh(tenant_id, integration)
        .await
    {
        Ok(Some((credential, _))) => state
            .commands
            .vault_open(
                tenant_id,
                &streams::credential(tenant_id, integration),
                &credential.sealed,
            )
            .await
            .ok()
            .and_then(|opened| tokens::read(&opened))
            .and_then(|doc| doc.access_token.clone()),
        _ => None,
    };
    if winner.as_deref() == Some(access_token) {
        return;
    }
    if let Err(error) = state
        .connect
        .provider
        .revoke(app, access_token, "access_token")
        .await
    {
        tracing::info!(%tenant_id, integration, %error, "a losing refresh's access token was not revoked");
    }
}

/// The scheduler's running task.
pub struct RefreshTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl RefreshTask {
    pub fn start(state: AppState) -> Self {
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(run(state, stopped));
        Self { stop, handle }
    }

    /// Stops; refreshes in flight finish first (each is one provider call and one append).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

/// The due time of every refreshable connection, folded from the log.
#[derive(Default)]
pub struct Schedule {
    due: HashMap<Key, i64>,
}

impl Schedule {
    /// Folds one event of a connection's stream.
    pub fn fold(&mut self, tenant_id: Uuid, integration: &str, event: &Event, lead_secs: i64) {
        let key = (tenant_id, Box::<str>::from(integration));
        let due = match event {
            Event::CredentialStored(e) if e.refreshable => {
                Some(due_at(e.issued_at, e.expires_at, lead_secs))
            }
            Event::CredentialRefreshed(e) if e.refreshable => {
                Some(due_at(e.issued_at, e.expires_at, lead_secs))
            }
            Event::CredentialRefreshFailed(e) => {
                if !self.due.contains_key(&key) {
                    return;
                }
                Some(e.next_attempt_at)
            }
            Event::CredentialStored(_)
            | Event::CredentialRefreshed(_)
            | Event::CredentialNeedsReauth(_)
            | Event::CredentialRemoved(_) => None,
            _ => return,
        };
        match due {
            Some(due) => {
                self.due.insert(key, due.as_micros());
            }
            None => {
                self.due.remove(&key);
            }
        }
    }

    /// The connections due at `now`, but those in `busy`.
    fn due(&self, now: Timestamp, busy: &HashSet<Key>) -> Vec<Key> {
        self.due
            .iter()
            .filter(|(key, due)| **due <= now.as_micros() && !busy.contains(*key))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Puts a connection off until `at` (until the log says otherwise).
    fn postpone(&mut self, key: &Key, at: Timestamp) {
        if let Some(due) = self.due.get_mut(key) {
            *due = (*due).max(at.as_micros());
        }
    }

    /// How many connections are scheduled.
    pub fn len(&self) -> usize {
        self.due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let settings = state.connect.refresh;
    let mut schedule = Schedule::default();
    let mut busy: HashSet<Key> = HashSet::new();
    let mut running: JoinSet<(Key, Result<Refresh, CommandError>)> = JoinSet::new();
    let events = tessera_event_log::subscribe(state.log.clone(), 0, READ_BATCH);
    let mut events = std::pin::pin!(events);
    let mut tick = tokio::time::interval(settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            next = events.next() => match next {
                Some(Ok(batch)) => {
                    for recorded in &batch {
                        if !recorded.envelope.event_type.starts_with("credential.") {
                            continue;
                        }
                        let Some(StreamId::Credential { tenant_id, integration }) =
                            StreamId::parse(&recorded.envelope.stream_id)
                        else {
                            continue;
                        };
                        if let Ok(event) = recorded.decode() {
                            schedule.fold(tenant_id, &integration, &event, settings.lead_secs);
                        }
                    }
                    state
                        .connect
                        .stats
                        .scheduled
                        .store(schedule.len() as u64, Ordering::Relaxed);
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "credential refresh: reading the log; it stops until the next start");
                    break;
                }
                None => break,
            },
            _ = tick.tick() => {
                let now = state.clock.now();
                for key in schedule.due(now, &busy) {
                    if running.len() >= IN_FLIGHT {
                        break;
                    }
                    busy.insert(key.clone());
                    let state = state.clone();
                    running.spawn(async move {
                        let outcome = refresh(&state, key.0, &key.1, When::Due, None).await;
                        (key, outcome)
                    });
                }
            }
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Ok((key, outcome)) = done {
                    busy.remove(&key);
                    // What the refresh appended reschedules the connection when the follower
                    // reads it; until then (and when nothing could be appended) it waits.
                    let wait = match outcome {
                        // Its integration was removed, or it holds no refresh token any more:
                        // nothing the log will say soon, so look again in an hour.
                        Ok(Refresh::NotRefreshable) => WITHOUT_EXPIRY_SECS / 24,
                        Ok(_) => settings.tick.as_secs().max(1) as i64 * 5,
                        Err(error) => {
                            tracing::warn!(tenant_id = %key.0, integration = %key.1, %error, "credential refresh could not be tried");
                            RETRY_AFTER_ERROR_SECS
                        }
                    };
                    schedule.postpone(&key, state.clock.now().plus_seconds(wait));
                }
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    while running.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_event_schemas::events::{
        CredentialKind, CredentialRefreshFailedV1, CredentialRemovedV1, CredentialStoredV1,
        OAuthAppSource,
    };

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_micros(seconds * 1_000_000)
    }

    #[test]
    fn a_token_is_refreshed_fifteen_minutes_before_expiry_but_not_before_half_its_life() {
        assert_eq!(due_at(at(0), Some(at(3600)), 900), at(2700));
        assert_eq!(due_at(at(0), Some(at(600)), 900), at(300));
        assert_eq!(due_at(at(100), None, 900), at(100 + 24 * 3600));
    }

    fn stored(refreshable: bool) -> Event {
        Event::CredentialStored(CredentialStoredV1 {
            kind: CredentialKind::Oauth,
            sealed: "tsr:v1:x".to_owned().into(),
            key_version: 1,
            scopes: vec![],
            issued_at: at(0),
            expires_at: Some(at(3600)),
            refreshable,
            app: OAuthAppSource::Platform,
        })
    }

    #[test]
    fn the_schedule_follows_a_connection_from_store_to_backoff_to_removal() {
        let tenant = Uuid::from_u128(7);
        let mut schedule = Schedule::default();
        schedule.fold(tenant, "github", &stored(false), 900);
        assert!(schedule.is_empty());
        schedule.fold(tenant, "github", &stored(true), 900);
        let none = HashSet::new();
        assert!(schedule.due(at(2699), &none).is_empty());
        assert_eq!(schedule.due(at(2700), &none).len(), 1);
        schedule.fold(
            tenant,
            "github",
            &Event::CredentialRefreshFailed(CredentialRefreshFailedV1 {
                reason: RefreshFailure::Unreachable,
                attempt: 1,
                next_attempt_at: at(2730),
            }),
            900,
        );
        assert!(schedule.due(at(2729), &none).is_empty());
        assert_eq!(schedule.due(at(2730), &none).len(), 1);
        schedule.fold(
            tenant,
            "github",
            &Event::CredentialRemoved(CredentialRemovedV1 {
                revoked_at_provider: false,
            }),
            900,
        );
        assert_eq!(schedule.len(), 0);
    }
}
