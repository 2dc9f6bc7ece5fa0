//! `cargo xtask fuzz [SECONDS]`: each cargo-fuzz target in `fuzz/` for a bounded time (60 s,
//! or SECONDS), seeded from the committed corpus in `fuzz/corpus/`; new inputs go to
//! `target/fuzz-corpus/` so the tree stays clean. A crash, a panic, a timeout (a hang) or the
//! RSS limit (unbounded memory) fails the run, with the input left in `fuzz/artifacts/`.
//!
//! cargo-fuzz needs a nightly compiler for its sanitizer flags; the stable toolchain is run with
//! `RUSTC_BOOTSTRAP=1`, which unlocks them. cargo-fuzz itself is installed when missing.

use crate::{cargo, project_root};
use std::process::{Command, Stdio};

/// The targets, in `fuzz/fuzz_targets/`.
const TARGETS: [&str; 3] = ["sse_encoder", "codec", "driver_inbound"];

/// A single input taking longer than this is a hang.
const INPUT_TIMEOUT_S: u32 = 10;

/// Memory limit for the fuzzing process (AddressSanitizer's own overhead included).
const RSS_LIMIT_MB: u32 = 2048;

fn cargo_fuzz() -> Command {
    let mut cmd = cargo();
    cmd.arg("fuzz")
        .current_dir(project_root().join("fuzz"))
        .env("RUSTC_BOOTSTRAP", "1");
    cmd
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = cargo_fuzz()
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("cargo-fuzz missing: installing it from crates.io");
    let ok = cargo()
        .args(["install", "--locked", "cargo-fuzz@0.13.2"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("fuzz: installing cargo-fuzz failed".into())
    }
}

/// libFuzzer's last "Done N runs in S second(s)" line.
fn executions(log: &str) -> Option<(u64, u64)> {
    let line = log.lines().rev().find(|l| l.starts_with("Done "))?;
    let mut words = line.split_whitespace();
    let runs = words.nth(1)?.parse().ok()?;
    let secs = words.nth(2)?.parse().ok()?;
    Some((runs, secs))
}

#[allow(clippy::print_stdout)] // the summary is this task's output
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let seconds: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(60);
    ensure_cargo_fuzz()?;
    let build = cargo_fuzz()
        .args(["build", "-O"])
        .status()
        .is_ok_and(|s| s.success());
    if !build {
        return Err("fuzz: building the targets failed".into());
    }
    let root = project_root();
    let mut summary = Vec::new();
    let mut failed = Vec::new();
    for target in TARGETS {
        let scratch = root.join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let seeds = root.join("fuzz/corpus").join(target);
        eprintln!("fuzzing {target} for {seconds} s");
        let output = cargo_fuzz()
            .args(["run", "-O", target])
            .arg(&scratch)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-timeout={INPUT_TIMEOUT_S}"))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .arg("-print_final_stats=1")
            .stdout(Stdio::inherit())
            .output()
            .map_err(|e| format!("fuzz: running {target}: {e}"))?;
        let log = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            eprintln!("{log}");
            failed.push(target);
            continue;
        }
        let (runs, secs) = executions(&log).unwrap_or((0, 0));
        summary.push(format!(
            "| {target} | {secs} s | {runs} | {} |",
            runs / secs.max(1)
        ));
    }
    println!("| target | time | executions | per second |\n|---|---|---|---|");
    for line in &summary {
        println!("{line}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz: {} failed; the input is in fuzz/artifacts/",
            failed.join(", ")
        ))
    }
}
