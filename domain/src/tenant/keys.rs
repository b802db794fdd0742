//! The tenant's signing key ring: validation of a key, adding one (at creation and later),
//! rotation per algorithm and retirement (the rules are in the parent module's doc).
//!
//! The ring holds at most one active key per algorithm. `active_kid` names the default key,
//! which signs access tokens; the other active keys sign what must use their algorithm (ID
//! tokens of a client that asked for RS256 or ES256).

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{
    SigningAlg, SigningKeyAddedV1, SigningKeyRetiredV1, SigningKeyRotatedV1, SigningKeyV1,
};

use super::{KeyStatus, Tenant, TenantKey};
use crate::DomainError;

/// A key's own rules: its kid is 1 to 64 characters of `[A-Za-z0-9._-]`, its sealed private
/// key is not empty.
pub(super) fn validate(field: &str, key: &SigningKeyV1) -> Result<(), DomainError> {
    let ok = (1..=64).contains(&key.kid.len())
        && key
            .kid
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !ok {
        return Err(DomainError::invalid(
            format!("{field}.kid"),
            "must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
        ));
    }
    if key.sealed_private_key.is_empty() {
        return Err(DomainError::invalid(
            format!("{field}.sealed_private_key"),
            "must not be empty",
        ));
    }
    Ok(())
}

/// The `tenant.signing_key_added` events of a creation: each added key valid, RS256, of an
/// algorithm no other key of the new ring has, with a kid of its own.
pub(super) fn added_at_creation(
    default: &SigningKeyV1,
    added: &[SigningKeyV1],
) -> Result<Vec<Event>, DomainError> {
    let mut events = Vec::with_capacity(added.len());
    for (index, key) in added.iter().enumerate() {
        let field = format!("added_keys[{index}]");
        validate(&field, key)?;
        if key.alg != SigningAlg::RS256 {
            return Err(DomainError::invalid(
                format!("{field}.alg"),
                "only an RS256 key is added beside the default key",
            ));
        }
        let earlier = std::iter::once(default).chain(&added[..index]);
        for other in earlier {
            if other.alg == key.alg {
                return Err(DomainError::invalid(
                    format!("{field}.alg"),
                    format!("the ring already has an {} key", key.alg.as_str()),
                ));
            }
            if other.kid == key.kid {
                return Err(DomainError::invalid(
                    format!("{field}.kid"),
                    format!("{} is taken", key.kid),
                ));
            }
        }
        events.push(Event::SigningKeyAdded(SigningKeyAddedV1 {
            key: key.clone(),
        }));
    }
    Ok(events)
}

/// The replaced key steps down to published and the new key becomes active. Whether the
/// rotation moved the default is read from the event alone, so that a fold without the ring
/// (the tenant's read model keeps only the default's kid) agrees: only an RS256 key is ever
/// active beside the default, so a rotation to RS256 that names another key than the default
/// replaced that RS256 key and leaves the default alone; any other rotation makes the new key
/// the default, and the old default steps down, except an RS256 default replaced by a key of
/// another algorithm: it stays active as the tenant's RS256 key ([`keeps_rs256`]). A log
/// written before the ring held several active keys folds as it always did: its rotations all
/// moved the default.
pub(super) fn evolve_rotated(tenant: &mut Tenant, rotated: &SigningKeyRotatedV1) {
    let moves_default = moves_default(&tenant.active_kid, rotated);
    let replaced_kid = if moves_default {
        tenant.active_kid.clone()
    } else {
        rotated.previous_kid.clone()
    };
    if let Some(replaced) = tenant.keys.iter_mut().find(|key| {
        key.kid == replaced_kid
            && key.status == KeyStatus::Active
            && !keeps_rs256(key.alg, rotated.key.alg)
    }) {
        replaced.status = KeyStatus::Published;
    }
    if moves_default {
        tenant.active_kid.clone_from(&rotated.key.kid);
    }
    tenant
        .keys
        .push(TenantKey::new(&rotated.key, KeyStatus::Active));
}

/// Whether `rotated` made its key the default key, given the default's kid before it.
fn moves_default(active_kid: &str, rotated: &SigningKeyRotatedV1) -> bool {
    !(rotated.key.alg == SigningAlg::RS256 && rotated.previous_kid != active_kid)
}

/// Whether a replaced key of `replaced` stays active when a key of `new` replaces it: an RS256
/// key is the tenant's ID token key and steps down only for another RS256 key. The read model
/// of keys applies the same rule.
pub fn keeps_rs256(replaced: SigningAlg, new: SigningAlg) -> bool {
    replaced == SigningAlg::RS256 && new != SigningAlg::RS256
}

fn ensure_new_kid(tenant: &Tenant, key: &SigningKeyV1) -> Result<(), DomainError> {
    if tenant.key(&key.kid).is_some() {
        return Err(DomainError::Conflict(format!(
            "signing key {} already exists",
            key.kid
        )));
    }
    Ok(())
}

/// Replaces the active key of `key`'s algorithm, or the default key if that algorithm has
/// none.
pub(super) fn rotate(tenant: &Tenant, key: SigningKeyV1) -> Result<Vec<Event>, DomainError> {
    tenant.ensure_not_archived("rotate a key")?;
    validate("key", &key)?;
    ensure_new_kid(tenant, &key)?;
    let previous_kid = tenant
        .active_key_for(key.alg)
        .map_or_else(|| tenant.active_kid.clone(), |active| active.kid.clone());
    Ok(vec![Event::SigningKeyRotated(SigningKeyRotatedV1 {
        key,
        previous_kid,
    })])
}

/// Adds an active key of an algorithm the ring has no active key for. Only RS256 keys are
/// added beside the default (the ID token key): the fold reads a rotation's meaning from that.
pub(super) fn add(tenant: &Tenant, key: SigningKeyV1) -> Result<Vec<Event>, DomainError> {
    tenant.ensure_not_archived("add a key")?;
    validate("key", &key)?;
    if key.alg != SigningAlg::RS256 {
        return Err(DomainError::invalid(
            "key.alg",
            "only an RS256 key is added beside the default key; rotate to change the default",
        ));
    }
    ensure_new_kid(tenant, &key)?;
    if let Some(active) = tenant.active_key_for(key.alg) {
        return Err(DomainError::Conflict(format!(
            "the {} key {} is active; rotate it instead",
            key.alg.as_str(),
            active.kid
        )));
    }
    Ok(vec![Event::SigningKeyAdded(SigningKeyAddedV1 { key })])
}

/// [`add`], or nothing when the ring already has an active key of that algorithm.
pub(super) fn ensure(tenant: &Tenant, key: SigningKeyV1) -> Result<Vec<Event>, DomainError> {
    if tenant.active_key_for(key.alg).is_some() {
        return Ok(Vec::new());
    }
    add(tenant, key)
}

pub(super) fn retire(tenant: &Tenant, kid: String) -> Result<Vec<Event>, DomainError> {
    tenant.ensure_not_archived("retire a key")?;
    let key = tenant.key(&kid).ok_or(DomainError::NotFound)?;
    match key.status {
        KeyStatus::Active => Err(DomainError::Conflict(format!(
            "signing key {kid} is active; rotate first"
        ))),
        KeyStatus::Retired => Err(DomainError::Conflict(format!(
            "signing key {kid} is already retired"
        ))),
        KeyStatus::Published => Ok(vec![Event::SigningKeyRetired(SigningKeyRetiredV1 { kid })]),
    }
}

#[cfg(test)]
mod tests;
