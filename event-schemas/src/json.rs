//! The JSON form of a recorded event, for consumers outside Rust (Kafka, exports, the audit API).
//!
//! The envelope's fields appear at the top level, the payload under `data`, and the payload's
//! original postcard bytes are not included: `data` plus the envelope is what consumers read,
//! while exports that must be re-verified carry the raw payload separately.
//!
//! What leaves the server for a subscriber ([`public_data`], the Kafka topics) never carries a
//! secret or key material, not even sealed or hashed, nor personal data: payload fields hold
//! those in [`Secret`](crate::sensitive::Secret) and [`Personal`](crate::sensitive::Personal),
//! which every public form leaves out by type, and the published JSON Schemas
//! ([`Event::json_schemas`]) describe exactly that public form. Free-form JSON that callers
//! supply has no types; where it is shown, [`is_secret_field`] judges its keys by name.

use serde::Serialize;
use uuid::Uuid;

use crate::envelope::{Actor, RecordedEvent};
use crate::events::{DecodeError, Event};
use crate::primitives::{Hash32, Timestamp};
use crate::redact::{Without, no_field};
use crate::sensitive::SCHEMA_KEYWORD;

/// A recorded event as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct EventJson {
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub global_position: u64,
    pub tenant_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u16,
    pub recorded_at: Timestamp,
    pub actor: Actor,
    pub correlation_id: String,
    pub causation_id: Option<Uuid>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub prev_hash: Hash32,
    pub hash: Hash32,
    pub log_hash: Hash32,
    pub data: serde_json::Value,
}

impl EventJson {
    pub fn from_recorded(recorded: &RecordedEvent) -> Result<Self, DecodeError> {
        let event = recorded.decode()?;
        Ok(Self::new(recorded, &event))
    }

    pub fn new(recorded: &RecordedEvent, event: &Event) -> Self {
        let e = &recorded.envelope;
        Self {
            event_id: e.event_id,
            stream_id: e.stream_id.clone(),
            stream_version: e.stream_version,
            global_position: e.global_position,
            tenant_id: e.tenant_id,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            recorded_at: e.recorded_at,
            actor: e.actor.clone(),
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id,
            source_ip: e.source_ip.clone(),
            user_agent: e.user_agent.clone(),
            prev_hash: e.prev_hash,
            hash: e.hash,
            log_hash: e.log_hash,
            data: event.data_json(),
        }
    }
}

/// Whether a key of free-form JSON (the `metadata` of `audit.recorded`, supplied by callers)
/// names a secret. Payload fields are typed instead (see [`crate::sensitive`]); this rule is for
/// JSON without types, and so goes by name:
///
/// - any name containing `secret`, `sealed` or `private` (`client_secret`, `sealed_private_key`);
/// - any name whose letters and digits, lowercased, end in `password`, `passwd`, `passphrase`,
///   `hash`, `token`, `apikey`, `authorization`, `cookie`, `cookies`, `credential` or
///   `credentials`.
///
/// The second rule ignores case and word separators, so `apiKey`, `api-key`, `API_KEY` and
/// `x-api-key` are one name, as are `Authorization` and `proxy_authorization`, or
/// `refreshToken` and `refresh_token`. It looks only at the end of a name, so that ordinary
/// keys which merely mention a secret's kind stay visible: `token_type`, `password_policy`,
/// `hash_alg`, `api_key_id`, `passwords` (a count, say).
///
/// Without allocating: every audit row of such an entry asks this of every key.
pub fn is_secret_field(name: &str) -> bool {
    let name = name.as_bytes();
    let contains = |part: &str| {
        name.windows(part.len())
            .any(|window| window.eq_ignore_ascii_case(part.as_bytes()))
    };
    if contains("secret") || contains("sealed") || contains("private") {
        return true;
    }
    let tail = StyleFreeTail::of(name);
    SECRET_NAME_ENDINGS
        .iter()
        .any(|ending| tail.ends_with(ending.as_bytes()))
}

/// The endings (letters and digits only, lowercase) that make a field name secret; see
/// [`is_secret_field`].
const SECRET_NAME_ENDINGS: [&str; 11] = [
    "password",
    "passwd",
    "passphrase",
    "hash",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "cookies",
    "credential",
    "credentials",
];

/// The last letters and digits of a name, lowercased, without its separators: as many as the
/// longest of [`SECRET_NAME_ENDINGS`] needs.
struct StyleFreeTail {
    /// Right-aligned: the name's last letter or digit is `bytes[TAIL - 1]`.
    bytes: [u8; TAIL],
    len: usize,
}

/// Length of `authorization`, the longest secret ending.
const TAIL: usize = 13;

impl StyleFreeTail {
    fn of(name: &[u8]) -> Self {
        let mut bytes = [0; TAIL];
        let mut len = 0;
        for byte in name.iter().rev().filter(|b| b.is_ascii_alphanumeric()) {
            if len == TAIL {
                break;
            }
            len += 1;
            bytes[TAIL - len] = byte.to_ascii_lowercase();
        }
        Self { bytes, len }
    }

    fn ends_with(&self, ending: &[u8]) -> bool {
        ending.len() <= self.len && self.bytes[TAIL - ending.len()..] == *ending
    }
}

/// Removes every key [`is_secret_field`] names from free-form JSON, at any depth.
pub fn strip_secrets(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            map.retain(|name, _| !is_secret_field(name));
            map.values_mut().for_each(strip_secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_secrets),
        _ => {}
    }
}

/// An event's payload as subscribers see it: its JSON form without secret- or personal-typed
/// values.
pub fn public_data(event: &Event) -> serde_json::Value {
    serde_json::to_value(Without::new(&event.payload(), &no_field)).unwrap_or_default()
}

/// Removes the properties whose schema is marked sensitive (see [`crate::sensitive`]) from a
/// JSON Schema's object definitions, with their `required` entries, at any depth, so that the
/// schema describes [`public_data`]; a map whose values are marked admits no entry. A marked
/// schema anywhere else (the items of an array, one branch of an `anyOf`) stays, and with it
/// the keyword: the leak test fails on it.
pub(crate) fn strip_sensitive_properties(schema: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::Value;
    let marked = |schema: &Value| {
        schema
            .as_object()
            .is_some_and(|s| s.contains_key(SCHEMA_KEYWORD))
    };
    if schema.get("additionalProperties").is_some_and(marked) {
        schema.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    let mut removed = Vec::new();
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        properties.retain(|name, property| {
            let sensitive = marked(property);
            if sensitive {
                removed.push(name.clone());
            }
            !sensitive
        });
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|name| {
            !name
                .as_str()
                .is_some_and(|n| removed.iter().any(|r| r == n))
        });
    }
    fn nested(value: &mut Value) {
        match value {
            Value::Object(map) => strip_sensitive_properties(map),
            Value::Array(items) => items.iter_mut().for_each(nested),
            _ => {}
        }
    }
    schema.values_mut().for_each(nested);
}

/// The file name under `event-schemas/schemas/` for an event type's JSON Schema.
pub fn schema_file_name(event_type: &str, schema_version: u16) -> String {
    format!("{event_type}.v{schema_version}.json")
}

#[cfg(test)]
mod tests {
    use super::is_secret_field;

    #[test]
    fn secret_fields_are_named_by_their_names_in_any_case() {
        for secret in [
            "secret_hash",
            "client_secret",
            "SecretValue",
            "sealed_private_key",
            "SEALED",
            "private_jwk",
            "password",
            "Password",
            "hash",
            "token_hash",
            "Token_HASH",
        ] {
            assert!(is_secret_field(secret), "{secret}");
        }
        for public in [
            "",
            "name",
            "hashed",
            "hash_alg",
            "hashes",
            "_has",
            "passwords",
            "kid",
            "public_jwk",
            "prefix",
            "secre",
            "seale",
        ] {
            assert!(!is_secret_field(public), "{public}");
        }
    }

    #[test]
    fn secret_names_match_in_any_style() {
        for secret in [
            "api_key",
            "apiKey",
            "api-key",
            "API_KEY",
            "ApiKey",
            "x-api-key",
            "stripe.apiKey",
            "Authorization",
            "authorization",
            "Proxy-Authorization",
            "token",
            "access_token",
            "refreshToken",
            "ID-TOKEN",
            "tokenHash",
            "token-hash",
            "newPassword",
            "db_passwd",
            "passphrase",
            "Cookie",
            "set-cookie",
            "cookies",
            "credentials",
            "aws.credential",
            "api key",
        ] {
            assert!(is_secret_field(secret), "{secret}");
        }
        for public in [
            "token_type",
            "tokens_issued",
            "password_policy",
            "password_history_count",
            "api_key_id",
            "key",
            "key_id",
            "signing_key",
            "authorized",
            "cookie_consent",
            "credential_id",
            "expires_at",
            "config_json",
            "metadata_json",
        ] {
            assert!(!is_secret_field(public), "{public}");
        }
    }
}
