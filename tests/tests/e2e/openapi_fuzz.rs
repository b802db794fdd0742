//! The OpenAPI document against the server it describes, checked by a schema fuzzer:
//! schemathesis (PyPI) generates requests for every operation from `/openapi.json` and checks
//! that the server answers no 5xx, only statuses and content types the document declares, bodies
//! that match the declared schemas, and 401 without credentials where the document asks for
//! them. It runs its coverage, fuzzing and stateful phases with a fixed seed, so a failure
//! reproduces.
//!
//! `tests/run-all` installs schemathesis into `target/schemathesis/` (a Python virtual
//! environment); `TESSERA_TEST_SCHEMATHESIS` may name another executable. Without it the test
//! says so and passes, except under CI (`CI=true`), where it fails.

use std::path::PathBuf;
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_KEY, Store, spawn_app};

/// The operations left out: revoking API keys, because the stateful phase finds the admin
/// key's own id in the listings and would revoke the key the run authenticates with.
const EXCLUDED_OPERATIONS: [&str; 2] = ["revoke_api_key", "revoke_api_key_by_id"];

fn schemathesis() -> Option<PathBuf> {
    let path = std::env::var_os("TESSERA_TEST_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/schemathesis/bin/schemathesis")
        });
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "schemathesis is required under CI at {} (tests/run-all installs it)",
        path.display()
    );
    eprintln!("skipping: no schemathesis at {}", path.display());
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_fuzzer_finds_no_server_error_and_no_undocumented_answer() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let app = spawn_app(Store::Embedded).await;
    // A tenant beside the system one, so that listings and reads have something to show.
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "fuzzed", "name": "Fuzzed"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let base = app.base.clone();
    let reports = tempfile::tempdir().unwrap();
    let mut command = Command::new(&schemathesis);
    command
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {ADMIN_KEY}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,missing_required_header,ignored_auth",
        ])
        .args(["--phases", "coverage,fuzzing,stateful"])
        .args([
            "--max-examples",
            "10",
            "--workers",
            "1",
            "--seed",
            "20261207",
        ])
        .args(["--request-timeout", "30"])
        .arg("--report-dir")
        .arg(reports.path())
        // Schemathesis keeps a cache of past failures in `.schemathesis/` under its working
        // directory and replays them first: a run of its own starts from nothing.
        .current_dir(reports.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "");
    for operation in EXCLUDED_OPERATIONS {
        command.args(["--exclude-operation-id", operation]);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It tested the operations: a run that reached nothing would pass vacuously.
    assert!(report.contains("Tested: "), "{report}");
    let tested = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    assert!(tested >= 70, "only {tested} operations tested:\n{report}");
    // The server is still well after the run.
    let (status, _) = app.send(app.request(Method::GET, "/healthz", None)).await;
    assert_eq!(status, StatusCode::OK);
}
