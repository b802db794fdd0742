//! API key commands: issuing a key on an open tenant and revoking it.
//!
//! Only the keyed hash of a key's plaintext is stored; the plaintext is returned once.

use std::fmt;

use tessera_domain::DomainError;
use tessera_domain::api_key::{ApiKeyCommand, ApiKeyState, NewApiKey};
use tessera_event_schemas::{EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::engine::{Address, Kind};
use super::{CommandService, Outcome};
use crate::CommandError;
use tessera_crypto as crypto;

impl Kind for ApiKeyState {
    const KIND: &'static str = "api_key";
}

impl Address<ApiKeyState> {
    pub(super) fn api_key(tenant_id: Uuid, key_id: Uuid) -> Self {
        Self::new(streams::api_key(tenant_id, key_id), key_id)
    }
}

/// Input of [`CommandService::issue_api_key`].
#[derive(Clone)]
pub struct IssueApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub product: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
    /// None: a new UUIDv7.
    pub key_id: Option<Uuid>,
    /// None: a new random key. Some: an operator-chosen key (`TESSERA_BOOTSTRAP_ADMIN_KEY`).
    pub plaintext: Option<String>,
}

impl fmt::Debug for IssueApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssueApiKey")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("product", &self.product)
            .field("expires_at", &self.expires_at)
            .field("created_by", &self.created_by)
            .field("key_id", &self.key_id)
            .field("plaintext", &self.plaintext.as_ref().map(|_| ".."))
            .finish()
    }
}

/// An issued API key. The plaintext is returned once and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedApiKey {
    pub key_id: Uuid,
    pub plaintext: String,
    pub prefix: String,
    pub position: u64,
}

impl fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("key_id", &self.key_id)
            .field("prefix", &self.prefix)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl CommandService {
    /// Issues an API key on an existing, non-archived tenant. Only the keyed hash of the
    /// plaintext is stored; the plaintext is in the result, once.
    pub async fn issue_api_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        input: IssueApiKey,
    ) -> Result<IssuedApiKey, CommandError> {
        let (new, plaintext) = self.prepare_api_key(input, self.clock.now())?;
        let address = Address::api_key(tenant_id, new.key_id);
        let ((), position) = self
            .execute_in_open_tenant(&meta, tenant_id, "issue an api key", &address, |_, _| {
                Ok((ApiKeyCommand::Issue(Box::new(new.clone())), ()))
            })
            .await?;
        Ok(IssuedApiKey {
            key_id: new.key_id,
            prefix: new.prefix,
            plaintext,
            position,
        })
    }

    /// Revokes an API key; it stops authenticating at once.
    pub async fn revoke_api_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        key_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let ((), position) = self
            .execute::<ApiKeyState, ()>(
                &meta,
                tenant_id,
                &Address::api_key(tenant_id, key_id),
                |_| Ok((ApiKeyCommand::Revoke { reason: None }, ())),
            )
            .await?;
        Ok(Outcome { position })
    }

    /// Chooses the key id and plaintext and hashes the plaintext.
    pub(super) fn prepare_api_key(
        &self,
        input: IssueApiKey,
        now: Timestamp,
    ) -> Result<(NewApiKey, String), CommandError> {
        let plaintext = match input.plaintext {
            Some(plaintext) => {
                check_chosen_key(&plaintext)?;
                plaintext
            }
            None => crypto::generate_api_key()?,
        };
        let new = NewApiKey {
            key_id: input.key_id.unwrap_or_else(|| self.ids.new_id()),
            name: input.name,
            prefix: crypto::api_key_prefix(&plaintext),
            secret_hash: self.crypto.secret_hash(&plaintext),
            scopes: input.scopes,
            product: input.product,
            expires_at: input.expires_at,
            created_by: input.created_by,
            now,
        };
        Ok((new, plaintext))
    }
}

/// An operator-chosen API key must be as hard to guess as a generated one is likely to be:
/// at least 32 printable ASCII characters without spaces (OWASP ASVS 2.9.2 asks for at least
/// 128 bits of entropy in secrets; 32 random base64 characters carry 192).
fn check_chosen_key(plaintext: &str) -> Result<(), CommandError> {
    let ok =
        (32..=256).contains(&plaintext.len()) && plaintext.bytes().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(CommandError::Rejected(DomainError::invalid(
            "plaintext",
            "a chosen API key must be 32 to 256 printable ASCII characters without spaces",
        )))
    }
}
