//! An upstream identity provider over HTTPS: the server fetches its discovery document through
//! rustls with the system's roots, so a certificate of an authority the system trusts (here a
//! test authority, through `SSL_CERT_FILE`) is accepted and one it does not trust is refused.
//! The upstream is Python's `http.server` behind `ssl`, serving a static discovery document.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, eventually, spawn_app_with_env};
use crate::mail::tls::certificates;

/// `python3 -m`-style HTTPS file server on `port`, serving `root`, killed on drop.
struct HttpsServer(Child);

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn https_server(root: &Path, cert: &Path, key: &Path, port: u16) -> HttpsServer {
    let script = format!(
        "import functools, http.server, ssl\n\
         handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory={root:?})\n\
         server = http.server.HTTPServer(('127.0.0.1', {port}), handler)\n\
         context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         context.load_cert_chain({cert:?}, {key:?})\n\
         server.socket = context.wrap_socket(server.socket, server_side=True)\n\
         server.serve_forever()\n",
    );
    let child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    HttpsServer(child)
}

async fn configure(app: &TestServer, discovery: &str) -> (StatusCode, Value) {
    let (status, tenant) = app
        .send(
            app.admin(Method::POST, "/v1/tenants")
                .json(&json!({"slug": "secure-rp", "name": "Secure RP"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    let id = tenant["id"].as_str().unwrap();
    app.send(
        app.admin(Method::PUT, &format!("/v1/tenants/{id}/federation"))
            .json(&json!({
                "provider": "generic_oidc",
                "canonical_public_origin": app.base,
                "discovery_endpoint": discovery,
                "client_id": "tessera",
                "client_secret": "upstream-secret",
                "allowed_domains": ["acme.test"],
            })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_is_reached_when_its_certificate_is_trusted_and_refused_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, cert, key) = certificates(dir.path());
    let port = tessera_test_support::free_port();
    let issuer = format!("https://127.0.0.1:{port}");
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join(".well-known")).unwrap();
    std::fs::write(
        root.join(".well-known/openid-configuration"),
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
        })
        .to_string(),
    )
    .unwrap();
    let _upstream = https_server(&root, &cert, &key, port);
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    // The HTTPS server is up once it accepts connections.
    assert!(
        eventually(Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await,
        "the HTTPS upstream did not start"
    );

    let authority = authority.to_string_lossy().into_owned();
    let trusted = spawn_app_with_env(Store::Embedded, &[("SSL_CERT_FILE", &authority)]).await;
    let (status, body) = configure(&trusted, &discovery).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issuer"], issuer);
    assert_eq!(body["token_endpoint"], format!("{issuer}/token"));

    // Without the authority among its roots, the same upstream is refused, naming the field.
    let untrusting = spawn_app_with_env(Store::Embedded, &[]).await;
    let (status, body) = configure(&untrusting, &discovery).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "discovery_endpoint", "{body}");
}
