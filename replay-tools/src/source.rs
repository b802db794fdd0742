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
//! - [`scan`] walks the log in global order, page by page, reporting progress.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use tessera_event_log::{Backend, EventLog, LogConfig};
use tessera_event_schemas::{Envelope, Event, RecordedEvent, Timestamp};
use uuid::Uuid;

/// Events read per `read_all` call.
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
        let page = log.read_all(after, PAGE).await?;
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
