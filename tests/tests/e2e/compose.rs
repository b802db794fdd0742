//! `docker-compose.yml` and the proxy configuration it mounts, checked without Docker: every
//! `TESSERA_*` variable a service sets is one the server reads (the set comes from the
//! server's own command-line definition, `tessera_api::cli::environment_variables`), and every
//! service, volume and proxy upstream that is named exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn compose() -> Value {
    let text = std::fs::read_to_string(repository().join("docker-compose.yml")).unwrap();
    let mut value: Value = serde_norway::from_str(&text).unwrap();
    // `<<: *anchor` merge keys, as Docker Compose applies them.
    value.apply_merge().unwrap();
    value
}

fn services(compose: &Value) -> &Mapping {
    compose["services"]
        .as_mapping()
        .expect("a services mapping")
}

fn names(mapping: &Mapping) -> BTreeSet<String> {
    mapping
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// A service's environment as names, whether written as a mapping or a `NAME=value` list.
fn environment(service: &Value) -> Vec<String> {
    match &service["environment"] {
        Value::Mapping(map) => map.keys().map(|k| k.as_str().unwrap().to_owned()).collect(),
        Value::Sequence(list) => list
            .iter()
            .map(|entry| {
                let entry = entry.as_str().unwrap();
                entry.split('=').next().unwrap().to_owned()
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The services a service depends on, in either `depends_on` form.
fn depends_on(service: &Value) -> Vec<String> {
    match &service["depends_on"] {
        Value::Mapping(map) => names(map).into_iter().collect(),
        Value::Sequence(list) => list
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// The Tessera nodes: the services built from this repository.
fn tessera_nodes(compose: &Value) -> BTreeSet<String> {
    services(compose)
        .iter()
        .filter(|(_, service)| !service["build"].is_null())
        .map(|(name, _)| name.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_tessera_variable_the_compose_file_sets_is_one_the_server_reads() {
    let known = tessera_api::cli::environment_variables();
    // The derivation itself: were it to find nothing, every name below would be "unknown".
    for expected in [
        "TESSERA_DATABASE_URL",
        "TESSERA_KAFKA_PROPERTIES",
        "TESSERA_LOG",
    ] {
        assert!(
            known.contains(expected),
            "{expected} missing from {known:?}"
        );
    }
    let compose = compose();
    let mut checked = 0;
    for (name, service) in services(&compose) {
        let name = name.as_str().unwrap();
        for variable in environment(service) {
            if variable.starts_with("TESSERA_") {
                assert!(
                    known.contains(&variable),
                    "service {name:?} sets {variable}, which the server does not read"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 2 * 8, "only {checked} TESSERA_* settings found");

    // The image's own defaults are settings too.
    let dockerfile = std::fs::read_to_string(repository().join("Dockerfile")).unwrap();
    for word in dockerfile.split_whitespace() {
        if let Some((variable, _)) = word.split_once('=')
            && variable.starts_with("TESSERA_")
        {
            assert!(known.contains(variable), "the Dockerfile sets {variable}");
        }
    }
}

#[test]
fn every_service_and_volume_the_compose_file_names_exists() {
    let compose = compose();
    let services = services(&compose);
    let service_names = names(services);
    let volume_names = compose["volumes"]
        .as_mapping()
        .map(names)
        .unwrap_or_default();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        for dependency in depends_on(service) {
            assert!(
                service_names.contains(&dependency),
                "service {name:?} depends on {dependency:?}, which is not a service"
            );
        }
        for mount in service["volumes"].as_sequence().into_iter().flatten() {
            let source = mount.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with('.') || source.starts_with('/') {
                assert!(
                    repository().join(source).exists(),
                    "service {name:?} mounts {source}, which is not in the repository"
                );
            } else {
                assert!(
                    volume_names.contains(source),
                    "service {name:?} mounts volume {source:?}, which is not declared"
                );
            }
        }
    }
    assert!(
        tessera_nodes(&compose).len() >= 2,
        "the compose file runs fewer than two Tessera nodes"
    );
    assert!(
        compose["services"]["kurrentdb"]["profiles"]
            .as_sequence()
            .is_some_and(|p| p.iter().any(|p| p.as_str() == Some("kurrentdb"))),
        "KurrentDB is not behind the kurrentdb profile"
    );
}

#[test]
fn the_proxy_sends_to_every_tessera_node_and_only_to_services_that_exist() {
    let compose = compose();
    let service_names = names(services(&compose));
    let caddyfile = std::fs::read_to_string(repository().join("deploy/Caddyfile")).unwrap();
    let mut upstreams = BTreeSet::new();
    for line in caddyfile.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("reverse_proxy") {
            for upstream in words.take_while(|w| *w != "{") {
                let (host, port) = upstream.rsplit_once(':').expect("host:port");
                assert!(
                    service_names.contains(host),
                    "the proxy sends to {host:?}, which is not a service"
                );
                assert_eq!(port, "8080", "{upstream}: the nodes listen on 8080");
                upstreams.insert(host.to_owned());
            }
        }
    }
    assert_eq!(upstreams, tessera_nodes(&compose));
}
