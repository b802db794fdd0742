//! Helpers for the tables' and the batch machinery's unit tests: sample events and envelopes
//! of one tenant.

use tessera_event_schemas::events::{Event, samples};
use tessera_event_schemas::primitives::Timestamp;
use tessera_event_schemas::{Envelope, streams};
use uuid::Uuid;

use crate::tables::{TableProjection, Tenants};
use crate::views::TenantView;

/// The samples' tenant.
pub(crate) const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
/// The samples' API key.
pub(crate) const KEY: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002);
/// The samples' user.
pub(crate) const USER: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005);

/// The sample of `event_type`.
pub(crate) fn sample(event_type: &str) -> Event {
    samples::current()
        .into_iter()
        .find(|e| e.event_type() == event_type)
        .unwrap()
}

/// An envelope of [`TENANT`] by the system, with zeroed hashes.
pub(crate) fn envelope(stream_id: String, version: u64, position: u64, at: i64) -> Envelope {
    Envelope::builder()
        .event_id(Uuid::from_u128(u128::from(position)))
        .stream(stream_id)
        .stream_version(version)
        .position(position)
        .tenant(TENANT)
        .recorded_at(Timestamp::from_micros(at))
        .correlation_id("corr")
        .build()
}

/// An envelope of [`TENANT`]'s own stream at `version`, which is also its position.
pub(crate) fn tenant_env(version: u64, at: i64) -> Envelope {
    envelope(streams::tenant(TENANT), version, version, at)
}

/// Folds `events` (all on [`TENANT`]'s stream, one version and millisecond apart) from
/// nothing into its tenant row.
pub(crate) fn fold_tenant(events: &[Event]) -> Option<TenantView> {
    events.iter().enumerate().fold(None, |row, (i, event)| {
        let v = i as u64 + 1;
        Tenants::reduce(row, &TENANT, &tenant_env(v, 1_000 * v as i64), event)
    })
}
