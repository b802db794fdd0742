//! The OAuth directory: an in-memory read model for the authorization server's hot paths.
//!
//! The token, introspection and revocation endpoints answer thousands of requests a second;
//! each needs the tenant (by slug, with its status and signing keys), the client (by id, with
//! its secret hash, grants and scopes) and, for introspection, the issued token (by hash) and
//! whether it was revoked. A SQL round trip per lookup would cost more than the rest of the
//! request, so this projection keeps exactly that in memory, folded from the whole log with
//! the domain's own `evolve` (so it cannot disagree with the write side about a tenant's or a
//! client's state).
//!
//! It is rebuilt from position 0 at every start (it holds no checkpoint), then follows the log
//! live like the SQL projections. Its memory is bounded by the live data: issued tokens and
//! revocations are forgotten once expired (judged by the time of the newest event folded, so
//! that a replay forgets exactly what the live run forgot).
//!
//! Two writes bypass the log's round trip: the token endpoint records an issued token with
//! [`Directory::note_issued`], and revocation with [`Directory::note_revoked`], right after
//! their events are durable and before answering, so that a revoked token is inactive the
//! moment revocation has answered. Folding the same event later is idempotent.
//!
//! Unlike the SQL read models, this one holds sealed private keys (inside the domain's
//! `TenantState`): they stay sealed here and never leave the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use futures::StreamExt;
use tessera_domain::Aggregate;
use tessera_domain::oauth_client::{OAuthClient, OAuthClientState};
use tessera_domain::tenant::TenantState;
use tessera_event_log::{EventLog, LogError};
use tessera_event_schemas::{Event, Hash32, RecordedEvent, StreamId, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::WaitTimeout;

/// Events asked of the log per read while following it.
const READ_BATCH: usize = 5000;
/// How often (in log time) expired tokens and revocations are swept out.
const PRUNE_EVERY_MICROS: i64 = 60 * 1_000_000;

/// One registered client and when it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEntry {
    pub tenant_id: Uuid,
    pub client: OAuthClient,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deactivated_at: Option<Timestamp>,
}

/// One issued access token, as `token.issued` recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub jti: Uuid,
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    pub kid: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Default)]
struct Inner {
    tenants: HashMap<Uuid, Arc<TenantState>>,
    slugs: HashMap<String, Uuid>,
    /// Per tenant, clients ordered by id (the admin listing pages in this order).
    clients: HashMap<Uuid, BTreeMap<String, Arc<ClientEntry>>>,
    tokens: HashMap<Hash32, Arc<IssuedToken>>,
    /// Revoked token ids, with their expiry (after which the entry is dropped).
    revoked: HashMap<Uuid, Timestamp>,
    /// The `recorded_at` of the newest event folded.
    log_time: Timestamp,
    next_prune: i64,
}

/// The in-memory OAuth directory. Share it behind an `Arc`.
pub struct Directory {
    inner: RwLock<Inner>,
    position: watch::Sender<u64>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("position", &*self.position.borrow())
            .finish_non_exhaustive()
    }
}

impl Default for Directory {
    fn default() -> Self {
        Self {
            inner: RwLock::default(),
            position: watch::Sender::new(0),
        }
    }
}

impl Directory {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while folding cannot leave a half-applied event behind (each event's fold is
        // a handful of map operations), so a poisoned lock is still consistent.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Folds a batch of events read from the log, in order, and publishes the new position.
    /// An event this build cannot decode stops the fold before it (see the SQL runtime for the
    /// same rule), returned as the error.
    pub fn apply(&self, events: &[RecordedEvent]) -> Result<(), (u64, String)> {
        let decoded: Vec<(&RecordedEvent, Event)> = events
            .iter()
            .map(|recorded| {
                recorded
                    .decode()
                    .map(|event| (recorded, event))
                    .map_err(|error| (recorded.envelope.global_position, error.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let mut inner = self.write();
        let mut last = None;
        for (recorded, event) in &decoded {
            inner.fold(recorded, event);
            last = Some(recorded.envelope.global_position);
        }
        drop(inner);
        if let Some(position) = last {
            self.position.send_if_modified(|current| {
                let advanced = position > *current;
                *current = (*current).max(position);
                advanced
            });
        }
        Ok(())
    }

    /// The last global position folded.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits until the directory has folded `position`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), WaitTimeout> {
        let mut rx = self.position.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(WaitTimeout {
                wanted: position,
                projected: self.position(),
            }),
        }
    }

    /// A tenant by slug, with its status and key ring.
    pub fn tenant_by_slug(&self, slug: &str) -> Option<Arc<TenantState>> {
        let inner = self.read();
        let id = inner.slugs.get(slug)?;
        inner.tenants.get(id).cloned()
    }

    pub fn tenant(&self, tenant_id: Uuid) -> Option<Arc<TenantState>> {
        self.read().tenants.get(&tenant_id).cloned()
    }

    /// A client of `tenant_id`. A client id of another tenant is simply not found.
    pub fn client(&self, tenant_id: Uuid, client_id: &str) -> Option<Arc<ClientEntry>> {
        self.read().clients.get(&tenant_id)?.get(client_id).cloned()
    }

    /// Up to `limit` clients of the tenant ordered by id, after `after` if given, and whether
    /// more follow.
    pub fn clients_page(
        &self,
        tenant_id: Uuid,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<Arc<ClientEntry>>, bool) {
        let inner = self.read();
        let Some(clients) = inner.clients.get(&tenant_id) else {
            return (Vec::new(), false);
        };
        let range = match after {
            Some(after) => clients
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => clients.range::<str, _>(..),
        };
        let mut page: Vec<_> = range.take(limit + 1).map(|(_, c)| c.clone()).collect();
        let more = page.len() > limit;
        page.truncate(limit);
        (page, more)
    }

    /// An issued token by the SHA-256 of its compact form.
    pub fn token(&self, token_hash: &Hash32) -> Option<Arc<IssuedToken>> {
        self.read().tokens.get(token_hash).cloned()
    }

    pub fn is_revoked(&self, jti: &Uuid) -> bool {
        self.read().revoked.contains_key(jti)
    }

    /// Records a token whose `token.issued` event is durable, ahead of the fold.
    pub fn note_issued(&self, token_hash: Hash32, token: IssuedToken) {
        self.write().tokens.insert(token_hash, Arc::new(token));
    }

    /// Records a revocation whose `token.revoked` event is durable, ahead of the fold.
    pub fn note_revoked(&self, jti: Uuid, expires_at: Timestamp) {
        self.write().revoked.insert(jti, expires_at);
    }

    /// Follows `log` from the beginning, folding every event, until the handle is dropped or
    /// stopped.
    pub fn follow(self: &Arc<Self>, log: Arc<dyn EventLog>) -> DirectoryTask {
        let directory = self.clone();
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let events = tessera_event_log::subscribe(log, directory.position(), READ_BATCH);
            let mut events = std::pin::pin!(events);
            loop {
                let next: Option<Result<Vec<RecordedEvent>, LogError>> = tokio::select! {
                    next = events.next() => next,
                    _ = stop_rx.wait_for(|s| *s) => return,
                };
                match next {
                    Some(Ok(batch)) => {
                        if let Err((position, error)) = directory.apply(&batch) {
                            tracing::error!(
                                position,
                                %error,
                                "undecodable event in the log: the OAuth directory stops before it"
                            );
                            let _ = stop_rx.wait_for(|s| *s).await;
                            return;
                        }
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "reading the event log failed; retrying");
                    }
                    None => return,
                }
            }
        });
        DirectoryTask { stop, task }
    }
}

/// The task that keeps a [`Directory`] current.
pub struct DirectoryTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DirectoryTask {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "OAuth directory task failed");
        }
    }
}

impl Inner {
    fn fold(&mut self, recorded: &RecordedEvent, event: &Event) {
        let envelope = &recorded.envelope;
        let tenant_id = envelope.tenant_id;
        let at = envelope.recorded_at;
        self.log_time = self.log_time.max(at);
        match event {
            Event::TenantCreated(created) => {
                self.slugs.insert(created.slug.clone(), tenant_id);
                Arc::make_mut(self.tenants.entry(tenant_id).or_default()).evolve(event);
            }
            Event::TenantUpdated(_)
            | Event::TenantSettingsChanged(_)
            | Event::TenantActivated(_)
            | Event::TenantCancelled(_)
            | Event::TenantFrozen(_)
            | Event::TenantSuspended(_)
            | Event::TenantReactivated(_)
            | Event::TenantArchived(_)
            | Event::SigningKeyRotated(_)
            | Event::SigningKeyRetired(_) => {
                if let Some(tenant) = self.tenants.get_mut(&tenant_id) {
                    Arc::make_mut(tenant).evolve(event);
                }
            }
            Event::OAuthClientRegistered(_)
            | Event::OAuthClientUpdated(_)
            | Event::OAuthClientSecretRegenerated(_)
            | Event::OAuthClientDeactivated(_) => {
                self.fold_client(&envelope.stream_id, tenant_id, at, event);
            }
            Event::TokenIssuedV1(issued) => {
                if issued.expires_at > self.log_time {
                    self.tokens.insert(
                        *issued.token_hash.expose(),
                        Arc::new(IssuedToken {
                            tenant_id,
                            client_id: issued.client_id.clone(),
                            jti: issued.jti,
                            scopes: issued.scopes.clone(),
                            audience: issued.audience.clone(),
                            kid: issued.kid.clone(),
                            issued_at: issued.issued_at,
                            expires_at: issued.expires_at,
                        }),
                    );
                }
            }
            // A v2 token carries no hash to index it by: this node noted it when it issued it
            // (`note_issued`), and any other presentation is verified by its signature.
            Event::TokenIssued(_) => {}
            Event::TokenRevoked(revoked) => {
                if revoked.expires_at > self.log_time {
                    self.revoked.insert(revoked.jti, revoked.expires_at);
                }
            }
            Event::ApiKeyIssued(_)
            | Event::ApiKeyRevoked(_)
            | Event::ApiKeyUsed(_)
            | Event::ReservationClaimed(_)
            | Event::ReservationReleased(_)
            | Event::AuditRecorded(_)
            | Event::UserCreated(_)
            | Event::UserUpdated(_)
            | Event::UserEmailChanged(_)
            | Event::UserDisabled(_)
            | Event::UserEnabled(_)
            | Event::UserPasswordSet(_)
            | Event::UserErased(_)
            | Event::TotpEnrollmentStarted(_)
            | Event::TotpEnrolled(_)
            | Event::TotpUsed(_)
            | Event::TotpRemoved(_)
            | Event::RecoveryCodesGenerated(_)
            | Event::RecoveryCodeUsed(_)
            | Event::RecoveryCodesRevoked(_)
            | Event::PasskeyRegistered(_)
            | Event::PasskeyUsed(_)
            | Event::PasskeyRemoved(_)
            | Event::MfaReset(_)
            | Event::WebauthnPolicyChanged(_) => {}
        }
        if self.log_time.as_micros() >= self.next_prune {
            self.prune();
        }
    }

    fn fold_client(&mut self, stream_id: &str, tenant_id: Uuid, at: Timestamp, event: &Event) {
        let Some(client_id) = client_id_of_stream(stream_id) else {
            return;
        };
        let clients = self.clients.entry(tenant_id).or_default();
        let mut state = OAuthClientState {
            client: clients.get(&client_id).map(|entry| entry.client.clone()),
        };
        state.evolve(event);
        let Some(client) = state.client else {
            return;
        };
        let previous = clients.get(&client_id);
        let entry = ClientEntry {
            tenant_id,
            created_at: previous.map_or(at, |p| p.created_at),
            updated_at: at,
            deactivated_at: match event {
                Event::OAuthClientDeactivated(_) => Some(at),
                _ => previous.and_then(|p| p.deactivated_at),
            },
            client,
        };
        clients.insert(client_id, Arc::new(entry));
    }

    fn prune(&mut self) {
        let now = self.log_time;
        self.tokens.retain(|_, token| token.expires_at > now);
        self.revoked.retain(|_, expires_at| *expires_at > now);
        self.next_prune = now.as_micros().saturating_add(PRUNE_EVERY_MICROS);
    }
}

/// The client id of a stream `{tenant}/oauth-client/{client_id}`.
fn client_id_of_stream(stream_id: &str) -> Option<String> {
    match StreamId::parse(stream_id)? {
        StreamId::OAuthClient { client_id, .. } => Some(client_id),
        _ => None,
    }
}
