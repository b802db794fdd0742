//! Refresh-token families: the refresh grant, and introspection and revocation of refresh
//! tokens (ADR 0003).
//!
//! A use reads the family's stream (folded with its envelopes' times and positions) and the
//! streams of its revocation horizon: the user's, the user's consents, and, for a family
//! without `offline_access`, the user's sessions. A rotation appends
//! `refresh_token.rotated` expecting the version read together with the new access token's
//! `token.issued`; of concurrent uses of one token, on any nodes, exactly one rotates, and the
//! others, retried, read the family rotated and get grace answers (the current token, made
//! again) or, after the grace period, revoke the family. The in-process queue of the family's
//! stream only spares retries; the expected version decides.

use tessera_domain::refresh_token::{
    Family, RefreshFamilyState, RefreshTokenCommand, Use, UseToken,
};
use tessera_domain::{Aggregate, DomainError};
use tessera_event_log::ExpectedVersion;
use tessera_event_schemas::events::{GrantType, RefreshRevocationReason, TokenIssuedV2};
use tessera_event_schemas::{Event, EventMetadata, RecordedEvent, Timestamp, streams};
use uuid::Uuid;

use super::CommandService;
use super::engine::{Address, Kind, PAGE, Plan, decode, expected};
use crate::CommandError;

/// The grace period of a token just rotated out when none is configured (seconds).
pub const DEFAULT_REFRESH_GRACE_SECS: u32 = 30;

impl Kind for RefreshFamilyState {
    const KIND: &'static str = "refresh_token";
}

impl Address<RefreshFamilyState> {
    fn family(tenant_id: Uuid, family_id: Uuid) -> Self {
        Self::new(streams::refresh(tenant_id, family_id), family_id)
    }
}

/// Input of [`CommandService::refresh`]: a refresh grant request.
#[derive(Clone, Copy, Debug)]
pub struct RefreshRequest<'a> {
    pub tenant_id: Uuid,
    pub client_id: &'a str,
    pub token: &'a str,
    /// The `scope` parameter, split, when sent.
    pub scopes: Option<&'a [String]>,
    pub grace_secs: u32,
    /// The access token the caller will sign: its lifetime and its key.
    pub access_token_ttl_secs: u32,
    pub kid: &'a str,
}

/// What a refresh issued, for the caller to sign and answer with.
#[derive(Clone, Debug)]
pub struct Refreshed {
    pub family_id: Uuid,
    pub family: Family,
    /// The access token's scopes (the family's, or fewer when asked).
    pub scopes: Vec<String>,
    pub jti: Uuid,
    pub issued_at: Timestamp,
    /// The family's current refresh token: the new one after a rotation, the same current one
    /// in a grace answer.
    pub refresh_token: String,
    pub rotated: bool,
}

/// What introspection says of a refresh token.
#[derive(Clone, Debug)]
pub struct RefreshTokenStatus {
    pub family: Family,
    pub active: bool,
}

impl CommandService {
    /// The refresh grant (see the module's doc). A token this server did not make, or that is
    /// not its family's, is not found; an old token revokes its family (durably) and is
    /// rejected; a scope wider than the family's is a `scope` validation error.
    pub async fn refresh(
        &self,
        meta: &EventMetadata,
        request: RefreshRequest<'_>,
    ) -> Result<(Refreshed, u64), CommandError> {
        let tenant_id = request.tenant_id;
        let parsed = self
            .crypto
            .grants()
            .parse_refresh_token(tenant_id, request.token)
            .ok_or_else(|| CommandError::not_found("refresh_token", "presented"))?;
        let address = Address::family(tenant_id, parsed.family_id);
        let address = &address;
        let (outcome, position) = self
            .run(&address.stream, move || async move {
                let (state, version, position) =
                    self.load_family(&address.stream, parsed.generation).await?;
                let now = self.clock.now();
                let jti = self.ids.new_id();
                let next = parsed.generation.saturating_add(1);
                let next_token =
                    self.crypto
                        .grants()
                        .refresh_token(tenant_id, parsed.family_id, next);
                let decided = self
                    .decide_use(
                        &state,
                        tenant_id,
                        UseToken {
                            client_id: request.client_id.to_owned(),
                            generation: parsed.generation,
                            token_matches: self.token_matches(
                                &state,
                                request.token,
                                parsed.generation,
                            ),
                            ended: None,
                            requested_scopes: request.scopes.map(<[String]>::to_vec),
                            now,
                            grace_secs: request.grace_secs,
                            next_hash: self.crypto.grants().refresh_token_hash(&next_token),
                            jti,
                        },
                    )
                    .await?;
                let decided = match decided {
                    Ok(decided) => decided,
                    Err(DomainError::NotFound) if version == 0 => {
                        return Err(address.not_found());
                    }
                    Err(error) => return Err(CommandError::Rejected(error)),
                };
                let Some(family) = state.family.clone() else {
                    return Err(address.not_found());
                };
                let mut plan = Plan::new(None, position);
                let (generation, scopes, rotated) = match decided {
                    Use::Reuse { events } => {
                        plan.push(self.write(
                            meta,
                            now,
                            address.stream.clone(),
                            expected(version),
                            tenant_id,
                            events,
                        ));
                        return Ok(plan);
                    }
                    Use::Grace { generation, scopes } => (generation, scopes, false),
                    Use::Rotate {
                        events,
                        generation,
                        scopes,
                    } => {
                        plan.push(self.write(
                            meta,
                            now,
                            address.stream.clone(),
                            expected(version),
                            tenant_id,
                            events,
                        ));
                        (generation, scopes, true)
                    }
                };
                plan.push(self.write(
                    meta,
                    now,
                    streams::client_tokens(tenant_id, &family.client_id),
                    ExpectedVersion::Any,
                    tenant_id,
                    vec![Event::TokenIssued(TokenIssuedV2 {
                        jti,
                        grant_type: GrantType::RefreshToken,
                        scopes: scopes.clone(),
                        audience: Vec::new(),
                        kid: request.kid.to_owned(),
                        ttl_secs: request.access_token_ttl_secs,
                    })],
                ));
                let refresh_token = if rotated {
                    next_token
                } else {
                    self.crypto
                        .grants()
                        .refresh_token(tenant_id, parsed.family_id, generation)
                };
                Ok(plan.with_value(Some(Refreshed {
                    family_id: parsed.family_id,
                    family,
                    scopes,
                    jti,
                    issued_at: now,
                    refresh_token,
                    rotated,
                })))
            })
            .await?;
        match outcome {
            Some(refreshed) => Ok((refreshed, position)),
            None => Err(CommandError::Rejected(DomainError::Conflict(
                "the refresh token was already used; its family is revoked".into(),
            ))),
        }
    }

    /// What introspection says of a refresh token of `tenant_id`, read as the refresh grant
    /// reads it: `None` when it is not a genuine token of a family; inactive when the family
    /// is revoked, expired or ended, or the token was rotated out (its grace period aside).
    /// Appends nothing.
    pub async fn refresh_token_status(
        &self,
        tenant_id: Uuid,
        token: &str,
    ) -> Result<Option<RefreshTokenStatus>, CommandError> {
        let Some(parsed) = self.crypto.grants().parse_refresh_token(tenant_id, token) else {
            return Ok(None);
        };
        let (state, _, _) = self
            .load_family(
                &streams::refresh(tenant_id, parsed.family_id),
                parsed.generation,
            )
            .await?;
        let Some(family) = state.family.clone() else {
            return Ok(None);
        };
        if !self.token_matches(&state, token, parsed.generation) {
            return Ok(None);
        }
        let probe = UseToken {
            client_id: family.client_id.clone(),
            generation: parsed.generation,
            token_matches: true,
            ended: None,
            requested_scopes: None,
            now: self.clock.now(),
            grace_secs: 0,
            next_hash: family.current_hash,
            jti: Uuid::nil(),
        };
        let active = matches!(
            self.decide_use(&state, tenant_id, probe).await?,
            Ok(Use::Rotate { .. })
        );
        Ok(Some(RefreshTokenStatus { family, active }))
    }

    /// Revokes the family of `token` when it is a genuine token of `client_id`'s (RFC 7009:
    /// anything else is ignored). Returns the position to wait for.
    pub async fn revoke_refresh_token(
        &self,
        meta: &EventMetadata,
        tenant_id: Uuid,
        client_id: &str,
        token: &str,
    ) -> Result<Option<u64>, CommandError> {
        let Some(parsed) = self.crypto.grants().parse_refresh_token(tenant_id, token) else {
            return Ok(None);
        };
        let address = Address::family(tenant_id, parsed.family_id);
        let address = &address;
        let (revoked, position) = self
            .run(&address.stream, move || async move {
                let (state, version, position) =
                    self.load_family(&address.stream, parsed.generation).await?;
                let plan = Plan::new(false, position);
                let own = state
                    .family
                    .as_ref()
                    .is_some_and(|family| family.client_id == client_id);
                if !own || !self.token_matches(&state, token, parsed.generation) {
                    return Ok(plan);
                }
                let events = state
                    .decide(RefreshTokenCommand::Revoke {
                        reason: RefreshRevocationReason::Revoked,
                    })
                    .map_err(CommandError::Rejected)?;
                let mut plan = plan.with_value(true);
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    address.stream.clone(),
                    expected(version),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(revoked.then_some(position))
    }

    /// Whether `token` is the one recorded for its generation. Generations older than the
    /// family keeps hashes for are taken on their tag, which only this server can make.
    fn token_matches(&self, state: &RefreshFamilyState, token: &str, generation: u32) -> bool {
        let Some(family) = state.family.as_ref() else {
            return false;
        };
        match state.hash_of(generation) {
            Some(hash) => self.crypto.grants().verify_refresh_token(token, &hash),
            None => generation < family.generation,
        }
    }

    /// The domain's decision on a use, with the revocation horizon read from the log.
    async fn decide_use(
        &self,
        state: &RefreshFamilyState,
        tenant_id: Uuid,
        mut request: UseToken,
    ) -> Result<Result<Use, DomainError>, CommandError> {
        if let Some(family) = state.family.as_ref() {
            let events = self.horizon(tenant_id, family).await?;
            request.ended =
                state.ended_by(events.iter().map(|(position, event)| (*position, event)));
        }
        Ok(state.use_token(&request))
    }

    /// The events of the person's streams that can end a family, with their global positions.
    async fn horizon(
        &self,
        tenant_id: Uuid,
        family: &Family,
    ) -> Result<Vec<(u64, Event)>, CommandError> {
        let mut events = self
            .read_positioned(&streams::user(tenant_id, family.user_id))
            .await?;
        events.extend(
            self.read_positioned(&streams::consents(tenant_id, family.user_id))
                .await?,
        );
        if !family.offline {
            events.extend(
                self.read_positioned(&streams::sessions(tenant_id, family.user_id))
                    .await?,
            );
        }
        Ok(events)
    }

    /// A family's stream folded with its envelopes (times and positions), its version and the
    /// position of its last event, as far as a use of `generation` needs it.
    ///
    /// The stream is the family's opening (version 1), one rotation per generation (the rotation
    /// to generation `g` at version `g + 1`) and at most a revocation, so it grows by one event
    /// per rotation. A use of generation `g` needs the opening, the rotations from `g - 1` on
    /// (which set the hashes of `g - 1` and `g`, all the rules compare) and whatever follows:
    /// two reads of a few events, instead of the whole stream, for the current token. Anything
    /// unexpected (a stream that does not have that shape) is read whole.
    async fn load_family(
        &self,
        stream_id: &str,
        generation: u32,
    ) -> Result<(RefreshFamilyState, u64, u64), CommandError> {
        let from = u64::from(generation.saturating_sub(1)) + 1;
        if from > 2 {
            let mut loaded = LoadedFamily::default();
            let opening = self.log.read_stream(stream_id, 0, 1).await?;
            if let Some(first) = opening.first() {
                loaded.add(first, decode(first)?);
            }
            let mut shaped = loaded.version == 1;
            let mut first_of_tail = true;
            self.for_each_event(stream_id, from - 1, |recorded, event| {
                if first_of_tail {
                    shaped &= recorded.envelope.stream_version == from;
                    first_of_tail = false;
                }
                loaded.add(recorded, event);
            })
            .await?;
            if shaped && !first_of_tail {
                return Ok((loaded.state, loaded.version, loaded.position));
            }
        }
        let mut loaded = LoadedFamily::default();
        self.for_each_event(stream_id, 0, |recorded, event| loaded.add(recorded, event))
            .await?;
        Ok((loaded.state, loaded.version, loaded.position))
    }

    /// Every event of a stream with its global position.
    async fn read_positioned(&self, stream_id: &str) -> Result<Vec<(u64, Event)>, CommandError> {
        let mut events = Vec::new();
        self.for_each_event(stream_id, 0, |recorded, event| {
            events.push((recorded.envelope.global_position, event));
        })
        .await?;
        Ok(events)
    }

    /// Reads a stream page by page from after `after_version`, handing each event to `f` with
    /// its record.
    async fn for_each_event(
        &self,
        stream_id: &str,
        after_version: u64,
        mut f: impl FnMut(&RecordedEvent, Event),
    ) -> Result<(), CommandError> {
        let mut version = after_version;
        loop {
            let page = self.log.read_stream(stream_id, version, PAGE).await?;
            for recorded in &page {
                f(recorded, decode(recorded)?);
                version = recorded.envelope.stream_version;
            }
            if page.len() < PAGE {
                return Ok(());
            }
        }
    }
}

/// A family's state as its events are read, with the version and position of the last one.
#[derive(Default)]
struct LoadedFamily {
    state: RefreshFamilyState,
    version: u64,
    position: u64,
}

impl LoadedFamily {
    fn add(&mut self, recorded: &RecordedEvent, event: Event) {
        let envelope = &recorded.envelope;
        self.state
            .observe(&event, envelope.recorded_at, envelope.global_position);
        self.version = envelope.stream_version;
        self.position = envelope.global_position;
    }
}
