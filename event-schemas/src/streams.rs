//! Stream id conventions. The owning tenant's id leads every stream id.
//!
//! Stream ids are plain strings in the log; these helpers are the only place that spells them,
//! so that the tenant is never left out and the shapes stay consistent.

use uuid::Uuid;

/// The system tenant (slug `system`), created on first start. Only it manages other tenants.
pub const SYSTEM_TENANT_ID: Uuid = Uuid::from_u128(1);

/// `{tenant}/tenant`: the tenant aggregate's own stream.
pub fn tenant(tenant_id: Uuid) -> String {
    format!("{tenant_id}/tenant")
}

/// `{tenant}/api-key/{key}`: one API key.
pub fn api_key(tenant_id: Uuid, key_id: Uuid) -> String {
    format!("{tenant_id}/api-key/{key_id}")
}

/// `{tenant}/oauth-client/{client_id}`: one OAuth client's registration and lifecycle.
pub fn oauth_client(tenant_id: Uuid, client_id: &str) -> String {
    format!("{tenant_id}/oauth-client/{client_id}")
}

/// `{tenant}/tokens/{client_id}`: every access token issued to (and revoked for) one client,
/// appended with expected version "any" so that concurrent issuance never conflicts.
pub fn client_tokens(tenant_id: Uuid, client_id: &str) -> String {
    format!("{tenant_id}/tokens/{client_id}")
}

/// `{tenant}/audit`: audit entries products recorded for the tenant (`audit.recorded`),
/// appended with expected version "any": entries are facts, never decisions.
pub fn audit(tenant_id: Uuid) -> String {
    format!("{tenant_id}/audit")
}

/// `{system}/reservation/{kind}/{value}`: a platform-wide unique name (a slug, a domain).
/// Appending its first event with expected version "no stream" is what makes the name unique.
pub fn reservation(kind: &str, value: &str) -> String {
    format!("{SYSTEM_TENANT_ID}/reservation/{kind}/{value}")
}

/// The tenant id that leads a stream id, if it has one.
pub fn tenant_of(stream_id: &str) -> Option<Uuid> {
    stream_id
        .split_once('/')
        .and_then(|(tenant, _)| Uuid::parse_str(tenant).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_id_leads_with_its_tenant() {
        let tenant_id = Uuid::from_u128(42);
        assert_eq!(tenant_of(&tenant(tenant_id)), Some(tenant_id));
        assert_eq!(
            tenant_of(&api_key(tenant_id, Uuid::from_u128(7))),
            Some(tenant_id)
        );
        assert_eq!(
            tenant_of(&reservation("slug", "acme")),
            Some(SYSTEM_TENANT_ID)
        );
    }
}
