//! `cargo xtask test-all`: every check CI runs, with a summary.

use crate::cargo;
use std::process::Command;
use std::time::{Duration, Instant};

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
    steps.push(step("package", &["xtask", "package"]));
    steps.push(step("links", &["xtask", "links"]));
    steps.push(step("cargo deny", &["xtask", "deny"]));
    steps.push(step("fuzz (30 s a target)", &["xtask", "fuzz", "30"]));
    steps.push(step("bench --quick", &["xtask", "bench", "--quick"]));
    // on the release examples the benchmark built: the compression cases (12.*, 13.*) echo
    // 216,000 messages of up to 128 KiB, minutes on a debug build
    steps.push(step("autobahn", &["xtask", "autobahn", "--release"]));
    steps.push(step("e2e (Chromium)", &["xtask", "e2e"]));

    let skipped_dir = crate::project_root().join("target/xtask");
    std::fs::create_dir_all(&skipped_dir).map_err(|e| format!("test-all: {e}"))?;
    let mut results = Vec::new();
    for (index, mut s) in steps.into_iter().enumerate() {
        eprintln!("\n==> {}", s.name);
        // a task that skips (a missing tool) notes why in this file
        let skipped_file = skipped_dir.join(format!("skipped-{index}"));
        let _ = std::fs::remove_file(&skipped_file);
        s.command.env(crate::SKIPPED_FILE, &skipped_file);
        let started = Instant::now();
        let ok = s.command.status().map(|st| st.success()).unwrap_or(false);
        let skipped = std::fs::read_to_string(&skipped_file).unwrap_or_default();
        let outcome = match (ok, skipped.trim()) {
            (false, _) => Outcome::Failed,
            (true, "") => Outcome::Passed,
            // skipping is a failure under CI (the tasks already fail; this makes sure)
            (true, _) if crate::in_ci() => Outcome::Failed,
            (true, why) => Outcome::Skipped(why.replace('\n', "; ")),
        };
        results.push((s.name, outcome, started.elapsed()));
    }
    eprintln!("\n==> summary");
    eprint!("{}", summary(&results));
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, outcome, _)| *outcome == Outcome::Failed)
        .map(|(n, _, _)| *n)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("test-all failed: {}", failed.join(", ")))
    }
}

/// How a step ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    /// It did not run (or not all of it did) on this machine; why.
    Skipped(String),
}

/// One line per step, then `test-all: N passed[, N failed], N skipped`.
fn summary(results: &[(&str, Outcome, Duration)]) -> String {
    let mut out = String::new();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, outcome, took) in results {
        let (word, why) = match outcome {
            Outcome::Passed => {
                passed += 1;
                ("ok", String::new())
            }
            Outcome::Failed => {
                failed += 1;
                ("FAIL", String::new())
            }
            Outcome::Skipped(why) => {
                skipped += 1;
                ("skipped", format!("  ({why})"))
            }
        };
        let secs = took.as_secs_f64();
        out.push_str(&format!("  {name:<22} {word:<7} {secs:>6.1}s{why}\n"));
    }
    let failed = if failed > 0 {
        format!(", {failed} failed")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "test-all: {passed} passed{failed}, {skipped} skipped\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::{summary, Outcome};
    use std::time::Duration;

    #[test]
    fn a_skipped_step_is_not_ok() {
        let second = Duration::from_secs(1);
        let results = [
            ("fmt", Outcome::Passed, second),
            (
                "cargo deny",
                Outcome::Skipped("deny: not found".into()),
                second,
            ),
        ];
        let text = summary(&results);
        assert!(text.contains("cargo deny             skipped"), "{text}");
        assert!(text.contains("(deny: not found)"), "{text}");
        assert!(!text.contains("cargo deny             ok"), "{text}");
        assert_eq!(text.lines().last(), Some("test-all: 1 passed, 1 skipped"));
    }

    #[test]
    fn failures_are_counted() {
        let second = Duration::from_secs(1);
        let results = [
            ("fmt", Outcome::Failed, second),
            ("links", Outcome::Passed, second),
        ];
        let text = summary(&results);
        assert_eq!(
            text.lines().last(),
            Some("test-all: 1 passed, 1 failed, 0 skipped")
        );
    }
}
