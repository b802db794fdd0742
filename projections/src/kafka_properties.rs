//! librdkafka properties that operators pass through to the Kafka audit publisher: TLS, SASL
//! (PLAIN, SCRAM, OAUTHBEARER), `client.id`, compression and anything else librdkafka knows.
//!
//! This module owns parsing (`TESSERA_KAFKA_PROPERTIES`'s `key=value,key=value` form and
//! `TESSERA_KAFKA_PROPERTIES_FILE`'s Java properties form), the names Tessera keeps for itself,
//! which values are secrets, and validation against librdkafka before anything connects. It
//! reads no file and no environment: the caller hands it text.
//!
//! Secrets (`sasl.password`, `ssl.key.password` and the like, see [`is_secret`]) never appear
//! in `Debug` output or in an error message.

use std::fmt;

use rdkafka::config::ClientConfig;

/// Properties Tessera sets itself, because the publisher's guarantees (no gap, no reordering
/// within a tenant, a bounded wait before starting over) depend on them, or because a
/// dedicated setting exists. Each comes with what to use instead.
const RESERVED: &[(&str, &str)] = &[
    ("bootstrap.servers", "set TESSERA_KAFKA_BROKERS instead"),
    ("metadata.broker.list", "set TESSERA_KAFKA_BROKERS instead"),
    (
        "message.timeout.ms",
        "set TESSERA_KAFKA_DELIVERY_TIMEOUT_MS instead",
    ),
    (
        "delivery.timeout.ms",
        "set TESSERA_KAFKA_DELIVERY_TIMEOUT_MS instead",
    ),
    (
        "enable.idempotence",
        "the publisher needs an idempotent producer to send without duplicates or reordering",
    ),
    (
        "acks",
        "the publisher checkpoints only what all in-sync replicas acknowledged",
    ),
    (
        "request.required.acks",
        "the publisher checkpoints only what all in-sync replicas acknowledged",
    ),
    (
        "partitioner",
        "the publisher keys by tenant with the Java client's partitioner (murmur2_random)",
    ),
];

/// Java client properties that librdkafka does not know, with the librdkafka way to say the
/// same: operators often start from a `client.properties` file made for Java tools.
const JAVA_ONLY: &[(&str, &str)] = &[
    (
        "sasl.jaas.config",
        "librdkafka takes sasl.username and sasl.password instead",
    ),
    (
        "ssl.truststore.location",
        "librdkafka takes a PEM file in ssl.ca.location instead",
    ),
    (
        "ssl.keystore.type",
        "librdkafka takes ssl.keystore.location (PKCS#12) or ssl.certificate.location and ssl.key.location (PEM)",
    ),
    (
        "ssl.truststore.type",
        "librdkafka takes a PEM file in ssl.ca.location instead",
    ),
];

/// Whether the value of property `name` is a secret, never to be printed. librdkafka's own
/// secret properties are `sasl.password`, `ssl.key.password`, `ssl.keystore.password`,
/// `ssl.key.pem` (a private key inline), `sasl.oauthbearer.client.secret` and
/// `sasl.oauthbearer.config` (which may carry a token); any name with `password` or `secret`
/// in it is treated the same, so that a future one is covered.
pub fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("password")
        || name.contains("secret")
        || name == "ssl.key.pem"
        || name == "sasl.oauthbearer.config"
}

/// An ordered list of librdkafka properties; a later value of a name replaces an earlier one.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaProperties(Vec<(String, String)>);

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, value)| {
                let shown = if is_secret(name) {
                    "[redacted]"
                } else {
                    value.as_str()
                };
                (name, shown)
            }))
            .finish()
    }
}

/// Why properties were refused; the message names the property and where it came from, and
/// never carries a secret's value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct PropertiesError {
    /// Where the properties came from (`TESSERA_KAFKA_PROPERTIES`, a file's path and line).
    pub source_name: String,
    pub message: String,
}

impl KafkaProperties {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one property.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// Every property of `other`, replacing those of the same name here.
    pub fn extend(&mut self, other: KafkaProperties) {
        for (name, value) in other.0 {
            self.set(name, value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Parses the environment variable form: `key=value` entries separated by commas or
    /// newlines; `\,` is a comma inside a value and `\\` a backslash. Blank entries are
    /// skipped. `source_name` names the variable in errors.
    pub fn parse_list(text: &str, source_name: &str) -> Result<Self, PropertiesError> {
        let mut properties = Self::new();
        let mut entry = String::new();
        let mut entries = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(next @ (',' | '\\')) => entry.push(next),
                    Some(other) => {
                        entry.push('\\');
                        entry.push(other);
                    }
                    None => entry.push('\\'),
                },
                ',' | '\n' => entries.push(std::mem::take(&mut entry)),
                _ => entry.push(c),
            }
        }
        entries.push(entry);
        for (index, entry) in entries.iter().enumerate() {
            if entry.trim().is_empty() {
                continue;
            }
            let Some((name, value)) = entry.split_once('=') else {
                return Err(PropertiesError {
                    source_name: source_name.to_owned(),
                    message: format!(
                        "entry {} is not key=value (entries are separated by commas; write \\, for a comma inside a value)",
                        index + 1
                    ),
                });
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(PropertiesError {
                    source_name: source_name.to_owned(),
                    message: format!("entry {} has no property name", index + 1),
                });
            }
            properties.set(name, value.trim());
        }
        Ok(properties)
    }

    /// Parses a Java properties file (the format of Kafka's `client.properties`): `key=value`
    /// or `key: value` or `key value`, `#` and `!` comments, a trailing backslash continues a
    /// line, and `\t`, `\n`, `\r`, `\f`, `\uXXXX` and `\` before any other character are
    /// escapes. `source_name` (the file's path) names the file in errors.
    pub fn parse_java(text: &str, source_name: &str) -> Result<Self, PropertiesError> {
        let mut properties = Self::new();
        let mut lines = text.lines().enumerate();
        while let Some((index, line)) = lines.next() {
            let first_line = index + 1;
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
                continue;
            }
            let mut logical = String::new();
            let mut current = trimmed.to_owned();
            while ends_with_continuation(&current) {
                current.pop();
                logical.push_str(&current);
                current = match lines.next() {
                    Some((_, next)) => next.trim_start().to_owned(),
                    None => String::new(),
                };
            }
            logical.push_str(&current);
            let error = |message: String| PropertiesError {
                source_name: format!("{source_name}, line {first_line}"),
                message,
            };
            let (name, value) = split_java_entry(&logical);
            let name = unescape_java(&name).map_err(error)?;
            let value = unescape_java(&value).map_err(error)?;
            if name.is_empty() {
                return Err(error("the line has no property name".to_owned()));
            }
            properties.set(name, value);
        }
        Ok(properties)
    }

    /// Checks every property against librdkafka (its names and allowed values) without
    /// connecting, and refuses the names Tessera keeps for itself. `source_name` names where
    /// the properties came from.
    pub fn validate(&self, source_name: &str) -> Result<(), PropertiesError> {
        for (name, value) in self.iter() {
            let refuse = |message: String| PropertiesError {
                source_name: source_name.to_owned(),
                message,
            };
            if let Some((_, instead)) = RESERVED.iter().find(|(n, _)| *n == name) {
                return Err(refuse(format!(
                    "property {name:?} is set by Tessera: {instead}"
                )));
            }
            if let Some((_, instead)) = JAVA_ONLY.iter().find(|(n, _)| *n == name) {
                return Err(refuse(format!(
                    "property {name:?} is a Java client property that librdkafka does not know: {instead}"
                )));
            }
            let mut one = ClientConfig::new();
            one.set(name, value);
            if let Err(error) = one.create_native_config() {
                let mut message = error.to_string();
                if is_secret(name) && !value.is_empty() {
                    message = message.replace(value, "[redacted]");
                }
                return Err(refuse(format!("property {name:?} was refused: {message}")));
            }
        }
        Ok(())
    }

    /// Sets every property on `config`, after (and so over) what the caller set before.
    pub fn apply(&self, config: &mut ClientConfig) {
        for (name, value) in self.iter() {
            config.set(name, value);
        }
    }
}

/// Whether a Java properties line ends in an odd number of backslashes (a continuation).
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace, as Java does: the
/// separator may be surrounded by whitespace, and one `=` or `:` after whitespace belongs to it.
fn split_java_entry(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut name_end = chars.len();
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' | ' ' | '\t' | '\u{c}' => {
                name_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let name: String = chars[..name_end.min(chars.len())].iter().collect();
    let mut j = name_end;
    while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
        j += 1;
    }
    if j < chars.len() && matches!(chars[j], '=' | ':') {
        j += 1;
        while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
            j += 1;
        }
    }
    let value: String = chars[j.min(chars.len())..].iter().collect();
    (name, value)
}

fn unescape_java(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("\\u{hex} is not a \\uXXXX escape"))?;
                out.push(code);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(properties: &KafkaProperties) -> Vec<(&str, &str)> {
        properties.iter().collect()
    }

    #[test]
    fn the_list_form_splits_on_commas_and_newlines_and_keeps_escaped_commas() {
        let parsed = KafkaProperties::parse_list(
            "security.protocol=SASL_SSL, sasl.mechanism = SCRAM-SHA-256,\nsasl.username=svc,sasl.password=a\\,b\\\\c=d,,",
            "TESSERA_KAFKA_PROPERTIES",
        )
        .unwrap();
        assert_eq!(
            pairs(&parsed),
            [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.username", "svc"),
                ("sasl.password", "a,b\\c=d"),
            ]
        );
    }

    #[test]
    fn a_list_entry_without_equals_is_refused_by_its_number_without_its_text() {
        let error = KafkaProperties::parse_list("client.id=x,hunter2", "TESSERA_KAFKA_PROPERTIES")
            .unwrap_err();
        assert_eq!(error.source_name, "TESSERA_KAFKA_PROPERTIES");
        assert!(error.message.contains("entry 2"), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn the_java_form_reads_a_kafka_client_properties_file() {
        let text = "# Confluent Cloud\n\
                    ! another comment\n\
                    \n\
                    security.protocol=SASL_SSL\n\
                    sasl.mechanism : PLAIN\n\
                    sasl.username   API_KEY\n\
                    sasl.password=p\\\\ss\\u0041 \\\n    continued\n\
                    client.id=\n";
        let parsed = KafkaProperties::parse_java(text, "/etc/kafka.properties").unwrap();
        assert_eq!(
            pairs(&parsed),
            [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", "API_KEY"),
                ("sasl.password", "p\\ssA continued"),
                ("client.id", ""),
            ]
        );
    }

    #[test]
    fn a_bad_unicode_escape_names_the_file_and_line() {
        let error =
            KafkaProperties::parse_java("a=1\nb=\\u12", "/etc/kafka.properties").unwrap_err();
        assert_eq!(error.source_name, "/etc/kafka.properties, line 2");
    }

    #[test]
    fn later_values_replace_earlier_ones() {
        let mut file = KafkaProperties::parse_java("client.id=a\nlinger.ms=5", "f").unwrap();
        file.extend(KafkaProperties::parse_list("client.id=b", "v").unwrap());
        assert_eq!(pairs(&file), [("client.id", "b"), ("linger.ms", "5")]);
    }

    #[test]
    fn debug_output_hides_every_secret_value() {
        let parsed = KafkaProperties::parse_list(
            "sasl.username=svc,sasl.password=pw1,ssl.key.password=pw2,ssl.keystore.password=pw3,sasl.oauthbearer.client.secret=pw4,ssl.key.pem=pw5",
            "v",
        )
        .unwrap();
        let shown = format!("{parsed:?}");
        assert!(shown.contains("svc"), "{shown}");
        for secret in ["pw1", "pw2", "pw3", "pw4", "pw5"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn librdkafka_refuses_unknown_names_and_bad_values_by_name() {
        let unknown = KafkaProperties::parse_list("no.such.property=1", "V")
            .unwrap()
            .validate("V")
            .unwrap_err();
        assert!(
            unknown.message.contains("\"no.such.property\""),
            "{unknown}"
        );
        let bad = KafkaProperties::parse_list("security.protocol=carrier-pigeon", "V")
            .unwrap()
            .validate("V")
            .unwrap_err();
        assert!(bad.message.contains("\"security.protocol\""), "{bad}");
        assert!(bad.to_string().starts_with("V: "), "{bad}");
    }

    #[test]
    fn tls_and_sasl_properties_are_accepted_because_librdkafka_is_built_with_openssl() {
        let properties = KafkaProperties::parse_list(
            "security.protocol=SASL_SSL,sasl.mechanism=SCRAM-SHA-512,sasl.username=u,sasl.password=p,ssl.endpoint.identification.algorithm=https,client.id=audit,compression.type=lz4",
            "V",
        )
        .unwrap();
        assert_eq!(properties.validate("V"), Ok(()));
    }

    #[test]
    fn properties_that_carry_the_publishers_guarantees_are_refused() {
        for entry in [
            "acks=1",
            "enable.idempotence=false",
            "bootstrap.servers=x:1",
            "message.timeout.ms=1",
        ] {
            let error = KafkaProperties::parse_list(entry, "V")
                .unwrap()
                .validate("V")
                .unwrap_err();
            let name = entry.split('=').next().unwrap();
            assert!(error.message.contains(name), "{error}");
        }
    }

    #[test]
    fn a_java_only_property_says_what_librdkafka_takes_instead() {
        let error = KafkaProperties::parse_list("sasl.jaas.config=x", "V")
            .unwrap()
            .validate("V")
            .unwrap_err();
        assert!(error.message.contains("sasl.username"), "{error}");
    }
}
