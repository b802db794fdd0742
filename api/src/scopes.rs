//! The catalogue of API key scopes: the scopes Tessera's API checks, and the namespace of the
//! scopes products define for their own keys. A new key carries nothing else, and only scopes
//! the key that creates it holds.
//!
//! Products learn a key's scopes from `POST /v1/api-keys/verify` and may act on them, so a
//! scope that Tessera does not know, or one its creator could not grant, would mislead them even
//! though it grants nothing inside Tessera.

use tessera_event_schemas::SYSTEM_TENANT_ID;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::ApiError;

/// Everything on the platform; only the system tenant's keys can hold it (the bootstrap admin
/// key does).
pub const PLATFORM_ADMIN: &str = "platform:admin";
/// Administers the key's own tenant: its clients, its API keys and its audit trail.
pub const TENANT_ADMIN: &str = "tenant:admin";
/// Appends audit entries for the key's own tenant (`POST /v1/audit`).
pub const AUDIT_WRITE: &str = "audit:write";

/// Reads the key's own tenant's vault secrets in clear: a connection's tokens, a provider key
/// (issue 20). Every use is an audited access.
pub const VAULT_READ: &str = "vault:read";

/// Every scope Tessera's API checks.
pub const TESSERA_SCOPES: [&str; 4] = [PLATFORM_ADMIN, TENANT_ADMIN, AUDIT_WRITE, VAULT_READ];

/// A product's own scopes are `product:{product}:{name}`, on keys issued for that product: the
/// namespace tells them apart from Tessera's, and the product name from another product's.
pub const PRODUCT_SCOPE_PREFIX: &str = "product:";

/// Whether `holder` holds `scope` and so may grant it: a platform admin holds every scope; a
/// tenant admin holds `tenant:admin`, `audit:write`, `vault:read` (for its services' keys) and
/// its products' scopes; any other key holds what it carries.
fn holds(holder: &Principal, scope: &str) -> bool {
    holder.is_platform_admin()
        || holder.has_scope(scope)
        || (holder.has_scope(TENANT_ADMIN)
            && (scope == AUDIT_WRITE
                || scope == VAULT_READ
                || scope.starts_with(PRODUCT_SCOPE_PREFIX)))
}

/// Checks the scopes of a new key of `tenant_id` (issued for `product`, if any) that `creator`
/// asks for: each must be in the catalogue (400 naming `scopes[i]`) and held by the creator
/// (403).
pub fn check_grant(
    creator: &Principal,
    tenant_id: Uuid,
    product: Option<&str>,
    scopes: &[String],
) -> Result<(), ApiError> {
    for (index, scope) in scopes.iter().enumerate() {
        let field = || format!("scopes[{index}]");
        if let Some(rest) = scope.strip_prefix(PRODUCT_SCOPE_PREFIX) {
            let named = rest.split_once(':').filter(|(_, name)| !name.is_empty());
            match (named, product) {
                (Some((named, _)), Some(product)) if named == product => {}
                (_, Some(product)) => {
                    return Err(ApiError::validation(
                        field(),
                        format!("a key for {product} carries product:{product}:<name> scopes"),
                    ));
                }
                (_, None) => {
                    return Err(ApiError::validation(
                        field(),
                        "product scopes need the key's product: set product",
                    ));
                }
            }
        } else if !TESSERA_SCOPES.contains(&scope.as_str()) {
            return Err(ApiError::validation(
                field(),
                format!(
                    "{scope:?} is not a scope Tessera knows: use {}, or product:<product>:<name> \
                     for the key's product's own",
                    TESSERA_SCOPES.join(", ")
                ),
            ));
        }
        if !holds(creator, scope) {
            return Err(ApiError::Forbidden(format!(
                "this key cannot grant {scope}: a key grants only scopes it holds"
            )));
        }
        if scope == PLATFORM_ADMIN && tenant_id != SYSTEM_TENANT_ID {
            return Err(ApiError::validation(
                field(),
                "only the system tenant's keys can hold platform:admin",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);

    fn key(tenant_id: Uuid, scopes: &[&str]) -> Principal {
        Principal {
            key_id: Uuid::from_u128(7),
            tenant_id,
            name: "creator".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            product: None,
        }
    }

    fn check(creator: &Principal, tenant: Uuid, product: Option<&str>, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        match check_grant(creator, tenant, product, &scopes) {
            Ok(()) => "ok".into(),
            Err(ApiError::Validation { field, .. }) => format!("400 {field}"),
            Err(ApiError::Forbidden(_)) => "403".into(),
            Err(other) => format!("{other:?}"),
        }
    }

    #[test]
    fn a_platform_admin_grants_any_known_scope_and_platform_admin_on_the_system_tenant_only() {
        let admin = key(SYSTEM_TENANT_ID, &[PLATFORM_ADMIN]);
        let all = [TENANT_ADMIN, AUDIT_WRITE, "product:crm:contacts.read"];
        assert_eq!(check(&admin, TENANT, Some("crm"), &all), "ok");
        assert_eq!(
            check(&admin, SYSTEM_TENANT_ID, None, &[PLATFORM_ADMIN]),
            "ok"
        );
        assert_eq!(
            check(&admin, TENANT, None, &[AUDIT_WRITE, PLATFORM_ADMIN]),
            "400 scopes[1]"
        );
        assert_eq!(check(&admin, TENANT, None, &[]), "ok");
    }

    #[test]
    fn unknown_scopes_and_other_products_scopes_are_refused_by_index() {
        let admin = key(SYSTEM_TENANT_ID, &[PLATFORM_ADMIN]);
        for scopes in [
            &[AUDIT_WRITE, "superuser"][..],
            &[AUDIT_WRITE, "tenant:root"],
            &[AUDIT_WRITE, "Platform:Admin"],
            &[AUDIT_WRITE, "product:billing:read"],
            &[AUDIT_WRITE, "product:crm"],
            &[AUDIT_WRITE, "product:crm:"],
        ] {
            assert_eq!(
                check(&admin, TENANT, Some("crm"), scopes),
                "400 scopes[1]",
                "{scopes:?}"
            );
        }
        assert_eq!(
            check(&admin, TENANT, None, &["product:crm:read"]),
            "400 scopes[0]"
        );
    }

    #[test]
    fn a_tenant_admin_grants_only_what_it_holds() {
        let tenant_admin = key(TENANT, &[TENANT_ADMIN]);
        let held = [TENANT_ADMIN, AUDIT_WRITE, "product:crm:read"];
        assert_eq!(check(&tenant_admin, TENANT, Some("crm"), &held), "ok");
        assert_eq!(check(&tenant_admin, TENANT, None, &[PLATFORM_ADMIN]), "403");
        // A tenant admin of the system tenant is no platform admin and cannot mint one.
        let system_tenant_admin = key(SYSTEM_TENANT_ID, &[TENANT_ADMIN]);
        assert_eq!(
            check(
                &system_tenant_admin,
                SYSTEM_TENANT_ID,
                None,
                &[PLATFORM_ADMIN]
            ),
            "403"
        );
        // A tenant admin hands `vault:read` to its own services' keys; a writer cannot.
        assert_eq!(check(&tenant_admin, TENANT, None, &[VAULT_READ]), "ok");
        let writer = key(TENANT, &[AUDIT_WRITE]);
        assert_eq!(check(&writer, TENANT, None, &[VAULT_READ]), "403");
        assert_eq!(check(&writer, TENANT, None, &[AUDIT_WRITE]), "ok");
        assert_eq!(check(&writer, TENANT, None, &[TENANT_ADMIN]), "403");
    }
}
