//! Reservations of platform-wide unique names (tenant slugs and domains), planned into the
//! append of the tenant command that claims or releases them.
//!
//! Uniqueness is decided in the append itself: a reservation stream is written at the version
//! it was read at, so two tenants claiming one name cannot both commit. Reservations belong to
//! the system tenant and are never written on their own.

use tessera_domain::DomainError;
use tessera_domain::reservation::{self, ReservationState};
use tessera_event_log::ExpectedVersion;
use tessera_event_schemas::events::ReservationKind;
use tessera_event_schemas::{Event, EventMetadata, SYSTEM_TENANT_ID, Timestamp, streams};
use uuid::Uuid;

use super::CommandService;
use super::engine::Plan;
use crate::CommandError;

impl CommandService {
    /// Claims a slug for `owner`. Slugs are never released, so the reservation stream must not
    /// exist at all, and a conflict on it is a duplicate slug (final), not a race.
    pub(super) fn plan_slug<T>(
        &self,
        plan: &mut Plan<T>,
        meta: &EventMetadata,
        now: Timestamp,
        slug: &str,
        owner: Uuid,
    ) -> Result<(), CommandError> {
        let kind = ReservationKind::TenantSlug;
        let stream = streams::reservation(kind.as_str(), slug);
        let claim = reservation::claim(&ReservationState::default(), kind, slug, owner)?;
        plan.push(self.write(
            meta,
            now,
            stream.clone(),
            ExpectedVersion::NoStream,
            SYSTEM_TENANT_ID,
            claim,
        ));
        plan.conflict_is_final(stream, DomainError::AlreadyExists(format!("slug {slug:?}")));
        Ok(())
    }

    /// Claims `value` for `owner`, at the version of the reservation stream read now.
    pub(super) async fn plan_claim<T>(
        &self,
        plan: &mut Plan<T>,
        meta: &EventMetadata,
        now: Timestamp,
        kind: ReservationKind,
        value: &str,
        owner: Uuid,
    ) -> Result<(), CommandError> {
        self.plan_reservation(plan, meta, now, kind, value, |state| {
            reservation::claim(state, kind, value, owner)
        })
        .await
    }

    /// Releases `owner`'s claim on `value`, at the version of the reservation stream read now.
    pub(super) async fn plan_release<T>(
        &self,
        plan: &mut Plan<T>,
        meta: &EventMetadata,
        now: Timestamp,
        kind: ReservationKind,
        value: &str,
        owner: Uuid,
    ) -> Result<(), CommandError> {
        self.plan_reservation(plan, meta, now, kind, value, |state| {
            reservation::release(state, owner)
        })
        .await
    }

    /// Loads the reservation of `value` and plans what `decide` makes of it.
    async fn plan_reservation<T>(
        &self,
        plan: &mut Plan<T>,
        meta: &EventMetadata,
        now: Timestamp,
        kind: ReservationKind,
        value: &str,
        decide: impl FnOnce(&ReservationState) -> Result<Vec<Event>, DomainError>,
    ) -> Result<(), CommandError> {
        let stream = streams::reservation(kind.as_str(), value);
        let loaded = self.load::<ReservationState>(&stream).await?;
        let events = decide(&loaded.state)?;
        plan.push(self.write(
            meta,
            now,
            stream,
            loaded.expected(),
            SYSTEM_TENANT_ID,
            events,
        ));
        Ok(())
    }
}
