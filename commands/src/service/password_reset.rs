//! "Forgot your password?": requesting a reset link by address, checking one, and using it
//! (ADR 0004 §"Password reset"; the link rules are `tessera_domain::user::links`).
//!
//! A request does the same work whatever the address (its keyed hash, a read of its
//! reservation) and answers the same: whether a mail is sent is not the caller's to know. For a
//! live, active user it appends `user.password_reset_requested` and the mail's
//! `email.queued` in one append. Using the link appends `user.password_set` and the end of
//! every session of the user in one append, expecting the version the link was checked at, so
//! that a link works once even when two processes race to use it; refresh-token families end
//! through their revocation horizon (`user.password_set` is in it, ADR 0003).

use tessera_crypto::links::LinkSecrets;
use tessera_domain::Aggregate;
use tessera_domain::reservation::ReservationState;
use tessera_domain::user::{Link, LinkRefusal, UserCommand, UserState, links};
use tessera_event_schemas::events::{EmailTemplate, ReservationKind, SessionEndReason};
use tessera_event_schemas::{EventMetadata, streams};
use uuid::Uuid;

use super::email::OutgoingEmail;
use super::email_verification::opened;
use super::engine::{Address, Plan};
use super::{CommandService, Outcome};
use crate::CommandError;

/// Which of a user's links a token is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    PasswordReset,
    EmailVerification,
}

impl CommandService {
    /// Sends a password reset link to the user of `tenant_id` whose address is `email`, if
    /// there is one, live and active, and none was sent in the last minute. Answers `Ok(())`
    /// whatever the address: the caller must not learn whether it names someone.
    pub async fn request_password_reset(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        email: &str,
    ) -> Result<(), CommandError> {
        // The same work for every address: its keyed hash and a read of its reservation.
        let hash = self.email_hash(tenant_id, email);
        let reservation = streams::reservation(ReservationKind::UserEmail.as_str(), &hash.to_hex());
        let holder = self
            .load::<ReservationState>(&reservation)
            .await?
            .state
            .holder;
        let Some(user_id) = holder else {
            return Ok(());
        };
        let Some(public_url) = self.public_url.clone() else {
            return Err(CommandError::Internal(
                "no public URL to build links from".into(),
            ));
        };
        let address = Address::user(tenant_id, user_id);
        let (tenant, current, key) = match self
            .live_user(tenant_id, &address, "reset the password of")
            .await
        {
            Ok(found) => found,
            // An erased user, an archived tenant: nothing to send, and the same answer.
            Err(CommandError::Rejected(_) | CommandError::NotFound { .. }) => return Ok(()),
            Err(other) => return Err(other),
        };
        let (recipient, name) = opened(&key, &current)?;
        let (meta, address_ref, tenant_ref) = (&meta, &address, &tenant);
        let (recipient, name, key) = (&recipient, &name, &key);
        let public_url = &public_url;
        self.run(&address.stream, move || async move {
            let loaded = self.load::<UserState>(&address_ref.stream).await?;
            let now = self.clock.now();
            let token = self.crypto.links().new_token(user_id)?;
            let link = Link {
                token_hash: self.crypto.links().hash(&token),
                expires_at: now.plus_seconds(links::RESET_LINK_SECS),
            };
            let events = loaded
                .state
                .decide(UserCommand::RequestPasswordReset { link, now })
                .map_err(|error| loaded.reject(error, address_ref))?;
            let mut plan = Plan::new((), loaded.position);
            if events.is_empty() {
                return Ok(plan);
            }
            let url = format!("{public_url}/t/{}/password/reset/{token}", tenant_ref.slug);
            plan.push(self.queue_email(
                meta,
                now,
                tenant_id,
                key,
                OutgoingEmail {
                    template: EmailTemplate::PasswordReset,
                    person_id: user_id,
                    recipient,
                    name: name.as_deref(),
                    link: &url,
                    link_expires_at: link.expires_at,
                    message: None,
                },
            )?);
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
        Ok(())
    }

    /// Whether `token` is a working link of `kind` in `tenant_id`: the user it is for, or why
    /// not. What a link's page shows before its form is posted; a GET never uses a link.
    pub async fn check_link(
        &self,
        tenant_id: Uuid,
        token: &str,
        kind: LinkKind,
    ) -> Result<Result<Uuid, LinkRefusal>, CommandError> {
        let Some(user_id) = LinkSecrets::link_id(token) else {
            return Ok(Err(LinkRefusal::Unknown));
        };
        let state = self.load_user(tenant_id, user_id).await?;
        Ok(self.link_of(&state, token, kind).map(|_| user_id))
    }

    /// Checks `token` against `state`'s working link of `kind` (in constant time).
    pub(super) fn link_of(
        &self,
        state: &UserState,
        token: &str,
        kind: LinkKind,
    ) -> Result<Link, LinkRefusal> {
        if state.require_live("use a link of").is_err() {
            return Err(LinkRefusal::Unknown);
        }
        let slot = match kind {
            LinkKind::PasswordReset => &state.links.reset,
            LinkKind::EmailVerification => &state.links.verification,
        };
        let links = self.crypto.links();
        slot.check(|hash| links.verify(token, hash), self.clock.now())
    }

    /// Uses a password reset link: sets `plain` as the user's password (the tenant's policy
    /// and history apply: a refusal is a `Rejected` error and changes nothing) and ends every
    /// session of the user, in one append expecting the version the link was checked at. A
    /// link that does not work is `Ok(Err(why))`.
    pub async fn reset_password(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        token: &str,
        plain: &str,
    ) -> Result<Result<Outcome, LinkRefusal>, CommandError> {
        let user_id = match self
            .check_link(tenant_id, token, LinkKind::PasswordReset)
            .await?
        {
            Ok(user_id) => user_id,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let address = Address::user(tenant_id, user_id);
        let (tenant, current, key) = self
            .live_user(tenant_id, &address, "reset the password of")
            .await?;
        let new = self
            .prepare_password(&tenant, &current, &key, plain, false)
            .await?;
        let (meta, address_ref, new) = (&meta, &address, &new);
        let (result, position) = self
            .run(&address.stream, move || async move {
                let (_, tenant_stream, tenant_version) = self
                    .load_open_tenant(tenant_id, "reset the password of a user")
                    .await?;
                let loaded = self.load::<UserState>(&address_ref.stream).await?;
                if let Err(refusal) = self.link_of(&loaded.state, token, LinkKind::PasswordReset) {
                    return Ok(Plan::new(Err(refusal), loaded.position));
                }
                let events = loaded
                    .state
                    .decide(UserCommand::SetPassword(new.clone()))
                    .map_err(|error| loaded.reject(error, address_ref))?;
                let now = self.clock.now();
                let mut plan = Plan::new(Ok(()), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                self.plan_end_sessions(
                    &mut plan,
                    meta,
                    now,
                    tenant_id,
                    user_id,
                    SessionEndReason::PasswordReset,
                    None,
                )
                .await?;
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
        Ok(result.map(|()| Outcome { position }))
    }
}

#[cfg(test)]
mod tests;
