//! One product of the catalog (issue 21): defined, replaced, removed.
//!
//! One stream per product key on the system tenant (`{system}/product/{key}`), so a key is
//! unique by its stream and "is this product in the catalog" is the stream's last event. Pure.
//!
//! # Rules
//! - The key is 1 to 64 characters of `[a-z0-9_-]`, not `request` or `trial-request` (checked
//!   by [`key`] before the stream is named). The name is 1 to 100 characters, the description at most 2,000, each required
//!   plan an identifier (at most 20 of them), the demo URL an absolute http(s) URL.
//! - Putting an entry defines it when it is absent (never defined, or removed) and replaces it
//!   otherwise; putting the same entry again appends nothing.
//! - Removing an absent product is not found.

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{ProductDefinedV1, ProductRemovedV1, ProductUpdatedV1};

use crate::validate;
use crate::{Aggregate, DomainError};

/// A catalog entry as recorded (seed 003's `CatalogEntry` less its key, which is the stream's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub name: String,
    pub description: String,
    pub plans_required: Vec<String>,
    pub demo_url: Option<String>,
    pub supports_trial: bool,
}

impl Product {
    /// Whether a tenant on `plan` may start a trial of it (the plan rule only).
    pub fn allows_plan(&self, plan: &str) -> bool {
        self.plans_required.is_empty() || self.plans_required.iter().any(|p| p == plan)
    }
}

/// The product's state: `None` when it was never defined or was removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductState {
    pub product: Option<Product>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductCommand {
    Put(Product),
    Remove,
}

/// Checks a product key before it names a stream. `request` and `trial-request` are refused:
/// `/v1/catalog/request` and `/v1/catalog/trial-request` are seed 003's paths, so such a
/// product could never be changed or removed.
pub fn key(value: &str) -> Result<(), DomainError> {
    validate::identifier("key", value)?;
    if matches!(value, "request" | "trial-request") {
        return Err(DomainError::invalid(
            "key",
            "request and trial-request are reserved",
        ));
    }
    Ok(())
}

fn check(product: &Product) -> Result<Product, DomainError> {
    let name = validate::display_text("name", &product.name, 100)?;
    if product.description.chars().count() > 2_000 {
        return Err(DomainError::invalid(
            "description",
            "must be at most 2000 characters",
        ));
    }
    if product.plans_required.len() > 20 {
        return Err(DomainError::invalid("plans_required", "at most 20 plans"));
    }
    for plan in &product.plans_required {
        validate::identifier("plans_required", plan)?;
    }
    let mut plans = product.plans_required.clone();
    plans.sort();
    plans.dedup();
    if let Some(demo) = &product.demo_url {
        let ok = demo.len() <= 2_048
            && url::Url::parse(demo)
                .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
        if !ok {
            return Err(DomainError::invalid(
                "demo_url",
                "must be an absolute http or https URL of at most 2048 characters",
            ));
        }
    }
    Ok(Product {
        name,
        description: product.description.trim().to_owned(),
        plans_required: plans,
        demo_url: product.demo_url.clone().filter(|url| !url.is_empty()),
        supports_trial: product.supports_trial,
    })
}

impl Aggregate for ProductState {
    type Command = ProductCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::ProductDefined(e) => {
                self.product = Some(Product {
                    name: e.name.clone(),
                    description: e.description.clone(),
                    plans_required: e.plans_required.clone(),
                    demo_url: e.demo_url.clone(),
                    supports_trial: e.supports_trial,
                });
            }
            Event::ProductUpdated(e) => {
                self.product = Some(Product {
                    name: e.name.clone(),
                    description: e.description.clone(),
                    plans_required: e.plans_required.clone(),
                    demo_url: e.demo_url.clone(),
                    supports_trial: e.supports_trial,
                });
            }
            Event::ProductRemoved(_) => self.product = None,
            _ => {}
        }
    }

    fn decide(&self, command: ProductCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            ProductCommand::Put(input) => {
                let p = check(&input)?;
                match &self.product {
                    Some(current) if *current == p => Ok(vec![]),
                    Some(_) => Ok(vec![Event::ProductUpdated(ProductUpdatedV1 {
                        name: p.name,
                        description: p.description,
                        plans_required: p.plans_required,
                        demo_url: p.demo_url,
                        supports_trial: p.supports_trial,
                    })]),
                    None => Ok(vec![Event::ProductDefined(ProductDefinedV1 {
                        name: p.name,
                        description: p.description,
                        plans_required: p.plans_required,
                        demo_url: p.demo_url,
                        supports_trial: p.supports_trial,
                    })]),
                }
            }
            ProductCommand::Remove => match self.product {
                Some(_) => Ok(vec![Event::ProductRemoved(ProductRemovedV1 {})]),
                None => Err(DomainError::NotFound),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Product {
        Product {
            name: "Compliance Suite".into(),
            description: "Reports".into(),
            plans_required: vec!["enterprise".into()],
            demo_url: Some("https://demo.example/c".into()),
            supports_trial: true,
        }
    }

    #[test]
    fn a_new_key_is_defined_then_replaced_and_the_same_entry_changes_nothing() {
        let mut state = ProductState::default();
        let events = state.decide(ProductCommand::Put(entry())).unwrap();
        assert!(matches!(events[..], [Event::ProductDefined(_)]));
        state.evolve(&events[0]);
        assert!(
            state
                .decide(ProductCommand::Put(entry()))
                .unwrap()
                .is_empty()
        );
        let changed = Product {
            supports_trial: false,
            ..entry()
        };
        let events = state.decide(ProductCommand::Put(changed)).unwrap();
        assert!(matches!(events[..], [Event::ProductUpdated(_)]));
    }

    #[test]
    fn removing_an_absent_product_is_not_found_and_a_removed_one_can_be_defined_again() {
        let mut state = ProductState::default();
        assert_eq!(
            state.decide(ProductCommand::Remove),
            Err(DomainError::NotFound)
        );
        state.evolve(&state.decide(ProductCommand::Put(entry())).unwrap()[0]);
        state.evolve(&state.decide(ProductCommand::Remove).unwrap()[0]);
        let events = state.decide(ProductCommand::Put(entry())).unwrap();
        assert!(matches!(events[..], [Event::ProductDefined(_)]));
    }

    #[test]
    fn a_key_is_an_identifier_other_than_seed_003s_catalog_paths() {
        assert!(key("compliance-suite").is_ok());
        assert!(key("request").is_err());
        assert!(key("trial-request").is_err());
        assert!(key("Not A Key").is_err());
    }

    #[test]
    fn a_bad_demo_url_or_plan_is_refused_naming_its_field() {
        let state = ProductState::default();
        let bad_url = Product {
            demo_url: Some("javascript:alert(1)".into()),
            ..entry()
        };
        assert!(matches!(
            state.decide(ProductCommand::Put(bad_url)),
            Err(DomainError::Validation { field, .. }) if field == "demo_url"
        ));
        let bad_plan = Product {
            plans_required: vec!["Not A Plan".into()],
            ..entry()
        };
        assert!(matches!(
            state.decide(ProductCommand::Put(bad_plan)),
            Err(DomainError::Validation { field, .. }) if field == "plans_required"
        ));
    }
}
