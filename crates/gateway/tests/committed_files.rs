//! Files checked in next to the code must say what the code says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn repo_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name)
}

#[test]
fn openapi_json_matches_the_code() {
    let generated = gateway::api::openapi_pretty() + "\n";
    let path = repo_file("openapi/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json differs from the spec the code generates.\n\
         Regenerate it with: UPDATE_OPENAPI=1 cargo test -p gateway --test committed_files"
    );
}

#[test]
fn the_example_configuration_documents_a_valid_file() {
    let text = std::fs::read_to_string(repo_file("gateway.example.toml")).unwrap();
    // Every key is known (unknown keys are errors) ...
    let file = gateway::config::FileConfig::from_toml(&text).unwrap();
    assert_eq!(file.routing.default, "okra");
    // ... and validation stops only at the secrets it must read from the environment.
    let err = gateway::config::Config::validate(file).unwrap_err();
    assert!(err.message.contains("environment variable"), "{err}");
}

#[test]
fn the_compose_configuration_is_a_valid_file() {
    let text = std::fs::read_to_string(repo_file("deploy/gateway.toml")).unwrap();
    let file = gateway::config::FileConfig::from_toml(&text).unwrap();
    assert_eq!(
        file.server.bind.port(),
        8080,
        "the image's HEALTHCHECK probes :8080"
    );
    assert_eq!(file.metrics.bind.map(|b| b.port()), Some(9100));
}
