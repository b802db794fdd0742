//! A deterministic, realistic event history for tests and the catch-up benchmark.
//!
//! Tenants go through the lifecycle in global rounds (every tenant is created, then every
//! tenant is updated, and so on), so consecutive events in the log belong to different tenants,
//! as they do in production; a benchmark on per-tenant contiguous history would flatter the
//! projector's coalescing.
//!
//! API keys are issued, used (`api_key.used` records, some after the key's revocation and
//! some arriving after a later window was already recorded) and revoked.

#![allow(dead_code)]

use std::sync::Arc;

use tessera_event_log::{EventLog, ExpectedVersion, StreamWrite};
use tessera_event_schemas::events::*;
use tessera_event_schemas::{
    Date, Event, EventMetadata, Hash32, ProposedEvent, Timestamp, streams,
};
use uuid::Uuid;

/// The time of the first event; each further event is one millisecond later.
pub const EPOCH_MICROS: i64 = 1_790_000_000_000_000;

pub fn tenant_id(i: usize) -> Uuid {
    Uuid::from_u128(0x7e57_0000_0000_7000_8000_0000_0000_0000 + i as u128)
}

pub fn api_key_id(tenant: usize, n: usize) -> Uuid {
    Uuid::from_u128(0xa91c_0000_0000_7000_8000_0000_0000_0000 + ((tenant as u128) << 8) + n as u128)
}

pub fn secret_hash(tenant: usize, n: usize) -> Hash32 {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&(tenant as u64).to_be_bytes());
    bytes[8] = n as u8;
    bytes[31] = 0x5a;
    Hash32(bytes)
}

pub fn settings(session_timeout_minutes: u32) -> TenantSettingsV1 {
    TenantSettingsV1 {
        session_timeout_minutes,
        max_sessions_per_user: 5,
        require_mfa: session_timeout_minutes.is_multiple_of(2),
        password_policy: PasswordPolicyV1 {
            min_length: 12,
            require_uppercase: true,
            require_lowercase: true,
            require_numbers: true,
            require_special_chars: false,
            password_history_count: 5,
            max_age_days: 90,
        },
        lockout_policy: LockoutPolicyV1 {
            max_attempts: 5,
            lockout_duration_minutes: 15,
            reset_after_minutes: 60,
        },
        allowed_email_domains: vec!["example.com".into()],
    }
}

pub fn signing_key(kid: String, created_at: Timestamp) -> SigningKeyV1 {
    SigningKeyV1 {
        kid,
        alg: SigningAlg::ES256,
        public_jwk: PublicJwkV1::Ec {
            x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU".into(),
            y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".into(),
        },
        // Stands in for `nonce || ciphertext || tag` of a P-256 PKCS#8 key.
        sealed_private_key: vec![0x42; 166].into(),
        created_at,
    }
}

pub fn created(i: usize, status: TenantStatus, at: Timestamp) -> Event {
    Event::TenantCreated(TenantCreatedV1 {
        tenant_id: tenant_id(i),
        slug: format!("tenant-{i:06}"),
        name: format!("Tenant {i}"),
        plan: "starter".into(),
        kind: if status == TenantStatus::Demo {
            TenantKind::Demo
        } else {
            TenantKind::Customer
        },
        status,
        domains: vec![format!("t{i}.example.com")],
        settings: settings(60),
        config_json: format!(r#"{{"theme":"dark","seats":{i}}}"#),
        sales_owner: Some("sam@tessera.example".into()),
        trial_ends_at: Some(at.plus_seconds(30 * 86_400)),
        signing_key: signing_key(format!("k-{i}-0"), at),
    })
}

/// One tenant's events in one round, by stream.
type Round = Vec<(String, Vec<Event>)>;

/// The events of tenant `i` in round `round`, or nothing once its history is over.
fn tenant_round(i: usize, round: usize, at: Timestamp) -> Round {
    let mut writes = lifecycle_round(i, round, at);
    writes.extend(usage_round(i, round, at));
    writes
}

/// `api_key.used` v1 with `uses` uses from `at` to `seconds` later.
pub fn used(uses: u64, at: Timestamp, seconds: i64) -> Event {
    Event::ApiKeyUsed(ApiKeyUsedV1 {
        uses,
        first_used_at: at,
        last_used_at: at.plus_seconds(seconds),
    })
}

/// Usage records of tenant `i`'s API keys in round `round`. Per tenant `i`, key 0 ends up with
/// `3 + i % 5 + 2` uses, last used 120 s after round 10; key 1 with `10 + i` uses (`11 + i`
/// for even `i`), last used 600 s after round 10: round 12's record for even tenants covers an
/// earlier window, so it adds a use without moving `last_used_at`.
fn usage_round(i: usize, round: usize, at: Timestamp) -> Round {
    let t = tenant_id(i);
    let key = |n: usize, event: Event| (streams::api_key(t, api_key_id(i, n)), vec![event]);
    match round {
        8 => vec![key(0, used(3 + (i % 5) as u64, at, 60))],
        // After round 9, so key 0 of every third tenant is already revoked: usage still counts.
        10 => vec![
            key(0, used(2, at, 120)),
            key(1, used(10 + i as u64, at, 600)),
        ],
        // A window from a day ago, recorded late (say by a server that was cut off).
        12 if i.is_multiple_of(2) => vec![key(1, used(1, at.plus_seconds(-86_400), 60))],
        _ => Vec::new(),
    }
}

/// The lifecycle events of tenant `i` in round `round`: tenant, signing keys, API key issue
/// and revocation.
fn lifecycle_round(i: usize, round: usize, at: Timestamp) -> Round {
    let t = tenant_id(i);
    let tenant = |events: Vec<Event>| vec![(streams::tenant(t), events)];
    match round {
        0 => {
            let status = if i.is_multiple_of(5) {
                TenantStatus::Demo
            } else {
                TenantStatus::Trial
            };
            tenant(vec![created(i, status, at)])
        }
        1 => tenant(vec![Event::TenantUpdated(TenantUpdatedV1 {
            name: Some(format!("Tenant {i} GmbH")),
            domains: None,
            plan: None,
            config_json: None,
            sales_owner: None,
        })]),
        2 => vec![(streams::api_key(t, api_key_id(i, 0)), vec![issued(i, 0)])],
        3 => tenant(vec![Event::TenantSettingsChanged(
            TenantSettingsChangedV1 {
                settings: settings(30 + (i % 7) as u32),
            },
        )]),
        4 if !i.is_multiple_of(5) => tenant(vec![Event::TenantActivated(TenantActivatedV1 {
            previous_status: TenantStatus::Trial,
            plan: "enterprise".into(),
            contract_start: Date::parse("2026-12-01"),
            contract_end: Date::parse("2027-11-30"),
            erp_customer_id: Some(format!("ERP-{i}")),
        })]),
        5 => tenant(vec![Event::SigningKeyRotated(SigningKeyRotatedV1 {
            key: signing_key(format!("k-{i}-1"), at),
            previous_kid: format!("k-{i}-0"),
        })]),
        6 => vec![(streams::api_key(t, api_key_id(i, 1)), vec![issued(i, 1)])],
        7 => tenant(vec![Event::TenantUpdated(TenantUpdatedV1 {
            name: None,
            domains: Some(vec![
                format!("t{i}.example.com"),
                format!("t{i}.example.org"),
            ]),
            plan: None,
            config_json: Some(format!(r#"{{"theme":"light","seats":{}}}"#, i * 2)),
            sales_owner: Some("alex@tessera.example".into()),
        })]),
        8 => tenant(vec![Event::SigningKeyRetired(SigningKeyRetiredV1 {
            kid: format!("k-{i}-0"),
        })]),
        9 if i.is_multiple_of(3) => vec![(
            streams::api_key(t, api_key_id(i, 0)),
            vec![Event::ApiKeyRevoked(ApiKeyRevokedV1 {
                reason: Some("rotated".into()),
            })],
        )],
        10 if i % 4 == 1 => tenant(vec![Event::TenantSuspended(TenantSuspendedV1 {
            reason: Some("abuse report".into()),
        })]),
        11 if i % 8 == 1 => tenant(vec![Event::TenantReactivated(TenantReactivatedV1 {})]),
        12 if i % 6 == 2 => tenant(vec![Event::TenantCancelled(TenantCancelledV1 {
            reason: "budget".into(),
            effective_at: Some(at.plus_seconds(86_400)),
        })]),
        13 if i % 6 == 2 => tenant(vec![Event::TenantFrozen(TenantFrozenV1 {
            reason: "scheduled cancellation".into(),
        })]),
        14 if i % 12 == 2 => tenant(vec![Event::TenantArchived(TenantArchivedV1 {
            previous_status: TenantStatus::Frozen,
        })]),
        15 => tenant(vec![Event::SigningKeyRotated(SigningKeyRotatedV1 {
            key: signing_key(format!("k-{i}-2"), at),
            previous_kid: format!("k-{i}-1"),
        })]),
        16 => tenant(vec![Event::TenantSettingsChanged(
            TenantSettingsChangedV1 {
                settings: settings(45),
            },
        )]),
        _ => Vec::new(),
    }
}

/// Rounds in a tenant's history.
pub const ROUNDS: usize = 17;

fn issued(i: usize, n: usize) -> Event {
    Event::ApiKeyIssued(ApiKeyIssuedV1 {
        key_id: api_key_id(i, n),
        name: format!("key {n} of tenant {i}"),
        prefix: format!("tsr_{i:06}{n}"),
        secret_hash: secret_hash(i, n).into(),
        scopes: vec!["tenants:read".into(), "users:write".into()],
        product: (n == 1).then(|| "billing".to_owned()),
        expires_at: None,
        created_by: "platform-admin".into(),
    })
}

/// Builds the appends of a history for `tenants` tenants: each append covers one round for up
/// to `per_append` tenants, one stream write per stream.
pub struct History {
    next_event: u128,
    next_micros: i64,
    pub appends: Vec<Vec<StreamWrite>>,
    pub events: usize,
}

impl History {
    pub fn new() -> Self {
        Self {
            next_event: 1,
            next_micros: EPOCH_MICROS,
            appends: Vec::new(),
            events: 0,
        }
    }

    /// A fresh event id and time for an event of `tenant`.
    pub fn propose(&mut self, tenant: Uuid, event: &Event) -> ProposedEvent {
        self.propose_as(tenant, event, EventMetadata::system("corr"))
    }

    /// [`History::propose`] with the given actor, correlation id, source IP and user agent.
    pub fn propose_as(
        &mut self,
        tenant: Uuid,
        event: &Event,
        metadata: EventMetadata,
    ) -> ProposedEvent {
        let id = Uuid::from_u128(0xe0e0_0000_0000_7000_8000_0000_0000_0000 + self.next_event);
        let at = Timestamp::from_micros(self.next_micros);
        self.next_event += 1;
        self.next_micros += 1_000;
        self.events += 1;
        ProposedEvent::new(event, id, tenant, at, metadata)
    }

    /// Adds one append of `events` on `stream_id`, each proposed with `metadata`.
    pub fn append_events(
        &mut self,
        tenant: Uuid,
        stream_id: String,
        events: &[Event],
        metadata: &EventMetadata,
    ) -> &mut Self {
        let events = events
            .iter()
            .map(|event| self.propose_as(tenant, event, metadata.clone()))
            .collect();
        self.appends.push(vec![StreamWrite {
            stream_id,
            expected: ExpectedVersion::Any,
            events,
        }]);
        self
    }

    /// The time the next proposed event will carry.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.next_micros)
    }

    /// Adds rounds `rounds` of tenants `tenants` to the history.
    pub fn rounds(
        &mut self,
        tenants: std::ops::Range<usize>,
        rounds: std::ops::Range<usize>,
        per_append: usize,
    ) -> &mut Self {
        let ids: Vec<usize> = tenants.collect();
        for round in rounds {
            for chunk in ids.chunks(per_append.max(1)) {
                let mut writes = Vec::new();
                for &i in chunk {
                    let at = self.now();
                    for (stream_id, events) in tenant_round(i, round, at) {
                        let events = events
                            .iter()
                            .map(|event| self.propose(tenant_id(i), event))
                            .collect();
                        writes.push(StreamWrite {
                            stream_id,
                            expected: ExpectedVersion::Any,
                            events,
                        });
                    }
                }
                if !writes.is_empty() {
                    self.appends.push(writes);
                }
            }
        }
        self
    }

    /// Appends everything built so far (and forgets it); returns the last position.
    pub async fn append_to(&mut self, log: &Arc<dyn EventLog>) -> u64 {
        let mut last = 0;
        for writes in std::mem::take(&mut self.appends) {
            let outcome = log.append(writes).await.expect("append");
            last = outcome.last_position;
        }
        last
    }
}
