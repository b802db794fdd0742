//! openid-client (node), a certified relying-party library, discovers a tenant through RFC
//! 8414's path (`algorithm: "oauth2"`), which failed before that path was served, and through
//! OpenID Connect Discovery.
//!
//! Without node or `tests/node/node_modules` the test says so and passes, except under CI
//! (`CI=true`), where it fails: `.ci/run` installs them with `npm ci`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{Store, spawn_app};

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Whether node and openid-client are here; under CI their absence is a failure.
fn available() -> bool {
    let node = Command::new("node").arg("--version").output().is_ok();
    let installed = node_dir().join("node_modules/openid-client").is_dir();
    if node && installed {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "node and tests/node/node_modules are required under CI (.ci/run installs them)"
    );
    eprintln!("skipped: node or openid-client is missing (npm ci --prefix tests/node)");
    false
}

#[tokio::test]
async fn openid_client_discovers_a_tenant_through_rfc_8414s_path() {
    if !available() {
        return;
    }
    let app = spawn_app(Store::Embedded).await;
    let (_, client_id, _) = app.tenant_and_client("node-disco").await;
    let issuer = app.issuer("node-disco");
    for algorithm in ["oauth2", "oidc"] {
        let args = [issuer.clone(), client_id.clone(), algorithm.to_owned()];
        // node runs on a blocking thread, so the runtime keeps serving the test's server.
        let output = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg(node_dir().join("discover.mjs"))
                .args(args)
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        assert!(
            output.status.success(),
            "{algorithm}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(metadata["issuer"], issuer.as_str(), "{algorithm}");
        assert_eq!(
            metadata["authorization_endpoint"],
            format!("{issuer}/oauth/authorize"),
            "{algorithm}"
        );
        assert_eq!(
            metadata["end_session_endpoint"],
            format!("{issuer}/oauth/logout")
        );
    }
}
