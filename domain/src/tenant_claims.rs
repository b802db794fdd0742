//! The tenant claims a token may carry (issue 21) and a client's choice among them.
//!
//! The claims are seed 003's `Claims`: `tenant_id`, `tenant_slug`, `plan`, `products`,
//! `tenant_status`, and for people's tokens `org_roles`. A client carries all of them unless
//! it chose otherwise (`oauth_client.token_claims_set`): none, or a subset. Pure.

use tessera_event_schemas::events::TenantClaimsChoice;

use crate::DomainError;

/// Every tenant claim name, in the order tokens list them.
pub const NAMES: [&str; 6] = [
    "tenant_id",
    "tenant_slug",
    "plan",
    "products",
    "tenant_status",
    "org_roles",
];

/// Checks a client's choice: `only` names known claims, at least one, each once.
pub fn check(choice: &TenantClaimsChoice) -> Result<TenantClaimsChoice, DomainError> {
    match choice {
        TenantClaimsChoice::All | TenantClaimsChoice::Off => Ok(choice.clone()),
        TenantClaimsChoice::Only(names) => {
            if names.is_empty() {
                return Err(DomainError::invalid(
                    "tenant_claims",
                    "name at least one claim, or turn them off",
                ));
            }
            if let Some(unknown) = names.iter().find(|name| !NAMES.contains(&name.as_str())) {
                return Err(DomainError::invalid(
                    "tenant_claims",
                    format!("unknown claim {unknown}; known: {}", NAMES.join(", ")),
                ));
            }
            // Kept in `NAMES`' order, each once, so that equal choices are equal values.
            let ordered = NAMES
                .iter()
                .filter(|known| names.iter().any(|name| name == *known))
                .map(|name| (*name).to_owned())
                .collect();
            Ok(TenantClaimsChoice::Only(ordered))
        }
    }
}

/// Bit flags of the claims a choice keeps, in `NAMES`' order (bit 0: `tenant_id`).
pub fn mask(choice: &TenantClaimsChoice) -> u8 {
    match choice {
        TenantClaimsChoice::All => 0b11_1111,
        TenantClaimsChoice::Off => 0,
        TenantClaimsChoice::Only(names) => NAMES
            .iter()
            .enumerate()
            .filter(|(_, known)| names.iter().any(|name| name == *known))
            .fold(0, |mask, (bit, _)| mask | (1 << bit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_or_empty_subset_is_refused_and_a_known_one_is_put_in_order() {
        assert!(check(&TenantClaimsChoice::Only(vec![])).is_err());
        assert!(check(&TenantClaimsChoice::Only(vec!["email".into()])).is_err());
        let ordered = check(&TenantClaimsChoice::Only(vec![
            "products".into(),
            "tenant_id".into(),
            "products".into(),
        ]))
        .unwrap();
        assert_eq!(
            ordered,
            TenantClaimsChoice::Only(vec!["tenant_id".into(), "products".into()])
        );
        assert_eq!(mask(&ordered), 0b1001);
    }
}
