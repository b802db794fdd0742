//! Golden read models: a fixed log, projected into a fresh store, must dump exactly the
//! committed snapshot, byte for byte, on both backends and along every path that writes rows:
//! the live projector following appends, a catch-up, and rebuilds (in one batch and in many).
//!
//! The fixtures under `tests/fixtures/` were written by the projector as it stood before its
//! tables were made generic (issue 15), so they pin what every row, column and checkpoint held
//! then; a refactor of the read side passes only if it writes the very same bytes. The small
//! log's snapshot is committed whole, so that a failure shows which row changed; the large
//! log (big enough that batches fold on a thread of their own) is pinned by the SHA-256 of its
//! snapshot. With `TESSERA_BLESS=1` a missing fixture is written; an existing one never is.
//!
//! One change since was made on purpose (issue 23): the summary of an `audit.recorded` row
//! holds the product's metadata and who appended the entry (`{"metadata", "recorded_by"}`).
//! Both fixtures were edited by that one row: the large log's new snapshot, with that row's
//! summary put back as it was, hashes to the digest committed before.
//!
//! Issue 17 made `oauth_client.registered` and `.updated` v2 (the OpenID Connect settings,
//! `oidc`): the samples' client events are v2 now, in place, so both fixtures were re-blessed;
//! the small one differs only by those two rows' summaries (`oidc` and the new fields) and the
//! issue's new event types at the end.
//!
//! New event types join at the end of the log (users, then sign-ins and sessions), so the
//! fixtures only gain rows: with the sign-in and session samples left out, the fixtures
//! committed before them still matched, and their re-blessed small snapshot differs only by
//! the new events' audit rows and the checkpoints' positions.
//!
//! Issue 18's event types (reset and verification links, invitations, mail) were added the
//! same way, at the end: the re-blessed small snapshot differs only by their audit rows, the
//! checkpoints' positions and the version of the user whose stream gained the link events.
//!
//! Issue 21's (the catalog, entitlements, a client's tenant claims) likewise, in `registry`:
//! the re-blessed small snapshot differs only by their audit rows and the checkpoints'
//! positions.
//!
//! Issue 18's invitations read model (`rm_invitations`) was added after those and the mail
//! outbox's `rm_emails`: both fixtures were re-blessed, and the small snapshot differs only by
//! that table's one row (the samples' invitation) and its checkpoint.
//!
//! Issue 19's event types (identity providers, federated sign-ins) join at the end, in
//! `federation`: the re-blessed small snapshot differs only by their audit rows and the
//! checkpoints' positions.
//!
//! Issue 20's event types (the credential vault) join at the end, in `vault`: the re-blessed
//! small snapshot differs only by their audit rows and the checkpoints' positions.
//!
//! Issue 20's read models (`rm_credentials`, `rm_vault_secrets`) came after, with one stored
//! connection appended at the very end (`vault_rows`): the re-blessed small snapshot differs
//! only by that event's audit row, the two tables' one row each and the checkpoints.

// Shared helpers are not `#[test]` functions, which clippy's allow-*-in-tests settings do not
// cover; failing loudly is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::backend::{Kind, open_log, open_store};
use support::workload::{self, History};
use tessera_event_schemas::events::{
    ApiKeyRevokedV1, SigningKeyRetiredV1, SigningKeyRotatedV1, TenantActivatedV1,
    TenantCancelledV1, TenantFrozenV1, TenantStatus, TenantSuspendedV1, UserCreatedV1, samples,
};
use tessera_event_schemas::{
    Actor, ActorKind, Date, Event, EventMetadata, SYSTEM_TENANT_ID, streams,
};
use tessera_projections::{ProjectionRuntime, ReadStore, rebuild, rebuild_in_batches};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(120);

/// The small log's whole snapshot.
const SMALL_FIXTURE: &str = "tests/fixtures/read_models_small.json";
/// The SHA-256 of the large log's snapshot.
const LARGE_FIXTURE: &str = "tests/fixtures/read_models_large.sha256";

/// Six tenants through every round (demo and trial tenants, suspension with and without
/// reactivation, scheduled cancellation, freezing, archival, key rotations and retirements, API
/// keys issued, used and revoked), then the extras.
fn small_history() -> History {
    let mut history = History::new();
    history.rounds(0..6, 0..workload::ROUNDS, 4);
    extras(&mut history);
    history
}

/// 160 tenants in small appends: over 2,000 events, so that a rebuild's and a catch-up's
/// batches fold on a thread of their own while the writer stores rows.
fn large_history() -> History {
    let mut history = History::new();
    history.rounds(0..160, 0..workload::ROUNDS, 7);
    extras(&mut history);
    assert!(history.events > 2_000, "{} events", history.events);
    history
}

/// A person acting through the admin API, so that audit rows carry an actor name, a source IP
/// and a user agent.
fn by_a_person() -> EventMetadata {
    EventMetadata {
        actor: Actor {
            kind: ActorKind::User,
            id: "user-7".into(),
            name: Some("Grace Hopper".into()),
        },
        correlation_id: "corr-golden".into(),
        causation_id: None,
        source_ip: Some("192.0.2.7".into()),
        user_agent: Some("golden/1.0".into()),
    }
}

/// The categories of people's events, appended after everything pinned before they existed.
const PEOPLE: [&str; 5] = ["user", "sign_in", "session", "mfa", "webauthn_policy"];
const GRANTS: [&str; 3] = ["authorization_code", "consent", "refresh_token"];
/// Issue 18's categories and its events on users' streams, appended after issue 17's.
const INVITATIONS: [&str; 2] = ["invitation", "email"];
/// Issue 21's categories (the catalog, entitlements), appended after issue 18's.
const REGISTRY: [&str; 2] = ["product", "entitlement"];
/// Issue 19's category (identity providers, federated sign-ins), appended after issue 21's.
const FEDERATION: [&str; 1] = ["federation"];
/// Issue 20's categories (the credential vault), appended after issue 19's.
const VAULT: [&str; 6] = [
    "vault",
    "integration",
    "integration_app",
    "credential",
    "connect",
    "provider_key",
];
const ISSUE_18_USER_EVENTS: [&str; 3] = [
    "user.password_reset_requested",
    "user.email_verification_requested",
    "user.email_verified",
];

/// Every event type the workload lacks (OAuth clients, tokens, reservations, recorded audit
/// entries) and the edge cases reducers must keep answering the same way.
fn extras(history: &mut History) {
    let person = by_a_person();
    // The sample of every event type, each on the stream it belongs to, for the samples'
    // tenant: its whole lifecycle, an API key, a client with its tokens, a reservation.
    let sample_tenant = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
    let sample_key = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002);
    let client = "0193a000-0000-7000-8000-00000000c11e";
    // Users and their second factors come last (below), so that the rows pinned before they
    // existed keep their positions. A sample of a version added since the fixtures were written
    // (`token.issued` v2, issue 24) would shift every later position too, so it stays out, and
    // the fixtures keep pinning the rows of every event they did; newer versions' audit rows
    // are checked by `projections::audit`'s tests.
    // Issue 17's event types (codes, consents, refresh tokens, the second signing key) come
    // at the end, in `grants`; the clients' v2 events replace v1 in place (see the module doc).
    let added_since = [
        ("token.issued", 2),
        ("tenant.signing_key_added", 1),
        ("tenant.admin_invite_failed", 1),
        ("oauth_client.token_claims_set", 1),
    ];
    for event in samples::current().into_iter().filter(|event| {
        !PEOPLE.contains(&event.category())
            && !GRANTS.contains(&event.category())
            && !INVITATIONS.contains(&event.category())
            && !REGISTRY.contains(&event.category())
            && !FEDERATION.contains(&event.category())
            && !VAULT.contains(&event.category())
            && !added_since.contains(&(event.event_type(), event.schema_version()))
    }) {
        let (tenant, stream) = match event.category() {
            "tenant" => (sample_tenant, streams::tenant(sample_tenant)),
            "api_key" => (sample_tenant, streams::api_key(sample_tenant, sample_key)),
            "oauth_client" => (sample_tenant, streams::oauth_client(sample_tenant, client)),
            "token" => (sample_tenant, streams::client_tokens(sample_tenant, client)),
            "reservation" => (
                SYSTEM_TENANT_ID,
                streams::reservation("tenant-slug", "acme-corp"),
            ),
            _ => (sample_tenant, streams::audit(sample_tenant)),
        };
        history.append_events(tenant, stream, &[event], &person);
    }

    // Events of a tenant that was never created change no row.
    let ghost = workload::tenant_id(900);
    history.append_events(
        ghost,
        streams::tenant(ghost),
        &[Event::TenantSuspended(TenantSuspendedV1 { reason: None })],
        &person,
    );
    // A second creation of a tenant: the first one stands.
    let t0 = workload::tenant_id(0);
    let again = workload::created(0, TenantStatus::Trial, history.now());
    history.append_events(t0, streams::tenant(t0), &[again], &person);
    // An immediate cancellation freezes with its reason; a later freeze keeps that reason; an
    // activation clears it (and the trial end stays what the creation said).
    let t3 = workload::tenant_id(3);
    history.append_events(
        t3,
        streams::tenant(t3),
        &[
            Event::TenantCancelled(TenantCancelledV1 {
                reason: "fraud".into(),
                effective_at: None,
            }),
            Event::TenantFrozen(TenantFrozenV1 {
                reason: "another reason".into(),
            }),
            Event::TenantActivated(TenantActivatedV1 {
                previous_status: TenantStatus::Frozen,
                plan: "rescue".into(),
                contract_start: Date::parse("2027-01-01"),
                contract_end: None,
                erp_customer_id: None,
            }),
        ],
        &person,
    );
    // A rotation away from a key already retired leaves it retired.
    let t4 = workload::tenant_id(4);
    history.append_events(
        t4,
        streams::tenant(t4),
        &[
            Event::SigningKeyRetired(SigningKeyRetiredV1 {
                kid: "k-4-1".into(),
            }),
            Event::SigningKeyRotated(SigningKeyRotatedV1 {
                key: workload::signing_key("k-4-3".into(), history.now()),
                previous_kid: "k-4-1".into(),
            }),
        ],
        &person,
    );
    // A second revocation keeps the first one's time; usage of a key never issued is dropped.
    history.append_events(
        t0,
        streams::api_key(t0, workload::api_key_id(0, 0)),
        &[Event::ApiKeyRevoked(ApiKeyRevokedV1 { reason: None })],
        &person,
    );
    let at = history.now();
    history.append_events(
        t0,
        streams::api_key(t0, workload::api_key_id(0, 9)),
        &[workload::used(5, at, 60)],
        &person,
    );
    users(history, sample_tenant, &person);
    second_factors(history, sample_tenant, &person);
    grants(history, sample_tenant, &person);
    invitations(history, sample_tenant, &person);
    registry(history, sample_tenant, client, &person);
    federation(history, sample_tenant, &person);
    vault(history, sample_tenant, &person);
    vault_rows(history, sample_tenant, &person);
}

/// Issue 20's samples, after everything pinned before, each on the stream it belongs to: the
/// tenant's vault keys, an integration and the tenant's own app for it, a connection's life
/// and an access to it, a connect flow's end, a provider key's life.
fn vault(history: &mut History, tenant: Uuid, person: &EventMetadata) {
    for event in samples::current()
        .into_iter()
        .filter(|event| VAULT.contains(&event.category()))
    {
        let stream = match &event {
            Event::IntegrationDefined(_) | Event::IntegrationRemoved(_) => {
                streams::integration("notion")
            }
            Event::IntegrationAppSet(_) | Event::IntegrationAppRemoved(_) => {
                streams::integration_app(tenant, "notion")
            }
            Event::CredentialAccessed(_) => streams::credential_access(tenant, "github"),
            _ => match event.category() {
                "vault" => streams::vault(tenant),
                "credential" => streams::credential(tenant, "github"),
                "connect" => streams::connect(tenant, Uuid::from_u128(0xc0c0)),
                _ => streams::provider_key(tenant, "openai"),
            },
        };
        let owner = if matches!(
            event,
            Event::IntegrationDefined(_) | Event::IntegrationRemoved(_)
        ) {
            SYSTEM_TENANT_ID
        } else {
            tenant
        };
        history.append_events(owner, stream, &[event], person);
    }
}

/// Issue 20's read models (`rm_credentials`, `rm_vault_secrets`), added after its event types:
/// every holder in `vault` ends removed, so a connection that stays is stored last, on a
/// stream of its own, and the snapshot only gains its rows.
fn vault_rows(history: &mut History, tenant: Uuid, person: &EventMetadata) {
    let stored: Vec<Event> = samples::current()
        .into_iter()
        .filter(|event| matches!(event, Event::CredentialStored(_)))
        .collect();
    history.append_events(
        tenant,
        streams::credential(tenant, "notion"),
        &stored,
        person,
    );
}

/// Issue 19's samples, after everything pinned before: an identity provider's life and one
/// federated sign-in's events.
fn federation(history: &mut History, tenant: Uuid, person: &EventMetadata) {
    let (config, sign_in): (Vec<Event>, Vec<Event>) = samples::current()
        .into_iter()
        .filter(|event| event.category() == "federation")
        .partition(|event| {
            matches!(
                event,
                Event::FederationConfigured(_) | Event::FederationRemoved(_)
            )
        });
    history.append_events(
        tenant,
        streams::identity_provider(tenant, "default"),
        &config,
        person,
    );
    history.append_events(
        tenant,
        streams::federated_sign_in(tenant, Uuid::from_u128(0xfed1)),
        &sign_in,
        person,
    );
}

/// Issue 21's samples, after everything pinned before: a catalog product's life, a tenant's
/// entitlement to it (a request, a grant, a trial, a revocation, an expiry) and a client's
/// choice of tenant claims.
fn registry(history: &mut History, tenant: Uuid, client: &str, person: &EventMetadata) {
    let of = |wanted: &dyn Fn(&Event) -> bool| -> Vec<Event> {
        samples::current()
            .into_iter()
            .filter(|event| wanted(event))
            .collect()
    };
    let products =
        of(&|event| event.category() == "product" && !matches!(event, Event::ProductRequested(_)));
    history.append_events(
        SYSTEM_TENANT_ID,
        streams::product("compliance-suite"),
        &products,
        person,
    );
    let entitlement = of(&|event| {
        event.category() == "entitlement" || matches!(event, Event::ProductRequested(_))
    });
    history.append_events(
        tenant,
        streams::entitlement(tenant, "compliance-suite"),
        &entitlement,
        person,
    );
    let claims = of(&|event| matches!(event, Event::OAuthClientTokenClaimsSet(_)));
    history.append_events(
        tenant,
        streams::oauth_client(tenant, client),
        &claims,
        person,
    );
}

/// Issue 18's samples, after everything pinned before: the reset and verification links of
/// the user who stays, a failed first-admin invitation, an invitation's life and a mail's.
fn invitations(history: &mut History, tenant: Uuid, person: &EventMetadata) {
    let of = |wanted: &dyn Fn(&Event) -> bool| -> Vec<Event> {
        samples::current()
            .into_iter()
            .filter(|event| wanted(event))
            .collect()
    };
    let stays = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0006);
    let links = of(&|event| ISSUE_18_USER_EVENTS.contains(&event.event_type()));
    history.append_events(tenant, streams::user(tenant, stays), &links, person);
    let failed = of(&|event| matches!(event, Event::TenantAdminInviteFailed(_)));
    history.append_events(tenant, streams::tenant(tenant), &failed, person);
    let invitation = streams::invitation(tenant, Uuid::from_u128(0x1a1a));
    let invited = of(&|event| event.category() == "invitation");
    history.append_events(tenant, invitation, &invited, person);
    let mail = streams::email(tenant, Uuid::from_u128(0xe1a1));
    history.append_events(
        tenant,
        mail,
        &of(&|event| event.category() == "email"),
        person,
    );
}

/// Issue 17's samples, after everything pinned before: the tenant's RS256 key, a code, the
/// consents of the user who stays, a refresh-token family.
fn grants(history: &mut History, tenant: Uuid, person: &EventMetadata) {
    let of = |category: &str| -> Vec<Event> {
        samples::current()
            .into_iter()
            .filter(|event| event.category() == category)
            .collect()
    };
    let key: Vec<Event> = samples::current()
        .into_iter()
        .filter(|event| matches!(event, Event::SigningKeyAdded(_)))
        .collect();
    history.append_events(tenant, streams::tenant(tenant), &key, person);
    let stays = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0006);
    let code = streams::code(tenant, Uuid::from_u128(0xc0de));
    history.append_events(tenant, code, &of("authorization_code"), person);
    let consents = streams::consents(tenant, stays);
    history.append_events(tenant, consents, &of("consent"), person);
    let family = streams::refresh(tenant, Uuid::from_u128(0xfa01));
    history.append_events(tenant, family, &of("refresh_token"), person);
}

/// The users' samples (added with `rm_users`, after everything pinned before): one user through
/// every event up to erasure, and one who stays, created with a password, who then signs in.
fn users(history: &mut History, tenant: Uuid, person: &EventMetadata) {
    let samples: Vec<Event> = samples::current()
        .into_iter()
        .filter(|event| {
            event.category() == "user" && !ISSUE_18_USER_EVENTS.contains(&event.event_type())
        })
        .collect();
    let erased = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005);
    history.append_events(tenant, streams::user(tenant, erased), &samples, person);
    let stays = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0006);
    let created = samples.iter().find_map(|event| match event {
        Event::UserCreated(created) => Some(Event::UserCreated(UserCreatedV1 {
            user_id: stays,
            ..created.clone()
        })),
        _ => None,
    });
    let password = samples
        .iter()
        .find(|event| matches!(event, Event::UserPasswordSet(_)));
    let events: Vec<Event> = created.into_iter().chain(password.cloned()).collect();
    history.append_events(tenant, streams::user(tenant, stays), &events, person);
    // Sign-ins and sessions (issue 16, after the users): every sample, on the sessions stream
    // of the user who stays.
    let sessions: Vec<Event> = samples::current()
        .into_iter()
        .filter(|event| matches!(event.category(), "sign_in" | "session"))
        .collect();
    history.append_events(tenant, streams::sessions(tenant, stays), &sessions, person);
}

/// The second factors' samples (added with `rm_mfa` and `rm_webauthn_policies`, after the
/// users): the user who stays through every second-factor event but the reset, so that a row
/// remains, and another user's row deleted by a reset; then the samples' tenant's WebAuthn
/// policy.
fn second_factors(history: &mut History, tenant: Uuid, person: &EventMetadata) {
    let samples: Vec<Event> = samples::current()
        .into_iter()
        .filter(|event| event.category() == "mfa")
        .collect();
    let stays = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0006);
    let kept: Vec<Event> = samples
        .iter()
        .filter(|event| !matches!(event, Event::MfaReset(_) | Event::PasskeyRemoved(_)))
        .cloned()
        .collect();
    history.append_events(tenant, streams::mfa(tenant, stays), &kept, person);
    let reset = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0007);
    history.append_events(tenant, streams::mfa(tenant, reset), &samples, person);
    let policy: Vec<Event> = samples::current()
        .into_iter()
        .filter(|event| event.category() == "webauthn_policy")
        .collect();
    history.append_events(tenant, streams::webauthn_policy(tenant), &policy, person);
}

/// The snapshot as the fixture holds it: pretty JSON (object keys sorted), one final newline.
async fn canonical(store: &ReadStore) -> String {
    let snapshot = store.snapshot().await.unwrap();
    let mut text = serde_json::to_string_pretty(&snapshot).unwrap();
    text.push('\n');
    text
}

fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The committed fixture, or with `TESSERA_BLESS=1` and no fixture yet, `actual` written as
/// the fixture.
fn expected(relative: &str, actual: &str) -> String {
    let path = fixture_path(relative);
    match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if std::env::var("TESSERA_BLESS").as_deref() == Ok("1") => {
            assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}");
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
            actual.to_owned()
        }
        Err(error) => panic!("{}: {error} (TESSERA_BLESS=1 writes it)", path.display()),
    }
}

/// Compares a path's snapshot with the fixture; on a difference, leaves the snapshot beside
/// the build for diffing.
fn check(fixture: &str, path: &str, kind: Kind, snapshot: &str, whole: bool) {
    let actual = if whole {
        snapshot.to_owned()
    } else {
        format!("{:x}\n", Sha256::digest(snapshot.as_bytes()))
    };
    if expected(fixture, &actual) != actual {
        let dump = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("golden-{kind:?}-{path}.json").to_lowercase());
        std::fs::write(&dump, snapshot).unwrap();
        panic!(
            "{kind:?} {path}: the snapshot differs from {fixture}; it is in {}",
            dump.display()
        );
    }
}

/// Projects `history` along every path on `kind` and checks each snapshot against `fixture`.
async fn golden(kind: Kind, mut history: History, fixture: &str, whole: bool) {
    let (log, _log_keep) = open_log(kind).await;

    // Live: the projector follows the log while it is appended to, in small batches.
    let (live, _live_keep) = open_store(kind).await;
    let runtime = ProjectionRuntime::start(log.clone(), live.clone())
        .await
        .unwrap();
    let head = history.append_to(&log).await;
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;
    check(fixture, "live", kind, &canonical(&live).await, whole);

    // Catch-up: the whole log, in batches merged as the projector finds them queued.
    let (caught_up, _caught_up_keep) = open_store(kind).await;
    let runtime = ProjectionRuntime::start(log.clone(), caught_up.clone())
        .await
        .unwrap();
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;
    check(
        fixture,
        "catch-up",
        kind,
        &canonical(&caught_up).await,
        whole,
    );

    // Rebuilds in place: in the default batches, and in small ones whose rows the write-behind
    // cache carries from batch to batch.
    let stats = rebuild(log.as_ref(), &caught_up).await.unwrap();
    assert_eq!(stats.events, head);
    check(
        fixture,
        "rebuild",
        kind,
        &canonical(&caught_up).await,
        whole,
    );
    let stats = rebuild_in_batches(log.as_ref(), &live, 97).await.unwrap();
    assert_eq!(stats.events, head);
    check(fixture, "rebuild-97", kind, &canonical(&live).await, whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_models_of_the_small_log_match_the_golden_snapshot() {
    golden(Kind::Sqlite, small_history(), SMALL_FIXTURE, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_models_of_the_small_log_match_the_golden_snapshot() {
    golden(Kind::Postgres, small_history(), SMALL_FIXTURE, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_models_of_the_large_log_match_the_golden_digest() {
    golden(Kind::Sqlite, large_history(), LARGE_FIXTURE, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_models_of_the_large_log_match_the_golden_digest() {
    golden(Kind::Postgres, large_history(), LARGE_FIXTURE, false).await;
}

/// The fixtures cover every table and every event type: a golden test of empty tables would
/// prove nothing.
#[test]
fn the_small_fixture_has_rows_in_every_table_and_every_event_type_in_its_audit_trail() {
    let text = std::fs::read_to_string(fixture_path(SMALL_FIXTURE)).unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(&text).unwrap();
    for table in ["rm_tenants", "rm_signing_keys", "rm_api_keys", "rm_audit"] {
        let rows = snapshot[table].as_array().unwrap();
        assert!(rows.len() > 5, "{table}: {} rows", rows.len());
    }
    // An erased user and one who stays.
    assert_eq!(snapshot["rm_users"].as_array().unwrap().len(), 2);
    // The second factors of the user who stays (the other user's were reset), and a policy.
    assert_eq!(snapshot["rm_mfa"].as_array().unwrap().len(), 1);
    assert_eq!(
        snapshot["rm_webauthn_policies"].as_array().unwrap().len(),
        1
    );
    // The one invitation of the samples: created, resent, accepted, revoked.
    assert_eq!(snapshot["rm_invitations"].as_array().unwrap().len(), 1);
    // One mail, queued, failed once and sent.
    assert_eq!(snapshot["rm_emails"].as_array().unwrap().len(), 1);
    // The one connection that stays, and its sealed secret (never the secret itself).
    assert_eq!(snapshot["rm_credentials"].as_array().unwrap().len(), 1);
    assert_eq!(snapshot["rm_vault_secrets"].as_array().unwrap().len(), 1);
    let checkpoints = snapshot["rm_checkpoints"].as_object().unwrap();
    assert_eq!(checkpoints.len(), 11, "{checkpoints:?}");
    let types: std::collections::BTreeSet<&str> = snapshot["rm_audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["event_type"].as_str().unwrap())
        .collect();
    for (event_type, _) in Event::current_types() {
        assert!(types.contains(event_type), "{event_type} has no audit row");
    }
}
