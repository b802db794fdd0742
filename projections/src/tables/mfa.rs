//! `rm_mfa`: one row per user with second factors, for the admin API and the account page:
//! whether an authenticator app is set up, how many recovery codes are left, and the user's
//! passkeys (name, when registered and last used).
//!
//! No secret reaches it: the TOTP secret and the recovery code hashes stay in the log, and a
//! passkey is listed by its credential id without its public key. A passkey's name is personal
//! data, stored sealed as the log has it (base64 of `nonce || ciphertext || tag`, inside the
//! row's JSON list) for the API to open. A user's passkeys are a short list (at most
//! `tessera_domain::mfa::MAX_PASSKEYS`), so they live in their row, which a reset or the user's
//! erasure then deletes whole.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use tessera_event_schemas::events::Event;
use tessera_event_schemas::primitives::Timestamp;
use tessera_event_schemas::{Envelope, StreamId};
use uuid::Uuid;

use super::TableProjection;
use crate::decode::{Columns, parse_uuid};
use crate::error::ReadError;
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite, to_json};
use crate::store::{Dialect, ReadStore};
use crate::views::{MfaView, PasskeyView, TotpStatus};

/// `rm_mfa`, keyed by user id.
#[derive(Debug)]
pub(crate) struct Mfa;

impl TableProjection for Mfa {
    const NAME: &'static str = "mfa";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_mfa",
        columns: &[
            Column::key("user_id"),
            Column::fixed("tenant_id", Kind::Text),
            Column::updated("totp", Kind::Text),
            Column::updated("totp_enrolled_at", Kind::Int),
            Column::updated("recovery_codes_left", Kind::Int),
            Column::updated("passkeys", Kind::Json),
            Column::updated("updated_at", Kind::Int),
        ],
    };
    const SELECT: &'static str = "SELECT user_id, tenant_id, totp, totp_enrolled_at, \
         recovery_codes_left, passkeys, updated_at FROM rm_mfa WHERE user_id";

    type Key = Uuid;
    type Row = MfaView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let key = dialect.key_type();
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_mfa (\
                user_id {key} PRIMARY KEY, \
                tenant_id {key} NOT NULL, \
                totp TEXT NOT NULL, \
                totp_enrolled_at BIGINT, \
                recovery_codes_left BIGINT NOT NULL, \
                passkeys TEXT NOT NULL, \
                updated_at BIGINT NOT NULL)"
        ))
    }

    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut(Uuid)) {
        if let Some(user_id) = user_key(envelope, event) {
            each(user_id);
        }
    }

    fn group_of(key: &Uuid) -> Uuid {
        *key
    }

    fn reduce(row: Option<MfaView>, key: &Uuid, envelope: &Envelope, event: &Event) -> Option<MfaView> {
        reduce_mfa(row, *key, envelope, event)
    }

    fn from_row(row: &impl Columns) -> Result<(Uuid, MfaView), ReadError> {
        let mfa = mfa_from_row(row)?;
        Ok((mfa.user_id, mfa))
    }

    fn cells<'a>(id: &'a Uuid, mfa: &'a MfaView) -> Result<Vec<Cell<'a>>, ReadError> {
        let passkeys: Vec<StoredPasskey> = mfa.passkeys.iter().map(StoredPasskey::from).collect();
        Ok(vec![
            Cell::text(id.to_string()),
            Cell::text(mfa.tenant_id.to_string()),
            Cell::text(mfa.totp.as_str()),
            Cell::Int(mfa.totp_enrolled_at.map(Timestamp::as_micros)),
            Cell::int(i64::from(mfa.recovery_codes_left)),
            Cell::text(to_json(&passkeys, "passkeys")?),
            Cell::int(mfa.updated_at.as_micros()),
        ])
    }

    fn key_cells(id: &Uuid) -> Vec<Cell<'_>> {
        vec![Cell::text(id.to_string())]
    }
}

/// The user whose row an event changes: second-factor events name them by their stream
/// (`{tenant}/mfa/{user}`), and a user's erasure (`{tenant}/user/{user}`) deletes their row.
fn user_key(envelope: &Envelope, event: &Event) -> Option<Uuid> {
    let mfa_event = matches!(
        event,
        Event::TotpEnrollmentStarted(_)
            | Event::TotpEnrolled(_)
            | Event::TotpRemoved(_)
            | Event::RecoveryCodesGenerated(_)
            | Event::RecoveryCodeUsed(_)
            | Event::RecoveryCodesRevoked(_)
            | Event::PasskeyRegistered(_)
            | Event::PasskeyUsed(_)
            | Event::PasskeyRemoved(_)
            | Event::MfaReset(_)
    );
    match (StreamId::parse(&envelope.stream_id)?, event) {
        (StreamId::Mfa { user_id, .. }, _) if mfa_event => Some(user_id),
        (StreamId::User { user_id, .. }, Event::UserErased(_)) => Some(user_id),
        _ => None,
    }
}

/// `rm_mfa`: every change moves `updated_at`; a reset or the user's erasure deletes the row.
/// `mfa.totp_used` changes nothing listed here, so it is not one of this table's events.
fn reduce_mfa(row: Option<MfaView>, user_id: Uuid, envelope: &Envelope, event: &Event) -> Option<MfaView> {
    let at = envelope.recorded_at;
    let mut mfa = match event {
        Event::MfaReset(_) | Event::UserErased(_) => return None,
        _ => row.unwrap_or(MfaView {
            user_id,
            tenant_id: envelope.tenant_id,
            totp: TotpStatus::None,
            totp_enrolled_at: None,
            recovery_codes_left: 0,
            passkeys: Vec::new(),
            updated_at: at,
        }),
    };
    match event {
        Event::TotpEnrollmentStarted(_) => mfa.totp = TotpStatus::Pending,
        Event::TotpEnrolled(_) => {
            mfa.totp = TotpStatus::Enrolled;
            mfa.totp_enrolled_at = Some(at);
        }
        Event::TotpRemoved(_) => {
            mfa.totp = TotpStatus::None;
            mfa.totp_enrolled_at = None;
        }
        Event::RecoveryCodesGenerated(generated) => {
            mfa.recovery_codes_left = u32::try_from(generated.code_hashes.len()).unwrap_or(u32::MAX);
        }
        Event::RecoveryCodeUsed(_) => {
            mfa.recovery_codes_left = mfa.recovery_codes_left.saturating_sub(1);
        }
        Event::RecoveryCodesRevoked(_) => mfa.recovery_codes_left = 0,
        Event::PasskeyRegistered(registered) => mfa.passkeys.push(PasskeyView {
            credential_id: registered.credential_id.clone(),
            name: registered.name.expose().clone(),
            created_at: at,
            last_used_at: None,
            user_verified: registered.user_verified,
            backup_eligible: registered.backup_eligible,
        }),
        Event::PasskeyUsed(used) => {
            if let Some(passkey) = mfa
                .passkeys
                .iter_mut()
                .find(|passkey| passkey.credential_id == used.credential_id)
            {
                passkey.last_used_at = Some(at);
            }
        }
        Event::PasskeyRemoved(removed) => mfa
            .passkeys
            .retain(|passkey| passkey.credential_id != removed.credential_id),
        _ => return Some(mfa),
    }
    mfa.updated_at = at;
    Some(mfa)
}

/// A passkey as the row's JSON list stores it: the credential id in base64url (as WebAuthn
/// spells it), the sealed name in base64.
#[derive(Serialize, Deserialize)]
struct StoredPasskey {
    credential_id: String,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
    user_verified: bool,
    backup_eligible: bool,
}

impl From<&PasskeyView> for StoredPasskey {
    fn from(passkey: &PasskeyView) -> Self {
        Self {
            credential_id: URL_SAFE_NO_PAD.encode(&passkey.credential_id),
            name: STANDARD.encode(&passkey.name),
            created_at: passkey.created_at.as_micros(),
            last_used_at: passkey.last_used_at.map(Timestamp::as_micros),
            user_verified: passkey.user_verified,
            backup_eligible: passkey.backup_eligible,
        }
    }
}

impl StoredPasskey {
    fn view(self) -> Result<PasskeyView, ReadError> {
        let corrupt = |e: base64::DecodeError| ReadError::Corrupt(format!("rm_mfa.passkeys: {e}"));
        Ok(PasskeyView {
            credential_id: URL_SAFE_NO_PAD.decode(&self.credential_id).map_err(corrupt)?,
            name: STANDARD.decode(&self.name).map_err(corrupt)?,
            created_at: Timestamp::from_micros(self.created_at),
            last_used_at: self.last_used_at.map(Timestamp::from_micros),
            user_verified: self.user_verified,
            backup_eligible: self.backup_eligible,
        })
    }
}

fn mfa_from_row(row: &impl Columns) -> Result<MfaView, ReadError> {
    let totp = row.text("totp")?;
    let passkeys: Vec<StoredPasskey> = serde_json::from_str(&row.text("passkeys")?)
        .map_err(|e| ReadError::Corrupt(format!("rm_mfa.passkeys: {e}")))?;
    Ok(MfaView {
        user_id: parse_uuid(&row.text("user_id")?)?,
        tenant_id: parse_uuid(&row.text("tenant_id")?)?,
        totp: TotpStatus::parse(&totp)
            .ok_or_else(|| ReadError::Corrupt(format!("rm_mfa.totp {totp}")))?,
        totp_enrolled_at: row.opt_int("totp_enrolled_at")?.map(Timestamp::from_micros),
        recovery_codes_left: u32::try_from(row.int("recovery_codes_left")?)
            .map_err(|e| ReadError::Corrupt(format!("rm_mfa.recovery_codes_left: {e}")))?,
        passkeys: passkeys
            .into_iter()
            .map(StoredPasskey::view)
            .collect::<Result<_, _>>()?,
        updated_at: Timestamp::from_micros(row.int("updated_at")?),
    })
}

impl ReadStore {
    /// A user's second factors; `None` when they have none.
    pub async fn user_mfa(&self, tenant_id: Uuid, user_id: Uuid) -> Result<Option<MfaView>, ReadError> {
        let query = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM rm_mfa WHERE user_id = $1 AND tenant_id = $2",
            Mfa::WRITE.column_list()
        )))
        .bind(user_id.to_string())
        .bind(tenant_id.to_string());
        let row = self.tenant_row(tenant_id, query).await?;
        row.map(|row| mfa_from_row(&row)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::streams;

    use super::*;
    use crate::tables::testing::{TENANT, USER, envelope, sample};

    fn fold(events: &[&str]) -> Option<MfaView> {
        events.iter().enumerate().fold(None, |row, (i, event_type)| {
            let v = i as u64 + 1;
            let event = sample(event_type);
            let stream = match event_type.split_once('.') {
                Some(("user", _)) => streams::user(TENANT, USER),
                _ => streams::mfa(TENANT, USER),
            };
            let env = envelope(stream, v, v, 1_000 * v as i64);
            match user_key(&env, &event) {
                Some(key) => reduce_mfa(row, key, &env, &event),
                None => row,
            }
        })
    }

    #[test]
    fn a_row_lists_the_app_the_codes_left_and_the_passkeys_without_secrets() {
        let mfa = fold(&[
            "mfa.totp_enrollment_started",
            "mfa.totp_enrolled",
            "mfa.recovery_codes_generated",
            "mfa.recovery_code_used",
            "mfa.passkey_registered",
            "mfa.passkey_used",
        ])
        .unwrap();
        assert_eq!((mfa.user_id, mfa.tenant_id), (USER, TENANT));
        assert_eq!(mfa.totp, TotpStatus::Enrolled);
        assert_eq!(mfa.totp_enrolled_at, Some(Timestamp::from_micros(2_000)));
        assert_eq!(mfa.recovery_codes_left, 1, "two sample codes, one used");
        assert_eq!(mfa.passkeys.len(), 1);
        let passkey = &mfa.passkeys[0];
        assert_eq!(passkey.credential_id, vec![34; 16]);
        assert_eq!(passkey.name, vec![36; 40]);
        assert_eq!(passkey.created_at, Timestamp::from_micros(5_000));
        assert_eq!(passkey.last_used_at, Some(Timestamp::from_micros(6_000)));
        assert_eq!(mfa.updated_at, Timestamp::from_micros(6_000));
        let cells = Mfa::cells(&USER, &mfa).unwrap();
        let Cell::Text(Some(passkeys)) = &cells[5] else {
            panic!("{cells:?}")
        };
        let stored: Vec<StoredPasskey> = serde_json::from_str(passkeys).unwrap();
        assert_eq!(stored.into_iter().next().unwrap().view().unwrap(), *passkey);
    }

    #[test]
    fn removals_clear_what_they_remove_and_a_reset_or_an_erasure_deletes_the_row() {
        let removed = fold(&[
            "mfa.totp_enrollment_started",
            "mfa.totp_enrolled",
            "mfa.recovery_codes_generated",
            "mfa.passkey_registered",
            "mfa.passkey_removed",
            "mfa.totp_removed",
            "mfa.recovery_codes_revoked",
        ])
        .unwrap();
        assert_eq!(removed.totp, TotpStatus::None);
        assert_eq!(removed.totp_enrolled_at, None);
        assert_eq!(removed.recovery_codes_left, 0);
        assert!(removed.passkeys.is_empty());
        assert_eq!(fold(&["mfa.passkey_registered", "mfa.reset"]), None);
        assert_eq!(fold(&["mfa.passkey_registered", "user.erased"]), None);
        let pending = fold(&["mfa.totp_enrollment_started"]).unwrap();
        assert_eq!(pending.totp, TotpStatus::Pending);
        // A TOTP code used is no change to this row, and other users' events are no key.
        let env = envelope(streams::mfa(TENANT, USER), 1, 1, 1);
        assert_eq!(user_key(&env, &sample("mfa.totp_used")), None);
        let env = envelope(streams::user(TENANT, USER), 1, 1, 1);
        assert_eq!(user_key(&env, &sample("user.disabled")), None);
    }
}
