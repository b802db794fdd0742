//! Golden fixtures: the bytes of every event type and version ever shipped must decode forever.
//!
//! `fixtures/{type}@v{version}.bin` holds the postcard payload of the sample in
//! `events::samples`. Fixtures are written once, by running this test with `TESSERA_BLESS=1`,
//! and never rewritten: a test failure here means a frozen format changed.
//! The JSON Schemas under `schemas/` are regenerated the same way and must match the code.

use std::path::PathBuf;

use tessera_event_schemas::Event;
use tessera_event_schemas::events::samples;
use tessera_event_schemas::json::{public_data, schema_file_name};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn blessing() -> bool {
    std::env::var_os("TESSERA_BLESS").is_some()
}

#[test]
fn every_current_event_type_has_a_sample() {
    let mut sampled: Vec<(&str, u16)> = samples::current()
        .iter()
        .map(|e| (e.event_type(), e.schema_version()))
        .collect();
    sampled.sort();
    let mut registered = Event::current_types().to_vec();
    registered.sort();
    assert_eq!(sampled, registered);
}

#[test]
fn every_fixture_decodes_to_its_sample_and_every_sample_encodes_to_its_fixture() {
    let dir = root().join("fixtures");
    for sample in samples::current() {
        let path = dir.join(format!(
            "{}@v{}.bin",
            sample.event_type(),
            sample.schema_version()
        ));
        if !path.exists() && blessing() {
            std::fs::write(&path, sample.encode()).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|_| {
            panic!(
                "missing golden fixture {}; run `TESSERA_BLESS=1 cargo test -p tessera-event-schemas --test golden` once and commit it",
                path.display()
            )
        });
        let decoded = Event::decode(sample.event_type(), sample.schema_version(), &bytes).unwrap();
        assert_eq!(decoded, sample, "{} no longer decodes", path.display());
        assert_eq!(
            sample.encode(),
            bytes,
            "{} encodes differently",
            path.display()
        );
    }
}

#[test]
fn every_fixture_on_disk_still_decodes() {
    // Includes superseded versions, which have no current sample but must still upcast.
    for entry in std::fs::read_dir(root().join("fixtures")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let (event_type, version) = name.split_once("@v").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        Event::decode(event_type, version.parse().unwrap(), &bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn committed_json_schemas_match_the_types() {
    let dir = root().join("schemas");
    for (event_type, version, schema) in Event::json_schemas() {
        let path = dir.join(schema_file_name(event_type, version));
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if blessing() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed,
            generated,
            "{} is stale; rerun with TESSERA_BLESS=1",
            path.display()
        );
    }
}

#[test]
fn sample_public_json_forms_validate_in_shape_against_their_schemas() {
    // Every property the public form emits is declared by the schema, and every property the
    // schema requires is emitted: the schemas describe exactly what subscribers receive.
    for (sample, (event_type, _, schema)) in samples::current().iter().zip(Event::json_schemas()) {
        let data = public_data(sample);
        let data = data.as_object().unwrap();
        let declared = schema
            .as_object()
            .and_then(|o| o.get("properties"))
            .and_then(|p| p.as_object());
        for key in data.keys() {
            assert!(
                declared.is_some_and(|d| d.contains_key(key)),
                "{event_type}: {key} missing from schema"
            );
        }
        let required = schema.as_object().and_then(|o| o.get("required"));
        for key in required.and_then(|r| r.as_array()).into_iter().flatten() {
            assert!(
                data.contains_key(key.as_str().unwrap()),
                "{event_type}: required {key} missing from the public form"
            );
        }
    }
}

#[test]
fn published_schemas_never_mention_secret_fields() {
    for (event_type, version, schema) in Event::json_schemas() {
        let text = serde_json::to_string(&schema).unwrap();
        for field in ["sealed_private_key", "secret_hash", "token_hash"] {
            assert!(
                !text.contains(&format!("\"{field}\"")),
                "{event_type} v{version} schema declares {field}"
            );
        }
    }
}

#[test]
fn sign_in_steps_keep_their_frozen_encoding() {
    // `SignInStep` grew variants after `sign_in.succeeded@v1.bin` was frozen: each variant's
    // bytes are frozen here, so a reordering (which would change the meaning of every recorded
    // step) fails.
    use tessera_event_schemas::Timestamp;
    use tessera_event_schemas::events::{SignInMethod, SignInStep, SignInSucceededV1};
    for (step, frozen) in [
        (SignInStep::ChangePassword, "000001008080f28183898506"),
        (SignInStep::SecondFactor, "000001018080f28183898506"),
        (SignInStep::EnrollSecondFactor, "000001028080f28183898506"),
    ] {
        let event = Event::SignInSucceeded(SignInSucceededV1 {
            method: SignInMethod::Password,
            session_id: None,
            pending_step: Some(step),
            at: Timestamp::from_micros(1_700_000_000_000_000),
        });
        let bytes = event.encode();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, frozen, "{step:?}");
        assert_eq!(
            Event::decode("sign_in.succeeded", 1, &bytes).unwrap(),
            event
        );
    }
}
