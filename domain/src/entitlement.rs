//! One tenant's entitlement to one product (issue 21): granted or changed, a self-served
//! trial, revoked, expired.
//!
//! One stream per tenant and product (`{tenant}/entitlement/{product}`), so what must happen
//! once is decided by its expected version: one trial per tenant and product ever, and one
//! `entitlement.expired` per expiry (the sweeper's append expects the version it read, so two
//! servers sweeping at once append it once). Requests for the product (`product.requested`)
//! are facts on the same stream and change no state. Pure: `now` comes in the commands.
//!
//! # Rules
//! - Granting needs the product in the catalog (the command reads it); `config` is a JSON
//!   object of at most 16 KiB; an `expires_at` must be in the future. Granting what is already
//!   in effect appends nothing.
//! - A trial needs a product that supports trials (else 400), a tenant whose plan is among
//!   the product's `plans_required` when it names any (else 409), no trial before for this
//!   tenant and product (else 409) and no entitlement in effect (else 409). It is enabled,
//!   with an empty configuration, for [`TRIAL_DAYS`] days.
//! - Revoking needs an entitlement in effect (else not found).
//! - Expiring appends `entitlement.expired` only for an entitlement in effect whose
//!   `expires_at` has passed; otherwise nothing.

use tessera_event_schemas::events::{
    EntitlementExpiredV1, EntitlementGrantedV1, EntitlementRevokedV1, EntitlementTrialStartedV1,
};
use tessera_event_schemas::{Event, Timestamp};

use crate::product::Product;
use crate::validate;
use crate::{Aggregate, DomainError};

/// How long a self-served trial lasts (seed 003: "Self-serve a 14-day trial").
pub const TRIAL_DAYS: i64 = 14;
/// The largest configuration accepted, as JSON text.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024;

/// An entitlement in effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entitlement {
    pub enabled: bool,
    pub config_json: String,
    pub expires_at: Option<Timestamp>,
    /// Whether it is the self-served trial.
    pub trial: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntitlementState {
    /// `None`: never granted, revoked or expired.
    pub current: Option<Entitlement>,
    /// Whether this tenant ever started a trial of this product.
    pub trial_used: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntitlementCommand {
    Grant {
        enabled: bool,
        config_json: String,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    },
    /// `product` is the catalog's entry (the command read it; absent is not found before
    /// this), `plan` the tenant's.
    StartTrial {
        product: Product,
        plan: String,
        now: Timestamp,
    },
    Revoke,
    Expire {
        now: Timestamp,
    },
}

/// When a trial started at `now` ends.
pub fn trial_end(now: Timestamp) -> Timestamp {
    Timestamp::from_micros(now.as_micros() + TRIAL_DAYS * 24 * 60 * 60 * 1_000_000)
}

impl Aggregate for EntitlementState {
    type Command = EntitlementCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::EntitlementGranted(e) => {
                self.current = Some(Entitlement {
                    enabled: e.enabled,
                    config_json: e.config_json.clone(),
                    expires_at: e.expires_at,
                    trial: false,
                });
            }
            Event::EntitlementTrialStarted(e) => {
                self.trial_used = true;
                self.current = Some(Entitlement {
                    enabled: true,
                    config_json: "{}".into(),
                    expires_at: Some(e.expires_at),
                    trial: true,
                });
            }
            Event::EntitlementRevoked(_) | Event::EntitlementExpired(_) => self.current = None,
            _ => {}
        }
    }

    fn decide(&self, command: EntitlementCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            EntitlementCommand::Grant {
                enabled,
                config_json,
                expires_at,
                now,
            } => {
                if config_json.len() > MAX_CONFIG_BYTES {
                    return Err(DomainError::invalid(
                        "config",
                        "must be at most 16 KiB of JSON",
                    ));
                }
                validate::json_object("config", &config_json)?;
                if expires_at.is_some_and(|at| at <= now) {
                    return Err(DomainError::invalid("expires_at", "must be in the future"));
                }
                let same = self.current.as_ref().is_some_and(|current| {
                    !current.trial
                        && current.enabled == enabled
                        && current.config_json == config_json
                        && current.expires_at == expires_at
                });
                if same {
                    return Ok(vec![]);
                }
                Ok(vec![Event::EntitlementGranted(EntitlementGrantedV1 {
                    enabled,
                    config_json,
                    expires_at,
                })])
            }
            EntitlementCommand::StartTrial { product, plan, now } => {
                if !product.supports_trial {
                    return Err(DomainError::invalid(
                        "product",
                        "this product offers no trial",
                    ));
                }
                if !product.allows_plan(&plan) {
                    return Err(DomainError::Conflict(format!(
                        "the tenant's plan {plan} is not among the product's plans_required ({})",
                        product.plans_required.join(", ")
                    )));
                }
                if self.trial_used {
                    return Err(DomainError::Conflict(
                        "this tenant already had a trial of this product".into(),
                    ));
                }
                if self.current.is_some() {
                    return Err(DomainError::Conflict(
                        "this tenant is already entitled to this product".into(),
                    ));
                }
                Ok(vec![Event::EntitlementTrialStarted(
                    EntitlementTrialStartedV1 {
                        expires_at: trial_end(now),
                    },
                )])
            }
            EntitlementCommand::Revoke => match self.current {
                Some(_) => Ok(vec![Event::EntitlementRevoked(EntitlementRevokedV1 {})]),
                None => Err(DomainError::NotFound),
            },
            EntitlementCommand::Expire { now } => match &self.current {
                Some(Entitlement {
                    expires_at: Some(at),
                    ..
                }) if *at <= now => Ok(vec![Event::EntitlementExpired(EntitlementExpiredV1 {
                    expires_at: *at,
                })]),
                _ => Ok(vec![]),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_micros(1_796_000_000_000_000);

    fn product(supports_trial: bool, plans: &[&str]) -> Product {
        Product {
            name: "Suite".into(),
            description: String::new(),
            plans_required: plans.iter().map(|p| (*p).to_owned()).collect(),
            demo_url: None,
            supports_trial,
        }
    }

    fn trial(state: &EntitlementState, p: Product, plan: &str) -> Result<Vec<Event>, DomainError> {
        state.decide(EntitlementCommand::StartTrial {
            product: p,
            plan: plan.into(),
            now: NOW,
        })
    }

    #[test]
    fn a_trial_lasts_fourteen_days_and_is_given_once_even_after_it_expired() {
        let mut state = EntitlementState::default();
        let events = trial(&state, product(true, &[]), "starter").unwrap();
        let [Event::EntitlementTrialStarted(started)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(
            started.expires_at.as_micros() - NOW.as_micros(),
            14 * 86_400 * 1_000_000
        );
        state.evolve(&events[0]);
        let later = trial_end(NOW);
        let expired = state
            .decide(EntitlementCommand::Expire { now: later })
            .unwrap();
        assert!(matches!(expired[..], [Event::EntitlementExpired(_)]));
        state.evolve(&expired[0]);
        assert!(matches!(
            trial(&state, product(true, &[]), "starter"),
            Err(DomainError::Conflict(_))
        ));
    }

    #[test]
    fn a_trial_needs_a_trial_product_and_an_allowed_plan() {
        let state = EntitlementState::default();
        assert!(matches!(
            trial(&state, product(false, &[]), "starter"),
            Err(DomainError::Validation { .. })
        ));
        assert!(matches!(
            trial(&state, product(true, &["enterprise"]), "starter"),
            Err(DomainError::Conflict(_))
        ));
        assert!(trial(&state, product(true, &["enterprise"]), "enterprise").is_ok());
    }

    #[test]
    fn expiry_is_appended_once_and_only_when_due() {
        let mut state = EntitlementState::default();
        let granted = state
            .decide(EntitlementCommand::Grant {
                enabled: true,
                config_json: "{}".into(),
                expires_at: Some(Timestamp::from_micros(NOW.as_micros() + 10)),
                now: NOW,
            })
            .unwrap();
        state.evolve(&granted[0]);
        assert!(
            state
                .decide(EntitlementCommand::Expire { now: NOW })
                .unwrap()
                .is_empty()
        );
        let due = Timestamp::from_micros(NOW.as_micros() + 10);
        let expired = state
            .decide(EntitlementCommand::Expire { now: due })
            .unwrap();
        state.evolve(&expired[0]);
        assert!(
            state
                .decide(EntitlementCommand::Expire { now: due })
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            state.decide(EntitlementCommand::Revoke),
            Err(DomainError::NotFound)
        );
    }

    #[test]
    fn a_grant_with_a_past_expiry_or_a_config_that_is_not_an_object_is_refused() {
        let state = EntitlementState::default();
        let grant = |config: &str, expires_at| {
            state.decide(EntitlementCommand::Grant {
                enabled: true,
                config_json: config.into(),
                expires_at,
                now: NOW,
            })
        };
        assert!(
            matches!(grant("[1]", None), Err(DomainError::Validation { field, .. }) if field == "config")
        );
        assert!(
            matches!(grant("{}", Some(NOW)), Err(DomainError::Validation { field, .. }) if field == "expires_at")
        );
    }
}
