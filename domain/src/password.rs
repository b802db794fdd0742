//! The password rules: a tenant's password policy, checked on every set or change.
//!
//! NIST SP 800-63B section 5.1.1.2 asks a verifier to accept long passphrases of any printable
//! characters, to refuse passwords that are well known or easy to guess, and to avoid
//! composition rules and periodic expiry; a tenant may still turn composition rules, history and
//! a maximum age on (seed 001 does). Guessability is scored by an estimator the caller runs
//! (`zxcvbn` in `commands`, with the user's address, names and the tenant's slug as inputs it
//! penalises), because the estimator reads the clock and this crate does not; the threshold is
//! a rule, and lives here. Whether a password repeats a recent one is decided by the caller too
//! (comparing against Argon2 hashes is slow work with a secret), from
//! [`crate::user::User::recent_password_hashes`]. Pure: no I/O.

use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::PasswordPolicyV1;

use crate::DomainError;

/// The field every password rule names.
pub const FIELD: &str = "password";
/// The longest password accepted, in characters: long passphrases are welcome (NIST asks for at
/// least 64), unbounded input to a memory-hard hash is not.
pub const MAX_LENGTH: usize = 256;
/// The lowest guessability score (zxcvbn's 0 to 4) a password may have: 3 needs more than 10^8
/// guesses ("safely unguessable: moderate protection from an offline slow-hash scenario").
pub const MIN_STRENGTH: u8 = 3;
/// The most previous password hashes a user's state keeps: the largest history a policy may ask
/// for (`password_history_count` is at most 24).
pub const MAX_HISTORY: usize = 24;

/// Checks `password` against `policy`; `strength` is the estimator's score (0 to 4) of how hard
/// it is to guess. The error names the rule that failed.
pub fn check(policy: &PasswordPolicyV1, password: &str, strength: u8) -> Result<(), DomainError> {
    let length = password.chars().count();
    let min = usize::from(policy.min_length);
    if length < min {
        return Err(DomainError::invalid(
            FIELD,
            format!("must be at least {min} characters long"),
        ));
    }
    if length > MAX_LENGTH {
        return Err(DomainError::invalid(
            FIELD,
            format!("must be at most {MAX_LENGTH} characters long"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            FIELD,
            "must not contain control characters",
        ));
    }
    let classes = [
        (
            policy.require_uppercase,
            "an uppercase letter",
            char::is_uppercase as fn(char) -> bool,
        ),
        (
            policy.require_lowercase,
            "a lowercase letter",
            char::is_lowercase,
        ),
        (policy.require_numbers, "a digit", |c: char| c.is_numeric()),
        (
            policy.require_special_chars,
            "a special character",
            |c: char| !c.is_alphanumeric() && !c.is_whitespace(),
        ),
    ];
    for (required, what, class) in classes {
        if required && !password.chars().any(class) {
            return Err(DomainError::invalid(
                FIELD,
                format!("must contain {what} (password policy)"),
            ));
        }
    }
    if strength < MIN_STRENGTH {
        return Err(DomainError::invalid(
            FIELD,
            "is too easy to guess: a common password, a pattern, or a part of the user's name \
             or address",
        ));
    }
    Ok(())
}

/// The refusal of a password that repeats one of the last `count` (the policy's history).
pub fn reused(count: u16) -> DomainError {
    DomainError::invalid(
        FIELD,
        format!("must not be one of the last {count} passwords (password history)"),
    )
}

/// Whether a password set at `set_at` is past the policy's maximum age at `now` (never, when
/// the policy has none).
pub fn expired(policy: &PasswordPolicyV1, set_at: Timestamp, now: Timestamp) -> bool {
    policy.max_age_days > 0
        && now >= set_at.plus_seconds(i64::from(policy.max_age_days) * 24 * 60 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::default_settings;

    fn strict() -> PasswordPolicyV1 {
        PasswordPolicyV1 {
            min_length: 12,
            require_uppercase: true,
            require_lowercase: true,
            require_numbers: true,
            require_special_chars: true,
            password_history_count: 5,
            max_age_days: 90,
        }
    }

    fn message(result: Result<(), DomainError>) -> String {
        match result {
            Err(DomainError::Validation { field, message }) => {
                assert_eq!(field, FIELD);
                message
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_long_strong_password_passes_the_default_policy() {
        let policy = default_settings().password_policy;
        assert_eq!(check(&policy, "correct horse battery staple", 4), Ok(()));
        assert_eq!(check(&policy, &"ü".repeat(MAX_LENGTH), 4), Ok(()));
    }

    #[test]
    fn each_rule_names_itself() {
        let policy = strict();
        assert!(message(check(&policy, "Sh0rt!", 4)).contains("at least 12 characters"));
        assert!(message(check(&policy, &"a".repeat(MAX_LENGTH + 1), 4)).contains("at most 256"));
        assert!(message(check(&policy, "no uppercase 1!", 4)).contains("uppercase"));
        assert!(message(check(&policy, "NO LOWERCASE 1!", 4)).contains("lowercase"));
        assert!(message(check(&policy, "No digits at all!", 4)).contains("digit"));
        assert!(message(check(&policy, "No special chars 1", 4)).contains("special"));
        assert!(message(check(&policy, "Tab\there is 1 bad!", 4)).contains("control"));
        assert!(message(check(&policy, "Password1234!", 2)).contains("too easy to guess"));
        assert_eq!(check(&policy, "Str0ng & long enough", 3), Ok(()));
        assert!(message(Err(reused(5))).contains("last 5 passwords"));
    }

    #[test]
    fn a_password_expires_only_under_a_maximum_age() {
        let set_at = Timestamp::from_micros(1_800_000_000_000_000);
        let day = 24 * 60 * 60;
        assert!(!expired(&strict(), set_at, set_at.plus_seconds(89 * day)));
        assert!(expired(&strict(), set_at, set_at.plus_seconds(90 * day)));
        let never = default_settings().password_policy;
        assert!(!expired(&never, set_at, set_at.plus_seconds(9999 * day)));
    }
}
