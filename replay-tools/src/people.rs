//! The people of a tenant as `as-of` shows them: ids, status and roles from the fold, and
//! their personal fields opened through the key table when their key still exists.
//!
//! A user's address and names are sealed in the log under a per-person key kept outside it
//! (see `tessera_crypto::personal`). This tool opens them with the master key and the key table
//! it finds beside the log; a user whose key was destroyed shows as `erased`, and without the
//! master key or a key table every user shows as `sealed`. Nothing here writes anything.

use std::sync::Arc;

use serde::Serialize;
use tessera_crypto::PersonalKeys;
use tessera_domain::user::{User, UserState, UserStatus};
use tessera_event_schemas::events::user::fields;
use uuid::Uuid;

/// Whether a user's personal fields could be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonalData {
    /// Opened with the user's key.
    Shown,
    /// The user's key is destroyed: nothing personal can be read any more.
    Erased,
    /// Not opened: no master key or no key table was available to this run.
    Sealed,
}

impl PersonalData {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonalData::Shown => "shown",
            PersonalData::Erased => "erased",
            PersonalData::Sealed => "sealed",
        }
    }
}

/// One user in the `as-of` report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserView {
    pub user_id: Uuid,
    pub status: &'static str,
    pub roles: Vec<String>,
    pub email_verified: bool,
    pub has_password: bool,
    pub personal_data: PersonalData,
    pub email: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

impl UserView {
    /// What the fold alone tells, personal fields not yet opened.
    pub fn sealed(user: &User) -> Self {
        Self {
            user_id: user.user_id,
            status: user.status.as_str(),
            roles: user.roles.clone(),
            email_verified: user.email_verified,
            has_password: user.password.is_some(),
            personal_data: PersonalData::Sealed,
            email: None,
            name: None,
            given_name: None,
            family_name: None,
        }
    }
}

/// The users of a snapshot, in id order, with their personal fields opened through `keys`
/// where possible (`None`: every one stays sealed).
pub async fn users(
    tenant_id: Uuid,
    states: impl Iterator<Item = &UserState>,
    keys: Option<&Arc<PersonalKeys>>,
) -> anyhow::Result<Vec<UserView>> {
    let mut views = Vec::new();
    for user in states.filter_map(|state| state.user.as_ref()) {
        let mut view = UserView::sealed(user);
        if user.status == UserStatus::Erased {
            // The key was destroyed before `user.erased` was appended.
            view.personal_data = PersonalData::Erased;
        } else if let Some(keys) = keys {
            match keys.get(tenant_id, user.user_id).await? {
                Some(key) => {
                    let open = |field: &str, sealed: &Option<Vec<u8>>| {
                        sealed
                            .as_ref()
                            .map(|sealed| key.open(field, sealed))
                            .transpose()
                    };
                    view.email = Some(key.open(fields::EMAIL, &user.email)?);
                    view.name = open(fields::NAME, &user.names.name)?;
                    view.given_name = open(fields::GIVEN_NAME, &user.names.given_name)?;
                    view.family_name = open(fields::FAMILY_NAME, &user.names.family_name)?;
                    view.personal_data = PersonalData::Shown;
                }
                None => view.personal_data = PersonalData::Erased,
            }
        }
        views.push(view);
    }
    Ok(views)
}
