//! Address verification: a changed address gets a link (in the same append as the change, see
//! `user.rs`), an administrator can send one again, and following it verifies the address
//! (ADR 0004 §"Password reset and address verification"; link rules in
//! `tessera_domain::user::links`).

use tessera_crypto::DataKey;
use tessera_domain::Aggregate;
use tessera_domain::tenant::Tenant;
use tessera_domain::user::{Link, LinkRefusal, User, UserCommand, UserState, links};
use tessera_event_log::StreamWrite;
use tessera_event_schemas::events::EmailTemplate;
use tessera_event_schemas::events::user::fields;
use tessera_event_schemas::{Event, EventMetadata, Timestamp};
use uuid::Uuid;

use super::email::OutgoingEmail;
use super::engine::{Address, Plan};
use super::password_reset::LinkKind;
use super::{CommandService, Outcome};
use crate::CommandError;

/// Who a verification mail goes to, in clear.
pub(super) struct Recipient<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
}

impl CommandService {
    /// The events and the mail that send `state`'s user a link verifying `to`, their current
    /// address (`state` as it is after any change of address in the same append). None when
    /// the service mails no links (no public URL).
    pub(super) fn verification_request(
        &self,
        meta: &EventMetadata,
        now: Timestamp,
        tenant: &Tenant,
        state: &UserState,
        key: &DataKey,
        to: Recipient<'_>,
    ) -> Result<Option<(Vec<Event>, StreamWrite)>, CommandError> {
        let (Some(public_url), Some(user)) = (&self.public_url, &state.user) else {
            return Ok(None);
        };
        let token = self.crypto.links().new_token(user.user_id)?;
        let link = Link {
            token_hash: self.crypto.links().hash(&token),
            expires_at: now.plus_seconds(links::VERIFICATION_LINK_SECS),
        };
        let events = state.decide(UserCommand::RequestEmailVerification { link })?;
        let url = format!("{public_url}/t/{}/email/verify/{token}", tenant.slug);
        let mail = self.queue_email(
            meta,
            now,
            tenant.id,
            key,
            OutgoingEmail {
                template: EmailTemplate::EmailVerification,
                person_id: user.user_id,
                recipient: to.email,
                name: to.name,
                link: &url,
                link_expires_at: link.expires_at,
                message: None,
            },
        )?;
        Ok(Some((events, mail)))
    }

    /// Sends a live user a new link verifying their current address (Keycloak's "send verify
    /// email"); the previous link stops working.
    pub async fn send_email_verification(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let address = Address::user(tenant_id, user_id);
        let (_, current, key) = self
            .live_user(tenant_id, &address, "verify the address of")
            .await?;
        let (email, name) = opened(&key, &current)?;
        let (meta, address_ref, key) = (&meta, &address, &key);
        let (email, name) = (&email, &name);
        let ((), position) = self
            .run(&address.stream, move || async move {
                let (tenant, tenant_stream, tenant_version) = self
                    .load_open_tenant(tenant_id, "verify the address of a user")
                    .await?;
                let loaded = self.load::<UserState>(&address_ref.stream).await?;
                loaded
                    .state
                    .require_live("verify the address of")
                    .map_err(|error| loaded.reject(error, address_ref))?;
                let now = self.clock.now();
                let to = Recipient {
                    email,
                    name: name.as_deref(),
                };
                let Some((events, mail)) =
                    self.verification_request(meta, now, &tenant, &loaded.state, key, to)?
                else {
                    return Err(CommandError::Internal(
                        "no public URL to build links from".into(),
                    ));
                };
                let mut plan = Plan::new((), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                plan.push(mail);
                plan.push(self.write(
                    meta,
                    now,
                    address_ref.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Follows a verification link: the user's address is verified (`user.email_verified`),
    /// expecting the version the link was checked at. A link that does not work is
    /// `Ok(Err(why))`.
    pub async fn verify_email(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        token: &str,
    ) -> Result<Result<Outcome, LinkRefusal>, CommandError> {
        let user_id = match self
            .check_link(tenant_id, token, LinkKind::EmailVerification)
            .await?
        {
            Ok(user_id) => user_id,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let address = Address::user(tenant_id, user_id);
        let (meta, address_ref) = (&meta, &address);
        let (result, position) = self
            .run(&address.stream, move || async move {
                let (_, tenant_stream, tenant_version) = self
                    .load_open_tenant(tenant_id, "verify the address of a user")
                    .await?;
                let loaded = self.load::<UserState>(&address_ref.stream).await?;
                let kind = LinkKind::EmailVerification;
                if let Err(refusal) = self.link_of(&loaded.state, token, kind) {
                    return Ok(Plan::new(Err(refusal), loaded.position));
                }
                let events = loaded
                    .state
                    .decide(UserCommand::VerifyEmail {
                        link_id: Some(user_id),
                    })
                    .map_err(|error| loaded.reject(error, address_ref))?;
                let mut plan = Plan::new(Ok(()), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    address_ref.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(result.map(|()| Outcome { position }))
    }
}

/// A user's address and display name, opened with their key.
pub(super) fn opened(key: &DataKey, user: &User) -> Result<(String, Option<String>), CommandError> {
    let email = key.open(fields::EMAIL, &user.email)?;
    let name = user
        .names
        .name
        .as_ref()
        .map(|sealed| key.open(fields::NAME, sealed))
        .transpose()?;
    Ok((email, name))
}
