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
    let ours = [
        "provider",
        "okra",
        "mono",
        "mono-connect",
        "sandbox",
        "gateway",
    ];
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
    assert_eq!(our_dependencies("mono-connect"), set(&["provider"]));
}

#[test]
fn sandbox_is_independent_of_every_crate_of_ours() {
    assert_eq!(our_dependencies("sandbox"), set(&[]));
}

#[test]
fn gateway_sits_on_top() {
    assert_eq!(
        our_dependencies("gateway"),
        set(&["provider", "okra", "mono", "mono-connect", "sandbox"])
    );
}

/// The gateway's modules (`api::views`, `state`, ...) and the modules each one's non-test code
/// names through `crate::...` paths.
fn gateway_module_imports() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/gateway/src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let module = |path: &Path| {
        let rel = path.strip_prefix(&src).unwrap().with_extension("");
        let name = rel.to_string_lossy().replace(['/', '\\'], "::");
        name.strip_suffix("::mod").unwrap_or(&name).to_owned()
    };
    let modules: BTreeSet<String> = files
        .iter()
        .map(|p| module(p))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph = std::collections::BTreeMap::new();
    for path in &files {
        let name = module(path);
        if !modules.contains(&name) {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        // Test modules may reach anywhere; comments and docs are not imports.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        let mut imports = BTreeSet::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or("");
            for (at, _) in line.match_indices("crate::") {
                let path: String = line[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_' || *c == ':')
                    .collect();
                let mut parts = path.split("::").filter(|p| !p.is_empty());
                let first = parts.next().unwrap_or("").to_owned();
                let nested = parts.next().map(|second| format!("{first}::{second}"));
                let target = match nested {
                    Some(n) if modules.contains(&n) => n,
                    _ => first,
                };
                if modules.contains(&target) && target != name {
                    imports.insert(target);
                }
            }
        }
        graph.insert(name, imports);
    }
    graph
}

/// Every module from which `start` can be reached again, with the path taken.
fn cycle_through(
    graph: &std::collections::BTreeMap<String, BTreeSet<String>>,
    start: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in &graph[last] {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn gateway_modules_import_one_way() {
    let graph = gateway_module_imports();
    // The scan sees the modules (a broken scan would find no cycle by finding nothing).
    assert!(graph["state"].contains("registry"), "{graph:?}");
    assert!(graph["notify"].contains("config"), "{graph:?}");
    for module in graph.keys() {
        if let Some(cycle) = cycle_through(&graph, module) {
            panic!("import cycle in the gateway: {}", cycle.join(" -> "));
        }
    }
    // The hub and the configuration import nothing that imports them back.
    for lower in ["inbound", "jobs", "snapshot", "metrics", "sync", "registry"] {
        assert!(!graph[lower].contains("state"), "{lower} imports state");
    }
    assert!(!graph["config"].contains("notify"), "config imports notify");
}
