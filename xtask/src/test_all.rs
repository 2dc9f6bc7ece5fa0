//! `cargo xtask test-all`: every check CI runs, with a summary.

use crate::cargo;
use std::process::Command;
use std::time::Instant;

struct Step {
    name: &'static str,
    command: Command,
}

fn step(name: &'static str, args: &[&str]) -> Step {
    let mut command = cargo();
    command.args(args);
    Step { name, command }
}

pub(crate) fn run() -> Result<(), String> {
    let nextest = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let mut steps = vec![
        step("fmt", &["fmt", "--all", "--", "--check"]),
        step(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
    ];
    if nextest {
        steps.push(step(
            "tests (nextest)",
            &[
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--no-fail-fast",
            ],
        ));
    } else {
        eprintln!("xtask: cargo-nextest not found; running the tests with cargo test");
        steps.push(step(
            "tests",
            &[
                "test",
                "--workspace",
                "--locked",
                "--lib",
                "--bins",
                "--tests",
                "--no-fail-fast",
            ],
        ));
    }
    steps.push(step(
        "doc tests",
        &["test", "--workspace", "--locked", "--doc"],
    ));
    let mut doc = step("rustdoc", &["doc", "--workspace", "--no-deps", "--locked"]);
    doc.command.env("RUSTDOCFLAGS", "-D warnings");
    steps.push(doc);
    steps.push(step(
        "examples build",
        &["build", "--workspace", "--bins", "--examples", "--locked"],
    ));
    steps.push(step("cargo deny", &["xtask", "deny"]));
    steps.push(step("autobahn", &["xtask", "autobahn"]));
    steps.push(step("fuzz (30 s a target)", &["xtask", "fuzz", "30"]));
    steps.push(step("bench --quick", &["xtask", "bench", "--quick"]));
    steps.push(step("e2e (Chromium)", &["xtask", "e2e"]));

    let mut results = Vec::new();
    for mut s in steps {
        eprintln!("\n==> {}", s.name);
        let started = Instant::now();
        let ok = s.command.status().map(|st| st.success()).unwrap_or(false);
        results.push((s.name, ok, started.elapsed()));
    }

    eprintln!("\n==> summary");
    for (name, ok, took) in &results {
        eprintln!(
            "  {:<18} {:<4} {:>6.1}s",
            name,
            if *ok { "ok" } else { "FAIL" },
            took.as_secs_f64()
        );
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(n, _, _)| *n)
        .collect();
    if failed.is_empty() {
        eprintln!("test-all: all {} steps passed", results.len());
        Ok(())
    } else {
        Err(format!("test-all failed: {}", failed.join(", ")))
    }
}
