//! Field validation shared by the aggregates: slugs, names, plans, hostnames, JSON objects,
//! tenant settings and API key scopes.
//!
//! Every check is hand-written (no regex dependency) and returns a [`DomainError::Validation`]
//! that names the offending field, so that the API can answer 400 with a precise pointer.
//! Pure: depends only on `event-schemas` types and `serde_json` for parsing.

use tessera_event_schemas::events::{LockoutPolicyV1, PasswordPolicyV1, TenantSettingsV1};

use crate::DomainError;

/// The slug of the system tenant; no other tenant may take it.
pub const SYSTEM_SLUG: &str = "system";

/// Most custom domains one tenant may have.
pub const MAX_DOMAINS: usize = 20;
/// Most email domains a tenant may restrict sign-up to.
pub const MAX_ALLOWED_EMAIL_DOMAINS: usize = 100;
/// Largest `config_json` accepted, in bytes: configuration, not a document store.
pub const MAX_CONFIG_JSON_BYTES: usize = 64 * 1024;
/// Most scopes on one API key.
pub const MAX_SCOPES: usize = 50;

/// `^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$`: 3 to 40 characters, lowercase letters, digits and
/// inner hyphens, so that a slug is safe in a URL path and a DNS label.
pub fn slug(field: &str, value: &str) -> Result<(), DomainError> {
    let bytes = value.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = (3..=40).contains(&bytes.len())
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|c| alnum(c) || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            "must be 3 to 40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit",
        ))
    }
}

/// A display name: 1 to `max` characters, not blank. Returns the trimmed value.
pub fn display_text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(field, "must not be blank"));
    }
    if trimmed.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// An identifier such as a plan or product name: 1 to 64 characters of `[a-z0-9_-]`.
pub fn identifier(field: &str, value: &str) -> Result<(), DomainError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            "must be 1 to 64 characters of a-z, 0-9, '_' and '-'",
        ))
    }
}

/// A lowercase DNS hostname (RFC 1123): at most 253 characters, at least two labels of 1 to 63
/// characters of `[a-z0-9-]` that neither start nor end with `-`, and a top-level label that
/// starts with a letter (so that an IPv4 address is not mistaken for a name).
pub fn hostname(field: &str, value: &str) -> Result<(), DomainError> {
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        (1..=63).contains(&bytes.len())
            && bytes
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-')
    };
    let labels: Vec<&str> = value.split('.').collect();
    let ok = value.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| label_ok(label))
        && labels
            .last()
            .and_then(|tld| tld.bytes().next())
            .is_some_and(|c| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("{value:?} is not a lowercase DNS hostname"),
        ))
    }
}

/// A list of hostnames: each valid, no duplicates, at most `max`.
pub fn hostnames(field: &str, values: &[String], max: usize) -> Result<(), DomainError> {
    if values.len() > max {
        return Err(DomainError::invalid(
            field,
            format!("at most {max} entries are allowed"),
        ));
    }
    for (index, value) in values.iter().enumerate() {
        hostname(&format!("{field}[{index}]"), value)?;
        if values[..index].contains(value) {
            return Err(DomainError::invalid(
                format!("{field}[{index}]"),
                format!("{value:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// JSON text whose top-level value is an object.
pub fn json_object(field: &str, value: &str) -> Result<(), DomainError> {
    if value.len() > MAX_CONFIG_JSON_BYTES {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_CONFIG_JSON_BYTES} bytes"),
        ));
    }
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(DomainError::invalid(field, "must be a JSON object")),
        Err(error) => Err(DomainError::invalid(
            field,
            format!("is not valid JSON: {error}"),
        )),
    }
}

/// An API key scope: 1 to 64 characters of `[a-z0-9:._-]`, e.g. `platform:admin`.
pub fn scope(field: &str, value: &str) -> Result<(), DomainError> {
    let ok = (1..=64).contains(&value.len())
        && value.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b':' | b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            "must be 1 to 64 characters of a-z, 0-9, ':', '.', '_' and '-'",
        ))
    }
}

fn in_range<T>(field: &str, value: T, range: std::ops::RangeInclusive<T>) -> Result<(), DomainError>
where
    T: PartialOrd + std::fmt::Display,
{
    if range.contains(&value) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!(
                "must be between {} and {}, got {value}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Tenant settings. Each bound is named in the error as `settings.<path>`.
pub fn settings(settings: &TenantSettingsV1) -> Result<(), DomainError> {
    // 5 minutes to 30 days: shorter sessions are unusable, longer ones outlive any sane policy.
    in_range(
        "settings.session_timeout_minutes",
        settings.session_timeout_minutes,
        5..=43_200,
    )?;
    in_range(
        "settings.max_sessions_per_user",
        settings.max_sessions_per_user,
        1..=1000,
    )?;
    password_policy(&settings.password_policy)?;
    lockout_policy(&settings.lockout_policy)?;
    let domains = &settings.allowed_email_domains;
    hostnames(
        "settings.allowed_email_domains",
        domains,
        MAX_ALLOWED_EMAIL_DOMAINS,
    )
}

fn password_policy(policy: &PasswordPolicyV1) -> Result<(), DomainError> {
    // NIST SP 800-63B section 5.1.1.1: memorized secrets are at least 8 characters; 128 is a
    // generous ceiling that still bounds hashing cost.
    in_range(
        "settings.password_policy.min_length",
        policy.min_length,
        8..=128,
    )?;
    in_range(
        "settings.password_policy.password_history_count",
        policy.password_history_count,
        0..=24,
    )?;
    in_range(
        "settings.password_policy.max_age_days",
        policy.max_age_days,
        0..=3650,
    )
}

fn lockout_policy(policy: &LockoutPolicyV1) -> Result<(), DomainError> {
    // NIST SP 800-63B section 5.2.2 caps consecutive failed attempts at 100.
    in_range(
        "settings.lockout_policy.max_attempts",
        policy.max_attempts,
        1..=100,
    )?;
    in_range(
        "settings.lockout_policy.lockout_duration_minutes",
        policy.lockout_duration_minutes,
        1..=43_200,
    )?;
    in_range(
        "settings.lockout_policy.reset_after_minutes",
        policy.reset_after_minutes,
        1..=43_200,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<(), DomainError>) -> Option<String> {
        match result {
            Err(DomainError::Validation { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn slugs_follow_the_documented_pattern() {
        for good in ["abc", "acme-corp", "a1-b2", "0ab", &"a".repeat(40)] {
            assert_eq!(slug("slug", good), Ok(()), "{good}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "Acme",
            "ac_me",
            "acme corp",
            "",
            &"a".repeat(41),
            "ünï",
        ] {
            assert!(slug("slug", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames_must_be_lowercase_dns_names_with_two_labels() {
        for good in [
            "acme.example",
            "login.acme.co.uk",
            "xn--bcher-kva.example",
            "a-b.c1.io",
        ] {
            assert_eq!(hostname("d", good), Ok(()), "{good}");
        }
        for bad in [
            "localhost",
            "Acme.example",
            "acme..example",
            "-acme.example",
            "acme-.example",
            "10.0.0.1",
            "acme.example.",
            "acme_corp.example",
            "",
        ] {
            assert!(hostname("d", bad).is_err(), "{bad}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert!(hostname("d", &long_label).is_err());
    }

    #[test]
    fn duplicate_hostnames_are_named_by_index() {
        let list = vec!["a.example".to_owned(), "a.example".to_owned()];
        assert_eq!(
            field_of(hostnames("domains", &list, 20)),
            Some("domains[1]".to_owned())
        );
    }

    #[test]
    fn config_json_must_be_an_object() {
        assert_eq!(json_object("c", r#"{"a":1}"#), Ok(()));
        assert!(json_object("c", "[1]").is_err());
        assert!(json_object("c", "{").is_err());
        assert!(json_object("c", "null").is_err());
    }

    #[test]
    fn display_text_is_trimmed_and_bounded() {
        assert_eq!(display_text("name", "  Acme  ", 255), Ok("Acme".to_owned()));
        assert!(display_text("name", "   ", 255).is_err());
        assert!(display_text("name", &"x".repeat(256), 255).is_err());
        assert!(display_text("name", "a\u{0}b", 255).is_err());
    }

    #[test]
    fn scopes_allow_colons_dots_underscores_and_hyphens() {
        assert_eq!(scope("s", "platform:admin"), Ok(()));
        assert_eq!(scope("s", "users.read_all-x"), Ok(()));
        assert!(scope("s", "Platform:Admin").is_err());
        assert!(scope("s", "").is_err());
        assert!(scope("s", "a b").is_err());
    }
}
