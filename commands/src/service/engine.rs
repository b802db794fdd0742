//! The engine every command runs on: load a stream, fold it, decide, append with expected
//! versions, retry on conflict.
//!
//! An attempt reads the streams it needs, folds them with the domain's `evolve`, lets the domain
//! `decide`, and returns a [`Plan`]: the writes of ONE atomic append, each guarded by the version
//! its stream was read at. [`CommandService::run`] appends the plan and, on a version conflict,
//! throws the attempt away and redoes it from a fresh read, up to [`MAX_RETRIES`] times, while
//! holding the in-process queue of the command's stream ([`StreamLocks`]).
//!
//! The shapes commands share are written once here: [`CommandService::execute`] (one stream),
//! [`CommandService::execute_in_open_tenant`] (a child aggregate of a tenant that must exist
//! and not be archived) and [`CommandService::record`] (a fact, appended with expected version
//! "any" and without the queue). Aggregate modules only gather inputs and build commands.
//!
//! This module knows no particular aggregate but the tenant, whose openness guards its children.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tessera_domain::tenant::{Tenant, TenantState};
use tessera_domain::{Aggregate, DomainError};
use tessera_event_log::{AppendError, ExpectedVersion, StreamWrite};
use tessera_event_schemas::{Event, EventMetadata, ProposedEvent, RecordedEvent, Timestamp};
use uuid::Uuid;

use super::CommandService;
use crate::CommandError;
use tessera_crypto as crypto;

/// Retries after a version conflict before giving up with [`CommandError::Concurrency`].
pub const MAX_RETRIES: u32 = 5;
/// Events read per `read_stream` call while loading an aggregate.
pub(super) const PAGE: usize = 512;

/// How [`CommandError::NotFound`] names an aggregate: `"tenant"`, `"api_key"`, ... Each
/// aggregate module implements it for its state type, so that an [`Address`] cannot name the
/// wrong kind.
pub(super) trait Kind: Aggregate {
    const KIND: &'static str;
}

/// One aggregate instance: the stream it lives in and the id a `NotFound` names.
pub(super) struct Address<A> {
    pub stream: String,
    pub id: String,
    aggregate: PhantomData<fn() -> A>,
}

impl<A: Kind> Address<A> {
    pub fn new(stream: String, id: impl ToString) -> Self {
        Self {
            stream,
            id: id.to_string(),
            aggregate: PhantomData,
        }
    }

    pub fn not_found(&self) -> CommandError {
        CommandError::NotFound {
            kind: A::KIND,
            id: self.id.clone(),
        }
    }
}

/// A stream as loaded: the folded state, its version and the global position of its last event.
pub(super) struct Loaded<A> {
    pub state: A,
    pub version: u64,
    pub position: u64,
}

impl<A> Loaded<A> {
    /// The version to append at: exactly the one read.
    pub fn expected(&self) -> ExpectedVersion {
        expected(self.version)
    }
}

impl<A: Kind> Loaded<A> {
    /// A domain refusal as a command error: `NotFound` when the aggregate does not exist (the
    /// domain says `NotFound` and the stream is empty), `Rejected` otherwise.
    pub fn reject(&self, error: DomainError, address: &Address<A>) -> CommandError {
        match error {
            DomainError::NotFound if self.version == 0 => address.not_found(),
            other => CommandError::Rejected(other),
        }
    }
}

/// The expected version of an append to a stream read at `version` (0: it does not exist).
pub(super) fn expected(version: u64) -> ExpectedVersion {
    if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(version)
    }
}

/// What one attempt wants to append, and what to return once it has.
pub(super) struct Plan<T> {
    writes: Vec<StreamWrite>,
    /// Streams on which a version conflict is a final answer rather than a race to retry.
    final_conflicts: Vec<(String, DomainError)>,
    value: T,
    /// The position to report when the plan appends nothing.
    position: u64,
}

impl<T> Plan<T> {
    pub fn new(value: T, position: u64) -> Self {
        Self {
            writes: Vec::new(),
            final_conflicts: Vec::new(),
            value,
            position,
        }
    }

    pub fn with_value<U>(self, value: U) -> Plan<U> {
        Plan {
            writes: self.writes,
            final_conflicts: self.final_conflicts,
            value,
            position: self.position,
        }
    }

    /// Adds a write if it has events.
    pub fn push(&mut self, write: StreamWrite) {
        if !write.events.is_empty() {
            self.writes.push(write);
        }
    }

    /// Requires `stream_id` to still be at `version` when the append commits, writing nothing
    /// to it.
    pub fn guard(&mut self, stream_id: String, version: u64) {
        self.writes.push(StreamWrite {
            stream_id,
            expected: expected(version),
            events: Vec::new(),
        });
    }

    /// The writes planned so far, for a caller that joins them to another command's append
    /// (`create_user_with`'s `also`).
    pub fn into_writes(self) -> Vec<StreamWrite> {
        self.writes
    }

    /// A version conflict on `stream_id` is answered with `error` at once instead of retried
    /// (a reservation that must not exist yet: the conflict is a duplicate, not a race).
    pub fn conflict_is_final(&mut self, stream_id: String, error: DomainError) {
        self.final_conflicts.push((stream_id, error));
    }
}

impl CommandService {
    /// Load, decide, append on one stream, with retries. `command` builds the command (and a
    /// value to return) from the current state; it runs again on every retry.
    pub(super) async fn execute<A, T>(
        &self,
        meta: &EventMetadata,
        tenant_id: Uuid,
        address: &Address<A>,
        command: impl Fn(&A) -> Result<(A::Command, T), CommandError>,
    ) -> Result<(T, u64), CommandError>
    where
        A: Kind,
    {
        let command = &command;
        self.run(&address.stream, move || async move {
            let loaded = self.load::<A>(&address.stream).await?;
            let (command, value) = command(&loaded.state)?;
            let events = loaded
                .state
                .decide(command)
                .map_err(|error| loaded.reject(error, address))?;
            let mut plan = Plan::new(value, loaded.position);
            plan.push(self.write(
                meta,
                self.clock.now(),
                address.stream.clone(),
                loaded.expected(),
                tenant_id,
                events,
            ));
            Ok(plan)
        })
        .await
    }

    /// A command on `child`, an aggregate that lives inside a tenant (an API key, a client, and
    /// later users, sessions, consents, vault entries): load the tenant and require it to exist
    /// and not be archived (`action` names the command in the refusal), decide on the child,
    /// and append the child's events with the tenant's stream guarded at the version read.
    /// Appending nothing to the tenant's stream, but at that version, makes a concurrent
    /// archival conflict (and the attempt rerun) instead of slipping past. `command` sees the
    /// open tenant and the child's state, and runs again on every retry.
    pub(super) async fn execute_in_open_tenant<A, T>(
        &self,
        meta: &EventMetadata,
        tenant_id: Uuid,
        action: &'static str,
        child: &Address<A>,
        command: impl Fn(&Tenant, &A) -> Result<(A::Command, T), CommandError>,
    ) -> Result<(T, u64), CommandError>
    where
        A: Kind,
    {
        let command = &command;
        self.run(&child.stream, move || async move {
            let (open, tenant_stream, tenant_version) =
                self.load_open_tenant(tenant_id, action).await?;
            let loaded = self.load::<A>(&child.stream).await?;
            let (command, value) = command(&open, &loaded.state)?;
            let events = loaded
                .state
                .decide(command)
                .map_err(|error| loaded.reject(error, child))?;
            let mut plan = Plan::new(value, loaded.position);
            plan.guard(tenant_stream, tenant_version);
            plan.push(self.write(
                meta,
                self.clock.now(),
                child.stream.clone(),
                loaded.expected(),
                tenant_id,
                events,
            ));
            Ok(plan)
        })
        .await
    }

    /// The tenant, required to exist and not be archived (`action` names the command in the
    /// refusal), with its stream and the version read: a plan guards that version so that a
    /// concurrent archival conflicts instead of slipping past.
    pub(super) async fn load_open_tenant(
        &self,
        tenant_id: Uuid,
        action: &'static str,
    ) -> Result<(Tenant, String, u64), CommandError> {
        let address = Address::tenant(tenant_id);
        let tenant = self.load::<TenantState>(&address.stream).await?;
        let open = tenant
            .state
            .require_open(action)
            .map_err(|error| tenant.reject(error, &address))?
            .clone();
        Ok((open, address.stream, tenant.version))
    }

    /// Runs `attempt` and appends its plan, redoing both after a version conflict. Holds the
    /// in-process lock of `lock_stream` throughout.
    pub(super) async fn run<T, F, Fut>(
        &self,
        lock_stream: &str,
        mut attempt: F,
    ) -> Result<(T, u64), CommandError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Plan<T>, CommandError>>,
    {
        let _serialized = self.locks.lock(lock_stream).await;
        let mut retries = 0;
        loop {
            let plan = attempt().await?;
            if plan.writes.iter().all(|write| write.events.is_empty()) {
                return Ok((plan.value, plan.position));
            }
            match self.log.append(plan.writes).await {
                Ok(outcome) => return Ok((plan.value, outcome.last_position)),
                Err(AppendError::Conflict {
                    stream_id,
                    expected,
                    actual,
                }) => {
                    if let Some((_, error)) = plan
                        .final_conflicts
                        .into_iter()
                        .find(|(stream, _)| *stream == stream_id)
                    {
                        return Err(CommandError::Rejected(error));
                    }
                    if retries >= MAX_RETRIES {
                        tracing::warn!(%stream_id, retries, "giving up after repeated version conflicts");
                        return Err(CommandError::Concurrency);
                    }
                    retries += 1;
                    tracing::debug!(%stream_id, ?expected, actual, retries, "version conflict; retrying");
                    tokio::time::sleep(backoff(retries)).await;
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Appends one fact (an issued token, a revocation, API key usage, an audit entry) with
    /// expected version "any" and without the per-stream queue, so that concurrent facts about
    /// one stream share a group commit. Returns its position once it is durable.
    pub(super) async fn record(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        stream_id: String,
        event: Event,
    ) -> Result<u64, CommandError> {
        self.record_at(meta, tenant_id, stream_id, event, self.clock.now())
            .await
    }

    /// [`CommandService::record`] of a fact that happened at `at`, a time the caller took
    /// from the same injected clock (a token's event is stamped with the time it was minted
    /// with, which its payload then need not repeat).
    pub(super) async fn record_at(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        stream_id: String,
        event: Event,
        at: Timestamp,
    ) -> Result<u64, CommandError> {
        let write = self.write(
            &meta,
            at,
            stream_id,
            ExpectedVersion::Any,
            tenant_id,
            vec![event],
        );
        let outcome = self.log.append(vec![write]).await?;
        Ok(outcome.last_position)
    }

    /// Reads a whole stream and folds it.
    pub(super) async fn load<A: Aggregate>(
        &self,
        stream_id: &str,
    ) -> Result<Loaded<A>, CommandError> {
        let mut loaded = Loaded {
            state: A::default(),
            version: 0,
            position: 0,
        };
        loop {
            let page = self
                .log
                .read_stream(stream_id, loaded.version, PAGE)
                .await?;
            for recorded in &page {
                let event = decode(recorded)?;
                loaded.state.evolve(&event);
                loaded.version = recorded.envelope.stream_version;
                loaded.position = recorded.envelope.global_position;
            }
            if page.len() < PAGE {
                return Ok(loaded);
            }
        }
    }

    /// Wraps decided events for the log: a fresh id each, the time, the request metadata.
    pub(super) fn write(
        &self,
        meta: &EventMetadata,
        now: Timestamp,
        stream_id: String,
        expected: ExpectedVersion,
        tenant_id: Uuid,
        events: Vec<Event>,
    ) -> StreamWrite {
        let events = events
            .iter()
            .map(|event| ProposedEvent::new(event, self.ids.new_id(), tenant_id, now, meta.clone()))
            .collect();
        StreamWrite {
            stream_id,
            expected,
            events,
        }
    }
}

/// A stored event decoded (and upcast); one that cannot be is a corrupt log, an internal error.
pub(super) fn decode(recorded: &RecordedEvent) -> Result<Event, CommandError> {
    recorded.decode().map_err(|error| {
        CommandError::Internal(format!(
            "stream {} version {}: {error}",
            recorded.envelope.stream_id, recorded.envelope.stream_version
        ))
    })
}

/// Exponential backoff with full jitter (1, 2, 4, 8, 16 ms ceilings), so that processes that
/// collided do not collide again in lockstep.
pub(super) fn backoff(retry: u32) -> Duration {
    let ceiling_micros = 1000u64 << retry.saturating_sub(1).min(10);
    Duration::from_micros(crypto::jitter(ceiling_micros) + 1)
}

/// One async mutex per stream id, so that commands on one aggregate queue within a process.
/// Entries are weak and swept when the map grows, so idle streams cost nothing.
#[derive(Default)]
pub(super) struct StreamLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl StreamLocks {
    async fn lock(&self, stream_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = {
            // The map holds no invariant a panic could break, so a poisoned lock is still fine.
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            if locks.len() >= 1024 {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(stream_id).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    let mutex = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(stream_id.to_owned(), Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        mutex.lock_owned().await
    }
}
