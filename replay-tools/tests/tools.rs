//! `as-of`, `diff`, `history` and `export` against real logs on SQLite and PostgreSQL, with a
//! history built by the real command service; and the `tessera-replay` binary's exit codes and
//! JSON shapes. The export is re-verified from its own text alone with `event_hash`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Harness, Store, meta, token};
use serde_json::Value;
use tessera_commands::{CreateTenant, IssueApiKey, RegisterClient};
use tessera_domain::tenant::{KeyStatus, default_settings};
use tessera_event_schemas::events::{ClientType, TenantKind, TenantStatus, TokenRevokedV1};
use tessera_event_schemas::hash::event_hash;
use tessera_event_schemas::{Hash32, Timestamp};
use tessera_replay_tools::asof::fold_tenant;
use tessera_replay_tools::diff::diff;
use tessera_replay_tools::export::{CSV_HEADER, ExportRecord, parse_csv};
use tessera_replay_tools::history::{HistoryEntry, HistoryFilter, tenant_events};
use tessera_replay_tools::source::Bound;
use uuid::Uuid;

/// Positions and times of a scripted history of tenant `acme` (with a neighbour, `other`).
struct Script {
    tenant_id: Uuid,
    first_kid: String,
    second_kid: String,
    key_id: Uuid,
    client_id: String,
    short_token: Uuid,
    long_token: Uuid,
    /// Before acme's creation.
    before: u64,
    /// After creation.
    created: u64,
    /// After the settings change (require_mfa on), and its time.
    settings: u64,
    settings_at: Timestamp,
    /// After suspension (both tokens issued, the long one revoked, the short one not expired).
    suspended: u64,
    /// After everything (the short token has expired, the first key is retired).
    end: u64,
}

async fn script(h: &Harness) -> Script {
    let s = &h.service;
    let other = s
        .create_tenant(
            meta("c-other"),
            CreateTenant {
                tenant_id: None,
                slug: "other".to_owned(),
                name: "Other".to_owned(),
                plan: None,
                kind: TenantKind::Demo,
                domains: Vec::new(),
                settings: None,
                config_json: None,
                sales_owner: None,
                signing_alg: None,
            },
        )
        .await
        .unwrap();
    h.clock.advance_seconds(10);
    let before = h.head().await;
    let created = s
        .create_tenant(
            meta("c-create"),
            CreateTenant {
                tenant_id: None,
                slug: "acme".to_owned(),
                name: "Acme".to_owned(),
                plan: None,
                kind: TenantKind::Customer,
                domains: vec!["acme.example".to_owned()],
                settings: None,
                config_json: None,
                sales_owner: None,
                signing_alg: None,
            },
        )
        .await
        .unwrap();
    let id = created.tenant_id;
    h.clock.advance_seconds(60);
    let mut settings = default_settings();
    settings.require_mfa = true;
    let settings_outcome = s
        .change_settings(meta("c-settings"), id, settings)
        .await
        .unwrap();
    let settings_at = h.now();
    // Noise from the neighbour between acme's events.
    s.suspend(meta("c-other-suspend"), other.tenant_id, None)
        .await
        .unwrap();
    h.clock.advance_seconds(60);
    let rotated = s
        .rotate_signing_key(meta("c-rotate"), id, None)
        .await
        .unwrap();
    let key = s
        .issue_api_key(
            meta("c-key"),
            id,
            IssueApiKey {
                name: "ci".to_owned(),
                scopes: vec!["tenant:read".to_owned()],
                product: None,
                expires_at: None,
                created_by: "alice".to_owned(),
                key_id: None,
                plaintext: None,
            },
        )
        .await
        .unwrap();
    let client = s
        .register_client(
            meta("c-client"),
            id,
            RegisterClient {
                name: "backend".to_owned(),
                client_type: ClientType::Confidential,
                grant_types: vec!["client_credentials".to_owned()],
                redirect_uris: Vec::new(),
                allowed_scopes: vec!["read".to_owned()],
                access_token_ttl_secs: None,
                created_by: "alice".to_owned(),
                oidc: Default::default(),
            },
        )
        .await
        .unwrap();
    let short = token(&rotated.kid, h.now(), 600);
    let long = token(&rotated.kid, h.now(), 3600);
    for (correlation, token) in [("c-t1", &short), ("c-t2", &long)] {
        s.record_token_issued(
            meta(correlation),
            id,
            &client.client_id,
            token.issued.clone(),
            token.at,
        )
        .await
        .unwrap();
    }
    h.clock.advance_seconds(30);
    s.revoke_api_key(meta("c-revoke-key"), id, key.key_id)
        .await
        .unwrap();
    s.record_token_revoked(
        meta("c-revoke-t2"),
        id,
        TokenRevokedV1 {
            jti: long.jti,
            client_id: client.client_id.clone(),
            expires_at: long.expires_at,
        },
    )
    .await
    .unwrap();
    let suspended = s
        .suspend(meta("c-suspend"), id, Some("unpaid".to_owned()))
        .await
        .unwrap();
    h.clock.advance_seconds(1000);
    s.reactivate(meta("c-reactivate"), id).await.unwrap();
    let end = s
        .retire_signing_key(meta("c-retire"), id, created.kid.clone())
        .await
        .unwrap();
    Script {
        tenant_id: id,
        first_kid: created.kid,
        second_kid: rotated.kid,
        key_id: key.key_id,
        client_id: client.client_id,
        short_token: short.jti,
        long_token: long.jti,
        before,
        created: created.position,
        settings: settings_outcome.position,
        settings_at,
        suspended: suspended.position,
        end: end.position,
    }
}

async fn as_of_rebuilds_each_moment(postgres: bool) {
    let store = Store::fresh(postgres).await;
    let h = Harness::new(&store).await;
    let sc = script(&h).await;
    let bounds = [
        Bound::Position(sc.before),
        Bound::Position(sc.created),
        Bound::Position(sc.settings),
        Bound::Time(sc.settings_at),
        Bound::Position(sc.suspended),
        Bound::Position(sc.end),
    ];
    let snaps = fold_tenant(h.log.as_ref(), sc.tenant_id, &bounds, |_| {})
        .await
        .unwrap();
    assert!(snaps[0].view(bounds[0]).is_none(), "not yet created");

    let created = snaps[1].view(bounds[1]).unwrap();
    assert_eq!(created.tenant.slug, "acme");
    assert_eq!(created.tenant.status, TenantStatus::Trial);
    assert!(!created.tenant.settings.require_mfa);
    // The default key and the RS256 key for ID tokens, created together.
    assert_eq!(created.keys.len(), 2);

    for i in [2, 3] {
        let view = snaps[i].view(bounds[i]).unwrap();
        assert!(view.tenant.settings.require_mfa, "{:?}", bounds[i]);
        assert!(view.api_keys.is_empty());
    }
    assert_eq!(snaps[2].tenant, snaps[3].tenant, "time and position agree");

    let suspended = snaps[4].view(bounds[4]).unwrap();
    assert!(suspended.tenant.suspended);
    assert_eq!(
        suspended.tenant.suspension_reason.as_deref(),
        Some("unpaid")
    );
    assert_eq!(suspended.tenant.active_kid, sc.second_kid);
    assert_eq!(suspended.clients.len(), 1);
    assert!(suspended.api_keys[0].revoked);
    let valid: Vec<Uuid> = suspended.valid_tokens.iter().map(|t| t.jti).collect();
    assert_eq!(valid, vec![sc.short_token], "the long one was revoked");

    let end = snaps[5].view(bounds[5]).unwrap();
    assert!(!end.tenant.suspended);
    assert!(end.valid_tokens.is_empty(), "the short one expired");
    let statuses: Vec<(&str, &str)> = end
        .keys
        .iter()
        .map(|k| (k.kid.as_str(), k.status))
        .collect();
    let rs256 = end.keys[1].kid.as_str();
    assert_eq!(
        statuses,
        vec![
            (sc.first_kid.as_str(), "retired"),
            (rs256, "active"),
            (sc.second_kid.as_str(), "active")
        ],
        "the RS256 key of the creation stays active beside the rotated default"
    );
    // The fold is the write side's own: equal to what the command service loads.
    assert_eq!(
        snaps[5].tenant,
        h.service.load_tenant(sc.tenant_id).await.unwrap()
    );
    let live = h.service.load_tenant(sc.tenant_id).await.unwrap();
    assert_eq!(
        live.tenant.unwrap().key(&sc.first_kid).unwrap().status,
        KeyStatus::Retired
    );

    // The changes between creation and the end.
    let d = diff(&snaps[1], bounds[1], &snaps[5], bounds[5]);
    assert!(d.existed_before && d.exists_after);
    assert!(
        d.tenant_changes
            .iter()
            .any(|c| c.field == "settings.require_mfa"),
        "{:?}",
        d.tenant_changes
    );
    assert_eq!(d.keys_added, vec![sc.second_kid.clone()]);
    assert_eq!(d.keys_retired, vec![sc.first_kid.clone()]);
    assert_eq!(d.clients_added, vec![sc.client_id.clone()]);
    assert_eq!(d.api_keys_issued, vec![sc.key_id]);
    assert_eq!(d.api_keys_revoked, vec![sc.key_id]);
    assert_eq!(d.tokens_issued.len(), 2);
    assert_eq!(d.tokens_revoked, vec![sc.long_token]);
    assert!(d.tokens_expired.is_empty(), "never valid at creation");
    let d = diff(&snaps[4], bounds[4], &snaps[5], bounds[5]);
    assert_eq!(d.tokens_expired, vec![sc.short_token]);
    assert!(
        d.tenant_changes.iter().any(|c| c.field == "suspended"),
        "{:?}",
        d.tenant_changes
    );
}

async fn history_lists_the_tenants_events_with_actor_and_correlation(postgres: bool) {
    let store = Store::fresh(postgres).await;
    let h = Harness::new(&store).await;
    let sc = script(&h).await;
    let filter = HistoryFilter {
        tenant_id: sc.tenant_id,
        stream: None,
        since: None,
        until: None,
    };
    let mut entries = Vec::new();
    tenant_events(
        h.log.as_ref(),
        &filter,
        |_| {},
        |recorded, event| {
            entries.push(HistoryEntry::new(recorded, event));
            Ok(())
        },
    )
    .await
    .unwrap();
    let types: Vec<&str> = entries.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types[0], "tenant.created");
    assert!(types.contains(&"reservation.claimed"), "{types:?}");
    assert!(types.contains(&"token.revoked"));
    assert_eq!(*types.last().unwrap(), "tenant.signing_key_retired");
    assert!(
        entries
            .iter()
            .all(|e| e.actor.name.as_deref() == Some("Alice Admin"))
    );
    assert!(
        !entries
            .iter()
            .any(|e| e.correlation_id.starts_with("c-other"))
    );
    let suspended = entries
        .iter()
        .find(|e| e.event_type == "tenant.suspended")
        .unwrap();
    assert_eq!(suspended.correlation_id, "c-suspend");
    assert!(
        suspended.summary.contains("unpaid"),
        "{}",
        suspended.summary
    );

    let only_tokens = HistoryFilter {
        stream: Some("tokens".to_owned()),
        since: Some(Bound::Position(sc.settings)),
        ..filter
    };
    let mut count = 0;
    tenant_events(
        h.log.as_ref(),
        &only_tokens,
        |_| {},
        |recorded, _| {
            assert!(recorded.envelope.stream_id.contains("/tokens/"));
            count += 1;
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(count, 3, "two issued, one revoked");
}

/// Re-verifies export records from their text alone: each hash, and each stream link.
fn reverify(records: &[ExportRecord]) {
    assert!(!records.is_empty());
    let mut last_in_stream = std::collections::HashMap::new();
    for record in records {
        let (envelope, payload) = record.envelope().unwrap();
        assert_eq!(
            event_hash(&envelope, &payload).to_hex(),
            record.hash,
            "position {}",
            record.global_position
        );
        if let Some((version, hash)) = last_in_stream.get(&record.stream_id) {
            if record.stream_version == version + 1 {
                assert_eq!(record.prev_hash, *hash);
            }
        } else if record.stream_version == 1 {
            assert_eq!(record.prev_hash, Hash32::ZERO.to_hex());
        }
        last_in_stream.insert(
            record.stream_id.clone(),
            (record.stream_version, record.hash.clone()),
        );
    }
}

async fn export_reverifies_from_the_export_alone(postgres: bool) {
    let store = Store::fresh(postgres).await;
    let h = Harness::new(&store).await;
    let sc = script(&h).await;
    let tenant = sc.tenant_id.to_string();

    let out = store.data_dir().join("export.jsonl");
    let output = store.run(&[
        "export",
        "--tenant",
        &tenant,
        "--format",
        "jsonl",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    let records: Vec<ExportRecord> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    reverify(&records);
    assert_eq!(records[0].event_type, "tenant.created");
    assert_eq!(records[0].data["slug"], "acme");
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for field in [
        "prev_hash",
        "hash",
        "log_hash",
        "payload_hex",
        "data",
        "actor_kind",
    ] {
        assert!(line.get(field).is_some(), "{field} missing: {line}");
    }

    // A window, by slug, as CSV on stdout.
    let output = store.run(&[
        "export",
        "--tenant",
        "acme",
        "--since",
        &sc.settings.to_string(),
        "--until",
        &sc.suspended.to_string(),
        "--format",
        "csv",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let rows = parse_csv(&String::from_utf8(output.stdout).unwrap());
    let header: Vec<String> = rows[0].iter().map(|c| c.clone().unwrap()).collect();
    assert_eq!(header.join(","), CSV_HEADER);
    let records: Vec<ExportRecord> = rows[1..]
        .iter()
        .map(|row| ExportRecord::from_csv_row(row).unwrap())
        .collect();
    reverify(&records);
    assert!(
        records
            .iter()
            .all(|r| r.global_position >= sc.settings && r.global_position <= sc.suspended)
    );
    assert_eq!(records[0].global_position, sc.settings);
    assert!(records.iter().all(|r| r.tenant_id == sc.tenant_id));
    assert_eq!(records[0].actor_name.as_deref(), Some("Alice Admin"));
    assert_eq!(records[0].user_agent, None);
}

async fn the_cli_prints_each_subcommand_as_json(postgres: bool) {
    let store = Store::fresh(postgres).await;
    let h = Harness::new(&store).await;
    let sc = script(&h).await;
    let json = |args: &[&str]| -> (i32, Value) {
        let output = store.run(args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
            panic!(
                "not JSON: {stdout} / {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code().unwrap_or(-1), value)
    };

    let (code, view) = json(&[
        "as-of",
        "--tenant",
        "acme",
        "--at",
        &sc.suspended.to_string(),
        "--json",
    ]);
    assert_eq!(code, 0, "{view}");
    assert_eq!(view["tenant_id"], sc.tenant_id.to_string());
    assert_eq!(view["tenant"]["suspended"], true);
    assert_eq!(view["tenant"]["settings"]["require_mfa"], true);
    assert_eq!(view["as_of"]["position"], sc.suspended);
    // The first key, the RS256 key beside it, and the rotated one.
    assert_eq!(view["keys"].as_array().unwrap().len(), 3);
    assert_eq!(view["clients"][0]["client_id"], sc.client_id);
    assert_eq!(view["api_keys"][0]["revoked"], true);
    assert_eq!(view["valid_tokens"][0]["jti"], sc.short_token.to_string());

    let at = sc.settings_at.to_rfc3339();
    let (code, view) = json(&[
        "as-of",
        "--tenant",
        &sc.tenant_id.to_string(),
        "--at",
        &at,
        "--json",
    ]);
    assert_eq!(code, 0, "{view}");
    assert_eq!(view["tenant"]["settings"]["require_mfa"], true);
    assert!(view["api_keys"].as_array().unwrap().is_empty());

    let (code, d) = json(&[
        "diff",
        "--tenant",
        "acme",
        "--from",
        &sc.created.to_string(),
        "--to",
        &sc.end.to_string(),
        "--json",
    ]);
    assert_eq!(code, 0, "{d}");
    assert_eq!(d["keys_added"][0], sc.second_kid);
    assert_eq!(d["keys_retired"][0], sc.first_kid);
    assert_eq!(d["api_keys_revoked"][0], sc.key_id.to_string());
    assert_eq!(d["tokens_revoked"][0], sc.long_token.to_string());

    let output = store.run(&["history", "--tenant", "acme", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.len() >= 12, "{}", lines.len());
    let first = &lines[0];
    assert_eq!(first["event_type"], "tenant.created");
    assert_eq!(first["position"], sc.before + 1);
    assert_eq!(first["actor"]["kind"], "user");
    assert_eq!(first["actor"]["id"], "u-1");
    assert_eq!(first["actor"]["name"], "Alice Admin");
    assert_eq!(first["correlation_id"], "c-create");
    assert!(first["summary"].as_str().unwrap().contains("acme"));
    assert!(first["recorded_at"].is_string() && first["stream_id"].is_string());

    // rebuild folds every event of the log into fresh read models, which then hold the tenant.
    let (code, rebuilt) = json(&["rebuild", "--json"]);
    assert_eq!(code, 0, "{rebuilt}");
    let head = h.log.head_position().await.unwrap();
    assert_eq!(rebuilt["events"], head);
    assert!(rebuilt["events_per_second"].as_f64().unwrap() > 0.0);
    let read_models = match store.database_url() {
        Some(url) => tessera_projections::ReadStore::open_postgres(url).await,
        None => {
            tessera_projections::ReadStore::open_sqlite(&store.data_dir().join("readmodels.db"))
                .await
        }
    }
    .unwrap();
    let tenant = read_models.tenant(sc.tenant_id).await.unwrap().unwrap();
    assert_eq!(tenant.slug, "acme");
    assert_eq!(
        tenant.active_kid, sc.second_kid,
        "the rebuilt read model has the final state"
    );
    read_models.close().await;

    // The readable forms.
    for args in [
        vec!["as-of", "--tenant", "acme", "--at", "999999"],
        vec!["history", "--tenant", "acme", "--stream", "tenant"],
        vec!["diff", "--tenant", "acme", "--from", "1", "--to", "999999"],
    ] {
        let output = store.run(&args);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        assert!(String::from_utf8(output.stdout).unwrap().contains("acme") || args[0] == "diff");
    }

    // Exit codes: an unknown tenant is 1; a moment before the tenant existed is 1; bad input 2.
    assert_eq!(
        store
            .run(&["as-of", "--tenant", "nobody", "--at", "5"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        store
            .run(&["as-of", "--tenant", &sc.tenant_id.to_string(), "--at", "1"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        store.run(&["history", "--tenant", "nobody"]).status.code(),
        Some(1)
    );
    assert_eq!(
        store
            .run(&["as-of", "--tenant", "acme", "--at", "yesterday"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        store
            .run(&["export", "--tenant", "acme", "--format", "xml"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_missing_log_is_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera-replay"))
        .args(["as-of", "--tenant", "acme", "--at", "1", "--data-dir"])
        .arg(dir.path())
        .env_remove("TESSERA_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(!dir.path().join("events.db").exists(), "nothing created");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(false).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(true).await;
                }
            }
        )*
    };
}

on_both_backends!(
    as_of_rebuilds_each_moment,
    history_lists_the_tenants_events_with_actor_and_correlation,
    export_reverifies_from_the_export_alone,
    the_cli_prints_each_subcommand_as_json,
);
