//! A tenant's WebAuthn policy (`{tenant}/webauthn-policy`): whether passkeys can be registered
//! and used, and what the ceremonies ask of an authenticator.
//!
//! A policy of its own rather than a tenant setting: passkey ceremonies are its only readers,
//! and they load it from the log when they start, so neither the tenant aggregate nor the
//! tenant read model (and its schema) needs to change for it.
//!
//! # Rules
//! - A tenant that never wrote one has [`default_policy`]: passkeys enabled, no attestation,
//!   user verification and discoverable credentials required, so that a passkey sign-in needs
//!   no address and counts as multi-factor.
//! - A policy is replaced whole; writing the current one changes nothing.

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{
    AttestationPreference, Requirement, WebauthnPolicyChangedV1, WebauthnPolicyV1,
};

use crate::{Aggregate, DomainError};

/// The policy of a tenant that never set one.
pub fn default_policy() -> WebauthnPolicyV1 {
    WebauthnPolicyV1 {
        enabled: true,
        attestation_preference: AttestationPreference::None,
        user_verification: Requirement::Required,
        resident_key: Requirement::Required,
    }
}

/// The policy's stream. `Default` is a tenant that never set one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebauthnPolicyState {
    pub policy: Option<WebauthnPolicyV1>,
}

impl WebauthnPolicyState {
    /// The policy in force.
    pub fn current(&self) -> WebauthnPolicyV1 {
        self.policy.clone().unwrap_or_else(default_policy)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebauthnPolicyCommand {
    Set(WebauthnPolicyV1),
}

impl Aggregate for WebauthnPolicyState {
    type Command = WebauthnPolicyCommand;

    fn evolve(&mut self, event: &Event) {
        if let Event::WebauthnPolicyChanged(e) = event {
            self.policy = Some(e.policy.clone());
        }
    }

    fn decide(&self, command: WebauthnPolicyCommand) -> Result<Vec<Event>, DomainError> {
        let WebauthnPolicyCommand::Set(policy) = command;
        Ok(if policy == self.current() {
            Vec::new()
        } else {
            vec![Event::WebauthnPolicyChanged(WebauthnPolicyChangedV1 {
                policy,
            })]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    fn changed(policy: WebauthnPolicyV1) -> Event {
        Event::WebauthnPolicyChanged(WebauthnPolicyChangedV1 { policy })
    }

    #[test]
    fn a_tenant_without_a_policy_has_the_default_and_setting_it_records_nothing() {
        let state = given::<WebauthnPolicyState>([]);
        assert_eq!(state.state.current(), default_policy());
        assert!(state.state.current().enabled);
        assert_eq!(
            state.when(WebauthnPolicyCommand::Set(default_policy())),
            Ok(vec![])
        );
    }

    #[test]
    fn a_new_policy_replaces_the_old_one_whole() {
        let disabled = WebauthnPolicyV1 {
            enabled: false,
            ..default_policy()
        };
        let direct = WebauthnPolicyV1 {
            attestation_preference: AttestationPreference::Direct,
            resident_key: Requirement::Preferred,
            ..default_policy()
        };
        let state = given::<WebauthnPolicyState>([changed(disabled.clone())]);
        assert_eq!(state.state.current(), disabled);
        assert_eq!(
            state.when(WebauthnPolicyCommand::Set(direct.clone())),
            Ok(vec![changed(direct)])
        );
        assert_eq!(state.when(WebauthnPolicyCommand::Set(disabled)), Ok(vec![]));
    }
}
