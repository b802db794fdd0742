//! Given/when/then tests for every tenant rule, plus property tests over random command
//! sequences.

use proptest::prelude::*;
use tessera_event_schemas::events::{
    PublicJwkV1, SigningAlg, SigningKeyRetiredV1, SigningKeyRotatedV1, SigningKeyV1,
    TenantActivatedV1, TenantArchivedV1, TenantCancelledV1, TenantCreatedV1, TenantFrozenV1,
    TenantKind, TenantReactivatedV1, TenantSettingsChangedV1, TenantStatus, TenantSuspendedV1,
    TenantUpdatedV1,
};
use tessera_event_schemas::{Date, Event, SYSTEM_TENANT_ID, Timestamp};
use uuid::Uuid;

use super::*;
use crate::testing::given;

const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
/// 2027-01-15T08:00:00Z.
const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

fn key(kid: &str) -> SigningKeyV1 {
    SigningKeyV1 {
        kid: kid.to_owned(),
        alg: SigningAlg::EdDSA,
        public_jwk: PublicJwkV1::Okp {
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
        },
        sealed_private_key: vec![9; 60].into(),
        created_at: NOW,
    }
}

fn new_tenant(kind: TenantKind) -> NewTenant {
    NewTenant {
        tenant_id: TENANT,
        slug: "acme-corp".into(),
        name: "  Acme Corporation ".into(),
        plan: "starter".into(),
        kind,
        domains: vec!["acme.example".into()],
        settings: default_settings(),
        config_json: r#"{"theme":"dark"}"#.into(),
        sales_owner: Some("sam@tessera.example".into()),
        signing_key: key("k1"),
        added_keys: Vec::new(),
        now: NOW,
        initial_status: None,
    }
}

fn create(new: NewTenant) -> TenantCommand {
    TenantCommand::Create(Box::new(new))
}

fn created(kind: TenantKind) -> Event {
    Event::TenantCreated(created_payload(kind))
}

fn created_payload(kind: TenantKind) -> TenantCreatedV1 {
    let (status, trial_ends_at) = match kind {
        TenantKind::Demo => (TenantStatus::Demo, None),
        TenantKind::Customer => (
            TenantStatus::Trial,
            Some(NOW.plus_seconds(TRIAL_DAYS * 86_400)),
        ),
    };
    TenantCreatedV1 {
        tenant_id: TENANT,
        slug: "acme-corp".into(),
        name: "Acme Corporation".into(),
        plan: "starter".into(),
        kind,
        status,
        domains: vec!["acme.example".into()],
        settings: default_settings(),
        config_json: r#"{"theme":"dark"}"#.into(),
        sales_owner: Some("sam@tessera.example".into()),
        trial_ends_at,
        signing_key: key("k1"),
    }
}

fn trial() -> Event {
    created(TenantKind::Customer)
}

fn date(text: &str) -> Option<Date> {
    Date::parse(text)
}

fn activated(contract_end: Option<Date>) -> Event {
    Event::TenantActivated(TenantActivatedV1 {
        previous_status: TenantStatus::Trial,
        plan: "starter".into(),
        contract_start: date("2027-01-01"),
        contract_end,
        erp_customer_id: None,
    })
}

fn cancelled_now(reason: &str) -> Event {
    Event::TenantCancelled(TenantCancelledV1 {
        reason: reason.into(),
        effective_at: None,
    })
}

fn suspended() -> Event {
    Event::TenantSuspended(TenantSuspendedV1 {
        reason: Some("abuse".into()),
    })
}

fn archived(previous_status: TenantStatus) -> Event {
    Event::TenantArchived(TenantArchivedV1 { previous_status })
}

fn rotated(kid: &str, previous_kid: &str) -> Event {
    Event::SigningKeyRotated(SigningKeyRotatedV1 {
        key: key(kid),
        previous_kid: previous_kid.into(),
    })
}

fn cancel(at_period_end: bool, now: Timestamp) -> TenantCommand {
    TenantCommand::Cancel {
        reason: "budget".into(),
        at_period_end,
        now,
    }
}

fn status_of(events: &[Event]) -> Option<TenantStatus> {
    TenantState::replay(events).tenant.map(|t| t.status)
}

fn invalid_field(result: Result<Vec<Event>, DomainError>) -> Option<String> {
    match result {
        Err(DomainError::Validation { field, .. }) => Some(field),
        _ => None,
    }
}

fn illegal(from: &str, action: &'static str) -> Result<Vec<Event>, DomainError> {
    Err(DomainError::IllegalTransition {
        from: from.into(),
        action,
    })
}

// --- creation ---------------------------------------------------------------------------

#[test]
fn a_customer_tenant_starts_a_fourteen_day_trial() {
    assert_eq!(
        given::<TenantState>([]).when(create(new_tenant(TenantKind::Customer))),
        Ok(vec![trial()])
    );
}

#[test]
fn a_demo_tenant_starts_in_demo_without_a_trial() {
    assert_eq!(
        given::<TenantState>([]).when(create(new_tenant(TenantKind::Demo))),
        Ok(vec![created(TenantKind::Demo)])
    );
}

#[test]
fn creating_an_existing_tenant_is_refused() {
    assert!(matches!(
        given::<TenantState>([trial()]).when(create(new_tenant(TenantKind::Customer))),
        Err(DomainError::AlreadyExists(_))
    ));
}

#[test]
fn commands_on_a_tenant_that_does_not_exist_are_not_found() {
    let state = given::<TenantState>([]);
    for command in [
        TenantCommand::Update(TenantChanges::default()),
        TenantCommand::Archive,
        TenantCommand::Reactivate,
        TenantCommand::FreezeDue { now: NOW },
        TenantCommand::RetireKey { kid: "k1".into() },
    ] {
        assert_eq!(state.when(command), Err(DomainError::NotFound));
    }
}

#[test]
fn the_system_slug_is_reserved_for_the_system_tenant() {
    let new = NewTenant {
        slug: "system".into(),
        ..new_tenant(TenantKind::Customer)
    };
    assert_eq!(
        invalid_field(given::<TenantState>([]).when(create(new.clone()))),
        Some("slug".into())
    );
    let system = NewTenant {
        tenant_id: SYSTEM_TENANT_ID,
        initial_status: Some(TenantStatus::Active),
        ..new
    };
    let events = given::<TenantState>([]).when(create(system));
    assert_eq!(
        events.as_deref().ok().and_then(status_of),
        Some(TenantStatus::Active)
    );
}

#[test]
fn only_the_system_tenant_chooses_its_initial_status() {
    let new = NewTenant {
        initial_status: Some(TenantStatus::Active),
        ..new_tenant(TenantKind::Customer)
    };
    assert_eq!(
        invalid_field(given::<TenantState>([]).when(create(new))),
        Some("initial_status".into())
    );
}

#[test]
fn invalid_creation_fields_are_named() {
    let base = || new_tenant(TenantKind::Customer);
    let many_domains: Vec<String> = (0..21).map(|i| format!("d{i}.example")).collect();
    let cases: Vec<(NewTenant, &str)> = vec![
        (
            NewTenant {
                slug: "Acme".into(),
                ..base()
            },
            "slug",
        ),
        (
            NewTenant {
                slug: "ab".into(),
                ..base()
            },
            "slug",
        ),
        (
            NewTenant {
                name: "   ".into(),
                ..base()
            },
            "name",
        ),
        (
            NewTenant {
                name: "n".repeat(256),
                ..base()
            },
            "name",
        ),
        (
            NewTenant {
                plan: "Gold Plan".into(),
                ..base()
            },
            "plan",
        ),
        (
            NewTenant {
                plan: "p".repeat(65),
                ..base()
            },
            "plan",
        ),
        (
            NewTenant {
                domains: vec!["ACME.example".into()],
                ..base()
            },
            "domains[0]",
        ),
        (
            NewTenant {
                domains: vec!["a.example".into(), "a.example".into()],
                ..base()
            },
            "domains[1]",
        ),
        (
            NewTenant {
                domains: many_domains,
                ..base()
            },
            "domains",
        ),
        (
            NewTenant {
                config_json: "[1,2]".into(),
                ..base()
            },
            "config_json",
        ),
        (
            NewTenant {
                config_json: "{".into(),
                ..base()
            },
            "config_json",
        ),
        (
            NewTenant {
                signing_key: key(""),
                ..base()
            },
            "signing_key.kid",
        ),
    ];
    for (new, field) in cases {
        assert_eq!(
            invalid_field(given::<TenantState>([]).when(create(new))),
            Some(field.to_owned())
        );
    }
}

#[test]
fn the_default_settings_are_valid() {
    assert_eq!(crate::validate::settings(&default_settings()), Ok(()));
}

#[test]
fn each_settings_bound_names_its_field() {
    type Tweak = fn(&mut TenantSettingsV1);
    let cases: Vec<(Tweak, &str)> = vec![
        (
            |s| s.session_timeout_minutes = 4,
            "settings.session_timeout_minutes",
        ),
        (
            |s| s.session_timeout_minutes = 43_201,
            "settings.session_timeout_minutes",
        ),
        (
            |s| s.max_sessions_per_user = 0,
            "settings.max_sessions_per_user",
        ),
        (
            |s| s.max_sessions_per_user = 1001,
            "settings.max_sessions_per_user",
        ),
        (
            |s| s.password_policy.min_length = 7,
            "settings.password_policy.min_length",
        ),
        (
            |s| s.password_policy.min_length = 129,
            "settings.password_policy.min_length",
        ),
        (
            |s| s.password_policy.password_history_count = 25,
            "settings.password_policy.password_history_count",
        ),
        (
            |s| s.password_policy.max_age_days = 3651,
            "settings.password_policy.max_age_days",
        ),
        (
            |s| s.lockout_policy.max_attempts = 0,
            "settings.lockout_policy.max_attempts",
        ),
        (
            |s| s.lockout_policy.max_attempts = 101,
            "settings.lockout_policy.max_attempts",
        ),
        (
            |s| s.lockout_policy.lockout_duration_minutes = 0,
            "settings.lockout_policy.lockout_duration_minutes",
        ),
        (
            |s| s.lockout_policy.reset_after_minutes = 43_201,
            "settings.lockout_policy.reset_after_minutes",
        ),
        (
            |s| s.allowed_email_domains = vec!["Acme.example".into()],
            "settings.allowed_email_domains[0]",
        ),
        (
            |s| s.allowed_email_domains = (0..101).map(|i| format!("d{i}.example")).collect(),
            "settings.allowed_email_domains",
        ),
    ];
    let state = given::<TenantState>([trial()]);
    for (tweak, field) in cases {
        let mut settings = default_settings();
        tweak(&mut settings);
        assert_eq!(
            invalid_field(state.when(TenantCommand::ChangeSettings { settings })),
            Some(field.to_owned())
        );
    }
}

// --- updates and settings -----------------------------------------------------------------

#[test]
fn an_update_records_only_the_fields_that_change() {
    let changes = TenantChanges {
        name: Some("Acme Corporation".into()),
        domains: Some(vec!["acme.example".into(), "login.acme.example".into()]),
        plan: Some("enterprise".into()),
        config_json: None,
        sales_owner: Some("sam@tessera.example".into()),
    };
    assert_eq!(
        given::<TenantState>([trial()]).when(TenantCommand::Update(changes)),
        Ok(vec![Event::TenantUpdated(TenantUpdatedV1 {
            name: None,
            domains: Some(vec!["acme.example".into(), "login.acme.example".into()]),
            plan: Some("enterprise".into()),
            config_json: None,
            sales_owner: None,
        })])
    );
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    assert_eq!(
        given::<TenantState>([trial()]).when(TenantCommand::Update(TenantChanges {
            plan: Some("starter".into()),
            ..TenantChanges::default()
        })),
        Ok(vec![])
    );
}

#[test]
fn updates_settings_and_keys_stay_allowed_while_suspended() {
    let state = given::<TenantState>([trial(), suspended()]);
    let update = state.when(TenantCommand::Update(TenantChanges {
        name: Some("Acme".into()),
        ..TenantChanges::default()
    }));
    assert_eq!(update.map(|events| events.len()), Ok(1));
    let mut settings = default_settings();
    settings.require_mfa = true;
    assert_eq!(
        state.when(TenantCommand::ChangeSettings {
            settings: settings.clone()
        }),
        Ok(vec![Event::TenantSettingsChanged(
            TenantSettingsChangedV1 { settings }
        )])
    );
    assert_eq!(
        state.when(TenantCommand::RotateKey { key: key("k2") }),
        Ok(vec![rotated("k2", "k1")])
    );
}

#[test]
fn unchanged_settings_record_nothing() {
    assert_eq!(
        given::<TenantState>([trial()]).when(TenantCommand::ChangeSettings {
            settings: default_settings()
        }),
        Ok(vec![])
    );
}

// --- activation ---------------------------------------------------------------------------

#[test]
fn a_trial_is_activated_with_its_current_plan_by_default() {
    assert_eq!(
        given::<TenantState>([trial()]).when(TenantCommand::Activate(Activation {
            plan: None,
            contract_start: date("2027-01-01"),
            contract_end: date("2027-12-31"),
            erp_customer_id: Some("ERP-1".into()),
        })),
        Ok(vec![Event::TenantActivated(TenantActivatedV1 {
            previous_status: TenantStatus::Trial,
            plan: "starter".into(),
            contract_start: date("2027-01-01"),
            contract_end: date("2027-12-31"),
            erp_customer_id: Some("ERP-1".into()),
        })])
    );
}

#[test]
fn demo_and_frozen_tenants_can_be_activated() {
    for history in [
        vec![created(TenantKind::Demo)],
        vec![trial(), cancelled_now("budget")],
    ] {
        let events = given::<TenantState>(history.clone())
            .when(TenantCommand::Activate(Activation::default()));
        assert!(events.is_ok(), "{events:?}");
        let mut all = history;
        all.extend(events.unwrap_or_default());
        assert_eq!(status_of(&all), Some(TenantStatus::Active));
    }
}

#[test]
fn activating_an_active_tenant_is_illegal() {
    assert_eq!(
        given::<TenantState>([trial(), activated(None)])
            .when(TenantCommand::Activate(Activation::default())),
        illegal("active", "activate")
    );
}

#[test]
fn a_contract_cannot_end_before_it_starts() {
    assert_eq!(
        invalid_field(
            given::<TenantState>([trial()]).when(TenantCommand::Activate(Activation {
                contract_start: date("2027-02-01"),
                contract_end: date("2027-01-31"),
                ..Activation::default()
            }))
        ),
        Some("contract_end".into())
    );
}

#[test]
fn a_suspended_tenant_must_be_reactivated_before_activation_or_cancellation() {
    let state = given::<TenantState>([trial(), suspended()]);
    assert_eq!(
        state.when(TenantCommand::Activate(Activation::default())),
        illegal("suspended", "activate")
    );
    assert_eq!(
        state.when(cancel(false, NOW)),
        illegal("suspended", "cancel")
    );
}

// --- cancellation and freezing --------------------------------------------------------------

#[test]
fn cancelling_without_a_future_contract_end_freezes_at_once() {
    let expected = Ok(vec![cancelled_now("budget")]);
    // A trial has no contract, so even "at period end" means now.
    assert_eq!(
        given::<TenantState>([trial()]).when(cancel(true, NOW)),
        expected
    );
    assert_eq!(
        given::<TenantState>([created(TenantKind::Demo)]).when(cancel(false, NOW)),
        expected
    );
    // A contract that already ended.
    assert_eq!(
        given::<TenantState>([trial(), activated(date("2026-12-31"))]).when(cancel(true, NOW)),
        expected
    );
    let history = [trial(), cancelled_now("budget")];
    assert_eq!(status_of(&history), Some(TenantStatus::Frozen));
}

#[test]
fn cancelling_at_period_end_waits_for_the_end_of_the_contract_day() {
    let end_of_contract =
        Timestamp::parse_rfc3339("2027-06-30T23:59:59.999999Z").unwrap_or_default();
    let history = vec![trial(), activated(date("2027-06-30"))];
    let events = given::<TenantState>(history.clone()).when(cancel(true, NOW));
    assert_eq!(
        events,
        Ok(vec![Event::TenantCancelled(TenantCancelledV1 {
            reason: "budget".into(),
            effective_at: Some(end_of_contract),
        })])
    );
    let mut all = history;
    all.extend(events.unwrap_or_default());
    assert_eq!(status_of(&all), Some(TenantStatus::Active));

    let pending = given::<TenantState>(all.clone());
    assert_eq!(
        pending.when(TenantCommand::FreezeDue {
            now: end_of_contract.plus_seconds(-1)
        }),
        Ok(vec![])
    );
    assert_eq!(
        pending.when(TenantCommand::FreezeDue {
            now: end_of_contract
        }),
        Ok(vec![Event::TenantFrozen(TenantFrozenV1 {
            reason: "budget".into()
        })])
    );
    assert_eq!(
        pending.when(cancel(false, NOW)),
        illegal("cancellation pending", "cancel")
    );
}

#[test]
fn freeze_due_does_nothing_without_a_pending_cancellation() {
    assert_eq!(
        given::<TenantState>([trial()]).when(TenantCommand::FreezeDue { now: NOW }),
        Ok(vec![])
    );
}

#[test]
fn frozen_and_archived_tenants_cannot_be_cancelled() {
    assert_eq!(
        given::<TenantState>([trial(), cancelled_now("x")]).when(cancel(false, NOW)),
        illegal("frozen", "cancel")
    );
    assert_eq!(
        given::<TenantState>([trial(), archived(TenantStatus::Trial)]).when(cancel(false, NOW)),
        illegal("archived", "cancel")
    );
}

#[test]
fn a_cancellation_needs_a_reason() {
    assert_eq!(
        invalid_field(given::<TenantState>([trial()]).when(TenantCommand::Cancel {
            reason: " ".into(),
            at_period_end: false,
            now: NOW
        })),
        Some("reason".into())
    );
}

// --- suspension -----------------------------------------------------------------------------

#[test]
fn reactivation_restores_exactly_the_state_before_suspension() {
    let before = vec![trial(), activated(date("2027-12-31")), rotated("k2", "k1")];
    let suspend = given::<TenantState>(before.clone()).when(TenantCommand::Suspend {
        reason: Some("abuse".into()),
    });
    assert_eq!(suspend, Ok(vec![suspended()]));
    let mut history = before.clone();
    history.push(suspended());
    assert_eq!(
        given::<TenantState>(history.clone()).when(TenantCommand::Reactivate),
        Ok(vec![Event::TenantReactivated(TenantReactivatedV1 {})])
    );
    history.push(Event::TenantReactivated(TenantReactivatedV1 {}));
    assert_eq!(TenantState::replay(&history), TenantState::replay(&before));
}

#[test]
fn suspension_does_not_stack_and_reactivation_needs_a_suspension() {
    assert_eq!(
        given::<TenantState>([trial(), suspended()]).when(TenantCommand::Suspend { reason: None }),
        illegal("suspended", "suspend")
    );
    assert_eq!(
        given::<TenantState>([trial()]).when(TenantCommand::Reactivate),
        illegal("trial", "reactivate")
    );
}

// --- archival and the system tenant ---------------------------------------------------------

#[test]
fn any_non_archived_tenant_can_be_archived_even_when_suspended() {
    for (history, previous) in [
        (vec![trial()], TenantStatus::Trial),
        (vec![trial(), suspended()], TenantStatus::Trial),
        (vec![trial(), cancelled_now("x")], TenantStatus::Frozen),
        (vec![created(TenantKind::Demo)], TenantStatus::Demo),
    ] {
        assert_eq!(
            given::<TenantState>(history).when(TenantCommand::Archive),
            Ok(vec![archived(previous)])
        );
    }
}

#[test]
fn every_command_on_an_archived_tenant_is_illegal() {
    let state = given::<TenantState>([trial(), rotated("k2", "k1"), archived(TenantStatus::Trial)]);
    let commands = [
        TenantCommand::Update(TenantChanges {
            name: Some("New".into()),
            ..TenantChanges::default()
        }),
        TenantCommand::ChangeSettings {
            settings: default_settings(),
        },
        TenantCommand::Activate(Activation::default()),
        cancel(false, NOW),
        TenantCommand::Suspend { reason: None },
        TenantCommand::Reactivate,
        TenantCommand::Archive,
        TenantCommand::RotateKey { key: key("k3") },
        TenantCommand::RetireKey { kid: "k1".into() },
    ];
    for command in commands {
        let outcome = state.when(command.clone());
        assert!(
            matches!(&outcome, Err(DomainError::IllegalTransition { from, .. }) if from == "archived"),
            "{command:?} gave {outcome:?}"
        );
    }
    assert_eq!(
        state.when(TenantCommand::FreezeDue { now: NOW }),
        Ok(vec![])
    );
}

#[test]
fn the_system_tenant_cannot_be_suspended_cancelled_or_archived() {
    let system = Event::TenantCreated(TenantCreatedV1 {
        tenant_id: SYSTEM_TENANT_ID,
        slug: "system".into(),
        status: TenantStatus::Active,
        trial_ends_at: None,
        ..created_payload(TenantKind::Customer)
    });
    let state = given::<TenantState>([system]);
    for command in [
        TenantCommand::Suspend { reason: None },
        cancel(false, NOW),
        TenantCommand::Archive,
    ] {
        assert!(matches!(state.when(command), Err(DomainError::Conflict(_))));
    }
}

// --- signing keys ---------------------------------------------------------------------------

#[test]
fn rotation_makes_the_new_key_active_and_keeps_the_previous_published() {
    assert_eq!(
        given::<TenantState>([trial()]).when(TenantCommand::RotateKey { key: key("k2") }),
        Ok(vec![rotated("k2", "k1")])
    );
    let tenant = TenantState::replay(&[trial(), rotated("k2", "k1")]).tenant;
    let statuses: Vec<(String, KeyStatus)> = tenant
        .map(|t| t.keys.iter().map(|k| (k.kid.clone(), k.status)).collect())
        .unwrap_or_default();
    assert_eq!(
        statuses,
        vec![
            ("k1".to_owned(), KeyStatus::Published),
            ("k2".to_owned(), KeyStatus::Active)
        ]
    );
}

#[test]
fn a_kid_cannot_be_reused() {
    assert!(matches!(
        given::<TenantState>([trial()]).when(TenantCommand::RotateKey { key: key("k1") }),
        Err(DomainError::Conflict(_))
    ));
}

#[test]
fn retiring_keys_follows_the_ring_rules() {
    let retired = Event::SigningKeyRetired(SigningKeyRetiredV1 { kid: "k1".into() });
    let rotated_once = given::<TenantState>([trial(), rotated("k2", "k1")]);
    assert_eq!(
        rotated_once.when(TenantCommand::RetireKey { kid: "k1".into() }),
        Ok(vec![retired.clone()])
    );
    assert_eq!(
        rotated_once.when(TenantCommand::RetireKey { kid: "nope".into() }),
        Err(DomainError::NotFound)
    );
    assert!(matches!(
        rotated_once.when(TenantCommand::RetireKey { kid: "k2".into() }),
        Err(DomainError::Conflict(message)) if message.contains("rotate first")
    ));
    assert!(matches!(
        given::<TenantState>([trial(), rotated("k2", "k1"), retired])
            .when(TenantCommand::RetireKey { kid: "k1".into() }),
        Err(DomainError::Conflict(_))
    ));
}

// --- properties -----------------------------------------------------------------------------

fn arb_command() -> impl Strategy<Value = TenantCommand> {
    let now = (0i64..400).prop_map(|days| NOW.plus_seconds(days * 86_400));
    let kid = prop_oneof![Just("k1"), Just("k2"), Just("k3"), Just("k4")];
    prop_oneof![
        prop_oneof![Just(TenantKind::Customer), Just(TenantKind::Demo)]
            .prop_map(|kind| create(new_tenant(kind))),
        prop_oneof![Just("starter"), Just("enterprise"), Just("Bad Plan")].prop_map(|plan| {
            TenantCommand::Update(TenantChanges {
                plan: Some(plan.into()),
                ..TenantChanges::default()
            })
        }),
        (0u16..200).prop_map(|min_length| {
            let mut settings = default_settings();
            settings.password_policy.min_length = min_length;
            TenantCommand::ChangeSettings { settings }
        }),
        proptest::option::of(0u32..3).prop_map(|end| {
            TenantCommand::Activate(Activation {
                contract_end: end.and_then(|year| match year {
                    0 => date("2026-06-30"),
                    1 => date("2027-06-30"),
                    _ => date("2028-06-30"),
                }),
                ..Activation::default()
            })
        }),
        (any::<bool>(), now.clone()).prop_map(|(at_period_end, now)| cancel(at_period_end, now)),
        now.prop_map(|now| TenantCommand::FreezeDue { now }),
        Just(TenantCommand::Suspend { reason: None }),
        Just(TenantCommand::Reactivate),
        Just(TenantCommand::Archive),
        kid.clone()
            .prop_map(|kid| TenantCommand::RotateKey { key: key(kid) }),
        kid.prop_map(|kid| TenantCommand::RetireKey { kid: kid.into() }),
    ]
}

fn legal(from: TenantStatus, to: TenantStatus) -> bool {
    use TenantStatus::{Active, Archived, Demo, Frozen, Trial};
    from == to
        || matches!(
            (from, to),
            (Demo | Trial | Frozen, Active)
                | (Demo | Trial | Active, Frozen)
                | (Demo | Trial | Active | Frozen, Archived)
        )
}

proptest! {
    #[test]
    fn decided_events_fold_without_panicking_and_only_take_legal_transitions(
        commands in proptest::collection::vec(arb_command(), 0..40)
    ) {
        let mut state = TenantState::default();
        for command in commands {
            let Ok(events) = state.decide(command) else { continue };
            for event in &events {
                let before = state.tenant.as_ref().map(|t| (t.status, t.suspended));
                state.evolve(event);
                let after = state.tenant.as_ref().map(|t| (t.status, t.suspended));
                if let (Some((from, _)), Some((to, _))) = (before, after) {
                    prop_assert!(legal(from, to), "{from:?} -> {to:?} by {event:?}");
                }
                if let Some(tenant) = &state.tenant {
                    // Exactly one key is active, and it is the one named active.
                    let active: Vec<&str> = tenant
                        .keys
                        .iter()
                        .filter(|k| k.status == KeyStatus::Active)
                        .map(|k| k.kid.as_str())
                        .collect();
                    prop_assert_eq!(active, vec![tenant.active_kid.as_str()]);
                }
            }
        }
    }

    #[test]
    fn folding_any_sequence_of_tenant_events_never_panics(
        picks in proptest::collection::vec(0usize..9, 0..40)
    ) {
        let pool = [
            trial(),
            created(TenantKind::Demo),
            activated(date("2027-06-30")),
            cancelled_now("x"),
            suspended(),
            Event::TenantReactivated(TenantReactivatedV1 {}),
            archived(TenantStatus::Active),
            rotated("k2", "k1"),
            Event::SigningKeyRetired(SigningKeyRetiredV1 { kid: "k9".into() }),
        ];
        let events: Vec<Event> = picks.iter().filter_map(|i| pool.get(*i).cloned()).collect();
        let _ = TenantState::replay(&events);
    }
}
