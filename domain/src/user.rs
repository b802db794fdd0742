//! The user aggregate: a person of a tenant (one stream per user, `{tenant}/user/{user}`).
//!
//! Personal fields reach this crate sealed: the address and names in commands and state are
//! ciphertext under the user's data key (sealed by `commands`, which holds the key), so this
//! aggregate decides on everything but their content. Their content is checked before sealing,
//! by the pure checks below ([`email`], [`person_name`], [`roles`]), which `commands` calls on
//! the plaintext; email uniqueness is decided by a reservation of the address's keyed hash
//! ([`crate::reservation`]) in the same append. Whether the owning tenant accepts changes is
//! checked by the handler with [`crate::tenant::TenantState::require_open`]. Pure: no clock.
//!
//! # Rules
//! - **Fields.** An address is 3 to 254 characters once trimmed, one `@` between a local part
//!   of 1 to 64 characters without spaces or control characters and a DNS hostname; when the
//!   tenant restricts addresses (`allowed_email_domains`), its domain (lower-cased) must be one
//!   of them. It is kept as entered (trimmed) and unique by its normalised form, trimmed and
//!   lower-cased ([`normalize_email`]). Names are 1 to 255 characters once trimmed, or absent.
//!   Roles are free strings of 1 to 64 characters of `[a-z0-9:._-]` (`user`, `editor`,
//!   `tenant:admin`), at most [`MAX_ROLES`], without duplicates.
//! - **Creation.** Once per stream (else it already exists), `active`, with an optional first
//!   password in the same append.
//! - **Changes.** Names, roles, address and password change on an active or disabled user; a
//!   new address is unverified. A change that changes nothing records nothing (names compare
//!   by ciphertext, so re-sending the same names records them again under a fresh nonce).
//! - **Status.** `active` and `disabled` switch back and forth (switching to the current status
//!   changes nothing). `erased` is terminal: every command on an erased user is an illegal
//!   transition, except erasing again, which changes nothing.
//! - **Passwords** follow the tenant's policy ([`crate::password`]); the last
//!   [`crate::password::MAX_HISTORY`] hashes are kept for the history rule.
//! - **Emailed links** (password reset, address verification) follow [`links`].

use tessera_event_schemas::events::{
    UserCreatedV1, UserDisabledV1, UserEmailChangedV1, UserEmailVerificationRequestedV1,
    UserEmailVerifiedV1, UserEnabledV1, UserErasedV1, UserPasswordResetRequestedV1,
    UserPasswordSetV1, UserUpdatedV1,
};
use tessera_event_schemas::{Event, Hash32, Timestamp};
use uuid::Uuid;

use crate::password::MAX_HISTORY;
use crate::validate;
use crate::{Aggregate, DomainError};

pub mod links;

pub use links::{Link, LinkRefusal, LinkSlot, Spent, UserLinks};

/// Most roles one user may have.
pub const MAX_ROLES: usize = 50;
/// Longest address accepted (RFC 5321 section 4.5.3.1.3: a path is at most 256 octets,
/// brackets included).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest name (display, given or family).
pub const MAX_NAME_CHARS: usize = 255;

/// Where a user is in their life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Active,
    Disabled,
    Erased,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
            UserStatus::Erased => "erased",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "active" => UserStatus::Active,
            "disabled" => UserStatus::Disabled,
            "erased" => UserStatus::Erased,
            _ => return None,
        })
    }
}

/// A user's names, sealed under their data key (`None`: not given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealedNames {
    pub name: Option<Vec<u8>>,
    pub given_name: Option<Vec<u8>>,
    pub family_name: Option<Vec<u8>>,
}

/// A user's current password.
#[derive(Clone, PartialEq, Eq)]
pub struct Password {
    /// The Argon2id PHC string.
    pub hash: String,
    /// Must be changed at the next sign-in.
    pub temporary: bool,
    pub set_at: Timestamp,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Password")
            .field("temporary", &self.temporary)
            .field("set_at", &self.set_at)
            .finish_non_exhaustive()
    }
}

/// A created user, as recorded. Personal fields are ciphertext; once erased they are empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub user_id: Uuid,
    /// The address as entered, sealed.
    pub email: Vec<u8>,
    /// The keyed hash of the normalised address: the value of its reservation.
    pub email_hash: Hash32,
    pub email_verified: bool,
    pub names: SealedNames,
    pub roles: Vec<String>,
    pub status: UserStatus,
    pub password: Option<Password>,
    /// Hashes of the current and previous passwords, newest first, at most
    /// [`crate::password::MAX_HISTORY`].
    pub password_history: Vec<String>,
}

impl User {
    /// The hashes of the last `count` passwords, the current one included: what a new password
    /// must match none of.
    pub fn recent_password_hashes(&self, count: u16) -> &[String] {
        let count = usize::from(count).min(self.password_history.len());
        &self.password_history[..count]
    }

    fn ensure_not_erased(&self, action: &'static str) -> Result<(), DomainError> {
        if self.status == UserStatus::Erased {
            Err(DomainError::IllegalTransition {
                from: UserStatus::Erased.as_str().to_owned(),
                action,
            })
        } else {
            Ok(())
        }
    }
}

/// The user aggregate's state. `Default` is a user that has not been created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserState {
    pub user: Option<User>,
    /// The user's emailed links (reset, verification): which works, and why others do not.
    pub links: UserLinks,
    /// The keyed hashes of the upstream identities linked to the user (`federation.linked` on
    /// the user's stream, issue 19): the `federated-identity` reservations an erasure
    /// releases. Links made before they were recorded here are released at the person's next
    /// sign-in instead (see the commands' federation module).
    pub federated_links: Vec<Hash32>,
}

impl UserState {
    /// The user, if it exists and is not erased; `action` names the command in a refusal.
    pub fn require_live(&self, action: &'static str) -> Result<&User, DomainError> {
        let user = self.user.as_ref().ok_or(DomainError::NotFound)?;
        user.ensure_not_erased(action)?;
        Ok(user)
    }
}

/// A password to set, hashed by the caller, who also compared it with the recent ones.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword {
    pub hash: String,
    pub temporary: bool,
    pub now: Timestamp,
    /// It matches one of the last `history_count` passwords.
    pub reused: bool,
    /// The tenant policy's `password_history_count`, to name the rule.
    pub history_count: u16,
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPassword")
            .field("temporary", &self.temporary)
            .field("reused", &self.reused)
            .finish_non_exhaustive()
    }
}

/// Everything needed to create a user; personal fields already checked and sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub user_id: Uuid,
    pub email: Vec<u8>,
    pub email_hash: Hash32,
    pub email_verified: bool,
    pub names: SealedNames,
    pub roles: Vec<String>,
    pub password: Option<NewPassword>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserCommand {
    Create(Box<NewUser>),
    /// The names and roles as they are to be (unchanged names carry their ciphertext).
    Update {
        names: SealedNames,
        roles: Vec<String>,
    },
    ChangeEmail {
        email: Vec<u8>,
        email_hash: Hash32,
    },
    Disable,
    Enable,
    SetPassword(NewPassword),
    Erase,
    /// Sends a password reset link (see [`links`] for when nothing is sent).
    RequestPasswordReset {
        link: Link,
        now: Timestamp,
    },
    /// Sends a link that verifies the current address.
    RequestEmailVerification {
        link: Link,
    },
    /// Marks the current address verified: by the verification link (its id), or otherwise.
    VerifyEmail {
        link_id: Option<Uuid>,
    },
}

impl Aggregate for UserState {
    type Command = UserCommand;

    fn evolve(&mut self, event: &Event) {
        if let Event::UserCreated(e) = event {
            self.user = Some(User {
                user_id: e.user_id,
                email: e.email.expose().clone(),
                email_hash: *e.email_hash.expose(),
                email_verified: e.email_verified,
                names: SealedNames {
                    name: e.name.expose().clone(),
                    given_name: e.given_name.expose().clone(),
                    family_name: e.family_name.expose().clone(),
                },
                roles: e.roles.clone(),
                status: UserStatus::Active,
                password: None,
                password_history: Vec::new(),
            });
            return;
        }
        if let Event::FederationLinked(e) = event {
            self.federated_links.push(*e.subject_hash.expose());
            return;
        }
        let Some(user) = self.user.as_mut() else {
            return;
        };
        match event {
            Event::UserUpdated(e) => {
                user.names = SealedNames {
                    name: e.name.expose().clone(),
                    given_name: e.given_name.expose().clone(),
                    family_name: e.family_name.expose().clone(),
                };
                user.roles.clone_from(&e.roles);
            }
            Event::UserEmailChanged(e) => {
                user.email.clone_from(e.email.expose());
                user.email_hash = *e.email_hash.expose();
                user.email_verified = false;
                self.links.verification.spend(Spent::Voided);
            }
            Event::UserPasswordResetRequested(e) => self.links.reset.issue(Link {
                token_hash: *e.token_hash.expose(),
                expires_at: e.expires_at,
            }),
            Event::UserEmailVerificationRequested(e) => self.links.verification.issue(Link {
                token_hash: *e.token_hash.expose(),
                expires_at: e.expires_at,
            }),
            Event::UserEmailVerified(_) => {
                user.email_verified = true;
                self.links.verification.spend(Spent::Used);
            }
            Event::UserDisabled(_) => user.status = UserStatus::Disabled,
            Event::UserEnabled(_) => user.status = UserStatus::Active,
            Event::UserPasswordSet(e) => {
                user.password = Some(Password {
                    hash: e.password_hash.expose().clone(),
                    temporary: e.temporary,
                    set_at: e.set_at,
                });
                user.password_history
                    .insert(0, e.password_hash.expose().clone());
                user.password_history.truncate(MAX_HISTORY);
                self.links.reset.spend(Spent::Used);
            }
            Event::UserErased(_) => {
                // Nothing personal or secret outlives an erasure in memory either; the id and
                // the reservation's hash stay, so that the release can be planned again.
                user.status = UserStatus::Erased;
                user.email.clear();
                user.names = SealedNames::default();
                user.password = None;
                user.password_history.clear();
                self.links = UserLinks::default();
            }
            _ => {}
        }
    }

    fn decide(&self, command: UserCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            UserCommand::Create(new) => self.create(*new),
            UserCommand::Update { names, roles } => {
                let user = self.require_live("update")?;
                let roles = self::roles(&roles)?;
                if names == user.names && roles == user.roles {
                    return Ok(Vec::new());
                }
                Ok(vec![Event::UserUpdated(UserUpdatedV1 {
                    name: names.name.into(),
                    given_name: names.given_name.into(),
                    family_name: names.family_name.into(),
                    roles,
                })])
            }
            UserCommand::ChangeEmail { email, email_hash } => {
                let user = self.require_live("change the email of")?;
                if email == user.email && email_hash == user.email_hash {
                    return Ok(Vec::new());
                }
                Ok(vec![Event::UserEmailChanged(UserEmailChangedV1 {
                    email: email.into(),
                    email_hash: email_hash.into(),
                })])
            }
            UserCommand::Disable => {
                let user = self.require_live("disable")?;
                Ok(match user.status {
                    UserStatus::Disabled => Vec::new(),
                    _ => vec![Event::UserDisabled(UserDisabledV1 {})],
                })
            }
            UserCommand::Enable => {
                let user = self.require_live("enable")?;
                Ok(match user.status {
                    UserStatus::Active => Vec::new(),
                    _ => vec![Event::UserEnabled(UserEnabledV1 {})],
                })
            }
            UserCommand::SetPassword(password) => {
                self.require_live("set the password of")?;
                Ok(vec![password_set(password)?])
            }
            UserCommand::Erase => {
                let user = self.user.as_ref().ok_or(DomainError::NotFound)?;
                Ok(match user.status {
                    UserStatus::Erased => Vec::new(),
                    _ => vec![Event::UserErased(UserErasedV1 {})],
                })
            }
            UserCommand::RequestPasswordReset { link, now } => {
                let user = self.require_live("reset the password of")?;
                let recent = self
                    .links
                    .reset
                    .requested_at(links::RESET_LINK_SECS)
                    .is_some_and(|at| now < at.plus_seconds(links::RESET_THROTTLE_SECS));
                if user.status != UserStatus::Active || recent {
                    return Ok(Vec::new());
                }
                Ok(vec![Event::UserPasswordResetRequested(
                    UserPasswordResetRequestedV1 {
                        link_id: user.user_id,
                        token_hash: link.token_hash.into(),
                        expires_at: link.expires_at,
                    },
                )])
            }
            UserCommand::RequestEmailVerification { link } => {
                let user = self.require_live("verify the address of")?;
                Ok(vec![Event::UserEmailVerificationRequested(
                    UserEmailVerificationRequestedV1 {
                        link_id: user.user_id,
                        token_hash: link.token_hash.into(),
                        expires_at: link.expires_at,
                    },
                )])
            }
            UserCommand::VerifyEmail { link_id } => {
                let user = self.require_live("verify the address of")?;
                Ok(match user.email_verified {
                    true => Vec::new(),
                    false => vec![Event::UserEmailVerified(UserEmailVerifiedV1 { link_id })],
                })
            }
        }
    }
}

impl UserState {
    fn create(&self, new: NewUser) -> Result<Vec<Event>, DomainError> {
        if let Some(user) = &self.user {
            return Err(DomainError::AlreadyExists(format!("user {}", user.user_id)));
        }
        if new.user_id.is_nil() {
            return Err(DomainError::invalid("user_id", "must not be the nil UUID"));
        }
        if new.email.is_empty() {
            return Err(DomainError::invalid("email", "must not be empty"));
        }
        let roles = roles(&new.roles)?;
        let mut events = vec![Event::UserCreated(UserCreatedV1 {
            user_id: new.user_id,
            email: new.email.into(),
            email_hash: new.email_hash.into(),
            email_verified: new.email_verified,
            name: new.names.name.into(),
            given_name: new.names.given_name.into(),
            family_name: new.names.family_name.into(),
            roles,
        })];
        if let Some(password) = new.password {
            events.push(password_set(password)?);
        }
        Ok(events)
    }
}

fn password_set(password: NewPassword) -> Result<Event, DomainError> {
    if password.reused {
        return Err(crate::password::reused(password.history_count));
    }
    if !password.hash.starts_with("$argon2id$") {
        return Err(DomainError::invalid(
            "password_hash",
            "must be an Argon2id PHC string",
        ));
    }
    Ok(Event::UserPasswordSet(UserPasswordSetV1 {
        password_hash: password.hash.into(),
        temporary: password.temporary,
        set_at: password.now,
    }))
}

/// The normalised form of an address, by which it is unique: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Checks an address (see the module's rules) and returns it as it is kept: trimmed, otherwise
/// as entered. `allowed_domains` is the tenant's `allowed_email_domains` (empty: any).
pub fn email(field: &str, value: &str, allowed_domains: &[String]) -> Result<String, DomainError> {
    let trimmed = value.trim();
    let malformed = || DomainError::invalid(field, "is not a valid email address");
    if trimmed.chars().count() > MAX_EMAIL_CHARS {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_EMAIL_CHARS} characters"),
        ));
    }
    let (local, domain) = trimmed.rsplit_once('@').ok_or_else(malformed)?;
    let local_ok = (1..=64).contains(&local.chars().count())
        && !local.contains('@')
        && !local.chars().any(|c| c.is_whitespace() || c.is_control());
    if !local_ok {
        return Err(malformed());
    }
    let domain = domain.to_lowercase();
    validate::hostname(field, &domain).map_err(|_| malformed())?;
    if !allowed_domains.is_empty() && !allowed_domains.contains(&domain) {
        return Err(DomainError::invalid(
            field,
            format!("addresses at {domain} are not allowed in this tenant (allowed_email_domains)"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A display, given or family name: 1 to [`MAX_NAME_CHARS`] characters once trimmed, without
/// control characters. Returns it trimmed.
pub fn person_name(field: &str, value: &str) -> Result<String, DomainError> {
    validate::display_text(field, value, MAX_NAME_CHARS)
}

/// Roles: at most [`MAX_ROLES`], each 1 to 64 characters of `[a-z0-9:._-]`, none twice.
pub fn roles(roles: &[String]) -> Result<Vec<String>, DomainError> {
    if roles.len() > MAX_ROLES {
        return Err(DomainError::invalid(
            "roles",
            format!("at most {MAX_ROLES} roles are allowed"),
        ));
    }
    for (index, role) in roles.iter().enumerate() {
        let field = format!("roles[{index}]");
        validate::scope(&field, role).map_err(|_| {
            DomainError::invalid(
                &field,
                "must be 1 to 64 characters of a-z, 0-9, ':', '.', '_' and '-'",
            )
        })?;
        if roles[..index].contains(role) {
            return Err(DomainError::invalid(
                field,
                format!("{role:?} is listed twice"),
            ));
        }
    }
    Ok(roles.to_vec())
}

#[cfg(test)]
mod link_tests;
#[cfg(test)]
mod tests;
