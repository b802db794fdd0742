//! Invitation commands: inviting a person into an open tenant with roles, sending a new link,
//! accepting (as a new user, or as the existing user who holds the address) and revoking.
//!
//! An invitee has no user yet, so each invitation gets a data key of its own
//! (`PersonalKeys::create(tenant, invitation_id)`), created durably before anything is sealed
//! under it; the address, name and message are sealed under it, in `invitation.created` and in
//! the `email.queued` of the same append. The link's token is 256 random bits behind the
//! invitation's id (`tessera_crypto::links`); only its keyed hash is recorded, and a presented
//! token is verified against it in constant time.
//!
//! Acceptance is decided once by the invitation stream's expected version: the append that
//! accepts expects the version the token was checked at, so of two concurrent acceptances
//! exactly one appends and the other retries against an accepted invitation and is refused.
//! Revocation destroys the invitation's data key first (as erasure does), then appends.

use std::fmt;

use tessera_crypto::LinkSecrets;
use tessera_domain::invitation::{
    DEFAULT_VALIDITY_SECS, Invitation, InvitationCommand, InvitationState, LinkState,
    NewInvitation, refusal,
};
use tessera_domain::user::{self, UserCommand, UserState};
use tessera_domain::{Aggregate, DomainError};
use tessera_event_schemas::events::EmailTemplate;
use tessera_event_schemas::events::invitation::fields;
use tessera_event_schemas::{EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::email::OutgoingEmail;
use super::engine::{Address, Kind, Plan};
use super::{CommandService, CreateUser, Outcome};
use crate::CommandError;

impl Kind for InvitationState {
    const KIND: &'static str = "invitation";
}

impl Address<InvitationState> {
    pub(super) fn invitation(tenant_id: Uuid, invitation_id: Uuid) -> Self {
        Self::new(streams::invitation(tenant_id, invitation_id), invitation_id)
    }
}

/// Input of [`CommandService::create_invitation`].
#[derive(Clone, Default)]
pub struct CreateInvitation {
    pub email: String,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub message: Option<String>,
    /// Seconds the link stays valid (default 7 days, at most 30).
    pub expires_in: Option<i64>,
    /// The public URL the link starts with (`{public_url}/t/{slug}/invite/{token}`).
    pub public_url: String,
}

impl fmt::Debug for CreateInvitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateInvitation")
            .field("roles", &self.roles)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A new link: the invitation's id, the link (shown once: only its hash is kept) and when it
/// stops working.
#[derive(Clone, PartialEq, Eq)]
pub struct InvitationLink {
    pub invitation_id: Uuid,
    pub invite_url: String,
    pub expires_at: Timestamp,
    pub position: u64,
}

impl fmt::Debug for InvitationLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvitationLink")
            .field("invitation_id", &self.invitation_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Who accepts an invitation.
#[derive(Clone)]
pub enum Acceptance {
    /// Nobody has the address: a new user, with a first password (or none: a passkey is
    /// registered next) and an optional display name.
    NewUser {
        password: Option<String>,
        name: Option<String>,
    },
    /// The signed-in user who holds the invited address gains the roles.
    SignedIn { user_id: Uuid },
}

/// An accepted invitation: who it made (or found) and where the append landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub user_id: Uuid,
    pub created_user: bool,
    pub position: u64,
}

/// What a link shows its holder, read from the log: its state, and for a usable link the
/// invitation in clear and the user who already holds the address, if any. Its `Debug` leaves
/// the personal fields out.
#[derive(Clone)]
pub struct InvitationOffer {
    pub tenant_id: Uuid,
    pub invitation_id: Uuid,
    pub state: LinkState,
    pub email: Option<String>,
    pub name: Option<String>,
    pub message: Option<String>,
    pub roles: Vec<String>,
    pub existing_user: Option<Uuid>,
}

impl fmt::Debug for InvitationOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvitationOffer")
            .field("tenant_id", &self.tenant_id)
            .field("invitation_id", &self.invitation_id)
            .field("state", &self.state)
            .field("roles", &self.roles)
            .field("existing_user", &self.existing_user)
            .finish_non_exhaustive()
    }
}

impl CommandService {
    /// Invites `input.email` into an open tenant: the invitation's data key, then in one
    /// append `invitation.created` and the `email.queued` carrying its link, with the tenant's
    /// stream guarded. The address must pass the tenant's allowed domains (a 400 naming
    /// `email`, appending nothing).
    pub async fn create_invitation(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        input: CreateInvitation,
    ) -> Result<InvitationLink, CommandError> {
        let people = self.people()?;
        let (tenant, _, _) = self.load_open_tenant(tenant_id, "invite").await?;
        let email = user::email(
            "email",
            &input.email,
            &tenant.settings.allowed_email_domains,
        )?;
        let name = input
            .name
            .as_deref()
            .map(|name| user::person_name("name", name))
            .transpose()?;
        let message = input
            .message
            .as_deref()
            .map(|text| tessera_domain::validate::display_text("message", text, 2000))
            .transpose()?;
        let roles = user::roles(&input.roles)?;
        let validity = input.expires_in.unwrap_or(DEFAULT_VALIDITY_SECS);
        let now = self.clock.now();
        let invitation_id = self.ids.new_id();
        let token = self.crypto.links().new_token(invitation_id)?;
        let expires_at = now.plus_seconds(validity);
        // Checked before the key is made, so that a refused invitation leaves no key behind.
        InvitationState::default().decide(InvitationCommand::Create(Box::new(NewInvitation {
            email: Vec::new(),
            email_hash: Default::default(),
            name: None,
            roles: roles.clone(),
            message: None,
            token_hash: Default::default(),
            expires_at,
            now,
        })))?;
        let key = people.keys.create(tenant_id, invitation_id).await?;
        let seal = |field: &str, value: Option<&str>| {
            value.map(|value| key.seal(field, value)).transpose()
        };
        let new = NewInvitation {
            email: key.seal(fields::EMAIL, &email)?,
            email_hash: self.email_hash(tenant_id, &email),
            name: seal(fields::NAME, name.as_deref())?,
            roles,
            message: seal(fields::MESSAGE, message.as_deref())?,
            token_hash: self.crypto.links().hash(&token),
            expires_at,
            now,
        };
        let invite_url = link(&input.public_url, &tenant.slug, &token);
        let address = Address::invitation(tenant_id, invitation_id);
        let mail = OutgoingEmail {
            template: EmailTemplate::Invitation,
            person_id: invitation_id,
            recipient: &email,
            name: name.as_deref(),
            link: &invite_url,
            link_expires_at: expires_at,
            message: message.as_deref(),
        };
        let (meta_ref, address_ref, new_ref, key_ref) = (&meta, &address, &new, &key);
        let ((), position) = self
            .run(&address.stream, move || async move {
                let (tenant, tenant_stream, tenant_version) =
                    self.load_open_tenant(tenant_id, "invite").await?;
                user::email(
                    "email",
                    mail.recipient,
                    &tenant.settings.allowed_email_domains,
                )?;
                let loaded = self.load::<InvitationState>(&address_ref.stream).await?;
                let events = loaded
                    .state
                    .decide(InvitationCommand::Create(Box::new(new_ref.clone())))?;
                let now = self.clock.now();
                let mut plan = Plan::new((), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                plan.push(self.write(
                    meta_ref,
                    now,
                    address_ref.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                plan.push(self.queue_email(meta_ref, now, tenant_id, key_ref, mail)?);
                Ok(plan)
            })
            .await?;
        Ok(InvitationLink {
            invitation_id,
            invite_url,
            expires_at,
            position,
        })
    }

    /// Sends a new link for a pending invitation (expired or not), valid as long as the first
    /// was: `invitation.resent` and its `email.queued` in one append. The old link stops
    /// working.
    pub async fn resend_invitation(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        invitation_id: Uuid,
        public_url: &str,
    ) -> Result<InvitationLink, CommandError> {
        let people = self.people()?;
        let address = Address::invitation(tenant_id, invitation_id);
        let (tenant, _, _) = self
            .load_open_tenant(tenant_id, "resend an invitation")
            .await?;
        let validity = self.original_validity(&address.stream).await?;
        let token = self.crypto.links().new_token(invitation_id)?;
        let token_hash = self.crypto.links().hash(&token);
        let invite_url = link(public_url, &tenant.slug, &token);
        let (meta_ref, address_ref, url_ref) = (&meta, &address, &invite_url);
        let (expires_at, position) = self
            .run(&address.stream, move || async move {
                let (_, tenant_stream, tenant_version) = self
                    .load_open_tenant(tenant_id, "resend an invitation")
                    .await?;
                let loaded = self.load::<InvitationState>(&address_ref.stream).await?;
                let now = self.clock.now();
                let expires_at = now.plus_seconds(validity);
                let events = loaded
                    .state
                    .decide(InvitationCommand::Resend {
                        token_hash,
                        expires_at,
                        now,
                    })
                    .map_err(|error| loaded.reject(error, address_ref))?;
                let invitation = pending_invitation(&loaded.state)?;
                let key = people
                    .keys
                    .get(tenant_id, invitation_id)
                    .await?
                    .ok_or_else(|| CommandError::Internal("invitation key missing".to_owned()))?;
                let email = key.open(fields::EMAIL, &invitation.email)?;
                let name = open_optional(&key, fields::NAME, &invitation.name)?;
                let message = open_optional(&key, fields::MESSAGE, &invitation.message)?;
                let mail = OutgoingEmail {
                    template: EmailTemplate::Invitation,
                    person_id: invitation_id,
                    recipient: &email,
                    name: name.as_deref(),
                    link: url_ref,
                    link_expires_at: expires_at,
                    message: message.as_deref(),
                };
                let mut plan = Plan::new(expires_at, loaded.position);
                plan.guard(tenant_stream, tenant_version);
                plan.push(self.write(
                    meta_ref,
                    now,
                    address_ref.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                plan.push(self.queue_email(meta_ref, now, tenant_id, &key, mail)?);
                Ok(plan)
            })
            .await?;
        Ok(InvitationLink {
            invitation_id,
            invite_url,
            expires_at,
            position,
        })
    }

    /// Revokes a pending invitation: its data key is destroyed first (its address, name and
    /// message are unreadable from then on, whatever happens to the append), then
    /// `invitation.revoked` is appended.
    pub async fn revoke_invitation(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        invitation_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let people = self.people()?;
        let address = Address::invitation(tenant_id, invitation_id);
        let loaded = self.load::<InvitationState>(&address.stream).await?;
        loaded
            .state
            .decide(InvitationCommand::Revoke)
            .map_err(|error| loaded.reject(error, &address))?;
        people.keys.destroy(tenant_id, invitation_id).await?;
        let ((), position) = self
            .execute::<InvitationState, ()>(&meta, tenant_id, &address, |_| {
                Ok((InvitationCommand::Revoke, ()))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Destroys the data keys of invitations (those a user accepted, when the user is erased):
    /// their addresses, names and messages become unreadable. Returns how many there were.
    pub async fn forget_invitations(
        &self,
        tenant_id: Uuid,
        invitation_ids: &[Uuid],
    ) -> Result<usize, CommandError> {
        let people = self.people()?;
        let mut destroyed = 0;
        for id in invitation_ids {
            if people.keys.destroy(tenant_id, *id).await? {
                destroyed += 1;
            }
        }
        Ok(destroyed)
    }

    /// What the link `token` of `tenant_id` shows its holder, straight from the log. `None`:
    /// the token names no invitation of this tenant.
    pub async fn invitation_offer(
        &self,
        tenant_id: Uuid,
        token: &str,
    ) -> Result<Option<InvitationOffer>, CommandError> {
        let people = self.people()?;
        let Some(invitation_id) = LinkSecrets::link_id(token) else {
            return Ok(None);
        };
        let loaded = self
            .load::<InvitationState>(&streams::invitation(tenant_id, invitation_id))
            .await?;
        let Some(invitation) = loaded.state.invitation else {
            return Ok(None);
        };
        let current = self.crypto.links().verify(token, &invitation.token_hash);
        let state = invitation.link_state(self.clock.now(), current);
        let mut offer = InvitationOffer {
            tenant_id,
            invitation_id,
            state,
            email: None,
            name: None,
            message: None,
            roles: invitation.roles.clone(),
            existing_user: None,
        };
        if state != LinkState::Usable {
            return Ok(Some(offer));
        }
        if let Some(key) = people.keys.get(tenant_id, invitation_id).await? {
            offer.email = Some(key.open(fields::EMAIL, &invitation.email)?);
            offer.name = open_optional(&key, fields::NAME, &invitation.name)?;
            offer.message = open_optional(&key, fields::MESSAGE, &invitation.message)?;
        }
        offer.existing_user = self.email_holder(&invitation).await?;
        Ok(Some(offer))
    }

    /// Accepts the invitation the link `token` names, as `who`: a new user (created with the
    /// invited roles, the address verified, in one append with `invitation.accepted` and the
    /// address's reservation), or the signed-in user holding the address (who gains the roles,
    /// in one append with `invitation.accepted`). Both appends expect the invitation's version
    /// the token was checked at: of concurrent acceptances exactly one wins.
    pub async fn accept_invitation(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        token: &str,
        who: Acceptance,
    ) -> Result<Accepted, CommandError> {
        let people = self.people()?;
        let invitation_id = LinkSecrets::link_id(token)
            .ok_or_else(|| CommandError::not_found("invitation", "link"))?;
        let address = Address::invitation(tenant_id, invitation_id);
        let loaded = self.load::<InvitationState>(&address.stream).await?;
        let invitation = loaded
            .state
            .invitation
            .clone()
            .ok_or_else(|| address.not_found())?;
        let current = self.crypto.links().verify(token, &invitation.token_hash);
        let state = invitation.link_state(self.clock.now(), current);
        if state != LinkState::Usable {
            return Err(CommandError::Rejected(refusal(state)));
        }
        let accept = |user_id: Uuid, created_user: bool| {
            let address = &address;
            let meta = &meta;
            async move {
                let loaded = self.load::<InvitationState>(&address.stream).await?;
                let current = loaded
                    .state
                    .invitation
                    .as_ref()
                    .is_some_and(|i| self.crypto.links().verify(token, &i.token_hash));
                let events = loaded.state.decide(InvitationCommand::Accept {
                    current_token: current,
                    user_id,
                    created_user,
                    now: self.clock.now(),
                })?;
                Ok::<_, CommandError>((
                    self.write(
                        meta,
                        self.clock.now(),
                        address.stream.clone(),
                        loaded.expected(),
                        tenant_id,
                        events,
                    ),
                    loaded.position,
                ))
            }
        };
        match who {
            Acceptance::NewUser { password, name } => {
                let key = people
                    .keys
                    .get(tenant_id, invitation_id)
                    .await?
                    .ok_or_else(|| CommandError::Rejected(refusal(LinkState::Revoked)))?;
                let email = key.open(fields::EMAIL, &invitation.email)?;
                let invited_name = open_optional(&key, fields::NAME, &invitation.name)?;
                let user_id = self.ids.new_id();
                let input = CreateUser {
                    user_id: Some(user_id),
                    email,
                    email_verified: true,
                    name: name.filter(|n| !n.trim().is_empty()).or(invited_name),
                    roles: invitation.roles.clone(),
                    password,
                    ..CreateUser::default()
                };
                let created = self
                    .create_user_with(meta.clone(), tenant_id, input, |user_id| async move {
                        Ok(super::user::Also {
                            writes: vec![accept(user_id, true).await?.0],
                            user_events: Vec::new(),
                        })
                    })
                    .await;
                let created = match created {
                    Ok(created) => created,
                    Err(error) => {
                        // The losing side of a race (or a refused password) made a data key
                        // for a user that never was: leave no orphan behind.
                        people.keys.destroy(tenant_id, user_id).await?;
                        return Err(error);
                    }
                };
                Ok(Accepted {
                    user_id: created.user_id,
                    created_user: true,
                    position: created.position,
                })
            }
            Acceptance::SignedIn { user_id } => {
                let user_address = Address::user(tenant_id, user_id);
                let (meta_ref, user_ref, invitation) = (&meta, &user_address, &invitation);
                let accept = &accept;
                let ((), position) = self
                    .run(&address.stream, move || async move {
                        let (_, tenant_stream, tenant_version) = self
                            .load_open_tenant(tenant_id, "accept an invitation")
                            .await?;
                        let user_loaded = self.load::<UserState>(&user_ref.stream).await?;
                        let user = user_loaded
                            .state
                            .require_live("accept an invitation")
                            .map_err(|error| user_loaded.reject(error, user_ref))?;
                        let (write, position) = accept(user_id, false).await?;
                        if user.email_hash != invitation.email_hash {
                            return Err(CommandError::Rejected(DomainError::Conflict(
                                "the invitation is for another address".to_owned(),
                            )));
                        }
                        let mut roles = user.roles.clone();
                        for role in &invitation.roles {
                            if !roles.contains(role) {
                                roles.push(role.clone());
                            }
                        }
                        let events = user_loaded.state.decide(UserCommand::Update {
                            names: user.names.clone(),
                            roles,
                        })?;
                        let mut plan = Plan::new((), position);
                        plan.guard(tenant_stream, tenant_version);
                        plan.push(write);
                        plan.push(self.write(
                            meta_ref,
                            self.clock.now(),
                            user_ref.stream.clone(),
                            user_loaded.expected(),
                            tenant_id,
                            events,
                        ));
                        Ok(plan)
                    })
                    .await?;
                Ok(Accepted {
                    user_id,
                    created_user: false,
                    position,
                })
            }
        }
    }

    /// The user who holds the invited address now, if any.
    async fn email_holder(&self, invitation: &Invitation) -> Result<Option<Uuid>, CommandError> {
        let kind = tessera_event_schemas::events::ReservationKind::UserEmail;
        let stream = streams::reservation(kind.as_str(), &invitation.email_hash.to_hex());
        let loaded = self
            .load::<tessera_domain::reservation::ReservationState>(&stream)
            .await?;
        Ok(loaded.state.holder)
    }

    /// How long the invitation's first link was valid: a resend's link is valid as long.
    async fn original_validity(&self, stream: &str) -> Result<i64, CommandError> {
        let first = self.log.read_stream(stream, 0, 1).await?;
        let Some(recorded) = first.first() else {
            return Err(CommandError::not_found("invitation", stream));
        };
        let created_at = recorded.envelope.recorded_at;
        match super::engine::decode(recorded)? {
            tessera_event_schemas::Event::InvitationCreated(created) => {
                Ok((created.expires_at.as_micros() - created_at.as_micros()) / 1_000_000)
            }
            _ => Err(CommandError::Internal(format!(
                "{stream} does not start with invitation.created"
            ))),
        }
    }
}

/// The pending invitation of a state that just decided a resend.
fn pending_invitation(state: &InvitationState) -> Result<&Invitation, CommandError> {
    state
        .invitation
        .as_ref()
        .ok_or(CommandError::Rejected(DomainError::NotFound))
}

/// An optional field sealed under `key`, opened.
fn open_optional(
    key: &tessera_crypto::DataKey,
    field: &str,
    sealed: &Option<Vec<u8>>,
) -> Result<Option<String>, CommandError> {
    Ok(sealed
        .as_ref()
        .map(|sealed| key.open(field, sealed))
        .transpose()?)
}

/// The hosted page a token opens: `{public_url}/t/{slug}/invite/{token}`.
fn link(public_url: &str, slug: &str, token: &str) -> String {
    format!(
        "{}/t/{slug}/invite/{token}",
        public_url.trim_end_matches('/')
    )
}

impl CommandService {
    /// Records that a new tenant's first administrator could not be invited
    /// (`tenant.admin_invite_failed`), beside the tenant's creation: the tenant stands (seed
    /// 003's rule). `reason` must carry no personal data.
    pub async fn record_admin_invite_failed(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        reason: String,
    ) -> Result<Outcome, CommandError> {
        let event = tessera_event_schemas::Event::TenantAdminInviteFailed(
            tessera_event_schemas::events::TenantAdminInviteFailedV1 { reason },
        );
        let position = self
            .record(meta, tenant_id, streams::tenant(tenant_id), event)
            .await?;
        Ok(Outcome { position })
    }
}

#[cfg(test)]
mod tests;
