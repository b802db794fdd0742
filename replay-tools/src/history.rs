//! `history`: the timeline of a tenant's changes, one entry per event.
//!
//! [`HistoryFilter`] picks the tenant's events (see [`crate::source::belongs_to`]), optionally
//! one stream or one kind of stream, between two inclusive bounds; [`HistoryEntry`] is what
//! each line shows: time, position, stream, type, actor, correlation id and a one-line
//! [`summary`] of the payload.

use serde::Serialize;
use tessera_event_schemas::{Actor, Event, RecordedEvent, StreamId, Timestamp};
use uuid::Uuid;

use crate::source::{Bound, belongs_to};

/// Which events `history` (and `export`) show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryFilter {
    pub tenant_id: Uuid,
    /// A full stream id, or one relative to the tenant (`tenant`, `api-key/{id}`, ...), or a
    /// kind of stream (`api-key`, `oauth-client`, `tokens`, `reservation`).
    pub stream: Option<String>,
    /// Inclusive lower bound.
    pub since: Option<Bound>,
    /// Inclusive upper bound.
    pub until: Option<Bound>,
}

impl HistoryFilter {
    pub fn admits(&self, recorded: &RecordedEvent, event: Option<&Event>) -> bool {
        let e = &recorded.envelope;
        if self.since.is_some_and(|since| !since.admits_from(e))
            || self.until.is_some_and(|until| !until.admits_up_to(e))
        {
            return false;
        }
        if !belongs_to(recorded, event, self.tenant_id) {
            return false;
        }
        match &self.stream {
            None => true,
            Some(wanted) => {
                e.stream_id == *wanted
                    || StreamId::parse(&e.stream_id).is_some_and(|stream| {
                        let relative = stream.relative();
                        relative == *wanted || relative.starts_with(&format!("{wanted}/"))
                    })
            }
        }
    }
}

/// A credential id as a short hex string: enough to tell passkeys apart in a timeline.
fn hex(bytes: &[u8]) -> String {
    let mut text: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 8 {
        text.push('…');
    }
    text
}

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub recorded_at: Timestamp,
    pub position: u64,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u16,
    pub actor: Actor,
    pub correlation_id: String,
    pub summary: String,
}

impl HistoryEntry {
    pub fn new(recorded: &RecordedEvent, event: Option<&Event>) -> Self {
        let e = &recorded.envelope;
        Self {
            recorded_at: e.recorded_at,
            position: e.global_position,
            stream_id: e.stream_id.clone(),
            stream_version: e.stream_version,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            actor: e.actor.clone(),
            correlation_id: e.correlation_id.clone(),
            summary: event.map_or_else(
                || "(payload not decodable by this build)".to_owned(),
                summary,
            ),
        }
    }

    /// One readable line.
    pub fn render(&self) -> String {
        let actor = match &self.actor.name {
            Some(name) => format!("{}:{} ({name})", self.actor.kind.as_str(), self.actor.id),
            None => format!("{}:{}", self.actor.kind.as_str(), self.actor.id),
        };
        format!(
            "{} #{} {} {} by {} [{}] {}",
            self.recorded_at,
            self.position,
            self.stream_id,
            self.event_type,
            actor,
            self.correlation_id,
            self.summary
        )
    }
}

fn verified(verified: bool) -> &'static str {
    if verified { "verified" } else { "unverified" }
}

fn opt<T: std::fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// A one-line description of an event's payload.
pub fn summary(event: &Event) -> String {
    match event {
        Event::TenantCreated(e) => format!(
            "created tenant {:?} ({}) as {:?}, status {}, plan {}, key {}",
            e.slug,
            e.name,
            e.kind,
            e.status.as_str(),
            e.plan,
            e.signing_key.kid
        ),
        Event::TenantUpdated(e) => {
            let mut parts = Vec::new();
            if let Some(name) = &e.name {
                parts.push(format!("name={name:?}"));
            }
            if let Some(domains) = &e.domains {
                parts.push(format!("domains=[{}]", domains.join(",")));
            }
            if let Some(plan) = &e.plan {
                parts.push(format!("plan={plan}"));
            }
            if e.config_json.is_some() {
                parts.push("config_json changed".to_owned());
            }
            if let Some(owner) = &e.sales_owner {
                parts.push(format!("sales_owner={owner:?}"));
            }
            format!("updated {}", parts.join(", "))
        }
        Event::TenantSettingsChanged(e) => format!(
            "settings: session {} min, {} sessions/user, mfa {}, password min {}, lockout {} attempts",
            e.settings.session_timeout_minutes,
            e.settings.max_sessions_per_user,
            e.settings.require_mfa,
            e.settings.password_policy.min_length,
            e.settings.lockout_policy.max_attempts
        ),
        Event::TenantActivated(e) => format!(
            "activated from {} on plan {} (contract {} to {})",
            e.previous_status.as_str(),
            e.plan,
            opt(&e.contract_start),
            opt(&e.contract_end)
        ),
        Event::TenantCancelled(e) => match e.effective_at {
            Some(at) => format!("cancelled effective {at}: {}", e.reason),
            None => format!("cancelled now: {}", e.reason),
        },
        Event::TenantFrozen(e) => format!("frozen: {}", e.reason),
        Event::TenantSuspended(e) => format!("suspended: {}", opt(&e.reason)),
        Event::TenantReactivated(_) => "reactivated (suspension lifted)".to_owned(),
        Event::TenantArchived(e) => {
            format!("archived (was {})", e.previous_status.as_str())
        }
        Event::SigningKeyRotated(e) => format!(
            "rotated signing key to {} ({}); {} stays published",
            e.key.kid,
            e.key.alg.as_str(),
            e.previous_kid
        ),
        Event::SigningKeyRetired(e) => format!("retired signing key {}", e.kid),
        Event::ApiKeyIssued(e) => format!(
            "issued api key {} {:?} ({}…) scopes [{}]",
            e.key_id,
            e.name,
            e.prefix,
            e.scopes.join(" ")
        ),
        Event::ApiKeyRevoked(e) => format!("revoked api key: {}", opt(&e.reason)),
        Event::ApiKeyUsed(e) => format!(
            "api key used {} times between {} and {}",
            e.uses, e.first_used_at, e.last_used_at
        ),
        Event::OAuthClientRegistered(e) => format!(
            "registered {} client {} {:?} grants [{}] scopes [{}]",
            e.client_type.as_str(),
            e.client_id,
            e.name,
            e.grant_types.join(" "),
            e.allowed_scopes.join(" ")
        ),
        Event::OAuthClientUpdated(e) => {
            let mut parts = Vec::new();
            if let Some(name) = &e.name {
                parts.push(format!("name={name:?}"));
            }
            if let Some(grants) = &e.grant_types {
                parts.push(format!("grant_types=[{}]", grants.join(" ")));
            }
            if let Some(uris) = &e.redirect_uris {
                parts.push(format!("redirect_uris=[{}]", uris.join(" ")));
            }
            if let Some(scopes) = &e.allowed_scopes {
                parts.push(format!("allowed_scopes=[{}]", scopes.join(" ")));
            }
            if let Some(ttl) = e.access_token_ttl_secs {
                parts.push(format!("access_token_ttl_secs={ttl}"));
            }
            format!("updated client {}", parts.join(", "))
        }
        Event::OAuthClientSecretRegenerated(_) => "client secret regenerated".to_owned(),
        Event::OAuthClientDeactivated(e) => format!("client deactivated: {}", opt(&e.reason)),
        Event::TokenIssuedV1(e) => format!(
            "token {} issued to {} ({}) scopes [{}] until {}",
            e.jti,
            e.client_id,
            e.grant_type,
            e.scopes.join(" "),
            e.expires_at
        ),
        // v2 leaves the client to the stream and the issue time to the envelope, which the
        // history line shows beside this summary.
        Event::TokenIssued(e) => format!(
            "token {} issued ({}) scopes [{}] for {} s",
            e.jti,
            e.grant_type.as_str(),
            e.scopes.join(" "),
            e.ttl_secs
        ),
        Event::TokenRevoked(e) => format!("token {} of {} revoked", e.jti, e.client_id),
        Event::ReservationClaimed(e) => {
            format!("reserved {:?} {:?}", e.kind, e.value)
        }
        // People by id only: names and addresses are sealed, and a history is printed.
        Event::UserCreated(e) => format!(
            "user {} created (roles: {}, email {})",
            e.user_id,
            e.roles.join(" "),
            verified(e.email_verified)
        ),
        Event::UserUpdated(e) => format!("user profile changed (roles: {})", e.roles.join(" ")),
        Event::UserEmailChanged(_) => "user email changed (unverified)".to_owned(),
        Event::UserDisabled(_) => "user disabled".to_owned(),
        Event::UserEnabled(_) => "user enabled".to_owned(),
        Event::UserPasswordSet(e) => format!(
            "user password set{}",
            if e.temporary { " (temporary)" } else { "" }
        ),
        Event::UserErased(_) => "user erased (data key destroyed)".to_owned(),
        // Second factors by step, index and credential id: never a secret or a passkey's name.
        Event::TotpEnrollmentStarted(_) => "authenticator app enrollment started".to_owned(),
        Event::TotpEnrolled(e) => format!("authenticator app set up (time step {})", e.step),
        Event::TotpUsed(e) => format!("authenticator app code of time step {} accepted", e.step),
        Event::TotpRemoved(_) => "authenticator app removed".to_owned(),
        Event::RecoveryCodesGenerated(e) => {
            format!("{} recovery codes generated", e.code_hashes.len())
        }
        Event::RecoveryCodeUsed(e) => format!("recovery code #{} used", e.index + 1),
        Event::RecoveryCodesRevoked(_) => "recovery codes revoked".to_owned(),
        Event::PasskeyRegistered(e) => format!(
            "passkey {} registered (attestation {}, user {}verified{})",
            hex(&e.credential_id),
            e.attestation_format,
            if e.user_verified { "" } else { "not " },
            if e.backup_eligible {
                ", synchronised"
            } else {
                ""
            }
        ),
        Event::PasskeyUsed(e) => {
            format!(
                "passkey {} used (counter {})",
                hex(&e.credential_id),
                e.counter
            )
        }
        Event::PasskeyRemoved(e) => format!("passkey {} removed", hex(&e.credential_id)),
        Event::MfaReset(_) => "every second factor reset".to_owned(),
        Event::WebauthnPolicyChanged(e) => format!(
            "WebAuthn policy: passkeys {}, attestation {}, user verification {}, resident key {}",
            if e.policy.enabled {
                "enabled"
            } else {
                "disabled"
            },
            e.policy.attestation_preference.as_str(),
            e.policy.user_verification.as_str(),
            e.policy.resident_key.as_str()
        ),
        // Reservation releases, and event types newer than this summary: the payload's public
        // form, which holds no secret- or personal-typed value.
        other => {
            let mut data = other.public_json_without(&|_| false);
            if data.len() > 200 {
                let mut cut = 200;
                while !data.is_char_boundary(cut) {
                    cut -= 1;
                }
                data.truncate(cut);
                data.push('…');
            }
            format!("{} {data}", other.event_type())
        }
    }
}

/// Calls `visit` with every event the filter admits, in global order, with its payload
/// decoded when this build can.
pub async fn tenant_events(
    log: &dyn tessera_event_log::EventLog,
    filter: &HistoryFilter,
    progress: impl FnMut(u64),
    mut visit: impl FnMut(&RecordedEvent, Option<&Event>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    crate::source::scan(
        log,
        filter.until.and_then(|until| until.last_position()),
        |recorded| {
            let e = &recorded.envelope;
            // Only the tenant's own events and reservations (which name their owner in the
            // payload) can belong to it; everything else is skipped without decoding.
            if e.tenant_id != filter.tenant_id && !e.event_type.starts_with("reservation.") {
                return Ok(());
            }
            let event = recorded.decode().ok();
            if filter.admits(recorded, event.as_ref()) {
                visit(recorded, event.as_ref())?;
            }
            Ok(())
        },
        progress,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_event_schemas::events::samples;
    use tessera_event_schemas::{Envelope, SYSTEM_TENANT_ID, streams};

    const TENANT: Uuid = Uuid::from_u128(42);

    #[test]
    fn a_stream_is_picked_by_its_id_its_relative_id_or_its_kind() {
        let filter = |stream: &str| HistoryFilter {
            tenant_id: TENANT,
            stream: Some(stream.to_owned()),
            since: None,
            until: None,
        };
        let event = samples::current().remove(0);
        let on = |stream_id: String| {
            Envelope::builder()
                .tenant(TENANT)
                .stream(stream_id)
                .recorded(&event)
        };
        let key = Uuid::from_u128(7);
        let key_stream = on(streams::api_key(TENANT, key));
        let client_stream = on(streams::oauth_client(TENANT, "a/b"));
        for (wanted, recorded, admitted) in [
            (streams::api_key(TENANT, key), &key_stream, true),
            (format!("api-key/{key}"), &key_stream, true),
            ("api-key".to_owned(), &key_stream, true),
            ("api".to_owned(), &key_stream, false),
            ("tokens".to_owned(), &key_stream, false),
            ("oauth-client/a".to_owned(), &client_stream, true),
            ("oauth-client/a/b".to_owned(), &client_stream, true),
            ("oauth-client/a/c".to_owned(), &client_stream, false),
        ] {
            assert_eq!(
                filter(&wanted).admits(recorded, Some(&event)),
                admitted,
                "{wanted} on {}",
                recorded.envelope.stream_id
            );
        }
        // A reservation the tenant owns is its event, though the system tenant's stream.
        let released = samples::current()
            .into_iter()
            .find(|e| e.event_type() == "reservation.released")
            .unwrap();
        let Event::ReservationReleased(mut payload) = released else {
            panic!("no sample");
        };
        payload.owner = TENANT;
        let released = Event::ReservationReleased(payload);
        let reservation = Envelope::builder()
            .tenant(SYSTEM_TENANT_ID)
            .stream(streams::reservation("tenant-slug", "acme"))
            .recorded(&released);
        assert!(filter("reservation").admits(&reservation, Some(&released)));
        assert!(filter("reservation/tenant-slug/acme").admits(&reservation, Some(&released)));
        assert!(!filter("tenant").admits(&reservation, Some(&released)));
    }

    #[test]
    fn every_event_type_has_a_one_line_summary() {
        for event in samples::current() {
            let line = summary(&event);
            assert!(!line.is_empty(), "{}", event.event_type());
            assert!(!line.contains('\n'), "{}: {line}", event.event_type());
        }
    }
}
