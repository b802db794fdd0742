//! The property the as-of issue requires: for random command histories run through the real
//! command service on SQLite, `as-of` at every position the log reached equals the state the
//! live system had at that position: the tenant as `CommandService::load_tenant` gave it, every
//! API key and client as their streams folded then, and the tokens valid at that moment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Harness, Store, meta, token};
use proptest::prelude::*;
use tessera_commands::{ActivateTenant, CreateTenant, IssueApiKey, RegisterClient, UpdateTenant};
use tessera_domain::Aggregate;
use tessera_domain::api_key::ApiKeyState;
use tessera_domain::oauth_client::{ClientChanges, OAuthClientState};
use tessera_domain::tenant::{KeyStatus, TenantState, default_settings};
use tessera_event_schemas::events::{ClientType, TenantKind, TokenRevokedV1};
use tessera_event_schemas::{Timestamp, streams};
use tessera_replay_tools::asof::fold_tenant;
use tessera_replay_tools::source::Bound;
use uuid::Uuid;

#[derive(Clone, Debug)]
enum Op {
    Settings {
        mfa: bool,
        sessions: u16,
    },
    Rename(u8),
    Rotate,
    Retire(usize),
    IssueKey,
    RevokeKey(usize),
    RegisterClient,
    UpdateClient(usize, u32),
    DeactivateClient(usize),
    IssueToken(usize, i64),
    RevokeToken(usize),
    Suspend,
    Reactivate,
    Activate,
    Archive,
    Advance(i64),
    /// A change to another tenant, so that foreign events interleave.
    Neighbour(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), 1u16..20).prop_map(|(mfa, sessions)| Op::Settings { mfa, sessions }),
        1 => (0u8..3).prop_map(Op::Rename),
        2 => Just(Op::Rotate),
        2 => (0usize..4).prop_map(Op::Retire),
        2 => Just(Op::IssueKey),
        2 => (0usize..4).prop_map(Op::RevokeKey),
        2 => Just(Op::RegisterClient),
        1 => (0usize..4, 60u32..7200).prop_map(|(i, ttl)| Op::UpdateClient(i, ttl)),
        1 => (0usize..4).prop_map(Op::DeactivateClient),
        3 => (0usize..4, 1i64..3000).prop_map(|(i, ttl)| Op::IssueToken(i, ttl)),
        2 => (0usize..8).prop_map(Op::RevokeToken),
        1 => Just(Op::Suspend),
        1 => Just(Op::Reactivate),
        1 => Just(Op::Activate),
        1 => Just(Op::Archive),
        2 => (1i64..2000).prop_map(Op::Advance),
        1 => any::<bool>().prop_map(Op::Neighbour),
    ]
}

/// What the live system had at one position.
#[derive(Debug)]
struct Live {
    position: u64,
    tenant: TenantState,
    api_keys: BTreeMap<Uuid, ApiKeyState>,
    clients: BTreeMap<String, OAuthClientState>,
    valid_tokens: BTreeSet<Uuid>,
}

struct TokenModel {
    jti: Uuid,
    client_id: String,
    expires_at: Timestamp,
    revoked: bool,
}

fn create(slug: &str) -> CreateTenant {
    CreateTenant {
        tenant_id: None,
        slug: slug.to_owned(),
        name: slug.to_owned(),
        plan: None,
        kind: TenantKind::Customer,
        domains: Vec::new(),
        settings: None,
        config_json: None,
        sales_owner: None,
        signing_alg: None,
    }
}

async fn run(ops: Vec<Op>) {
    let store = Store::fresh(false).await;
    let h = Harness::new(&store).await;
    let s = &h.service;
    let neighbour = s
        .create_tenant(meta("n"), create("neighbour"))
        .await
        .unwrap();
    let id = s
        .create_tenant(meta("c"), create("acme"))
        .await
        .unwrap()
        .tenant_id;
    let mut keys: Vec<Uuid> = Vec::new();
    let mut clients: Vec<String> = Vec::new();
    let mut tokens: Vec<TokenModel> = Vec::new();
    let mut lives: Vec<Live> = Vec::new();
    let mut last_append_at = h.now();
    let mut head = h.head().await;
    lives.push(live(&h, id, head, &keys, &clients, &tokens, last_append_at).await);

    // Every history starts with a client, an API key and a token, so that every kind of
    // operation has something to act on.
    let setup = [Op::RegisterClient, Op::IssueKey, Op::IssueToken(0, 900)];
    for (i, op) in setup.into_iter().chain(ops).enumerate() {
        let m = meta(&format!("op-{i}"));
        let tenant = s.load_tenant(id).await.unwrap();
        let kids: Vec<(String, KeyStatus)> = tenant
            .tenant
            .as_ref()
            .map(|t| t.keys.iter().map(|k| (k.kid.clone(), k.status)).collect())
            .unwrap_or_default();
        // Refusals are part of the history too: they must append nothing.
        match op {
            Op::Settings { mfa, sessions } => {
                let mut settings = default_settings();
                settings.require_mfa = mfa;
                settings.max_sessions_per_user = sessions;
                let _ = s.change_settings(m, id, settings).await;
            }
            Op::Rename(n) => {
                let input = UpdateTenant {
                    name: Some(format!("Acme {n}")),
                    ..UpdateTenant::default()
                };
                let _ = s.update_tenant(m, id, input).await;
            }
            Op::Rotate => {
                let _ = s.rotate_signing_key(m, id, None).await;
            }
            Op::Retire(i) => {
                if !kids.is_empty() {
                    let kid = kids[i % kids.len()].0.clone();
                    let _ = s.retire_signing_key(m, id, kid).await;
                }
            }
            Op::IssueKey => {
                let input = IssueApiKey {
                    name: "k".to_owned(),
                    scopes: vec!["tenant:read".to_owned()],
                    product: None,
                    expires_at: Some(h.now().plus_seconds(1500)),
                    created_by: "prop".to_owned(),
                    key_id: None,
                    plaintext: None,
                };
                if let Ok(issued) = s.issue_api_key(m, id, input).await {
                    keys.push(issued.key_id);
                }
            }
            Op::RevokeKey(i) => {
                if !keys.is_empty() {
                    let _ = s.revoke_api_key(m, id, keys[i % keys.len()]).await;
                }
            }
            Op::RegisterClient => {
                let input = RegisterClient {
                    name: "c".to_owned(),
                    client_type: ClientType::Confidential,
                    grant_types: vec!["client_credentials".to_owned()],
                    redirect_uris: Vec::new(),
                    allowed_scopes: vec!["read".to_owned()],
                    access_token_ttl_secs: None,
                    created_by: "prop".to_owned(),
                    oidc: Default::default(),
                };
                if let Ok(client) = s.register_client(m, id, input).await {
                    clients.push(client.client_id);
                }
            }
            Op::UpdateClient(i, ttl) => {
                if !clients.is_empty() {
                    let changes = ClientChanges {
                        access_token_ttl_secs: Some(ttl),
                        ..ClientChanges::default()
                    };
                    let _ = s
                        .update_client(m, id, &clients[i % clients.len()], changes)
                        .await;
                }
            }
            Op::DeactivateClient(i) => {
                if !clients.is_empty() {
                    let _ = s
                        .deactivate_client(m, id, &clients[i % clients.len()], None)
                        .await;
                }
            }
            Op::IssueToken(i, ttl) => {
                if !clients.is_empty() {
                    let client_id = clients[i % clients.len()].clone();
                    let kid = kids.first().map(|k| k.0.clone()).unwrap_or_default();
                    let issued = token(&kid, h.now(), ttl);
                    s.record_token_issued(m, id, &client_id, issued.issued.clone(), issued.at)
                        .await
                        .unwrap();
                    tokens.push(TokenModel {
                        jti: issued.jti,
                        client_id,
                        expires_at: issued.expires_at,
                        revoked: false,
                    });
                }
            }
            Op::RevokeToken(i) => {
                if !tokens.is_empty() {
                    let n = tokens.len();
                    let t = &mut tokens[i % n];
                    let revoked = TokenRevokedV1 {
                        jti: t.jti,
                        client_id: t.client_id.clone(),
                        expires_at: t.expires_at,
                    };
                    s.record_token_revoked(m, id, revoked).await.unwrap();
                    t.revoked = true;
                }
            }
            Op::Suspend => {
                let _ = s.suspend(m, id, Some("prop".to_owned())).await;
            }
            Op::Reactivate => {
                let _ = s.reactivate(m, id).await;
            }
            Op::Activate => {
                let _ = s.activate(m, id, ActivateTenant::default()).await;
            }
            Op::Archive => {
                let _ = s.archive(m, id).await;
            }
            Op::Advance(secs) => h.clock.advance_seconds(secs),
            Op::Neighbour(mfa) => {
                let mut settings = default_settings();
                settings.require_mfa = mfa;
                let _ = s.change_settings(m, neighbour.tenant_id, settings).await;
            }
        }
        let now_head = h.head().await;
        if now_head == head {
            continue;
        }
        head = now_head;
        // With a fixed clock every event of one command carries the time it ran at.
        last_append_at = h.now();
        lives.push(live(&h, id, head, &keys, &clients, &tokens, last_append_at).await);
    }

    let bounds: Vec<Bound> = lives.iter().map(|l| Bound::Position(l.position)).collect();
    let snapshots = fold_tenant(h.log.as_ref(), id, &bounds, |_| {})
        .await
        .unwrap();
    for ((live, snapshot), bound) in lives.iter().zip(&snapshots).zip(&bounds) {
        assert_eq!(snapshot.position, live.position);
        assert_eq!(snapshot.tenant, live.tenant, "tenant at {}", live.position);
        assert_eq!(
            snapshot.api_keys, live.api_keys,
            "keys at {}",
            live.position
        );
        assert_eq!(
            snapshot.clients, live.clients,
            "clients at {}",
            live.position
        );
        let moment = snapshot.moment(*bound);
        let valid: BTreeSet<Uuid> = snapshot
            .valid_tokens(moment)
            .map(|t| t.issued.jti)
            .collect();
        assert_eq!(valid, live.valid_tokens, "tokens at {}", live.position);
        let view = snapshot.view(*bound).unwrap();
        assert_eq!(view.api_keys.len(), live.api_keys.len());
        assert_eq!(view.clients.len(), live.clients.len());
    }
}

async fn live(
    h: &Harness,
    id: Uuid,
    position: u64,
    keys: &[Uuid],
    clients: &[String],
    tokens: &[TokenModel],
    now: Timestamp,
) -> Live {
    let mut api_keys = BTreeMap::new();
    for key in keys {
        let events = h
            .log
            .read_stream(&streams::api_key(id, *key), 0, 10_000)
            .await
            .unwrap();
        let decoded: Vec<_> = events.iter().map(|e| e.decode().unwrap()).collect();
        api_keys.insert(*key, ApiKeyState::replay(&decoded));
    }
    let mut client_states = BTreeMap::new();
    for client in clients {
        let events = h
            .log
            .read_stream(&streams::oauth_client(id, client), 0, 10_000)
            .await
            .unwrap();
        let decoded: Vec<_> = events.iter().map(|e| e.decode().unwrap()).collect();
        client_states.insert(client.clone(), OAuthClientState::replay(&decoded));
    }
    Live {
        position,
        tenant: h.service.load_tenant(id).await.unwrap(),
        api_keys,
        clients: client_states,
        valid_tokens: tokens
            .iter()
            .filter(|t| !t.revoked && t.expires_at > now)
            .map(|t| t.jti)
            .collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn as_of_every_position_equals_the_live_state(ops in prop::collection::vec(op(), 1..=12)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(ops));
    }
}
