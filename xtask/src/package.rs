//! `cargo xtask package`: every publishable crate of the workspace packages, so a path-only
//! dependency, missing crates.io metadata or a file outside the package cannot creep back.
//!
//! The publishable crates are the workspace members without `publish = false`. They are
//! packaged in one `cargo package` run: cargo (1.90 and later) resolves their dependencies on
//! each other through a temporary local registry, so this works before any of them is on
//! crates.io. `--no-verify` skips building each package again (the other steps build the
//! same sources); `--allow-dirty` lets it run on a working tree with uncommitted changes.

use crate::cargo;
use serde_json::Value;

/// What crates.io shows, and what we require of every publishable crate.
const REQUIRED: [&str; 7] = [
    "description",
    "license",
    "repository",
    "readme",
    "keywords",
    "categories",
    "rust_version",
];

/// The publishable members of the workspace, by package name, after checking their metadata.
fn publishable() -> Result<Vec<String>, String> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .output()
        .map_err(|e| format!("package: cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err("package: cargo metadata failed".into());
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("package: {e}"))?;
    let mut names = Vec::new();
    let mut problems = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        // `publish: []` is `publish = false`; null means any registry.
        if package["publish"].as_array().is_some_and(Vec::is_empty) {
            continue;
        }
        let name = package["name"].as_str().unwrap_or("?").to_string();
        for field in REQUIRED {
            let value = &package[field];
            let missing = value.is_null()
                || value.as_str().is_some_and(str::is_empty)
                || value.as_array().is_some_and(Vec::is_empty);
            if missing {
                problems.push(format!("{name}: no `{}`", field.replace('_', "-")));
            }
        }
        names.push(name);
    }
    if problems.is_empty() {
        Ok(names)
    } else {
        Err(format!(
            "package: metadata missing (or mark the crate `publish = false`):\n  {}",
            problems.join("\n  ")
        ))
    }
}

pub(crate) fn run() -> Result<(), String> {
    let names = publishable()?;
    eprintln!("package: {}", names.join(", "));
    let mut command = cargo();
    command.args(["package", "--no-verify", "--allow-dirty", "--locked"]);
    for name in &names {
        command.args(["-p", name]);
    }
    let ok = command.status().is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("package: cargo package failed for a publishable crate".into())
    }
}
