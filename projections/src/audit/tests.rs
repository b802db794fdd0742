//! The audit rows of every sample event: targets, summaries without secrets, actors.

use tessera_event_schemas::events::samples;
use tessera_event_schemas::primitives::Timestamp;
use tessera_event_schemas::testing::sensitive_values;
use tessera_event_schemas::{SYSTEM_TENANT_ID, streams};
use uuid::Uuid;

use super::*;

const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);

fn envelope(stream_id: String, event: &Event) -> Envelope {
    Envelope::builder()
        .event_id(Uuid::from_u128(7))
        .stream(stream_id)
        .position(42)
        .tenant(TENANT)
        .event(event)
        .recorded_at(Timestamp::from_micros(1_795_000_000_000_000))
        .correlation_id("corr-1")
        .source_ip("10.0.0.1")
        .user_agent("curl/8")
        .build()
}

fn stream_of(event: &Event) -> String {
    match event.category() {
        "tenant" => streams::tenant(TENANT),
        "api_key" => streams::api_key(
            TENANT,
            Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002),
        ),
        "oauth_client" => streams::oauth_client(TENANT, "0193a000-0000-7000-8000-00000000c11e"),
        "token" => streams::client_tokens(TENANT, "0193a000-0000-7000-8000-00000000c11e"),
        "reservation" => streams::reservation("tenant-slug", "acme-corp"),
        "user" => streams::user(
            TENANT,
            Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005),
        ),
        "mfa" => streams::mfa(
            TENANT,
            Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005),
        ),
        "webauthn_policy" => streams::webauthn_policy(TENANT),
        "authorization_code" => streams::code(TENANT, Uuid::from_u128(0xc0de)),
        "consent" => streams::consents(
            TENANT,
            Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005),
        ),
        "refresh_token" => streams::refresh(TENANT, Uuid::from_u128(0xfa01)),
        "invitation" => streams::invitation(TENANT, Uuid::from_u128(0x1a1a)),
        "email" => streams::email(TENANT, Uuid::from_u128(0xe1a1)),
        "product" => streams::product("compliance-suite"),
        "entitlement" => streams::entitlement(TENANT, "compliance-suite"),
        "federation" => streams::identity_provider(TENANT, "default"),
        "vault" => streams::vault(TENANT),
        "integration" => streams::integration("notion"),
        "integration_app" => streams::integration_app(TENANT, "notion"),
        "credential" => streams::credential(TENANT, "github"),
        "connect" => streams::connect(TENANT, Uuid::from_u128(0xc0c0)),
        "provider_key" => streams::provider_key(TENANT, "openai"),
        _ => streams::audit(TENANT),
    }
}

#[test]
fn no_sample_leaks_a_secret_and_every_sample_has_a_target() {
    for event in samples::current() {
        let row = audit_row(
            &envelope(stream_of(&event), &event),
            &event,
            Some("acme-corp"),
        );
        let text = row.summary.to_string();
        for needle in ["secret", "sealed", "token_hash", "public_jwk"] {
            assert!(!text.contains(needle), "{}: {text}", event.event_type());
        }
        assert!(row.target_id.is_some(), "{}", event.event_type());
        assert!(row.target_type.is_some(), "{}", event.event_type());
        assert_eq!(row.position, 42);
        assert_eq!(row.correlation_id, "corr-1");
        assert_eq!(row.source_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(row.user_agent.as_deref(), Some("curl/8"));
        if event.event_type() != "audit.recorded" {
            assert_eq!(row.action, event.event_type());
            assert_eq!(row.actor_kind, "system");
        }
    }
}

#[test]
fn no_summary_carries_a_sensitive_value_found_by_type() {
    // Found by type, not by name: a secret under an innocent name is caught too. The
    // other public forms are checked in `tessera_event_schemas::sensitive::tests`.
    let mut checked = 0;
    for event in samples::current() {
        let row = audit_row(
            &envelope(stream_of(&event), &event),
            &event,
            Some("acme-corp"),
        );
        for value in sensitive_values(&event.payload()) {
            let at = format!("{}: {}", event.event_type(), value.path);
            assert!(value.is_distinctive(), "{at}: {}", value.json);
            if let Some(leak) = value.leaked_in(&row.summary) {
                panic!("{at}: the audit summary carries {leak}: {}", row.summary);
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 6,
        "only {checked} sensitive values in the samples"
    );
}

#[test]
fn public_jwks_are_left_out_for_size_but_the_rest_of_the_key_stays() {
    let event = samples::current().remove(0);
    let row = audit_row(&envelope(stream_of(&event), &event), &event, None);
    let summary: Value = serde_json::from_str(&row.summary).unwrap();
    let key = &summary["signing_key"];
    assert!(key.get("public_jwk").is_none(), "{key}");
    assert_eq!(key["kid"], "k-2026-11-23-a");
    assert_eq!(key["alg"], "ES256");
}

#[test]
fn targets_follow_the_event_type() {
    let find = |name: &str| {
        let event = samples::current()
            .into_iter()
            .find(|e| e.event_type() == name)
            .unwrap();
        audit_row(
            &envelope(stream_of(&event), &event),
            &event,
            Some("acme-corp"),
        )
    };
    let t = |row: &AuditRow| {
        (
            row.target_type.clone(),
            row.target_id.clone(),
            row.target_name.clone(),
            row.product.clone(),
        )
    };
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        t(&find("tenant.suspended")),
        (s("tenant"), Some(TENANT.to_string()), s("acme-corp"), None)
    );
    assert_eq!(
        t(&find("api_key.issued")),
        (
            s("api_key"),
            s("01930000-0000-7000-8000-000000000002"),
            s("CI pipeline"),
            s("billing")
        )
    );
    assert_eq!(
        t(&find("api_key.revoked")),
        (
            s("api_key"),
            s("01930000-0000-7000-8000-000000000002"),
            None,
            None
        )
    );
    assert_eq!(
        t(&find("oauth_client.registered")),
        (
            s("oauth_client"),
            s("0193a000-0000-7000-8000-00000000c11e"),
            s("Billing worker"),
            None
        )
    );
    assert_eq!(
        t(&find("token.issued")),
        (
            s("token"),
            s("01930000-0000-7000-8000-000000000003"),
            None,
            None
        )
    );
    assert_eq!(
        t(&find("reservation.released")),
        (s("reservation"), s("acme-corp"), None, None)
    );
    let recorded = find("audit.recorded");
    assert_eq!(
        t(&recorded),
        (s("invoice"), s("inv-1001"), s("Invoice 1001"), s("billing"))
    );
    assert_eq!(recorded.action, "invoice.paid");
    assert_eq!(
        (recorded.actor_kind.as_str(), recorded.actor_id.as_str()),
        ("user", "user-42")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&recorded.summary).unwrap(),
        serde_json::json!({
            "metadata": {"amount": 1200, "currency": "EUR"},
            "recorded_by": {"type": "system", "id": "tessera"},
        })
    );
    assert_eq!(recorded.tenant_id, TENANT);
    assert_ne!(recorded.tenant_id, SYSTEM_TENANT_ID);
}

/// A row as a query returns it: the summary parsed.
fn read_back(row: AuditRow) -> AuditView {
    AuditView {
        summary: serde_json::from_str(&row.summary).unwrap(),
        position: row.position,
        event_id: row.event_id,
        tenant_id: row.tenant_id,
        event_type: row.event_type,
        action: row.action,
        actor_kind: row.actor_kind,
        actor_id: row.actor_id,
        actor_name: row.actor_name,
        target_type: row.target_type,
        target_id: row.target_id,
        target_name: row.target_name,
        product: row.product,
        project_id: row.project_id,
        correlation_id: row.correlation_id,
        source_ip: row.source_ip,
        user_agent: row.user_agent,
        recorded_at: row.recorded_at,
    }
}

/// An `audit.recorded` entry that a key appended, claiming `actor_type` and `actor_id`.
fn appended(actor_type: Option<&str>, actor_id: Option<&str>) -> AuditView {
    let event = Event::AuditRecorded(tessera_event_schemas::events::AuditRecordedV1 {
        action: "invoice.paid".into(),
        project_id: None,
        actor_id: actor_id.map(str::to_owned),
        actor_name: actor_id.map(|_| "Ada".to_owned()),
        actor_type: actor_type.map(str::to_owned),
        target_id: None,
        target_type: None,
        target_name: None,
        product: None,
        metadata_json: r#"{"amount":12,"apiKey":"tsr_x"}"#.into(),
    });
    let mut envelope = envelope(streams::audit(TENANT), &event);
    envelope.actor = tessera_event_schemas::Actor {
        kind: tessera_event_schemas::ActorKind::ApiKey,
        id: "key-1".into(),
        name: Some("writer".into()),
    };
    read_back(audit_row(&envelope, &event, None))
}

#[test]
fn an_appended_entry_shows_its_claimed_actor_and_always_who_appended_it() {
    let writer = Recorder {
        kind: "api_key".into(),
        id: "key-1".into(),
        name: Some("writer".into()),
    };
    let mut claimed = appended(Some("user"), Some("user-7"));
    assert_eq!(
        (claimed.actor_kind.as_str(), claimed.actor_id.as_str()),
        ("user", "user-7")
    );
    let (metadata, recorder) = claimed.take_metadata_and_recorder();
    assert_eq!(metadata, serde_json::json!({"amount": 12}));
    assert_eq!(recorder, writer);

    // A claim without a kind (recorded before kinds were required) does not borrow the
    // appender's kind: the entry's actor is the appender.
    for (kind, id) in [(None, Some("key-2")), (Some("user"), None), (None, None)] {
        let mut partial = appended(kind, id);
        assert_eq!(
            (partial.actor_kind.as_str(), partial.actor_id.as_str()),
            ("api_key", "key-1"),
            "{kind:?} {id:?}"
        );
        assert_eq!(partial.take_metadata_and_recorder().1, writer);
    }
}

#[test]
fn tessera_s_own_events_are_recorded_by_their_actor() {
    let event = samples::current()
        .into_iter()
        .find(|e| e.event_type() == "tenant.suspended")
        .unwrap();
    let mut view = read_back(audit_row(
        &envelope(stream_of(&event), &event),
        &event,
        None,
    ));
    let summary = view.summary.clone();
    let (metadata, recorder) = view.take_metadata_and_recorder();
    assert_eq!(metadata, summary);
    assert_eq!(
        recorder,
        Recorder {
            kind: "system".into(),
            id: "tessera".into(),
            name: None
        }
    );
}

#[test]
fn a_v2_token_summary_leaves_out_what_the_row_already_says() {
    let event = samples::current()
        .into_iter()
        .find(|e| (e.event_type(), e.schema_version()) == ("token.issued", 2))
        .unwrap();
    let row = audit_row(&envelope(stream_of(&event), &event), &event, None);
    assert_eq!(
        row.target_id.as_deref(),
        Some("01930000-0000-7000-8000-000000000005")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&row.summary).unwrap(),
        serde_json::json!({
            "grant_type": "client_credentials",
            "scopes": ["invoices:read"],
            "kid": "k-2026-11-23-b",
            "ttl_secs": 3600,
        })
    );
}

#[test]
fn redaction_drops_secret_fields_at_any_depth_and_keeps_the_rest() {
    let mut value = serde_json::json!({
        "name": "x",
        "secret_hash": "aa",
        "client_secret": "bb",
        "signing_key": {"kid": "k1", "sealed_private_key": [1], "public_jwk": {"x": "y"}},
        "keys": [{"token_hash": "cc", "jti": "j"}],
        "password_policy": {"min_length": 12},
    });
    redact(&mut value);
    assert_eq!(
        value,
        serde_json::json!({
            "name": "x",
            "signing_key": {"kid": "k1"},
            "keys": [{"jti": "j"}],
            "password_policy": {"min_length": 12},
        })
    );
}
