//! Tests of the sensitive wrappers, and the type-driven leak test of every public form this
//! crate makes (public JSON, CloudEvent, JSON Schema). The audit summary's part is in
//! `projections` (`audit::tests`), where the summary is made.

use std::collections::{BTreeMap, BTreeSet};

use schemars::{JsonSchema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::*;
use crate::cloudevents::CloudEvent;
use crate::envelope::Envelope;
use crate::events::{Event, samples};
use crate::json::{is_secret_field, public_data, strip_sensitive_properties};
use crate::primitives::Hash32;
use crate::redact::{Without, no_field};
use crate::testing::sensitive_values;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Contact {
    label: String,
    phone: Personal<String>,
}

/// Sensitive values under innocent names, at every depth the public forms must reach.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Profile {
    id: u32,
    email: Personal<String>,
    note: Secret<String>,
    seed: Secret<Option<Vec<u8>>>,
    contacts: Vec<Contact>,
    backup: Option<Contact>,
    by_kind: BTreeMap<String, Personal<String>>,
    #[serde(flatten)]
    extra: BTreeMap<String, Personal<String>>,
}

fn profile() -> Profile {
    let contact = |label: &str, phone: &str| Contact {
        label: label.to_owned(),
        phone: Personal::new(phone.to_owned()),
    };
    Profile {
        id: 7,
        email: "ada@example.test".to_owned().into(),
        note: "an innocent name hides this".to_owned().into(),
        seed: Some(vec![0xde, 0xad]).into(),
        contacts: vec![contact("home", "+44 1234"), contact("work", "+44 5678")],
        backup: Some(contact("backup", "+44 9999")),
        by_kind: BTreeMap::from([("private".to_owned(), "+44 0000".to_owned().into())]),
        extra: BTreeMap::from([("nickname".to_owned(), "Countess".to_owned().into())]),
    }
}

#[test]
fn the_postcard_bytes_are_the_inner_values_bytes() {
    let hash = Hash32([0x5e; 32]);
    assert_eq!(
        postcard::to_allocvec(&Secret::new(hash)).unwrap(),
        postcard::to_allocvec(&hash).unwrap()
    );
    let some = Some(hash);
    assert_eq!(
        postcard::to_allocvec(&Secret::new(some)).unwrap(),
        postcard::to_allocvec(&some).unwrap()
    );
    let bytes = vec![1u8, 2, 3];
    assert_eq!(
        postcard::to_allocvec(&Personal::new(bytes.clone())).unwrap(),
        postcard::to_allocvec(&bytes).unwrap()
    );
    assert_eq!(
        postcard::from_bytes::<Secret<Option<Hash32>>>(&postcard::to_allocvec(&some).unwrap())
            .unwrap(),
        Secret::new(some)
    );
}

#[test]
fn the_internal_json_form_keeps_the_values() {
    let value = serde_json::to_value(profile()).unwrap();
    assert_eq!(value["email"], "ada@example.test");
    assert_eq!(value["note"], "an innocent name hides this");
    assert_eq!(value["seed"], json!([0xde, 0xad]));
    assert_eq!(value["contacts"][1]["phone"], "+44 5678");
    assert_eq!(value["nickname"], "Countess");
    let back: Profile = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(back, profile());
    let text = serde_json::to_string(&Secret::new(Hash32([0x5e; 32]))).unwrap();
    assert_eq!(text, format!("\"{}\"", "5e".repeat(32)));
    assert_eq!(
        serde_json::from_str::<Secret<Hash32>>(&text).unwrap(),
        Secret::new(Hash32([0x5e; 32]))
    );
}

#[test]
fn debug_never_prints_the_value() {
    let text = format!("{:?}", profile());
    assert!(text.contains("Secret(..)") && text.contains("Personal(..)"));
    for value in ["ada@", "innocent", "+44", "Countess", "222, 173"] {
        assert!(!text.contains(value), "{value} in {text}");
    }
}

#[test]
fn the_public_form_leaves_out_sensitive_fields_by_type_at_any_depth() {
    let text = serde_json::to_string(&Without::new(&profile(), &no_field)).unwrap();
    let public: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        public,
        json!({
            "id": 7,
            "contacts": [{"label": "home"}, {"label": "work"}],
            "backup": {"label": "backup"},
            "by_kind": {},
        })
    );
    // The `Value` route gives the same.
    assert_eq!(
        serde_json::to_value(Without::new(&profile(), &no_field)).unwrap(),
        public
    );
}

#[test]
fn a_sensitive_value_that_is_not_a_whole_field_is_written_as_null() {
    #[derive(Serialize)]
    struct Misplaced {
        codes: Vec<Secret<String>>,
        maybe: Option<Secret<String>>,
        other: Option<Secret<String>>,
        pair: (u8, Personal<String>),
    }
    let misplaced = Misplaced {
        codes: vec!["code-1".to_owned().into(), "code-2".to_owned().into()],
        maybe: None,
        other: Some("optional secret".to_owned().into()),
        pair: (1, "someone".to_owned().into()),
    };
    let public = serde_json::to_value(Without::new(&misplaced, &no_field)).unwrap();
    // `Some` of a wrapper is left out like the wrapper; its `None` shows, which is why the
    // wrapper goes around the `Option`.
    assert_eq!(
        public,
        json!({"codes": [null, null], "maybe": null, "pair": [1, null]})
    );
    let found = sensitive_values(&misplaced);
    assert_eq!(found.len(), 4);
    assert!(found.iter().all(|value| !value.whole_field), "{found:?}");
}

fn schema_of<T: JsonSchema>() -> Value {
    let mut schema = SchemaGenerator::default().into_root_schema_for::<T>();
    if let Some(map) = schema.as_object_mut() {
        strip_sensitive_properties(map);
    }
    schema.to_value()
}

#[test]
fn schemas_lose_sensitive_properties_and_their_required_entries() {
    let schema = schema_of::<Profile>();
    let text = schema.to_string();
    for name in ["email", "note", "seed", "maybe", "phone"] {
        assert!(!text.contains(&format!("\"{name}\"")), "{name} in {text}");
    }
    assert!(!text.contains(SCHEMA_KEYWORD), "{text}");
    assert_eq!(schema["required"], json!(["id", "contacts", "by_kind"]));
    // Every entry of a map of sensitive values is left out, the flattened one's included.
    assert_eq!(
        schema["properties"]["by_kind"]["additionalProperties"],
        false
    );
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["$defs"]["Contact"]["required"],
        json!(["label"]),
        "{text}"
    );
}

#[test]
fn a_schema_keeps_the_keyword_where_a_wrapper_is_not_a_whole_field() {
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Listed {
        codes: Vec<Secret<String>>,
    }
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Optional {
        code: Option<Secret<String>>,
    }
    assert!(schema_of::<Listed>().to_string().contains(SCHEMA_KEYWORD));
    assert!(schema_of::<Optional>().to_string().contains(SCHEMA_KEYWORD));
}

/// The paths of the keys of `value` that the old name rule named.
fn named_by_the_name_rule(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    let join = |step: &str| {
        if path.is_empty() {
            step.to_owned()
        } else {
            format!("{path}.{step}")
        }
    };
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if is_secret_field(key) {
                    out.insert(join(key));
                } else {
                    named_by_the_name_rule(child, &join(key), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                named_by_the_name_rule(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_field_the_name_rule_caught_is_typed_sensitive() {
    // Payloads were redacted by field name before their secrets were typed; none of the fields
    // that rule caught may have been forgotten. (Fields typed since need no such name.)
    let mut typed = 0;
    for event in samples::current() {
        let found: BTreeSet<String> = sensitive_values(&event.payload())
            .into_iter()
            .map(|value| value.path)
            .collect();
        typed += found.len();
        let mut named = BTreeSet::new();
        named_by_the_name_rule(&event.data_json(), "", &mut named);
        let untyped: Vec<_> = named.difference(&found).collect();
        assert!(untyped.is_empty(), "{}: {untyped:?}", event.event_type());
    }
    assert!(typed >= 6, "only {typed} sensitive fields in the samples");
}

#[test]
fn no_public_form_carries_a_sensitive_value_found_by_type() {
    let schemas: BTreeMap<(&str, u16), String> = Event::json_schemas()
        .into_iter()
        .map(|(name, version, schema)| ((name, version), schema.to_value().to_string()))
        .collect();
    for text in schemas.values() {
        assert!(
            !text.contains(SCHEMA_KEYWORD),
            "a misplaced wrapper: {text}"
        );
    }
    for event in samples::current() {
        let name = event.event_type();
        let recorded = Envelope::builder().recorded(&event);
        let forms = [
            ("public JSON", public_data(&event).to_string()),
            ("public JSON text", event.public_json_without(&no_field)),
            (
                "CloudEvent",
                String::from_utf8(CloudEvent::new(&recorded, &event).to_json_bytes()).unwrap(),
            ),
            (
                "JSON Schema",
                schemas[&(name, event.schema_version())].clone(),
            ),
        ];
        let internal = event.data_json().to_string();
        for value in sensitive_values(&event.payload()) {
            let at = format!("{name}: {}", value.path);
            assert!(value.whole_field, "{at} is not a whole field");
            assert!(
                value.is_distinctive(),
                "{at}: give the sample a distinctive value, not {}",
                value.json
            );
            // The search is only as good as its input: the value is there to find.
            assert!(
                value.leaked_in(&internal).is_some(),
                "{at} not in {internal}"
            );
            for (form, text) in &forms {
                if let Some(leak) = value.leaked_in(text) {
                    panic!("{at}: the {form} carries {leak}: {text}");
                }
            }
        }
    }
}
