//! The dependency invariants of ARCHITECTURE.md, checked against the crates' manifests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failed test

use std::collections::BTreeSet;
use std::path::Path;

/// The workspace crates a crate's manifest depends on (normal dependencies only).
fn our_dependencies(krate: &str) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = std::fs::read_to_string(root.join("crates").join(krate).join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("read {krate}/Cargo.toml: {e}"));
    let doc: toml::Table = manifest.parse().expect("valid TOML");
    let ours = ["provider", "okra", "mono", "sandbox", "gateway"];
    doc.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|deps| {
            deps.keys()
                .filter(|k| ours.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn provider_depends_on_nothing_of_ours_and_no_http() {
    assert_eq!(our_dependencies("provider"), set(&[]));
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/provider/Cargo.toml"),
    )
    .unwrap();
    let doc: toml::Table = manifest.parse().unwrap();
    let deps = doc["dependencies"].as_table().unwrap();
    for http in ["actix-web", "reqwest", "hyper"] {
        assert!(
            !deps.contains_key(http),
            "provider must not depend on {http}"
        );
    }
}

#[test]
fn adapters_depend_only_on_provider() {
    assert_eq!(our_dependencies("okra"), set(&["provider"]));
    assert_eq!(our_dependencies("mono"), set(&["provider"]));
}

#[test]
fn sandbox_is_independent_of_every_crate_of_ours() {
    assert_eq!(our_dependencies("sandbox"), set(&[]));
}

#[test]
fn gateway_sits_on_top() {
    assert_eq!(
        our_dependencies("gateway"),
        set(&["provider", "okra", "mono", "sandbox"])
    );
}
