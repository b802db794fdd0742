//! Federation (issue 19): a tenant's upstream identity providers
//! (`{tenant}/identity-provider/{alias}`) and the sign-ins that come through them
//! (`{tenant}/federated-sign-in/{state}`).
//!
//! The API fetches and checks the upstream (discovery, token exchange, ID token); this module
//! seals the client secret, decides the configuration, and decides what a vouched-for upstream
//! identity becomes, always in the append:
//! - a linked identity (its reservation, keyed by the hash of tenant, alias and `sub`, is held)
//!   signs its user in;
//! - an identity whose verified address belongs to an account is not linked by the address:
//!   `federation.link_requested` is recorded and the person must sign in to that account first
//!   ([`CommandService::link_federated_identity`]);
//! - any other identity provisions a user just in time, with the link's reservation and the
//!   sign-in's events in the user's creation append, so two concurrent first sign-ins of one
//!   person make one user (the loser's retry finds the link and signs in).
//!
//! The sign-in's own stream is appended with expected version "no stream" (version 1 for the
//! link after a local sign-in), so a state is used once on any number of servers.

use tessera_crypto::federation::client_secret_aad;
use tessera_domain::DomainError;
use tessera_domain::identity_provider::{
    Configure, IdentityProvider, IdentityProviderCommand, IdentityProviderState,
};
use tessera_domain::reservation::ReservationState;
use tessera_domain::user::{self, UserState};
use tessera_event_log::ExpectedVersion;
use tessera_event_schemas::events::{
    FederationLinkRequestedV1, FederationLinkedV1, FederationRefusal, FederationRefusedV1,
    FederationSignedInV1, ReservationKind,
};
use tessera_event_schemas::{Event, EventMetadata, Hash32, streams};
use uuid::Uuid;

use super::engine::{Address, Kind, Plan};
use super::session::person;
use super::user::Also;
use super::{CommandService, CreateUser, StartedSession};
use crate::CommandError;

impl Kind for IdentityProviderState {
    const KIND: &'static str = "identity_provider";
}

impl Address<IdentityProviderState> {
    fn identity_provider(tenant_id: Uuid, alias: &str) -> Self {
        Self::new(streams::identity_provider(tenant_id, alias), alias)
    }
}

/// What the upstream vouched for, checked by the API (signature, issuer, audience, expiry,
/// nonce, verified address in an allowed domain).
#[derive(Clone)]
pub struct FederatedIdentity {
    pub tenant_id: Uuid,
    pub alias: String,
    /// The sign-in's state id: its stream decides "once".
    pub state_id: Uuid,
    /// The upstream `sub`.
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// The keyed hash of the browser's binding cookie.
    pub browser_hash: Hash32,
}

impl std::fmt::Debug for FederatedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederatedIdentity")
            .field("tenant_id", &self.tenant_id)
            .field("alias", &self.alias)
            .field("state_id", &self.state_id)
            .finish_non_exhaustive()
    }
}

/// What a federated sign-in became.
#[derive(Debug)]
pub enum FederatedOutcome {
    /// A session started (for a linked identity, or a user provisioned just in time).
    SignedIn {
        session: StartedSession,
        created_user: bool,
        position: u64,
    },
    /// The address belongs to an account no upstream identity is linked to: the person signs
    /// in to it, then confirms the link for this state.
    LinkRequired { user_id: Uuid },
}

/// The `amr` of a federated session: the upstream authenticated the person (RFC 8176 has no
/// value for it, so it is ours).
pub const FEDERATED_AMR: &str = "fed";

impl CommandService {
    /// A tenant's identity provider, if configured.
    pub async fn identity_provider(
        &self,
        tenant_id: Uuid,
        alias: &str,
    ) -> Result<Option<IdentityProvider>, CommandError> {
        let address = Address::identity_provider(tenant_id, alias);
        Ok(self
            .load::<IdentityProviderState>(&address.stream)
            .await?
            .state
            .provider)
    }

    /// Configures (or replaces) a tenant's identity provider. A given `client_secret` is
    /// sealed before it enters the command; without one the recorded secret stays.
    pub async fn configure_identity_provider(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        alias: &str,
        config: IdentityProvider,
        client_secret: Option<&str>,
        grace_seconds: i64,
    ) -> Result<u64, CommandError> {
        tessera_domain::identity_provider::alias(alias)?;
        let sealed = client_secret
            .map(|secret| {
                self.crypto
                    .seal(&client_secret_aad(tenant_id, alias), secret.as_bytes())
            })
            .transpose()?;
        let address = Address::identity_provider(tenant_id, alias);
        let ((), position) = self
            .execute_in_open_tenant(
                &meta,
                tenant_id,
                "configure federation",
                &address,
                |_, _| {
                    Ok((
                        IdentityProviderCommand::Configure(Box::new(Configure {
                            config: config.clone(),
                            sealed_client_secret: sealed.clone(),
                            now: self.clock.now(),
                            grace_seconds,
                        })),
                        (),
                    ))
                },
            )
            .await?;
        Ok(position)
    }

    /// Removes a tenant's identity provider; sign-ins in flight through it are refused.
    pub async fn remove_identity_provider(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        alias: &str,
    ) -> Result<u64, CommandError> {
        let address = Address::identity_provider(tenant_id, alias);
        let ((), position) = self
            .execute::<IdentityProviderState, ()>(&meta, tenant_id, &address, |_| {
                Ok((IdentityProviderCommand::Remove, ()))
            })
            .await?;
        Ok(position)
    }

    /// The provider's client secret in clear, to authenticate at its token endpoint.
    pub fn open_client_secret(
        &self,
        tenant_id: Uuid,
        alias: &str,
        provider: &IdentityProvider,
    ) -> Result<String, CommandError> {
        let plain = self.crypto.open(
            &client_secret_aad(tenant_id, alias),
            &provider.sealed_client_secret,
        )?;
        String::from_utf8(plain)
            .map_err(|_| CommandError::Internal("a sealed client secret is not UTF-8".into()))
    }

    /// Decides what a vouched-for upstream identity becomes (see the module doc).
    pub async fn federated_sign_in(
        &self,
        meta: EventMetadata,
        identity: FederatedIdentity,
    ) -> Result<FederatedOutcome, CommandError> {
        let tenant_id = identity.tenant_id;
        let subject_hash =
            self.crypto
                .federation()
                .subject_hash(tenant_id, &identity.alias, &identity.subject);
        let email = user::normalize_email(&identity.email);
        // Three passes at most: a link of an erased user is released on the first; a first
        // sign-in that loses the race to provision the person finds the winner's link on the
        // next.
        for _ in 0..3 {
            if let Some(user_id) = self.linked_user(&subject_hash).await? {
                if self
                    .release_erased_link(&meta, tenant_id, &subject_hash, user_id)
                    .await?
                {
                    continue;
                }
                let signed_in = Event::FederationSignedIn(FederationSignedInV1 {
                    alias: identity.alias.clone(),
                    user_id,
                    created_user: false,
                });
                self.append_sign_in_once(&meta, &identity, vec![signed_in])
                    .await?;
                return self
                    .federated_session(meta, tenant_id, user_id, false)
                    .await;
            }
            if let Some(holder) = self.user_by_email(tenant_id, &email).await? {
                let requested = Event::FederationLinkRequested(FederationLinkRequestedV1 {
                    alias: identity.alias.clone(),
                    user_id: holder.user_id,
                    subject_hash: subject_hash.into(),
                    browser_hash: identity.browser_hash.into(),
                });
                self.append_sign_in_once(&meta, &identity, vec![requested])
                    .await?;
                return Ok(FederatedOutcome::LinkRequired {
                    user_id: holder.user_id,
                });
            }
            match self.provision(&meta, &identity, &email, subject_hash).await {
                Ok(user_id) => {
                    return self.federated_session(meta, tenant_id, user_id, true).await;
                }
                Err(CommandError::Rejected(DomainError::AlreadyExists(_))) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(CommandError::Concurrency)
    }

    /// Links the identity a sign-in vouched for to `user_id`, the person now signed in here,
    /// from the browser that came back from the upstream; then that sign-in is complete. Once
    /// per sign-in: appended at the sign-in stream's version 1.
    pub async fn link_federated_identity(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        state_id: Uuid,
        user_id: Uuid,
        browser_hash: &Hash32,
    ) -> Result<u64, CommandError> {
        let stream = streams::federated_sign_in(tenant_id, state_id);
        let meta = EventMetadata {
            actor: person(user_id),
            ..meta
        };
        let (meta, stream_ref) = (&meta, &stream);
        let ((), position) = self
            .run(&stream, move || async move {
                let page = self.log.read_stream(stream_ref, 0, 4).await?;
                let requested = match page.as_slice() {
                    [only] => match super::engine::decode(only)? {
                        Event::FederationLinkRequested(requested) => requested,
                        _ => return Err(used()),
                    },
                    [] => return Err(CommandError::not_found("federated_sign_in", state_id)),
                    _ => return Err(used()),
                };
                let same_browser = tessera_crypto::federation::same_hash(
                    requested.browser_hash.expose(),
                    browser_hash,
                );
                if requested.user_id != user_id || !same_browser {
                    return Err(CommandError::Rejected(DomainError::Conflict(
                        "this link was requested for another account or browser".to_owned(),
                    )));
                }
                let now = self.clock.now();
                let mut plan = Plan::new((), 0);
                self.plan_link(&mut plan, meta, requested.subject_hash.expose(), user_id)
                    .await?;
                // The link goes on the user's own stream (at the version read, so an erasure
                // in between is not undone), where erasing the user finds and releases it.
                let user = Address::<UserState>::user(tenant_id, user_id);
                let loaded = self.load::<UserState>(&user.stream).await?;
                loaded
                    .state
                    .require_live("link an identity provider")
                    .map_err(|error| loaded.reject(error, &user))?;
                plan.push(self.write(
                    meta,
                    now,
                    user.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    vec![Event::FederationLinked(FederationLinkedV1 {
                        alias: requested.alias.clone(),
                        user_id,
                        subject_hash: requested.subject_hash,
                    })],
                ));
                plan.push(self.write(
                    meta,
                    now,
                    stream_ref.clone(),
                    ExpectedVersion::Exact(1),
                    tenant_id,
                    vec![Event::FederationSignedIn(FederationSignedInV1 {
                        alias: requested.alias.clone(),
                        user_id,
                        created_user: false,
                    })],
                ));
                plan.conflict_is_final(stream_ref.clone(), used_error());
                Ok(plan)
            })
            .await?;
        Ok(position)
    }

    /// Records a refused federated sign-in: on its own stream when the state was good (which
    /// also uses it up), else on the tenant's sign-ins stream. A fact.
    pub async fn record_federation_refusal(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        alias: &str,
        state_id: Option<Uuid>,
        reason: FederationRefusal,
    ) -> Result<u64, CommandError> {
        let event = Event::FederationRefused(FederationRefusedV1 {
            alias: alias.to_owned(),
            reason,
        });
        let stream = match state_id {
            Some(state_id) => streams::federated_sign_in(tenant_id, state_id),
            None => streams::sign_ins(tenant_id),
        };
        self.record(meta, tenant_id, stream, event).await
    }

    /// Whether a sign-in's state was used already (its stream exists).
    pub async fn federated_sign_in_used(
        &self,
        tenant_id: Uuid,
        state_id: Uuid,
    ) -> Result<bool, CommandError> {
        let stream = streams::federated_sign_in(tenant_id, state_id);
        Ok(!self.log.read_stream(&stream, 0, 1).await?.is_empty())
    }

    /// Releases the link `subject_hash` if its holder `user_id` is erased (or was never
    /// created): a link made before links were recorded on the user's stream, which the
    /// erasure could not find. Decided on the reservation's version; true if it is free now.
    async fn release_erased_link(
        &self,
        meta: &EventMetadata,
        tenant_id: Uuid,
        subject_hash: &Hash32,
        user_id: Uuid,
    ) -> Result<bool, CommandError> {
        let holder = self.load_user(tenant_id, user_id).await?;
        if holder.require_live("sign in").is_ok() {
            return Ok(false);
        }
        let value = subject_hash.to_hex();
        let result = self
            .run(
                &streams::reservation(ReservationKind::FederatedIdentity.as_str(), &value),
                || async {
                    let mut plan = Plan::new((), 0);
                    self.plan_release(
                        &mut plan,
                        meta,
                        self.clock.now(),
                        ReservationKind::FederatedIdentity,
                        &value,
                        user_id,
                    )
                    .await?;
                    Ok(plan)
                },
            )
            .await;
        match result {
            // Released, or already released and claimed again: the next pass finds out.
            Ok(_) | Err(CommandError::Rejected(DomainError::Conflict(_))) => Ok(true),
            Err(other) => Err(other),
        }
    }

    /// The user an upstream identity is linked to, if any.
    async fn linked_user(&self, subject_hash: &Hash32) -> Result<Option<Uuid>, CommandError> {
        let kind = ReservationKind::FederatedIdentity;
        let stream = streams::reservation(kind.as_str(), &subject_hash.to_hex());
        Ok(self.load::<ReservationState>(&stream).await?.state.holder)
    }

    /// Claims the link's reservation for `user_id` (held already: `AlreadyExists`).
    async fn plan_link<T>(
        &self,
        plan: &mut Plan<T>,
        meta: &EventMetadata,
        subject_hash: &Hash32,
        user_id: Uuid,
    ) -> Result<(), CommandError> {
        self.plan_claim(
            plan,
            meta,
            self.clock.now(),
            ReservationKind::FederatedIdentity,
            &subject_hash.to_hex(),
            user_id,
        )
        .await
    }

    /// Appends `events` as the sign-in's first events: a used state is refused.
    async fn append_sign_in_once(
        &self,
        meta: &EventMetadata,
        identity: &FederatedIdentity,
        events: Vec<Event>,
    ) -> Result<u64, CommandError> {
        let stream = streams::federated_sign_in(identity.tenant_id, identity.state_id);
        let (events, stream_ref) = (&events, &stream);
        let ((), position) = self
            .run(&stream, move || async move {
                let mut plan = Plan::new((), 0);
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    stream_ref.clone(),
                    ExpectedVersion::NoStream,
                    identity.tenant_id,
                    events.clone(),
                ));
                plan.conflict_is_final(stream_ref.clone(), used_error());
                Ok(plan)
            })
            .await?;
        Ok(position)
    }

    /// Creates the user, with the link's reservation and the sign-in's events in the same
    /// append. A lost race on the address or the link is `AlreadyExists`.
    async fn provision(
        &self,
        meta: &EventMetadata,
        identity: &FederatedIdentity,
        email: &str,
        subject_hash: Hash32,
    ) -> Result<Uuid, CommandError> {
        let people = self.people()?;
        let tenant_id = identity.tenant_id;
        let user_id = self.ids.new_id();
        let input = CreateUser {
            user_id: Some(user_id),
            email: email.to_owned(),
            email_verified: true,
            name: identity.name.clone(),
            given_name: identity.given_name.clone(),
            family_name: identity.family_name.clone(),
            ..CreateUser::default()
        };
        let stream = streams::federated_sign_in(tenant_id, identity.state_id);
        let (stream_ref, subject_ref) = (&stream, &subject_hash);
        let created = self
            .create_user_with(meta.clone(), tenant_id, input, |user_id| async move {
                if !self.log.read_stream(stream_ref, 0, 1).await?.is_empty() {
                    return Err(used());
                }
                let mut plan = Plan::new((), 0);
                self.plan_link(&mut plan, meta, subject_ref, user_id)
                    .await?;
                let mut writes = plan.into_writes();
                writes.push(self.write(
                    meta,
                    self.clock.now(),
                    stream_ref.clone(),
                    ExpectedVersion::NoStream,
                    tenant_id,
                    vec![Event::FederationSignedIn(FederationSignedInV1 {
                        alias: identity.alias.clone(),
                        user_id,
                        created_user: true,
                    })],
                ));
                // The link goes on the user's own stream, so that erasing the user releases it.
                Ok(Also {
                    writes,
                    user_events: vec![Event::FederationLinked(FederationLinkedV1 {
                        alias: identity.alias.clone(),
                        user_id,
                        subject_hash: (*subject_ref).into(),
                    })],
                })
            })
            .await;
        match created {
            Ok(created) => Ok(created.user_id),
            Err(error) => {
                // The losing side of a race made a data key for a user that never was.
                people.keys.destroy(tenant_id, user_id).await?;
                Err(error)
            }
        }
    }

    /// Starts the session a federated sign-in ends in; a user who may not sign in (disabled,
    /// erased) is refused.
    async fn federated_session(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        created_user: bool,
    ) -> Result<FederatedOutcome, CommandError> {
        let (session, position) = self
            .start_session(meta, tenant_id, user_id, vec![FEDERATED_AMR.to_owned()])
            .await?;
        Ok(FederatedOutcome::SignedIn {
            session,
            created_user,
            position,
        })
    }
}

fn used_error() -> DomainError {
    DomainError::Conflict("this sign-in was already used".to_owned())
}

fn used() -> CommandError {
    CommandError::Rejected(used_error())
}

#[cfg(test)]
mod tests;
