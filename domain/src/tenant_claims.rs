//! The tenant claims a token may carry (issue 21) and a client's choice among them.
//!
//! The claims are seed 003's `Claims`: `tenant_id`, `tenant_slug`, `plan`, `products`,
//! `tenant_status`, and for people's tokens `org_roles`. A client carries all of them unless
//! it chose otherwise (`oauth_client.token_claims_set`): none, or a subset. Pure.

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{OAuthClientTokenClaimsSetV1, TenantClaimsChoice};

use crate::{Aggregate, DomainError};

/// A client's stream as far as its claims choice goes: whether it is registered (and not
/// deactivated) and what it chose. The client's other rules live in [`crate::oauth_client`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientClaimsState {
    pub registered: bool,
    pub deactivated: bool,
    pub choice: TenantClaimsChoice,
}

impl Default for ClientClaimsState {
    fn default() -> Self {
        Self {
            registered: false,
            deactivated: false,
            choice: TenantClaimsChoice::All,
        }
    }
}

impl Aggregate for ClientClaimsState {
    /// The new choice.
    type Command = TenantClaimsChoice;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::OAuthClientRegistered(_) => self.registered = true,
            Event::OAuthClientDeactivated(_) => self.deactivated = true,
            Event::OAuthClientTokenClaimsSet(set) => self.choice = set.tenant_claims.clone(),
            _ => {}
        }
    }

    /// Sets the choice of a registered client; the same choice again appends nothing.
    fn decide(&self, choice: TenantClaimsChoice) -> Result<Vec<Event>, DomainError> {
        if !self.registered {
            return Err(DomainError::NotFound);
        }
        if self.deactivated {
            return Err(DomainError::IllegalTransition {
                from: "deactivated".into(),
                action: "choose the tenant claims of a client",
            });
        }
        let choice = check(&choice)?;
        if choice == self.choice {
            return Ok(vec![]);
        }
        Ok(vec![Event::OAuthClientTokenClaimsSet(
            OAuthClientTokenClaimsSetV1 {
                tenant_claims: choice,
            },
        )])
    }
}

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
