//! Where the tools read from, and which part of the log they look at.
//!
//! - [`backend`] finds the log the way the server does (`--data-dir` → `<dir>/events.db`, or
//!   `--database-url`), and [`open_read_only`] opens it without a checkpoint signer; callers never
//!   `close()` it, since closing writes a checkpoint.
//! - [`Bound`] is a moment given on the command line: an RFC 3339 time (compared with each
//!   event's `recorded_at`) or a global position.
//! - [`TenantRef`] is a tenant given as a UUID or a slug; [`resolve_tenant`] turns a slug into the
//!   id of the tenant whose `tenant.created` with that slug is the latest one the bound admits.
//! - [`belongs_to`] says whether an event is the tenant's (its envelope names the tenant, or it is
//!   a slug/domain reservation the tenant owns).
//! - [`scan`] walks the log in global order, page by page, reporting progress; [`ReadAhead`]
//!   reads such pages several at a time, ahead of its consumer, and runs per-event work on them
//!   (`verify` hashes events there).

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use tessera_event_log::{Backend, EventLog, LogConfig, LogError};
use tessera_event_schemas::{Envelope, Event, RecordedEvent, Timestamp};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Events read per `read_all_bulk` call.
pub const PAGE: usize = 10_000;

/// The backend named by `database_url`, else the SQLite log `<data_dir>/events.db`, which must
/// exist (opening would otherwise create an empty log).
pub fn backend(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Backend> {
    match database_url {
        Some(url) => Ok(Backend::Postgres {
            url: url.to_owned(),
        }),
        None => {
            let path = data_dir.join("events.db");
            if !path.exists() {
                bail!("no event log at {}", path.display());
            }
            Ok(Backend::Sqlite { path })
        }
    }
}

/// Opens the log with no checkpoint signer. Never call `close()` on the result.
///
/// A log in an older storage format is migrated to the current one as it opens (see
/// `event-log/src/{sqlite,postgres}/schema.rs`): the one write a read-only tool makes, which
/// changes no event, hash or checkpoint, so that `verify` proves the same chain before and
/// after.
pub async fn open_read_only(backend: Backend) -> anyhow::Result<Arc<dyn EventLog>> {
    tessera_event_log::open(LogConfig::new(backend))
        .await
        .context("opening the event log")
}

/// A moment: every event with `recorded_at <= time`, or with `global_position <= position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Position(u64),
    Time(Timestamp),
}

impl Bound {
    /// True when the event is at or before this moment.
    pub fn admits_up_to(&self, envelope: &Envelope) -> bool {
        match self {
            Bound::Position(position) => envelope.global_position <= *position,
            Bound::Time(time) => envelope.recorded_at <= *time,
        }
    }

    /// True when the event is at or after this moment.
    pub fn admits_from(&self, envelope: &Envelope) -> bool {
        match self {
            Bound::Position(position) => envelope.global_position >= *position,
            Bound::Time(time) => envelope.recorded_at >= *time,
        }
    }

    /// The last position a scan up to this bound must read; `None` means the whole log (times
    /// need not grow with positions, so a time bound reads everything).
    pub fn last_position(&self) -> Option<u64> {
        match self {
            Bound::Position(position) => Some(*position),
            Bound::Time(_) => None,
        }
    }
}

impl FromStr for Bound {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit()) {
            return text
                .parse()
                .map(Bound::Position)
                .map_err(|error| format!("bad position {text:?}: {error}"));
        }
        Timestamp::parse_rfc3339(text)
            .map(Bound::Time)
            .ok_or_else(|| format!("{text:?} is neither a global position nor an RFC 3339 time"))
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Position(position) => write!(f, "position {position}"),
            Bound::Time(time) => write!(f, "{time}"),
        }
    }
}

/// A tenant as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantRef {
    Id(Uuid),
    Slug(String),
}

impl FromStr for TenantRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty tenant".to_owned());
        }
        Ok(match Uuid::parse_str(text) {
            Ok(id) => TenantRef::Id(id),
            Err(_) => TenantRef::Slug(text.to_owned()),
        })
    }
}

impl fmt::Display for TenantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantRef::Id(id) => write!(f, "{id}"),
            TenantRef::Slug(slug) => f.write_str(slug),
        }
    }
}

/// Whether `recorded` (decoded as `event`, when it could be) is one of the tenant's events.
pub fn belongs_to(recorded: &RecordedEvent, event: Option<&Event>, tenant_id: Uuid) -> bool {
    if recorded.envelope.tenant_id == tenant_id {
        return true;
    }
    match event {
        Some(Event::ReservationClaimed(e)) => e.owner == tenant_id,
        Some(Event::ReservationReleased(e)) => e.owner == tenant_id,
        _ => false,
    }
}

/// Reads the log in global order from position 1 up to `last_position` (or the end), calling
/// `visit` for each event and `progress` with the last position read after every page.
pub async fn scan(
    log: &dyn EventLog,
    last_position: Option<u64>,
    mut visit: impl FnMut(&RecordedEvent) -> anyhow::Result<()>,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        let page = log.read_all_bulk(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        let next = last.envelope.global_position;
        for event in &page {
            if last_position.is_some_and(|last| event.envelope.global_position > last) {
                progress(next);
                return Ok(());
            }
            visit(event)?;
        }
        progress(next);
        after = next;
        if page.len() < PAGE {
            break;
        }
    }
    Ok(())
}

/// The whole log in global order, page by page, read ahead of the consumer by tasks of their
/// own, each event paired with the result of `work` on it: while the consumer works on one page,
/// the next [`READERS`] are being read and worked on in parallel (on SQLite each read on a
/// blocking thread and a connection of its own, see `EventLog::read_all_bulk`). Dropping it
/// stops the reading.
///
/// Page `k` is "the first `page` events after position `k * page`", so pages can be read
/// without waiting for the one before. Positions are unique integers, so page `k` holds every
/// event in `(k * page, (k + 1) * page]`; where the log has a gap, a page runs on into the
/// next one's range, and the events already delivered are dropped from that one. The events
/// come out exactly as a sequential walk gives them: each once, in position order. A page
/// shorter than `page` holds everything after its start and ends the walk.
pub struct ReadAhead<X> {
    pages: mpsc::Receiver<Result<Page<X>, LogError>>,
    reader: tokio::task::JoinHandle<()>,
}

/// Events in position order and, at the same index, the result of the [`ReadAhead`]'s work on
/// each (two vectors rather than pairs, so that events are not moved once more).
pub struct Page<X> {
    pub events: Vec<RecordedEvent>,
    pub work: Vec<X>,
}

/// Pages read at the same time by a [`ReadAhead`]. With the consumer, that is one thread more
/// than the development machine's two cores, so that neither core waits when one stage stalls
/// (measured: 3 readers and 2 waiting pages verify about 5% faster than 2 and 1).
pub const READERS: usize = 3;

/// Pages read and waiting for the consumer at most.
const WAITING: usize = 2;

impl<X: Send + 'static> ReadAhead<X> {
    /// Starts reading from position 1 in pages of `page` events.
    pub fn start(log: Arc<dyn EventLog>, page: usize, work: fn(&RecordedEvent) -> X) -> Self {
        let page = page.max(1);
        let (sender, pages) = mpsc::channel(WAITING);
        let reader = tokio::spawn(async move {
            let read = |index: u64| {
                let log = log.clone();
                let after = index.saturating_mul(page as u64);
                tokio::spawn(async move {
                    let events = log.read_all_bulk(after, page).await?;
                    let work = events.iter().map(work).collect();
                    Ok::<_, LogError>(Page { events, work })
                })
            };
            let mut in_flight = std::collections::VecDeque::new();
            let mut next_index = 0u64;
            let mut delivered = 0u64;
            loop {
                while in_flight.len() < READERS {
                    in_flight.push_back(AbortOnDrop(read(next_index)));
                    next_index += 1;
                }
                let Some(mut oldest) = in_flight.pop_front() else {
                    return;
                };
                let outcome = match (&mut oldest.0).await {
                    Ok(outcome) => outcome,
                    Err(error) => Err(LogError::Unavailable(format!("log reader: {error}"))),
                };
                let mut next = match outcome {
                    Ok(next) => next,
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                };
                let last_page = next.events.len() < page;
                // After a gap, the events the previous page already ran on into.
                let seen = next
                    .events
                    .partition_point(|e| e.envelope.global_position <= delivered);
                next.events.drain(..seen);
                next.work.drain(..seen);
                if let Some(last) = next.events.last() {
                    delivered = last.envelope.global_position;
                    if sender.send(Ok(next)).await.is_err() {
                        return;
                    }
                }
                if last_page {
                    return;
                }
            }
        });
        Self { pages, reader }
    }

    /// The next page, an error that ends the walk, or `None` at the end of the log.
    pub async fn next(&mut self) -> Option<Result<Page<X>, LogError>> {
        self.pages.recv().await
    }
}

impl<X> Drop for ReadAhead<X> {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A read that stops when nobody waits for it any more.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The tenant's id: a UUID as given, or the tenant whose `tenant.created` carrying the slug is
/// the latest one at or before `at` (`None`: the whole log). `None` when no tenant matches.
pub async fn resolve_tenant(
    log: &dyn EventLog,
    tenant: &TenantRef,
    at: Option<Bound>,
    progress: impl FnMut(u64),
) -> anyhow::Result<Option<Uuid>> {
    let slug = match tenant {
        TenantRef::Id(id) => return Ok(Some(*id)),
        TenantRef::Slug(slug) => slug,
    };
    let mut found = None;
    scan(
        log,
        at.and_then(|at| at.last_position()),
        |recorded| {
            if recorded.envelope.event_type != "tenant.created"
                || !at.is_none_or(|at| at.admits_up_to(&recorded.envelope))
            {
                return Ok(());
            }
            if let Ok(Event::TenantCreated(created)) = recorded.decode()
                && created.slug == *slug
            {
                found = Some(created.tenant_id);
            }
            Ok(())
        },
        progress,
    )
    .await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_positions_and_the_rest_rfc3339_times() {
        assert_eq!("42".parse::<Bound>(), Ok(Bound::Position(42)));
        assert_eq!(
            "2027-01-15T08:00:00Z".parse::<Bound>(),
            Ok(Bound::Time(Timestamp::from_micros(1_800_000_000_000_000)))
        );
        assert!("yesterday".parse::<Bound>().is_err());
        assert_eq!(
            "acme".parse::<TenantRef>(),
            Ok(TenantRef::Slug("acme".to_owned()))
        );
        assert_eq!(
            Uuid::from_u128(5).to_string().parse::<TenantRef>(),
            Ok(TenantRef::Id(Uuid::from_u128(5)))
        );
    }
}
