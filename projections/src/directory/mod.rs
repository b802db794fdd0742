//! The OAuth directory: an in-memory read model for the authorization server's hot paths.
//!
//! The token, introspection and revocation endpoints answer thousands of requests a second;
//! each needs the tenant (by slug, with its status and signing keys), the client (by id, with
//! its secret hash, grants and scopes) and, for introspection, whether a token was revoked. A SQL
//! round trip per lookup would cost more than the rest of the request, so this projection keeps
//! exactly that in memory, folded with the domain's own `evolve` (so it cannot disagree with the
//! write side about a tenant's or a client's state).
//!
//! It keeps no copy of issued tokens: a signed access token carries its own claims, and
//! introspection verifies it against the tenant's keys (see the API's `oauth::verify`). What
//! cannot be derived from a token stays here, each kept only until it can no longer matter
//! ([`expiring`]): today the revoked token ids, each until the token's own expiry (judged by the
//! time of the newest event folded, so that a replay forgets exactly what the live run forgot).
//! The links from authorization codes to the tokens they produced and refresh-token families
//! belong here too when those grants arrive, as further `Expiring` maps of `Inner`, each with its
//! arm in the fold and its field in the snapshot.
//!
//! # Memory
//! Every structure has a bound that does not grow with the log or with issued tokens:
//! - tenants, slugs and clients: one entry per tenant and per registered client, grown only by
//!   administration (a tenant's key ring by its rotations);
//! - revoked token ids: one entry (about 50 bytes) per token revoked within the longest access
//!   token lifetime (`MAX_ACCESS_TOKEN_TTL_SECS`, a day), plus those expired in the last sweep
//!   ([`PRUNE_EVERY_MICROS`] of log time).
//!
//! # Starts
//! A start restores the newest usable [`snapshot`] (taken at a log position, periodically and at
//! a clean stop) and folds only the log after it ([`Directory::open`]); a missing, corrupt or
//! foreign snapshot means a fold from position 0, said in the log with a warning.
//!
//! The revocation endpoint records a revocation with [`Directory::note_revoked`] right after
//! its event is durable and before answering, so that a revoked token is inactive the moment
//! revocation has answered. Folding the same event later is idempotent.
//!
//! Unlike the SQL read models, this one holds sealed private keys (inside the domain's
//! `TenantState`): they stay sealed here and in its snapshots.
//!
//! # Layout
//! - this file: [`Directory`], its fold and the task that follows the log.
//! - [`expiring`]: the map of entries that leave at their own expiry.
//! - [`snapshot`]: the snapshot's encoding, where it is stored, and restoring from it.

mod expiring;
pub mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tessera_domain::Aggregate;
use tessera_domain::oauth_client::{OAuthClient, OAuthClientState};
use tessera_domain::tenant::TenantState;
use tessera_event_log::EventLog;
use tessera_event_schemas::events::{SigningAlg, TenantStatus};
use tessera_event_schemas::{Event, Hash32, RecordedEvent, StreamId, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::WaitTimeout;
use expiring::Expiring;
pub use snapshot::DirectorySnapshots;

/// Events asked of the log per read while following it.
/// How often (in log time) expired revocations are swept out.
pub const PRUNE_EVERY_MICROS: i64 = 60 * 1_000_000;

/// One registered client and when it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEntry {
    pub tenant_id: Uuid,
    pub client: OAuthClient,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deactivated_at: Option<Timestamp>,
}

/// The directory's state as of one log position: what a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Inner {
    tenants: HashMap<Uuid, Arc<TenantState>>,
    slugs: HashMap<String, Uuid>,
    /// Per tenant, clients ordered by id (the admin listing pages in this order).
    clients: HashMap<Uuid, BTreeMap<String, Arc<ClientEntry>>>,
    /// Revoked token ids, each kept until the token's expiry.
    revoked: Expiring<Uuid, ()>,
    /// The `recorded_at` of the newest event folded.
    log_time: Timestamp,
    next_prune: i64,
    /// The position of the last event folded, and its link in the log's hash chain (how a
    /// snapshot is matched with the log it came from).
    position: u64,
    log_hash: Hash32,
}

/// What this process's start did: restored a snapshot or folded from 0, and how many events it
/// folded before it held the log's head as it stood at the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartReport {
    /// The position of the snapshot the start restored; `None` when it folded from position 0.
    pub restored_from: Option<u64>,
    /// The log's head when the directory was opened.
    pub head_at_start: u64,
    /// Events folded until that head was reached; `None` until it is.
    pub folded_to_head: Option<u64>,
}

/// The in-memory OAuth directory. Share it behind an `Arc`.
pub struct Directory {
    inner: RwLock<Inner>,
    position: watch::Sender<u64>,
    /// Events folded since this process started.
    folded: AtomicU64,
    start: Mutex<StartReport>,
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
        Self::restored(Inner::default())
    }
}

impl Directory {
    /// An empty directory, folded by [`Directory::apply`] (the server opens one with
    /// [`Directory::open`], which restores, follows and snapshots).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn restored(inner: Inner) -> Self {
        let position = inner.position;
        Self {
            inner: RwLock::new(inner),
            position: watch::Sender::new(position),
            folded: AtomicU64::new(0),
            start: Mutex::default(),
        }
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
        for (recorded, event) in &decoded {
            inner.fold(recorded, event);
        }
        let position = inner.position;
        drop(inner);
        self.folded
            .fetch_add(decoded.len() as u64, Ordering::Relaxed);
        if !decoded.is_empty() {
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

    /// What this process's start restored and folded.
    pub fn start_report(&self) -> StartReport {
        *self.start.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// The tenants that serve (neither suspended, frozen nor archived), in no order.
    pub fn serving_tenants(&self) -> Vec<tessera_domain::tenant::Tenant> {
        self.read()
            .tenants
            .values()
            .filter_map(|state| state.tenant.as_ref())
            .filter(|tenant| tenant.serves())
            .cloned()
            .collect()
    }

    /// The tenants, not archived, whose key ring has no active key of `alg`: those a start
    /// gives one (every tenant keeps an RS256 key for ID tokens).
    pub fn tenants_without_active_key(&self, alg: SigningAlg) -> Vec<Uuid> {
        self.read()
            .tenants
            .values()
            .filter_map(|state| state.tenant.as_ref())
            .filter(|tenant| {
                tenant.status != TenantStatus::Archived && tenant.active_key_for(alg).is_none()
            })
            .map(|tenant| tenant.id)
            .collect()
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

    pub fn is_revoked(&self, jti: &Uuid) -> bool {
        self.read().revoked.contains(jti)
    }

    /// Revoked token ids held, expired ones awaiting the next sweep included.
    pub fn revocations(&self) -> usize {
        self.read().revoked.len()
    }

    /// Records a revocation whose `token.revoked` event is durable, ahead of the fold.
    pub fn note_revoked(&self, jti: Uuid, expires_at: Timestamp) {
        self.write().revoked.insert(jti, (), expires_at);
    }

    /// Notes, once, that the fold reached the head the start had to catch up with.
    fn note_progress(&self) {
        let mut start = self.start.lock().unwrap_or_else(PoisonError::into_inner);
        if start.folded_to_head.is_none() && self.position() >= start.head_at_start {
            start.folded_to_head = Some(self.folded.load(Ordering::Relaxed));
        }
    }
}

/// Keeps `directory` current from its position on, until `stop` turns true.
async fn follow_log(
    directory: Arc<Directory>,
    log: Arc<dyn EventLog>,
    stop: watch::Receiver<bool>,
) {
    let from = directory.position();
    crate::follow::follow_log(log, from, "OAuth directory", stop, |batch| {
        directory.apply(batch)?;
        directory.note_progress();
        Ok(())
    })
    .await;
}

/// The tasks that keep a [`Directory`] current and snapshot it (see [`Directory::open`]).
pub struct DirectoryTask {
    directory: Arc<Directory>,
    log: Arc<dyn EventLog>,
    stop: watch::Sender<bool>,
    follower: JoinHandle<()>,
    snapshots: DirectorySnapshots,
    snapshot_taker: JoinHandle<()>,
}

impl DirectoryTask {
    /// Folds what the log holds now (for up to 10 seconds), stops following, and writes a last
    /// snapshot, so that the next start folds nothing.
    pub async fn shutdown(self) {
        if let Ok(head) = self.log.head_position().await {
            let _ = self.directory.wait_for(head, Duration::from_secs(10)).await;
        }
        let _ = self.stop.send(true);
        if let Err(error) = self.follower.await {
            tracing::error!(%error, "OAuth directory task failed");
        }
        if let Err(error) = self.snapshot_taker.await {
            tracing::error!(%error, "OAuth directory snapshot task failed");
        }
        snapshot::save(&self.directory, &self.snapshots).await;
    }
}

impl Inner {
    fn fold(&mut self, recorded: &RecordedEvent, event: &Event) {
        let envelope = &recorded.envelope;
        let tenant_id = envelope.tenant_id;
        let at = envelope.recorded_at;
        self.log_time = self.log_time.max(at);
        self.position = envelope.global_position;
        self.log_hash = envelope.log_hash;
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
            | Event::SigningKeyRetired(_)
            | Event::SigningKeyAdded(_) => {
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
            Event::TokenRevoked(revoked) => {
                if revoked.expires_at > self.log_time {
                    self.revoked.insert(revoked.jti, (), revoked.expires_at);
                }
            }
            // An issued token needs no entry, whichever version recorded it: it is verified by
            // its signature when presented.
            Event::TokenIssuedV1(_)
            | Event::TokenIssued(_)
            | Event::ApiKeyIssued(_)
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
            | Event::SignInSucceeded(_)
            | Event::SignInFailed(_)
            | Event::SignInUnlocked(_)
            | Event::SessionStarted(_)
            | Event::SessionSeen(_)
            | Event::SessionEnded(_)
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
            | Event::WebauthnPolicyChanged(_)
            | Event::AuthorizationCodeIssued(_)
            | Event::AuthorizationCodeRedeemed(_)
            | Event::AuthorizationCodeReused(_)
            | Event::ConsentGranted(_)
            | Event::ConsentRevoked(_)
            | Event::RefreshTokenIssued(_)
            | Event::RefreshTokenRotated(_)
            | Event::RefreshTokenRevoked(_)
            | Event::UserPasswordResetRequested(_)
            | Event::UserEmailVerificationRequested(_)
            | Event::UserEmailVerified(_)
            | Event::TenantAdminInviteFailed(_)
            | Event::InvitationCreated(_)
            | Event::InvitationResent(_)
            | Event::InvitationAccepted(_)
            | Event::InvitationRevoked(_)
            | Event::EmailQueued(_)
            | Event::EmailSent(_)
            | Event::EmailFailed(_)
            | Event::ProductDefined(_)
            | Event::ProductUpdated(_)
            | Event::ProductRemoved(_)
            | Event::ProductRequested(_)
            | Event::EntitlementGranted(_)
            | Event::EntitlementTrialStarted(_)
            | Event::EntitlementRevoked(_)
            | Event::EntitlementExpired(_)
            | Event::OAuthClientTokenClaimsSet(_)
            | Event::FederationConfigured(_)
            | Event::FederationRemoved(_)
            | Event::FederationSignedIn(_)
            | Event::FederationLinked(_)
            | Event::FederationLinkRequested(_)
            | Event::FederationRefused(_)
            | Event::VaultKeyAdded(_)
            | Event::VaultMinimumSet(_)
            | Event::VaultRewrapStarted(_)
            | Event::VaultDestroyed(_)
            | Event::IntegrationDefined(_)
            | Event::IntegrationRemoved(_)
            | Event::IntegrationAppSet(_)
            | Event::IntegrationAppRemoved(_)
            | Event::CredentialStored(_)
            | Event::CredentialRefreshed(_)
            | Event::CredentialRefreshFailed(_)
            | Event::CredentialNeedsReauth(_)
            | Event::CredentialRewrapped(_)
            | Event::CredentialRemoved(_)
            | Event::CredentialAccessed(_)
            | Event::ConnectCompleted(_)
            | Event::ConnectFailed(_)
            | Event::ProviderKeySet(_)
            | Event::ProviderKeyInvalidated(_)
            | Event::ProviderKeyRemoved(_) => {}
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
        self.revoked.prune(now);
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
