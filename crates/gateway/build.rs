//! Captures the git revision the gateway is built from, for `--version`, `/healthz` and the
//! `gateway_build_info` metric: `BUILD_GIT_REVISION` when set (a container build has no
//! `.git`), else `git rev-parse --short=12 HEAD`, else `unknown`.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=BUILD_GIT_REVISION");
    let from_env = std::env::var("BUILD_GIT_REVISION")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let revision = match from_env {
        Some(revision) => revision.trim().to_owned(),
        None => {
            // Rebuild when HEAD moves: the HEAD file, and the branch it points at.
            for path in [
                git(&["rev-parse", "--git-path", "HEAD"]),
                git(&["symbolic-ref", "-q", "HEAD"])
                    .and_then(|r| git(&["rev-parse", "--git-path", &r])),
                git(&["rev-parse", "--git-path", "packed-refs"]),
            ]
            .into_iter()
            .flatten()
            {
                let path = PathBuf::from(path);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
        }
    };
    println!("cargo:rustc-env=BUILD_GIT_REVISION={revision}");
}
