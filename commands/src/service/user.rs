//! User commands: creating a person of an open tenant (with their data key, their email
//! reservation and an optional first password), changing their profile, address, status and
//! password, and erasing them.
//!
//! Personal fields are checked in clear by the domain's pure checks, then sealed here under the
//! user's data key ([`PersonalKeys`]), which is stored durably before the first event sealed
//! under it is appended. Passwords are checked against the tenant's policy (guessability scored
//! by zxcvbn, with the user's address, names and the tenant's slug as inputs it penalises),
//! compared with the recent ones and hashed (Argon2id, on blocking threads), once, before the
//! retried attempt; the attempt re-checks only what the tenant could have changed meanwhile
//! (its allowed email domains).
//!
//! Erasure destroys the data key first and appends `user.erased` (with the release of the
//! email reservation) after: once the key is gone the person's data is unreadable whatever
//! happens to the append, and a retried erasure appends what is missing.

use std::fmt;
use std::sync::Arc;

use tessera_crypto::{DataKey, Passwords, PersonalKeys};
use tessera_domain::password;
use tessera_domain::reservation::{self, ReservationState};
use tessera_domain::user::{self, NewPassword, NewUser, SealedNames, User, UserCommand, UserState};
use tessera_domain::{Aggregate, DomainError};
use tessera_event_log::StreamWrite;
use tessera_event_schemas::events::user::fields;
use tessera_event_schemas::events::{PasswordPolicyV1, ReservationKind, SessionEndReason};
use tessera_event_schemas::{Event, EventMetadata, Hash32, Timestamp, streams};
use uuid::Uuid;

use super::email_verification::{Recipient, opened};
use super::engine::{Address, Kind, Loaded, Plan};
use super::{CommandService, Outcome};
use crate::CommandError;

impl Kind for UserState {
    const KIND: &'static str = "user";
}

impl Address<UserState> {
    pub(super) fn user(tenant_id: Uuid, user_id: Uuid) -> Self {
        Self::new(streams::user(tenant_id, user_id), user_id)
    }
}

/// What user commands need beyond the log: the per-person keys and the password hasher.
#[derive(Clone, Debug)]
pub struct People {
    pub keys: Arc<PersonalKeys>,
    pub passwords: Passwords,
}

/// Input of [`CommandService::create_user`].
#[derive(Clone, Default)]
pub struct CreateUser {
    /// None: a new UUIDv7.
    pub user_id: Option<Uuid>,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub roles: Vec<String>,
    /// A first password, checked against the tenant's policy.
    pub password: Option<String>,
    /// The first password must be changed at the first sign-in.
    pub temporary: bool,
}

impl fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateUser")
            .field("user_id", &self.user_id)
            .field("roles", &self.roles)
            .field("password", &self.password.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// Input of [`CommandService::update_user`]: each `Some` is to be set; a name set to `None`
/// is removed.
#[derive(Clone, Debug, Default)]
pub struct UpdateUser {
    pub name: Option<Option<String>>,
    pub given_name: Option<Option<String>>,
    pub family_name: Option<Option<String>>,
    pub roles: Option<Vec<String>>,
    /// A new address, which becomes unverified.
    pub email: Option<String>,
}

/// What [`CommandService::create_user_with`]'s `also` adds to a user's creation: writes to
/// other streams, and events after the creation on the user's own stream.
#[derive(Default)]
pub(super) struct Also {
    pub writes: Vec<StreamWrite>,
    pub user_events: Vec<Event>,
}

/// A created user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedUser {
    pub user_id: Uuid,
    pub position: u64,
}

/// A user's personal fields in clear, checked: what the password estimator takes as inputs.
struct Profile {
    email: String,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
}

impl Profile {
    fn check(
        email: &str,
        name: Option<&str>,
        given_name: Option<&str>,
        family_name: Option<&str>,
        allowed_domains: &[String],
    ) -> Result<Self, DomainError> {
        let name_of = |field: &str, value: Option<&str>| {
            value
                .map(|value| user::person_name(field, value))
                .transpose()
        };
        Ok(Self {
            email: user::email("email", email, allowed_domains)?,
            name: name_of(fields::NAME, name)?,
            given_name: name_of(fields::GIVEN_NAME, given_name)?,
            family_name: name_of(fields::FAMILY_NAME, family_name)?,
        })
    }

    fn seal_names(&self, key: &DataKey) -> Result<SealedNames, CommandError> {
        Ok(SealedNames {
            name: seal_optional(key, fields::NAME, self.name.as_deref())?,
            given_name: seal_optional(key, fields::GIVEN_NAME, self.given_name.as_deref())?,
            family_name: seal_optional(key, fields::FAMILY_NAME, self.family_name.as_deref())?,
        })
    }

    /// What guessing a password from this person would start with: the address and its local
    /// part, the tenant's slug, and each name whole, word by word and without its spaces.
    fn hints(&self, tenant_slug: &str) -> Vec<String> {
        let mut hints = vec![self.email.clone(), tenant_slug.to_owned()];
        if let Some((local, _)) = self.email.split_once('@') {
            hints.push(local.to_owned());
        }
        for name in [&self.name, &self.given_name, &self.family_name]
            .into_iter()
            .flatten()
        {
            hints.push(name.clone());
            hints.push(name.split_whitespace().collect());
            hints.extend(name.split_whitespace().map(str::to_owned));
        }
        hints
    }
}

fn seal_optional(
    key: &DataKey,
    field: &str,
    value: Option<&str>,
) -> Result<Option<Vec<u8>>, CommandError> {
    Ok(value.map(|value| key.seal(field, value)).transpose()?)
}

/// Scores how hard `password` is to guess (zxcvbn, 0 to 4), penalising `hints`.
fn strength(password: &str, hints: &[String]) -> u8 {
    let hints: Vec<&str> = hints.iter().map(String::as_str).collect();
    u8::from(zxcvbn::zxcvbn(password, &hints).score())
}

impl CommandService {
    /// The people services, which a service built without them (tools, tests of other
    /// aggregates) does not have.
    pub(super) fn people(&self) -> Result<&People, CommandError> {
        self.people.as_ref().ok_or_else(|| {
            CommandError::Internal("this command service has no key table for people".to_owned())
        })
    }

    /// Creates a user in an open tenant: their data key, then in one append their events (and
    /// a first password, if given), the reservation of their address's keyed hash (a taken
    /// address is `Rejected(AlreadyExists)`), and the tenant's stream guarded at the version
    /// read.
    pub async fn create_user(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        input: CreateUser,
    ) -> Result<CreatedUser, CommandError> {
        self.create_user_with(meta, tenant_id, input, |_| async { Ok(Also::default()) })
            .await
    }

    /// [`CommandService::create_user`], with `also` adding writes of its own to every
    /// attempt's append (an invitation's acceptance, a federated sign-in's link), and events
    /// after the creation on the user's own stream (the link's `federation.linked`): it gets
    /// the new user's id and runs again on every retry, so that its writes are guarded at the
    /// versions it reads.
    pub(super) async fn create_user_with<F, Fut>(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        input: CreateUser,
        also: F,
    ) -> Result<CreatedUser, CommandError>
    where
        F: Fn(Uuid) -> Fut,
        Fut: std::future::Future<Output = Result<Also, CommandError>>,
    {
        let people = self.people()?;
        let (tenant, _, _) = self.load_open_tenant(tenant_id, "create a user").await?;
        let allowed = &tenant.settings.allowed_email_domains;
        let profile = Profile::check(
            &input.email,
            input.name.as_deref(),
            input.given_name.as_deref(),
            input.family_name.as_deref(),
            allowed,
        )?;
        let roles = user::roles(&input.roles)?;
        let user_id = input.user_id.unwrap_or_else(|| self.ids.new_id());
        let email_hash = self.email_hash(tenant_id, &profile.email);
        self.check_email_free(&email_hash, user_id).await?;
        let now = self.clock.now();
        let password = match &input.password {
            Some(plain) => {
                let policy = &tenant.settings.password_policy;
                password::check(policy, plain, strength(plain, &profile.hints(&tenant.slug)))?;
                Some(NewPassword {
                    hash: people.passwords.hash(plain).await?,
                    temporary: input.temporary,
                    now,
                    reused: false,
                    history_count: policy.password_history_count,
                })
            }
            None => None,
        };
        let key = people.keys.create(tenant_id, user_id).await?;
        let new = NewUser {
            user_id,
            email: key.seal(fields::EMAIL, &profile.email)?,
            email_hash,
            email_verified: input.email_verified,
            names: profile.seal_names(&key)?,
            roles,
            password,
        };
        let address = Address::user(tenant_id, user_id);
        let (new, meta, address_ref, email, also) = (&new, &meta, &address, &profile.email, &also);
        let ((), position) = self
            .run(&address.stream, move || async move {
                let (tenant, tenant_stream, tenant_version) =
                    self.load_open_tenant(tenant_id, "create a user").await?;
                // The tenant may have restricted its domains since the check above.
                user::email("email", email, &tenant.settings.allowed_email_domains)?;
                let loaded = self.load::<UserState>(&address_ref.stream).await?;
                let mut events = loaded
                    .state
                    .decide(UserCommand::Create(Box::new(new.clone())))?;
                let now = self.clock.now();
                let mut plan = Plan::new((), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                self.plan_email_claim(&mut plan, meta, now, &email_hash, user_id)
                    .await?;
                let also = also(user_id).await?;
                for write in also.writes {
                    plan.push(write);
                }
                events.extend(also.user_events);
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
        Ok(CreatedUser { user_id, position })
    }

    /// Changes names, roles and the address of a user that is not erased. A new address is
    /// reserved, the old one released and the user's address unverified, in one append.
    pub async fn update_user(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        input: UpdateUser,
    ) -> Result<Outcome, CommandError> {
        let address = Address::user(tenant_id, user_id);
        let (tenant, current, key) = self.live_user(tenant_id, &address, "update").await?;
        let allowed = &tenant.settings.allowed_email_domains;
        let name_of = |field: &str, value: &Option<Option<String>>| {
            value
                .as_ref()
                .map(|value| {
                    value
                        .as_deref()
                        .map(|value| user::person_name(field, value))
                        .transpose()
                })
                .transpose()
        };
        let names = [
            (fields::NAME, name_of(fields::NAME, &input.name)?),
            (
                fields::GIVEN_NAME,
                name_of(fields::GIVEN_NAME, &input.given_name)?,
            ),
            (
                fields::FAMILY_NAME,
                name_of(fields::FAMILY_NAME, &input.family_name)?,
            ),
        ];
        let [name, given_name, family_name] = names.map(|(field, value)| {
            value
                .map(|value| seal_optional(&key, field, value.as_deref()))
                .transpose()
        });
        let (name, given_name, family_name) = (name?, given_name?, family_name?);
        let roles = input.roles.as_deref().map(user::roles).transpose()?;
        let new_email = match &input.email {
            Some(email) => {
                let email = user::email("email", email, allowed)?;
                let unchanged = key.open(fields::EMAIL, &current.email)? == email;
                (!unchanged)
                    .then(|| -> Result<_, CommandError> {
                        Ok((
                            key.seal(fields::EMAIL, &email)?,
                            self.email_hash(tenant_id, &email),
                            email,
                        ))
                    })
                    .transpose()?
            }
            None => None,
        };
        let display_name = opened(&key, &current)?.1;
        let (meta, address_ref, key, display_name) = (&meta, &address, &key, &display_name);
        let (name, given_name, family_name, roles, new_email) =
            (&name, &given_name, &family_name, &roles, &new_email);
        let ((), position) = self
            .run(&address.stream, move || async move {
                let (tenant, tenant_stream, tenant_version) =
                    self.load_open_tenant(tenant_id, "update a user").await?;
                let loaded = self.load::<UserState>(&address_ref.stream).await?;
                let user = loaded
                    .state
                    .require_live("update")
                    .map_err(|error| loaded.reject(error, address_ref))?;
                let merged = SealedNames {
                    name: name.clone().unwrap_or_else(|| user.names.name.clone()),
                    given_name: given_name
                        .clone()
                        .unwrap_or_else(|| user.names.given_name.clone()),
                    family_name: family_name
                        .clone()
                        .unwrap_or_else(|| user.names.family_name.clone()),
                };
                let mut events = loaded.state.decide(UserCommand::Update {
                    names: merged,
                    roles: roles.clone().unwrap_or_else(|| user.roles.clone()),
                })?;
                let now = self.clock.now();
                let mut plan = Plan::new((), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                if let Some((sealed, hash, email)) = new_email {
                    user::email("email", email, &tenant.settings.allowed_email_domains)?;
                    let changed = loaded.state.decide(UserCommand::ChangeEmail {
                        email: sealed.clone(),
                        email_hash: *hash,
                    })?;
                    if *hash != user.email_hash {
                        self.plan_email_release(&mut plan, meta, now, user).await?;
                        self.plan_email_claim(&mut plan, meta, now, hash, user_id)
                            .await?;
                    }
                    // The new address gets its verification link in the same append.
                    let mut after = loaded.state.clone();
                    events.iter().chain(&changed).for_each(|e| after.evolve(e));
                    events.extend(changed);
                    let to = Recipient {
                        email,
                        name: display_name.as_deref(),
                    };
                    if let Some((requested, mail)) =
                        self.verification_request(meta, now, &tenant, &after, key, to)?
                    {
                        events.extend(requested);
                        plan.push(mail);
                    }
                }
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

    /// Disables a user: they can no longer sign in, and their sessions end in the same append.
    /// Disabling a disabled user changes nothing.
    pub async fn disable_user(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        self.user_command_ending_sessions(
            meta,
            tenant_id,
            user_id,
            "disable a user",
            UserCommand::Disable,
            SessionEndReason::UserDisabled,
            None,
        )
        .await
    }

    /// Enables a disabled user. Enabling an active user changes nothing.
    pub async fn enable_user(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        self.user_command(
            meta,
            tenant_id,
            user_id,
            "enable a user",
            UserCommand::Enable,
        )
        .await
    }

    /// Sets a user's password after checking it against the tenant's policy (guessability,
    /// history); `temporary` makes them change it at their next sign-in. Their sessions end in
    /// the same append (an administrator's reset).
    pub async fn set_user_password(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        plain: &str,
        temporary: bool,
    ) -> Result<Outcome, CommandError> {
        let address = Address::user(tenant_id, user_id);
        let (tenant, current, key) = self
            .live_user(tenant_id, &address, "set the password of")
            .await?;
        let new = self
            .prepare_password(&tenant, &current, &key, plain, temporary)
            .await?;
        self.set_password_ending_sessions(
            meta,
            tenant_id,
            user_id,
            new,
            SessionEndReason::PasswordReset,
            None,
        )
        .await
    }

    /// Appends a new password and the end of the user's sessions (but `keep`) in one append.
    pub(super) async fn set_password_ending_sessions(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        new: NewPassword,
        reason: SessionEndReason,
        keep: Option<Uuid>,
    ) -> Result<Outcome, CommandError> {
        self.user_command_ending_sessions(
            meta,
            tenant_id,
            user_id,
            "set the password of a user",
            UserCommand::SetPassword(new),
            reason,
            keep,
        )
        .await
    }

    /// A password checked against `tenant`'s policy (guessability with `current`'s address and
    /// names as hints, history) and hashed: what `UserCommand::SetPassword` takes.
    pub(super) async fn prepare_password(
        &self,
        tenant: &tessera_domain::tenant::Tenant,
        current: &User,
        key: &DataKey,
        plain: &str,
        temporary: bool,
    ) -> Result<NewPassword, CommandError> {
        let people = self.people()?;
        let policy: &PasswordPolicyV1 = &tenant.settings.password_policy;
        let open = |sealed: &Option<Vec<u8>>, field: &str| {
            sealed
                .as_ref()
                .map(|sealed| key.open(field, sealed))
                .transpose()
        };
        let profile = Profile {
            email: key.open(fields::EMAIL, &current.email)?,
            name: open(&current.names.name, fields::NAME)?,
            given_name: open(&current.names.given_name, fields::GIVEN_NAME)?,
            family_name: open(&current.names.family_name, fields::FAMILY_NAME)?,
        };
        password::check(policy, plain, strength(plain, &profile.hints(&tenant.slug)))?;
        let recent = current
            .recent_password_hashes(policy.password_history_count)
            .to_vec();
        let reused = people.passwords.matches_any(plain, recent).await?;
        Ok(NewPassword {
            hash: people.passwords.hash(plain).await?,
            temporary,
            now: self.clock.now(),
            reused,
            history_count: policy.password_history_count,
        })
    }

    /// Erases a user: destroys their data key (every personal value sealed under it is
    /// unreadable from then on), then appends `user.erased`, releases their address's
    /// reservation and ends their sessions. Also for a user of an archived tenant; erasing an erased user changes
    /// nothing (and destroys the key again if it is somehow still there).
    pub async fn erase_user(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let people = self.people()?;
        let address = Address::user(tenant_id, user_id);
        let loaded = self.load::<UserState>(&address.stream).await?;
        if loaded.state.user.is_none() {
            return Err(address.not_found());
        }
        people.keys.destroy(tenant_id, user_id).await?;
        let (meta, address_ref) = (&meta, &address);
        let ((), position) = self
            .run(&address.stream, move || async move {
                let loaded = self.load::<UserState>(&address_ref.stream).await?;
                let events = loaded
                    .state
                    .decide(UserCommand::Erase)
                    .map_err(|error| loaded.reject(error, address_ref))?;
                let now = self.clock.now();
                let mut plan = Plan::new((), loaded.position);
                if let (false, Some(user)) = (events.is_empty(), &loaded.state.user) {
                    self.plan_email_release(&mut plan, meta, now, user).await?;
                    // The person's upstream identities are forgotten with them: the same
                    // person signing in upstream later gets a new account.
                    for subject_hash in &loaded.state.federated_links {
                        self.plan_release(
                            &mut plan,
                            meta,
                            now,
                            ReservationKind::FederatedIdentity,
                            &subject_hash.to_hex(),
                            user_id,
                        )
                        .await?;
                    }
                    self.plan_end_sessions(
                        &mut plan,
                        meta,
                        now,
                        tenant_id,
                        user_id,
                        SessionEndReason::UserErased,
                        None,
                    )
                    .await?;
                }
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

    /// The user as the write side sees it (straight from the log). A user that does not exist
    /// is the default state (`user: None`).
    pub async fn load_user(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<UserState, CommandError> {
        Ok(self
            .load::<UserState>(&streams::user(tenant_id, user_id))
            .await?
            .state)
    }

    /// The keyed hash of an address, by its normalised form, in `tenant_id`: what its
    /// reservation and exact-match lookups use.
    pub fn email_hash(&self, tenant_id: Uuid, email: &str) -> Hash32 {
        self.crypto
            .email_hash(tenant_id, &user::normalize_email(email))
    }

    /// A command on a user of an open tenant that, when it changes anything, also ends the
    /// user's sessions (but `keep`) in the same append.
    #[allow(clippy::too_many_arguments)]
    async fn user_command_ending_sessions(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        action: &'static str,
        command: UserCommand,
        reason: SessionEndReason,
        keep: Option<Uuid>,
    ) -> Result<Outcome, CommandError> {
        let address = Address::user(tenant_id, user_id);
        let (meta, address_ref, command) = (&meta, &address, &command);
        let ((), position) = self
            .run(&address.stream, move || async move {
                let (_, tenant_stream, tenant_version) =
                    self.load_open_tenant(tenant_id, action).await?;
                let loaded = self.load::<UserState>(&address_ref.stream).await?;
                let events = loaded
                    .state
                    .decide(command.clone())
                    .map_err(|error| loaded.reject(error, address_ref))?;
                let now = self.clock.now();
                let mut plan = Plan::new((), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                if !events.is_empty() {
                    self.plan_end_sessions(&mut plan, meta, now, tenant_id, user_id, reason, keep)
                        .await?;
                }
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

    /// A single-stream command on a user of an open tenant.
    async fn user_command(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        user_id: Uuid,
        action: &'static str,
        command: UserCommand,
    ) -> Result<Outcome, CommandError> {
        let address = Address::user(tenant_id, user_id);
        let ((), position) = self
            .execute_in_open_tenant(&meta, tenant_id, action, &address, |_, _| {
                Ok((command.clone(), ()))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// The open tenant, a live user of it and their data key, read before an attempt to check
    /// and seal what the command carries.
    pub(super) async fn live_user(
        &self,
        tenant_id: Uuid,
        address: &Address<UserState>,
        action: &'static str,
    ) -> Result<(tessera_domain::tenant::Tenant, User, Arc<DataKey>), CommandError> {
        let people = self.people()?;
        let (tenant, _, _) = self.load_open_tenant(tenant_id, action).await?;
        let loaded: Loaded<UserState> = self.load(&address.stream).await?;
        let user = loaded
            .state
            .require_live(action)
            .map_err(|error| loaded.reject(error, address))?
            .clone();
        let key = people
            .keys
            .get(tenant_id, user.user_id)
            .await?
            .ok_or_else(|| {
                CommandError::Rejected(DomainError::IllegalTransition {
                    from: "erased".to_owned(),
                    action,
                })
            })?;
        Ok((tenant, user, key))
    }

    /// Refuses an address someone else holds before any work is done for it (a password
    /// hashed, a data key stored): a duplicate then leaves no orphan key behind. Only a hint:
    /// the append decides, at the reservation's version.
    pub(super) async fn check_email_free(
        &self,
        hash: &Hash32,
        user_id: Uuid,
    ) -> Result<(), CommandError> {
        let kind = ReservationKind::UserEmail;
        let value = hash.to_hex();
        let stream = streams::reservation(kind.as_str(), &value);
        let loaded = self.load::<ReservationState>(&stream).await?;
        reservation::claim(&loaded.state, kind, &value, user_id)?;
        Ok(())
    }

    /// Reserves the address whose keyed hash is `hash` for `user_id`, at the version of its
    /// reservation stream read now: taken by someone else, it is `AlreadyExists`.
    pub(super) async fn plan_email_claim<T>(
        &self,
        plan: &mut Plan<T>,
        meta: &EventMetadata,
        now: Timestamp,
        hash: &Hash32,
        user_id: Uuid,
    ) -> Result<(), CommandError> {
        self.plan_claim(
            plan,
            meta,
            now,
            ReservationKind::UserEmail,
            &hash.to_hex(),
            user_id,
        )
        .await
    }

    /// Releases `user`'s address reservation.
    async fn plan_email_release<T>(
        &self,
        plan: &mut Plan<T>,
        meta: &EventMetadata,
        now: Timestamp,
        user: &User,
    ) -> Result<(), CommandError> {
        self.plan_release(
            plan,
            meta,
            now,
            ReservationKind::UserEmail,
            &user.email_hash.to_hex(),
            user.user_id,
        )
        .await
    }
}

#[cfg(test)]
pub(super) mod tests;
